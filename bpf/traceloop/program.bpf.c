// SPDX-License-Identifier: GPL-2.0
/* traceloop: a flight recorder of syscalls per container.
 *
 * Each recorded container (by mount namespace) owns one slot: a BPF array of
 * records that the kernel fills as a ring (`buffers`, an array of maps whose
 * inner arrays are mmapable, read by user space in one go), a head counter
 * that only grows (`heads`: what was overwritten is exactly head - size), and
 * a count per syscall number that never overwrites (`counts`: the set of
 * syscalls a workload made since recording began, for seccomp profiles).
 * The enter hook writes a record; the exit hook completes its return value
 * and duration. Nothing goes through a ring buffer per syscall.
 *
 * The unrecorded path is kept as short as the hook allows: the mount
 * namespace read through BTF pointers (plain loads), then one array load
 * (`gate`, a bucket per low bits of the namespace id) before any hash lookup.
 *
 * Containers that start during a recording are caught at birth: a new mount
 * namespace (unshare(CLONE_NEWNS), or a fork into a new one) takes a spare
 * slot from `free_slots` at once, and user space is told through the event
 * ring; it keeps the slots of containers that match and gives back the rest.
 */
#include "gadget.h"

#define PATH_LEN 256
#define MAX_SYSCALLS 1024
#define MAX_SLOTS 128
#define GATE_SIZE 4096
#define RECORD_RETURNED 1
#define CLONE_NEWNS_FLAG 0x00020000

struct syscall_record {
	__u64 seq;           /* head position + 1 when written, 0 while being written */
	__u64 timestamp_raw; /* CLOCK_BOOTTIME at entry, ns */
	__u64 duration_ns;   /* set when the syscall returned */
	__u64 args[6];
	__s64 ret;
	__u32 pid;
	__u32 tid;
	__u32 nr;
	__u32 flags;         /* RECORD_RETURNED */
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN]; /* the path argument of path-taking syscalls */
};
GADGET_EVENT(syscall_record);

#define BIRTH 1  /* a new mount namespace took a slot */
#define REUSED 2 /* a new mount namespace had the number of a recorded one: that one is gone */

struct namespace_event {
	__u64 timestamp_raw;
	__u64 mntns_id;
	__u32 kind;
	__u32 slot;
	__u32 pid;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};
const struct namespace_event *traceloop_namespace_event_type __attribute__((unused)) = NULL;

struct syscall_conf {
	__u8 record;   /* recorded (--syscalls) */
	__u8 path_arg; /* 1-based index of the path argument, 0 for none */
};

struct inflight {
	__u64 seq;
	__u32 slot;
	__u32 pos;
};

/* Records per buffer - 1 (a power of two); written before load. */
const volatile __u32 targ_entries_mask = 4095;
/* Give new mount namespaces a slot at birth (a selector-based recording). */
const volatile bool targ_births = false;
/* This architecture's unshare(2) number (from libseccomp). */
const volatile __u32 targ_nr_unshare = 272;

struct record_buffer {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscall_record);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__array(values, struct record_buffer);
} buffers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_SLOTS * MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* mount namespace -> slot */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u64);
	__type(value, __u32);
} recorded SEC(".maps");

/* Non-zero where some recorded namespace's low bits land: a hint, never a miss. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GATE_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} gate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct syscall_conf);
} syscall_conf SEC(".maps");

/* Spare slots for containers born during the recording. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, MAX_SLOTS);
	__type(value, __u32);
} free_slots SEC(".maps");

/* The record a thread's running syscall wrote, until it returns: in the task itself on BTF tracepoints
 * (no hashing, freed with the task), else by thread id. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* Threads inside unshare(CLONE_NEWNS): the namespace they leave. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} unsharing SEC(".maps");

/* libbpf before 1.3 names only five syscall arguments. */
#ifndef PT_REGS_PARM6_CORE_SYSCALL
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_PARM6_CORE_SYSCALL(x) BPF_CORE_READ(x, r9)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_PARM6_CORE_SYSCALL(x) BPF_CORE_READ((struct user_pt_regs *)(x), regs[5])
#else
#define PT_REGS_PARM6_CORE_SYSCALL(x) 0
#endif
#endif

/* On BTF tracepoints, plain loads through BTF pointers: no helper call on the path every syscall takes.
 * The fallbacks read the same with CO-RE helpers, as kernels without BTF tracepoints allow. */
static __always_inline __u64 current_mntns(bool btf)
{
	if (!btf)
		return gadget_current_mntns();
	struct task_struct *task = bpf_get_current_task_btf();

	return task->nsproxy->mnt_ns->ns.inum;
}

static __always_inline __u32 *slot_of(__u64 mntns)
{
	__u32 bucket = mntns & (GATE_SIZE - 1);
	__u32 *open = bpf_map_lookup_elem(&gate, &bucket);

	if (!open || !*open)
		return NULL;
	return bpf_map_lookup_elem(&recorded, &mntns);
}

static __always_inline void tell(__u32 kind, __u64 mntns, __u32 slot, __u32 pid)
{
	struct namespace_event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	e->mntns_id = mntns;
	e->kind = kind;
	e->slot = slot;
	e->pid = pid;
	e->_pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Woken: user space answers a birth quickly, while the new container's first process lives. */
	bpf_ringbuf_submit(e, 0);
}

/* A mount namespace that did not exist before this moment. */
static __always_inline void born(__u64 mntns, __u32 pid)
{
	if (bpf_map_lookup_elem(&recorded, &mntns)) {
		/* Its number was a recorded namespace's, which is gone: that recording ends here. */
		bpf_map_delete_elem(&recorded, &mntns);
		tell(REUSED, mntns, 0, pid);
	}
	if (!targ_births)
		return;
	__u32 slot;

	if (bpf_map_pop_elem(&free_slots, &slot)) {
		gadget_count_lost(&gadget_lost); /* no spare slot: a birth not recorded, counted */
		return;
	}
	if (bpf_map_update_elem(&recorded, &mntns, &slot, BPF_NOEXIST)) {
		bpf_map_push_elem(&free_slots, &slot, 0);
		return;
	}
	__u32 bucket = mntns & (GATE_SIZE - 1);
	__u32 *open = bpf_map_lookup_elem(&gate, &bucket);

	if (open)
		*open = 1;
	tell(BIRTH, mntns, slot, pid);
}

static __always_inline void enter_unshare(__u64 flags, __u64 mntns)
{
	if (!(flags & CLONE_NEWNS_FLAG))
		return;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_update_elem(&unsharing, &tid, &mntns, BPF_ANY);
}

static __always_inline void exit_unshare(long ret, bool btf)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *before = bpf_map_lookup_elem(&unsharing, &tid);

	if (!before)
		return;
	__u64 was = *before;

	bpf_map_delete_elem(&unsharing, &tid);
	__u64 now = current_mntns(btf);

	if (ret == 0 && now != was)
		born(now, bpf_get_current_pid_tgid() >> 32);
}

/* The six arguments: from the tracepoint's record (ctx), or read from the saved registers (regs) only
 * once the syscall is known to be recorded. */
struct args_source {
	struct pt_regs *regs;
	struct trace_event_raw_sys_enter *tp;
	bool direct; /* regs is a BTF pointer (tp_btf): plain loads, no helper calls */
};

#if defined(__TARGET_ARCH_x86)
#define ARGS_DIRECT(e, r) do { (e)->args[0] = (r)->di; (e)->args[1] = (r)->si; (e)->args[2] = (r)->dx; \
	(e)->args[3] = (r)->r10; (e)->args[4] = (r)->r8; (e)->args[5] = (r)->r9; } while (0)
#elif defined(__TARGET_ARCH_arm64)
#define ARGS_DIRECT(e, r) do { struct user_pt_regs *u = (struct user_pt_regs *)(r); \
	(e)->args[0] = u->regs[0]; (e)->args[1] = u->regs[1]; (e)->args[2] = u->regs[2]; \
	(e)->args[3] = u->regs[3]; (e)->args[4] = u->regs[4]; (e)->args[5] = u->regs[5]; } while (0)
#endif

static __always_inline int on_enter(long id, __u32 slot, struct args_source src)
{
	if (id < 0 || id >= MAX_SYSCALLS)
		return 0;
	__u32 nr = id;
	__u32 at = slot * MAX_SYSCALLS + nr;
	__u64 *count = bpf_map_lookup_elem(&counts, &at);

	if (count)
		__sync_fetch_and_add(count, 1);
	struct syscall_conf *conf = bpf_map_lookup_elem(&syscall_conf, &nr);

	if (!conf || !conf->record)
		return 0;
	void *buf = bpf_map_lookup_elem(&buffers, &slot);
	__u64 *head = bpf_map_lookup_elem(&heads, &slot);

	if (!buf || !head)
		return 0;
	__u64 n = __sync_fetch_and_add(head, 1);
	__u32 pos = n & targ_entries_mask;
	struct syscall_record *e = bpf_map_lookup_elem(buf, &pos);

	if (!e)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->seq = 0; /* a reader skips a record while it is being written */
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	e->duration_ns = 0;
	if (src.tp) {
		e->args[0] = src.tp->args[0];
		e->args[1] = src.tp->args[1];
		e->args[2] = src.tp->args[2];
		e->args[3] = src.tp->args[3];
		e->args[4] = src.tp->args[4];
		e->args[5] = src.tp->args[5];
	} else {
		struct pt_regs *regs = src.regs; /* a plain pointer: CO-RE relocates only what it points to */

#ifdef ARGS_DIRECT
		if (src.direct) {
			ARGS_DIRECT(e, regs);
			goto args_done;
		}
#endif

		e->args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
		e->args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
		e->args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
		e->args[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
		e->args[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
		e->args[5] = PT_REGS_PARM6_CORE_SYSCALL(regs);
	}
args_done:
	e->ret = 0;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->nr = nr;
	e->flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__u64 path = 0;

	switch (conf->path_arg) {
	case 1: path = e->args[0]; break;
	case 2: path = e->args[1]; break;
	case 3: path = e->args[2]; break;
	case 4: path = e->args[3]; break;
	case 5: path = e->args[4]; break;
	case 6: path = e->args[5]; break;
	}
	if (!path || bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)path) < 0)
		e->path[0] = 0;
	asm volatile("" ::: "memory"); /* seq last: the fields are in place when it is seen */
	e->seq = n + 1;

	struct inflight f = { .seq = n + 1, .slot = slot, .pos = pos };

	if (src.direct) {
		struct inflight *mine = bpf_task_storage_get(&inflight_task, bpf_get_current_task_btf(), 0,
							     BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (mine)
			*mine = f;
	} else {
		__u32 tid = (__u32)pid_tgid;

		bpf_map_update_elem(&inflight, &tid, &f, BPF_ANY);
	}
	return 0;
}

static __always_inline int on_exit(long id, long ret, bool btf)
{
	if (id == targ_nr_unshare)
		exit_unshare(ret, btf);
	__u64 mntns = current_mntns(btf);

	if (!slot_of(mntns))
		return 0;
	struct inflight *f;

	if (btf) {
		f = bpf_task_storage_get(&inflight_task, bpf_get_current_task_btf(), 0, 0);
	} else {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();

		f = bpf_map_lookup_elem(&inflight, &tid);
	}
	if (!f || !f->seq)
		return 0;
	void *buf = bpf_map_lookup_elem(&buffers, &f->slot);
	struct syscall_record *e = buf ? bpf_map_lookup_elem(buf, &f->pos) : NULL;

	if (e && e->seq == f->seq && e->nr == (__u32)id) {
		e->ret = ret;
		e->duration_ns = bpf_ktime_get_boot_ns() - e->timestamp_raw;
		e->flags |= RECORD_RETURNED;
	}
	f->seq = 0;
	return 0;
}

/* The syscall number at exit, from the saved registers. */
#if defined(__TARGET_ARCH_x86)
#define NR_DIRECT(regs) ((regs)->orig_ax)
#define NR_CORE(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_DIRECT(regs) (((struct user_pt_regs *)(regs))->regs[8])
#define NR_CORE(regs) BPF_CORE_READ((struct user_pt_regs *)(regs), regs[8])
#else
#define NR_DIRECT(regs) (-1)
#define NR_CORE(regs) (-1)
#endif

#define ENTER_FROM_REGS(regs, id, is_btf) ({ \
	__u64 mntns = current_mntns(is_btf); \
	if ((id) == targ_nr_unshare) \
		enter_unshare(PT_REGS_PARM1_CORE_SYSCALL(regs), mntns); \
	__u32 *slot = slot_of(mntns); \
	slot ? on_enter(id, *slot, (struct args_source){ .regs = (regs), .direct = (is_btf) }) : 0; })

/* First choice: BTF tracepoints, the cheapest way into raw_syscalls. */
SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	return ENTER_FROM_REGS(regs, id, true);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_btf_sys_exit, struct pt_regs *regs, long ret)
{
	return on_exit(NR_DIRECT(regs), ret, true);
}

/* Older kernels: raw tracepoints (4.17+). */
SEC("raw_tp/sys_enter")
int BPF_PROG(raw_tp_sys_enter, struct pt_regs *regs, long id)
{
	return ENTER_FROM_REGS(regs, id, false);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(raw_tp_sys_exit, struct pt_regs *regs, long ret)
{
	return on_exit(NR_CORE(regs), ret, false);
}

/* Last resort: the raw_syscalls tracepoints. */
SEC("tracepoint/raw_syscalls/sys_enter")
int tp_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	long id = ctx->id;
	__u64 mntns = current_mntns(false);

	if (id == targ_nr_unshare)
		enter_unshare(ctx->args[0], mntns);
	__u32 *slot = slot_of(mntns);

	if (!slot)
		return 0;
	return on_enter(id, *slot, (struct args_source){ .tp = ctx });
}

SEC("tracepoint/raw_syscalls/sys_exit")
int tp_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->id, ctx->ret, false);
}

/* A child forked into a mount namespace of its own (clone(CLONE_NEWNS), clone3). */
static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u64 theirs = BPF_CORE_READ(child, nsproxy, mnt_ns, ns.inum);

	if (theirs && theirs != BPF_CORE_READ(parent, nsproxy, mnt_ns, ns.inum))
		born(theirs, BPF_CORE_READ(child, tgid));
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tp_btf_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(raw_tp_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

char LICENSE[] SEC("license") = "GPL";

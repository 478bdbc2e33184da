// SPDX-License-Identifier: GPL-2.0
/* capabilities: every capability check the kernel makes for the traced tasks.
 *
 * The capability/cap_capable tracepoint fires inside cap_capable() with the
 * capability and the verdict but not the caller's options, so the audit flag
 * is read from a shallow kernel stack kept in the event (the user side names
 * its frames: a *_noaudit caller means the kernel does not audit the check).
 * Kernels without the tracepoint fall back to fexit, or to a kprobe and a
 * kretprobe, on cap_capable(), whose `opts` argument says it directly.
 *
 * With --unique the kernel counts repeats: gadget_repeats maps a check's key
 * (container, capability, verdict, syscall, audit flag, call path) to the first
 * event seen with it, whose `count` grows with each repeat. The first one is
 * also sent at once; the user side reads the map when the run ends and adds
 * the counts the ring buffer has not carried, so the totals are exact.
 */
#include "gadget.h"

#define STACK_DEPTH 8
#define CAP_OPT_NOAUDIT (1U << 1) /* include/linux/security.h, since 5.1 */
#define PF_KTHREAD 0x00200000

enum audit {
	AUDIT_FROM_STACK = 0, /* tracepoint: the user side decides from the stack */
	AUDIT_YES = 1,
	AUDIT_NO = 2,
};

struct event {
	struct gadget_process proc;
	__u32 cap;
	__s32 verdict_raw; /* 0: allowed, -EPERM: denied */
	__u32 audit_raw;   /* enum audit */
	__s32 syscall_raw; /* -1 outside a syscall */
	__u64 stack_raw[STACK_DEPTH]; /* kernel return addresses, innermost first */
	__u64 count;		      /* checks this row stands for */
	__u64 _reported;	      /* --unique: checks already sent through the ring buffer */
};
GADGET_EVENT(event);

struct repeat_key {
	__u64 mntns_id;
	__u32 cap;
	__s32 verdict;
	__s32 syscall;
	__u32 audit;
	__u64 stack[STACK_DEPTH];
};

const volatile bool targ_denied = false;
const volatile __u64 targ_caps = 0; /* bit per capability; 0: all */
const volatile bool gadget_count_repeats = false;

extern int LINUX_KERNEL_VERSION __kconfig;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct repeat_key);
	__type(value, struct event);
} gadget_repeats SEC(".maps");

/* The fallback's kprobe keeps its arguments here, by thread, for the kretprobe. */
struct check_args {
	__u32 cap;
	__u32 audit;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct check_args);
} checks SEC(".maps");

/* The syscall the task is in, from the registers saved at kernel entry. */
static __always_inline __s32 current_syscall(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (task->flags & PF_KTHREAD)
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	return regs->syscallno;
#else
	return -1;
#endif
}

/* True when the check is about the task's own credentials. Others are the kernel acting for someone
 * else: overlayfs checking with its mounter's credentials, a check of another task's capabilities. */
static __always_inline bool own_credentials(const struct cred *cred)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return cred == BPF_CORE_READ(task, real_cred);
}

static __always_inline bool wanted(const struct cred *cred, int cap, int ret)
{
	if (targ_denied && ret == 0)
		return false;
	if (targ_caps && (cap < 0 || cap >= 64 || !(targ_caps & (1ULL << cap))))
		return false;
	if (gadget_should_discard())
		return false;
	return own_credentials(cred);
}

/* --unique: true when the check was counted in gadget_repeats and needs no event of its own. */
static __always_inline bool counted_as_repeat(struct event *e)
{
	struct repeat_key key = {
		.mntns_id = e->proc.mntns_id,
		.cap = e->cap,
		.verdict = e->verdict_raw,
		.syscall = e->syscall_raw,
		.audit = e->audit_raw,
	};
	struct event *seen;

	__builtin_memcpy(key.stack, e->stack_raw, sizeof(key.stack));
	seen = bpf_map_lookup_elem(&gadget_repeats, &key);
	if (seen) {
		__sync_fetch_and_add(&seen->count, 1);
		return true;
	}
	if (bpf_map_update_elem(&gadget_repeats, &key, e, BPF_NOEXIST) == 0) {
		/* The first of its key: sent at once too, and marked as sent before it is (the ring
		 * buffer's reservation cannot fail after this point), so the final count never counts it twice.
		 * A full ring buffer loses nothing here: the count comes with the map when the run ends. */
		struct event *out = bpf_ringbuf_reserve(&gadget_events, sizeof(*out), 0);

		if (!out)
			return true;
		seen = bpf_map_lookup_elem(&gadget_repeats, &key);
		if (seen)
			__sync_fetch_and_add(&seen->_reported, 1);
		__builtin_memcpy(out, e, sizeof(*out));
		gadget_submit(out);
		return true;
	}
	seen = bpf_map_lookup_elem(&gadget_repeats, &key);
	if (seen) { /* another CPU inserted it first */
		__sync_fetch_and_add(&seen->count, 1);
		return true;
	}
	return false; /* the map is full: a row of its own, still counted exactly */
}

static __always_inline int record(void *ctx, int cap, int ret, __u32 audit)
{
	/* Built on the stack (a per-CPU buffer could be shared by two preempted programs on fexit). */
	struct event e = {};

	gadget_fill_process(&e.proc);
	e.cap = cap;
	e.verdict_raw = ret;
	e.audit_raw = audit;
	e.syscall_raw = current_syscall();
	bpf_get_stack(ctx, e.stack_raw, sizeof(e.stack_raw), 0);
	e.count = 1;
	if (gadget_count_repeats && counted_as_repeat(&e))
		return 0;

	struct event *out = gadget_reserve(sizeof(*out));

	if (!out)
		return 0;
	__builtin_memcpy(out, &e, sizeof(*out));
	gadget_submit(out);
	return 0;
}

SEC("tracepoint/capability/cap_capable")
int tp_cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	if (!wanted(ctx->cred, ctx->cap, ctx->ret))
		return 0;
	return record(ctx, ctx->cap, ctx->ret, AUDIT_FROM_STACK);
}

static __always_inline __u32 audit_of(unsigned int opts)
{
	/* Before 5.1 the last argument was `int audit`: 1 audits, 0 does not. */
	if (LINUX_KERNEL_VERSION < KERNEL_VERSION(5, 1, 0))
		return opts ? AUDIT_YES : AUDIT_NO;
	return opts & CAP_OPT_NOAUDIT ? AUDIT_NO : AUDIT_YES;
}

SEC("fexit/cap_capable")
int BPF_PROG(fexit_cap_capable, const struct cred *cred, struct user_namespace *targ_ns, int cap,
	     unsigned int opts, int ret)
{
	if (!wanted(cred, cap, ret))
		return 0;
	return record(ctx, cap, ret, audit_of(opts));
}

SEC("kprobe/cap_capable")
int BPF_KPROBE(kprobe_cap_capable, const struct cred *cred, struct user_namespace *targ_ns, int cap,
	       unsigned int opts)
{
	/* The verdict is known on return only: filter on it there. */
	if (!wanted(cred, cap, targ_denied ? 1 : 0))
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct check_args args = { .cap = cap, .audit = audit_of(opts) };

	bpf_map_update_elem(&checks, &tid, &args, BPF_ANY);
	return 0;
}

SEC("kretprobe/cap_capable")
int BPF_KRETPROBE(kretprobe_cap_capable, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct check_args *args = bpf_map_lookup_elem(&checks, &tid);

	if (!args)
		return 0;
	struct check_args copy = *args;

	bpf_map_delete_elem(&checks, &tid);
	if (targ_denied && ret == 0)
		return 0;
	return record(ctx, copy.cap, ret, copy.audit);
}

char LICENSE[] SEC("license") = "GPL";

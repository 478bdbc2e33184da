// SPDX-License-Identifier: GPL-2.0
/* opensnoop: files opened with open(2), openat(2) and openat2(2).
 *
 * One hook per syscall, at its exit: the arguments are still in the registers
 * the task saved when it entered the kernel (bpf_task_pt_regs, Linux 5.15+),
 * so nothing has to be kept between entry and exit. Where the kernel lacks
 * that helper, the loader falls back to two hooks: the entry keeps the
 * arguments in a map by thread, the exit reads them back. */
#include "gadget.h"

#define PATH_LEN 256

struct event {
	struct gadget_process proc;
	__s32 fd;
	__u32 error_raw;
	__u32 flags_raw;
	__u32 mode_raw;
	char path[PATH_LEN];
};
GADGET_EVENT(event);

const volatile bool targ_failed = false;

struct open_args {
	const char *path;
	__u32 flags;
	__u32 mode;
};

/* `task` is the current task as a BTF pointer, or NULL where the program cannot have one. */
static __always_inline int emit(long ret, const struct open_args *args, struct task_struct *task)
{
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return 0;
	if (task)
		gadget_fill_process_task(&e->proc, task);
	else
		gadget_fill_process(&e->proc);
	e->fd = ret >= 0 ? ret : -1;
	e->error_raw = ret < 0 ? -ret : 0;
	e->flags_raw = args->flags;
	e->mode_raw = args->mode;
	bpf_probe_read_user_str(e->path, sizeof(e->path), args->path);
	gadget_submit(e);
	return 0;
}

/* -- one hook: the exit reads the saved registers -- */

/* The syscall's user registers, saved at entry; a BTF pointer, read directly. */
static __always_inline struct pt_regs *saved_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* The event of an open that returned `ret`, for a task the user asked for. openat2(2) passes flags and
 * mode in a struct: `how` points to it in user memory (read only for a task that is traced). */
static __always_inline int at_exit(long ret, __u64 path, __u64 flags, __u64 mode, const void *how)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if ((targ_failed && ret >= 0) || gadget_should_discard_task(task))
		return 0;
	struct open_args args = { .path = (const char *)path, .flags = flags, .mode = mode };

	if (how) {
		struct open_how h = {};

		bpf_probe_read_user(&h, sizeof(h), how);
		args.flags = h.flags;
		args.mode = h.mode;
	}
	return emit(ret, &args, task);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = saved_regs();

	return at_exit(ctx->ret, PT_REGS_PARM2_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs),
		       PT_REGS_PARM4_SYSCALL(regs), NULL);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tp_sys_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = saved_regs();

	return at_exit(ctx->ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
		       PT_REGS_PARM3_SYSCALL(regs), NULL);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tp_sys_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = saved_regs();

	return at_exit(ctx->ret, PT_REGS_PARM2_SYSCALL(regs), 0, 0, (const void *)PT_REGS_PARM3_SYSCALL(regs));
}

/* -- the fallback, two hooks: the entry keeps the arguments for the exit -- */

/* Arguments seen at syscall entry, by thread, until the syscall returns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
} start SEC(".maps");

static __always_inline int enter(const char *path, __u64 flags, __u64 mode)
{
	if (gadget_should_discard())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args args = { .path = path, .flags = flags, .mode = mode };

	/* A full map would lose the event without a trace: count it. */
	if (bpf_map_update_elem(&start, &tid, &args, BPF_ANY))
		gadget_count_lost(&gadget_lost);
	return 0;
}

static __always_inline int leave(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *args = bpf_map_lookup_elem(&start, &tid);

	if (!args)
		return 0;
	if (!(targ_failed && ret >= 0))
		emit(ret, args, NULL);
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_sys_exit_openat_kept(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int tp_sys_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tp_sys_exit_open_kept(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int tp_sys_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter((const char *)ctx->args[1], how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tp_sys_exit_openat2_kept(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* execsnoop: programs executed with execve(2) and execveat(2), with their argv. */
#include "gadget.h"

#define PATH_LEN 256
#define ARG_LEN 256
#define MAX_ARGS 32
#define ARGS_LEN 4096
#define LAST_ARG (ARGS_LEN - ARG_LEN)

struct event {
	struct gadget_process proc;
	__u32 ppid;
	__s32 ret;
	__u32 args_count;
	__u32 args_size;
	__u8 args_truncated;
	__u8 _pad[7];
	char path[PATH_LEN];
	char args_raw[ARGS_LEN];
};
GADGET_EVENT(event);

/* The event being built, by pid, from syscall entry to return. Too large for
 * the stack, and not preallocated so that idle maps cost nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct event);
} execs SEC(".maps");

static const struct event empty_event = {};

static __always_inline int enter(const char *path, const char *const *argv)
{
	if (gadget_should_discard())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&execs, &tid, &empty_event, BPF_NOEXIST))
		return 0;
	struct event *e = bpf_map_lookup_elem(&execs, &tid);

	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_probe_read_user_str(e->path, sizeof(e->path), path);

	const char *arg;
	int i;

	for (i = 0; i < MAX_ARGS; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			return 0;
		if (e->args_size > LAST_ARG) {
			e->args_truncated = 1;
			return 0;
		}
		long n = bpf_probe_read_user_str(&e->args_raw[e->args_size], ARG_LEN, arg);

		if (n < 0)
			return 0;
		if (n == ARG_LEN)
			e->args_truncated = 1;
		e->args_count++;
		e->args_size += n;
	}
	/* One more pointer that is not NULL means argv went on past MAX_ARGS. */
	if (!bpf_probe_read_user(&arg, sizeof(arg), &argv[MAX_ARGS]) && arg)
		e->args_truncated = 1;
	return 0;
}

static __always_inline int leave(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *stored = bpf_map_lookup_elem(&execs, &tid);

	if (!stored)
		return 0;
	struct event *e = gadget_reserve(sizeof(*e));

	if (e) {
		bpf_probe_read_kernel(e, sizeof(*e), stored);
		/* After a successful exec the comm is the new program's. */
		gadget_fill_process(&e->proc);
		e->ret = ret;
		gadget_submit(e);
	}
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_sys_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int tp_sys_enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_sys_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

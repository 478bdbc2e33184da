// SPDX-License-Identifier: GPL-2.0
/* Test object for the loader: a hook this kernel lacks, one it has, and a program the verifier rejects. */
#include "gadget.h"

struct event {
	struct gadget_process proc;
	__u32 which;
};
GADGET_EVENT(event);

static __always_inline int emit(__u32 which)
{
	if (gadget_should_discard())
		return 0;
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return 0;
	gadget_fill_process(&e->proc);
	e->which = which;
	gadget_submit(e);
	return 0;
}

SEC("tracepoint/gadgetbook_test/does_not_exist")
int missing_hook(void *ctx)
{
	return emit(1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int present_hook(void *ctx)
{
	return emit(2);
}

/* fentry exists in the kernel's BTF, so it passes the static probe; kernels that block function
 * tracing (this one) refuse it at load, and the loader must fall back to the tracepoint. */
SEC("fentry/vfs_read")
int BPF_PROG(fentry_hook)
{
	return emit(3);
}

#ifdef WITH_PAIRS
/* Programs that only work together: a pair of tracepoints this kernel has, and a kprobe pair it lacks. */
SEC("tracepoint/syscalls/sys_exit_getppid")
int present_exit_hook(void *ctx)
{
	return emit(4);
}

SEC("kprobe/vfs_read")
int kprobe_hook(void *ctx)
{
	return emit(5);
}

SEC("kretprobe/vfs_read")
int kretprobe_hook(void *ctx)
{
	return emit(6);
}
#endif

#ifdef WITH_BAD_PROGRAM
SEC("tracepoint/syscalls/sys_enter_getppid")
int bad_program(void *ctx)
{
	/* Reads through a NULL pointer: the verifier refuses it. */
	return *(volatile int *)0;
}
#endif

char LICENSE[] SEC("license") = "GPL";

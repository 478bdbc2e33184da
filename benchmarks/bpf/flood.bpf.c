// SPDX-License-Identifier: GPL-2.0
/* Benchmark object: one 64-byte event per getppid(2) of the filtered pid. */
#include "gadget.h"

struct event {
	struct gadget_process proc;
	__u64 a;
	__u64 b;
	__u64 c;
};
GADGET_EVENT(event);

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_sys_enter_getppid(void *ctx)
{
	if (gadget_should_discard())
		return 0;
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return 0;
	gadget_fill_process(&e->proc);
	e->a = 1;
	e->b = 2;
	e->c = 3;
	gadget_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

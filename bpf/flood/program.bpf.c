// SPDX-License-Identifier: GPL-2.0
/* flood: a benchmark producer, many events per getppid(2) of the traced processes, to measure how
 * fast events can travel from a node to a client (one syscall is far cheaper than one event here). */
#include "gadget.h"

#define MAX_PER_CALL 256

struct event {
	struct gadget_process proc;
	__u64 seq;
};
GADGET_EVENT(event);

const volatile __u32 targ_per_call = 16;

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_sys_enter_getppid(void *ctx)
{
	struct gadget_process proc;

	if (gadget_should_discard())
		return 0;
	/* The same process for every event of the call: filled once, so the ring, not the helpers, is
	 * what the benchmark measures. */
	gadget_fill_process(&proc);
	for (__u32 i = 0; i < MAX_PER_CALL && i < targ_per_call; i++) {
		struct event *e = gadget_reserve(sizeof(*e));

		if (!e)
			continue;
		e->proc = proc;
		e->seq = i;
		gadget_submit(e);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

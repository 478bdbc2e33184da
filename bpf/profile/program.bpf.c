// SPDX-License-Identifier: GPL-2.0
/* profile: on-CPU stacks sampled by a CPU-clock perf event on every CPU,
 * counted in the kernel per (process, thread, user stack, kernel stack). */
#include "gadget.h"

/* PERF_MAX_STACK_DEPTH: the deepest stack bpf_get_stackid records. */
#define MAX_STACK_DEPTH 127

/* The key of one counted stack; the user side reads the counts map with this
 * layout (from BTF), so the fields are declared only here. */
struct stack_key {
	__u32 pid;
	__u32 tid;
	__s32 user_stack_id;   /* < 0: no user stack (kernel thread, not asked, lost) */
	__s32 kernel_stack_id; /* < 0: no kernel stack (sampled in user mode, not asked, lost) */
	__u64 mntns_id;
	char comm[TASK_COMM_LEN];
};
GADGET_EVENT(stack_key);

const volatile bool targ_kernel_only = false;
const volatile bool targ_user_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 16384);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stack_key);
	__type(value, __u64);
} counts SEC(".maps");

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	/* The idle task of each CPU is not a workload. */
	if ((__u32)pid_tgid == 0)
		return 0;
	if (gadget_should_discard())
		return 0;

	struct stack_key key = {};

	key.pid = pid_tgid >> 32;
	key.tid = (__u32)pid_tgid;
	key.mntns_id = gadget_current_mntns();
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack_id = targ_kernel_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	key.kernel_stack_id = targ_user_only ? -1 : bpf_get_stackid(ctx, &stacks, 0);

	__u64 one = 1, *count = bpf_map_lookup_elem(&counts, &key);

	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	/* Another CPU may have added the key meanwhile: then add to it. */
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		count = bpf_map_lookup_elem(&counts, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			gadget_count_lost(&gadget_lost); /* the counts map is full */
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

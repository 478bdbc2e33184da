// SPDX-License-Identifier: GPL-2.0
/* Benchmark object: the designs the profile gadget did not take, measured beside it.
 * copy_stack: perf --call-graph dwarf style, a bounded copy of the user stack plus the registers
 *             per sample into the ring buffer, for the user side to unwind with the binaries' CFI.
 * fp_stack:   frame pointers only (bpf_get_stackid), what the gadget did before: wrong in leaf
 *             functions and in code built without frame pointers. */
#include "gadget.h"

#define MAX_COPY 32768

const volatile __u32 copy_bytes = 8192;
/* Racy across CPUs: a benchmark's counts. */
__u64 copied_bytes = 0; /* bytes copied, all samples together */
__u64 kept = 0;         /* samples of the filtered process (the rest were discarded at once) */

struct copy_sample {
	struct gadget_process proc;
	__u64 ip, sp, bp;
	__u32 size;
	__u32 _pad;
	__u8 stack[MAX_COPY];
};
GADGET_EVENT(copy_sample);

/* One record per CPU (a per-CPU array's values stop at 32 KiB). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct copy_sample);
} copy_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
	__uint(max_entries, 16384);
} fp_stacks SEC(".maps");

SEC("perf_event")
int copy_stack(struct bpf_perf_event_data *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if ((__u32)bpf_get_current_pid_tgid() == 0 || gadget_should_discard())
		return 0;
	struct copy_sample *s = bpf_map_lookup_elem(&copy_scratch, &cpu);

	if (!s)
		return 0;
	gadget_fill_process(&s->proc);
	s->ip = ctx->regs.ip;
	s->sp = ctx->regs.sp;
	s->bp = ctx->regs.bp;
	if ((*(volatile __u64 *)&ctx->regs.cs & 3) != 3) { /* sampled in the kernel: the saved user registers */
		struct pt_regs *user = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		s->ip = BPF_CORE_READ(user, ip);
		s->sp = BPF_CORE_READ(user, sp);
		s->bp = BPF_CORE_READ(user, bp);
	}
	__u32 n = copy_bytes;
	/* As perf does: no further than the stack's end (here the main thread's, where the work runs). */
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 top = BPF_CORE_READ(task, mm, start_stack);

	if (top > s->sp && top - s->sp < n)
		n = top - s->sp;
	if (n > MAX_COPY)
		n = MAX_COPY;
	s->size = n && !bpf_probe_read_user(s->stack, n, (void *)s->sp) ? n : 0;
	copied_bytes += s->size;
	kept += 1;
	__u64 size = sizeof(*s) - MAX_COPY + n;

	if (size > sizeof(*s))
		size = sizeof(*s);
	if (bpf_ringbuf_output(&gadget_events, s, size, BPF_RB_NO_WAKEUP))
		gadget_count_lost(&gadget_lost);
	return 0;
}

SEC("perf_event")
int fp_stack(struct bpf_perf_event_data *ctx)
{
	if ((__u32)bpf_get_current_pid_tgid() == 0 || gadget_should_discard())
		return 0;
	struct copy_sample *s;
	__u32 cpu = bpf_get_smp_processor_id();

	s = bpf_map_lookup_elem(&copy_scratch, &cpu);
	if (!s)
		return 0;
	gadget_fill_process(&s->proc);
	s->size = bpf_get_stackid(ctx, &fp_stacks, BPF_F_USER_STACK);
	kept += 1;
	if (bpf_ringbuf_output(&gadget_events, s, sizeof(s->proc) + 8, BPF_RB_NO_WAKEUP))
		gadget_count_lost(&gadget_lost);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

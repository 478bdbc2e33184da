/* SPDX-License-Identifier: GPL-2.0 */
/* Shared kernel-side pieces of every gadget: the common event header, the
 * container (mount-namespace) and pid filters, and the event ring buffer. */
#ifndef GADGETBOOK_GADGET_H
#define GADGETBOOK_GADGET_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#define TASK_COMM_LEN 16

/* Fields every event starts with. The user side recognises this struct by
 * name and turns it into the common columns (timestamp, pid, comm, ...). */
struct gadget_process {
	__u64 timestamp_raw; /* CLOCK_BOOTTIME, ns */
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	char comm[TASK_COMM_LEN];
};

/* Names the gadget's event struct for the user side, which reads its layout
 * from the object's BTF. Declared once per gadget after the struct. */
#define GADGET_EVENT(type) \
	const struct type *gadget_event_type __attribute__((unused)) = NULL

/* Names a "top" gadget's key and value structs for the user side, which reads
 * their layouts from the object's BTF and drains the map `gadget_top` (a hash
 * of key -> value) every interval. Declared once per top gadget. */
#define GADGET_TOP(key, value) \
	const struct key *gadget_top_key_type __attribute__((unused)) = NULL; \
	const struct value *gadget_top_value_type __attribute__((unused)) = NULL

/* Filters, written into .rodata before load so the verifier prunes what is off. */
const volatile bool gadget_filter_by_mntns = false;
const volatile __u32 gadget_filter_pid = 0;

/* Mount-namespace ids of the selected containers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} gadget_mntns_filter SEC(".maps");

/* One ring buffer per gadget; the user side sets its size before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} gadget_events SEC(".maps");

/* Events that found the ring buffer full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gadget_lost SEC(".maps");

static __always_inline __u64 gadget_current_mntns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* The same through a BTF task pointer (bpf_get_current_task_btf, Linux
 * 5.11+): plain loads, which the verifier guards against faults, instead of
 * a helper call per pointer. For programs that need a BTF-era helper anyway. */
static __always_inline __u64 gadget_task_mntns(struct task_struct *task)
{
	return task->nsproxy->mnt_ns->ns.inum;
}

static __always_inline bool gadget_discard_mntns(__u64 mntns)
{
	return !bpf_map_lookup_elem(&gadget_mntns_filter, &mntns);
}

/* True when the current task is not one the user asked for. */
static __always_inline bool gadget_should_discard(void)
{
	if (gadget_filter_pid && (bpf_get_current_pid_tgid() >> 32) != gadget_filter_pid)
		return true;
	return gadget_filter_by_mntns && gadget_discard_mntns(gadget_current_mntns());
}

/* gadget_should_discard for the current task as a BTF pointer. */
static __always_inline bool gadget_should_discard_task(struct task_struct *task)
{
	if (gadget_filter_pid && (bpf_get_current_pid_tgid() >> 32) != gadget_filter_pid)
		return true;
	return gadget_filter_by_mntns && gadget_discard_mntns(gadget_task_mntns(task));
}

/* One more in a per-CPU loss counter (a one-entry per-CPU array). Atomic even
 * though the slot is per CPU: syscall tracepoints are faultable on recent
 * kernels and run their programs preemptibly, so two programs can interleave
 * on one CPU, and a plain += loses counts. */
static __always_inline void gadget_count_lost(void *counter_map)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(counter_map, &zero);

	if (lost)
		__sync_fetch_and_add(lost, 1);
}

/* Reserve an event; a full ring buffer is counted, never silent. */
static __always_inline void *gadget_reserve(__u64 size)
{
	void *event = bpf_ringbuf_reserve(&gadget_events, size, 0);

	if (!event)
		gadget_count_lost(&gadget_lost);
	return event;
}

/* Bytes waiting in the ring buffer at which a submit wakes the reader
 * (set before load; 0: never). */
const volatile __u64 gadget_wakeup_bytes = 0;

/* Submits without a wakeup: the user side drains on a timer, which keeps the
 * traced program's cost per event low (see the benchmark). Only the record
 * that takes the ring past gadget_wakeup_bytes wakes the reader: a burst is
 * then read before the ring fills, and the wakeups stay one per crossing
 * (a wakeup per event would cost the traced program a self-interrupt each).
 * Takes the event pointer, whose type gives the record's size. */
#define gadget_submit(event) gadget_submit_sized((event), sizeof(*(event)))

static __always_inline void gadget_submit_sized(void *event, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (gadget_wakeup_bytes) {
		/* This record's space in the ring: its 8-byte header, rounded up to 8 bytes. */
		__u64 record = (size + 8 + 7) & ~7ULL;
		__u64 waiting = bpf_ringbuf_query(&gadget_events, BPF_RB_AVAIL_DATA);

		if (waiting >= gadget_wakeup_bytes && waiting < gadget_wakeup_bytes + record)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(event, flags);
}

static __always_inline void gadget_fill_ids(struct gadget_process *p)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	p->timestamp_raw = bpf_ktime_get_boot_ns();
	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	p->uid = (__u32)uid_gid;
	p->gid = uid_gid >> 32;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

static __always_inline void gadget_fill_process(struct gadget_process *p)
{
	gadget_fill_ids(p);
	p->mntns_id = gadget_current_mntns();
}

/* gadget_fill_process for the current task as a BTF pointer: its fields read
 * directly (the command name too: a 16-byte copy instead of a helper call
 * that copies it byte by byte). */
static __always_inline void gadget_fill_process_task(struct gadget_process *p, struct task_struct *task)
{
	const struct cred *cred = task->cred;

	p->timestamp_raw = bpf_ktime_get_boot_ns();
	p->mntns_id = gadget_task_mntns(task);
	p->pid = task->tgid;
	p->tid = task->pid;
	p->uid = cred->uid.val;
	p->gid = cred->gid.val;
	__builtin_memcpy(p->comm, task->comm, sizeof(p->comm));
}

#endif

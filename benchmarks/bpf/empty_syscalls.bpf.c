// SPDX-License-Identifier: GPL-2.0
/* Benchmark object: empty programs on every hook traceloop may use, for the bare cost of each hook. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id) { return 0; }
SEC("tp_btf/sys_exit")
int BPF_PROG(tp_btf_sys_exit, struct pt_regs *regs, long ret) { return 0; }
SEC("raw_tp/sys_enter")
int BPF_PROG(raw_tp_sys_enter, struct pt_regs *regs, long id) { return 0; }
SEC("raw_tp/sys_exit")
int BPF_PROG(raw_tp_sys_exit, struct pt_regs *regs, long ret) { return 0; }
SEC("tracepoint/raw_syscalls/sys_enter")
int tp_sys_enter(void *ctx) { return 0; }
SEC("tracepoint/raw_syscalls/sys_exit")
int tp_sys_exit(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";

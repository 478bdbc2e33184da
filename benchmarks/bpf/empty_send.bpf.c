// SPDX-License-Identifier: GPL-2.0
/* Benchmark object: an empty program on tcptop's send hook. Its run time per call, as the kernel's
 * statistics report it, is what the counting itself adds: the baseline for tcptop's own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sock_send_length")
int BPF_PROG(empty_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

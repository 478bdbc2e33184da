// SPDX-License-Identifier: GPL-2.0
/* bindsnoop: sockets bound to IPv4 and IPv6 addresses with bind(2). */
#include "gadget.h"
#include "gadget_sock.h"

struct event {
	struct gadget_process proc;
	__u16 af_raw;
	__u16 protocol_raw;
	__u16 port;
	__u8 options_raw;
	__u8 _pad;
	__s32 ret;
	__u32 bound_dev_if;
	__u8 addr_raw[16];
};
GADGET_EVENT(event);

struct bind_args {
	const void *addr;
	__u32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct bind_args);
} start SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_bind")
int tp_sys_enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	if (gadget_should_discard())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_args args = { .addr = (const void *)ctx->args[1], .fd = ctx->args[0] };

	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int tp_sys_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_args *args = bpf_map_lookup_elem(&start, &tid);

	if (!args)
		return 0;
	__u16 af = 0;

	bpf_probe_read_user(&af, sizeof(af), args->addr);
	if (af != GADGET_AF_INET && af != GADGET_AF_INET6)
		goto out;
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		goto out;
	gadget_fill_process(&e->proc);
	e->af_raw = af;
	e->ret = ctx->ret;
	__builtin_memset(e->addr_raw, 0, sizeof(e->addr_raw));
	if (af == GADGET_AF_INET) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), args->addr);
		e->port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(e->addr_raw, &sin.sin_addr, 4);
	} else {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), args->addr);
		e->port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(e->addr_raw, &sin6.sin6_addr, 16);
	}
	struct sock *sk = gadget_fd_sock(args->fd);

	e->protocol_raw = 0;
	e->options_raw = 0;
	e->bound_dev_if = 0;
	if (sk) {
		e->protocol_raw = BPF_CORE_READ(sk, sk_protocol);
		e->bound_dev_if = BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
		/* Bit 0: SO_REUSEADDR, bit 1: SO_REUSEPORT. */
		if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuse))
			e->options_raw |= 1;
		if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuseport))
			e->options_raw |= 2;
	}
	gadget_submit(e);
out:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* tcptop: TCP bytes sent and received per process and connection, summed in the kernel.
 *
 * sock_send_length and sock_recv_length fire in the process that sends or
 * receives, once per sendmsg/recvmsg, with the socket and the byte count.
 * Where the kernel offers BTF tracepoints (tp_btf) the programs get the
 * socket as a typed pointer and read it directly, and are called without
 * the perf event record a classic tracepoint fills first: that is most of
 * the cost at one call per 4 KiB send. The classic tracepoints are the
 * fallback. The user side reads and clears gadget_top every interval.
 */
#include "gadget.h"
#include "gadget_sock.h"

#define MSG_PEEK 2

struct conn_key {
	__u32 pid;
	__u16 af_raw;
	__u16 sport;
	__u8 saddr_raw[16];
	__u8 daddr_raw[16];
	__u16 dport;
	__u16 _pad;
};

struct conn_stats {
	__u64 sent;
	__u64 received;
	__u64 mntns_id;
	__u32 uid;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};
GADGET_TOP(conn_key, conn_stats);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct conn_stats);
} gadget_top SEC(".maps");

/* Connections that found the map full, per CPU: reported as lost. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gadget_top_lost SEC(".maps");

/* Adds bytes to the connection's entry, made on its first bytes. */
static __always_inline int add(const struct gadget_tuple *t, __u64 bytes, bool sending)
{
	struct conn_key key = {};

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.af_raw = t->af;
	key.sport = t->sport;
	key.dport = t->dport;
	__builtin_memcpy(key.saddr_raw, t->saddr, 16);
	__builtin_memcpy(key.daddr_raw, t->daddr, 16);
	struct conn_stats *st = bpf_map_lookup_elem(&gadget_top, &key);

	if (!st) {
		struct conn_stats fresh = {};

		fresh.mntns_id = gadget_current_mntns();
		fresh.uid = (__u32)bpf_get_current_uid_gid();
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		/* Another CPU may have added the key meanwhile: then add to its entry. */
		if (bpf_map_update_elem(&gadget_top, &key, &fresh, BPF_NOEXIST) && bpf_map_lookup_elem(&gadget_top, &key) == NULL) {
			gadget_count_lost(&gadget_top_lost);
			return 0;
		}
		st = bpf_map_lookup_elem(&gadget_top, &key);
		if (!st)
			return 0;
	}
	if (sending)
		__sync_fetch_and_add(&st->sent, bytes);
	else
		__sync_fetch_and_add(&st->received, bytes);
	return 0;
}

/* -- BTF tracepoints: the socket is a typed pointer, read directly -- */

static __always_inline int count_btf(struct sock *sk, int ret, int flags, bool sending)
{
	if (ret <= 0 || sk->sk_protocol != GADGET_IPPROTO_TCP)
		return 0;
	if (!sending && (flags & MSG_PEEK))
		return 0; /* peeked bytes are read again later */
	if (gadget_should_discard())
		return 0;
	struct gadget_tuple t = {};

	t.af = sk->__sk_common.skc_family;
	t.sport = sk->__sk_common.skc_num; /* host byte order; bound while bytes flow */
	t.dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (t.af == GADGET_AF_INET) {
		__builtin_memcpy(t.saddr, &sk->__sk_common.skc_rcv_saddr, 4);
		__builtin_memcpy(t.daddr, &sk->__sk_common.skc_daddr, 4);
	} else if (t.af == GADGET_AF_INET6) {
		__builtin_memcpy(t.saddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(t.daddr, &sk->__sk_common.skc_v6_daddr, 16);
	} else {
		return 0;
	}
	return add(&t, ret, sending);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tpbtf_sock_send_length, struct sock *sk, int ret, int flags)
{
	return count_btf(sk, ret, flags, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tpbtf_sock_recv_length, struct sock *sk, int ret, int flags)
{
	return count_btf(sk, ret, flags, false);
}

/* -- the fallback, classic tracepoints: the socket is read through probes -- */

static __always_inline int count(struct trace_event_raw_sock_msg_length *ctx, bool sending)
{
	if (ctx->protocol != GADGET_IPPROTO_TCP || ctx->ret <= 0)
		return 0;
	if (!sending && (ctx->flags & MSG_PEEK))
		return 0;
	if (gadget_should_discard())
		return 0;
	struct gadget_tuple t;

	if (!gadget_sock_tuple(ctx->sk, &t))
		return 0;
	return add(&t, ctx->ret, sending);
}

SEC("tracepoint/sock/sock_send_length")
int tp_sock_send_length(struct trace_event_raw_sock_msg_length *ctx)
{
	return count(ctx, true);
}

SEC("tracepoint/sock/sock_recv_length")
int tp_sock_recv_length(struct trace_event_raw_sock_msg_length *ctx)
{
	return count(ctx, false);
}

char LICENSE[] SEC("license") = "GPL";

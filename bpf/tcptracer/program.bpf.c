// SPDX-License-Identifier: GPL-2.0
/* tcptracer: TCP connects, accepts and closes, with the process that owns each connection.
 *
 * Only tracepoints: sock/inet_sock_set_state sees every state change, but the
 * server side's changes and most closes happen in softirq context, where the
 * current task is whoever the packet interrupted. So the owner (pid, comm,
 * mount namespace, ...) is taken where the task is the right one -- the
 * connect(2) that moves a socket to SYN_SENT, the accept(2) that returns it --
 * kept per socket, and used for the rows emitted later.
 */
#include "gadget.h"
#include "gadget_sock.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT2 5
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11

enum tcp_event_type { TCP_EVENT_CONNECT = 1, TCP_EVENT_ACCEPT = 2, TCP_EVENT_CLOSE = 3 };

struct event {
	struct gadget_process proc;
	__u8 type_raw;
	__u8 _pad;
	__u16 af_raw;
	__u8 saddr_raw[16];
	__u16 sport;
	__u8 daddr_raw[16];
	__u16 dport;
	__u32 netns;
	__u64 sent;
	__u64 received;
};
GADGET_EVENT(event);

/* Who owns a traced socket; `connecting` until its connect row is out,
 * `syn_acked` once a connect got its SYN-ACK. */
struct owner {
	struct gadget_process proc;
	__u8 connecting;
	__u8 syn_acked;
};

/* Sockets of the selected processes, from connect/accept to close. LRU: a socket
 * whose close never shows (a missed event) cannot fill the map for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} sockets SEC(".maps");

/* Scratch space: struct owner is too large for the BPF stack next to the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct owner);
} scratch SEC(".maps");

/* Application bytes over the connection's life. bytes_acked and bytes_received
 * count sequence numbers, so a SYN and a FIN count one each: take those off. */
static __always_inline void byte_counts(struct event *e, const struct sock *sk, const struct owner *o,
					int oldstate)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 sent = BPF_CORE_READ(tp, bytes_acked);
	__u64 received = BPF_CORE_READ(tp, bytes_received);
	/* Our FIN was acknowledged in these states; the connector's SYN once it was established. */
	__u64 flags_acked = o->syn_acked +
		(oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK);
	/* tcp_fin() marks the socket SOCK_DONE when the peer's FIN comes in (and
	 * before any state change it causes); an abort does not. */
	__u64 fin_received = (BPF_CORE_READ(sk, __sk_common.skc_flags) >> SOCK_DONE) & 1;

	e->sent = sent > flags_acked ? sent - flags_acked : 0;
	e->received = received > fin_received ? received - fin_received : 0;
}

static __always_inline void emit(const struct sock *sk, const struct owner *o, __u8 type, int oldstate)
{
	struct gadget_tuple t;

	if (!gadget_sock_tuple(sk, &t))
		return;
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return;
	e->proc = o->proc;
	e->proc.timestamp_raw = bpf_ktime_get_boot_ns();
	e->type_raw = type;
	e->_pad = 0;
	e->af_raw = t.af;
	e->sport = t.sport;
	e->dport = t.dport;
	__builtin_memcpy(e->saddr_raw, t.saddr, 16);
	__builtin_memcpy(e->daddr_raw, t.daddr, 16);
	e->netns = gadget_sock_netns(sk);
	e->sent = 0;
	e->received = 0;
	if (type == TCP_EVENT_CLOSE)
		byte_counts(e, sk, o, oldstate);
	gadget_submit(e);
}

/* Remember the current task as the owner of sk. */
static __always_inline struct owner *own(__u64 skaddr, bool connecting)
{
	__u32 zero = 0;
	struct owner *o = bpf_map_lookup_elem(&scratch, &zero);

	if (!o)
		return NULL;
	gadget_fill_process(&o->proc);
	o->connecting = connecting;
	o->syn_acked = 0;
	bpf_map_update_elem(&sockets, &skaddr, o, BPF_ANY);
	return o;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != GADGET_IPPROTO_TCP)
		return 0;
	__u64 skaddr = (__u64)ctx->skaddr;
	const struct sock *sk = ctx->skaddr;
	int newstate = ctx->newstate;

	if (newstate == TCP_SYN_SENT) {
		/* connect(2), in the calling task; the source port is not chosen yet,
		 * so the row waits for ESTABLISHED (or a failed connect's CLOSE). */
		if (!gadget_should_discard())
			own(skaddr, true);
		return 0;
	}
	if (newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	struct owner *o = bpf_map_lookup_elem(&sockets, &skaddr);

	if (!o)
		return 0;
	if (o->connecting) {
		o->connecting = 0;
		o->syn_acked = newstate == TCP_ESTABLISHED;
		emit(sk, o, TCP_EVENT_CONNECT, ctx->oldstate);
	}
	if (newstate == TCP_CLOSE) {
		emit(sk, o, TCP_EVENT_CLOSE, ctx->oldstate);
		bpf_map_delete_elem(&sockets, &skaddr);
	}
	return 0;
}

/* accept(2) and accept4(2) return a connected socket in the accepting task. */
static __always_inline int accepted(long fd)
{
	if (fd < 0 || gadget_should_discard())
		return 0;
	struct sock *sk = gadget_fd_sock(fd);

	if (!sk || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != GADGET_IPPROTO_TCP)
		return 0;
	struct owner *o = own((__u64)sk, false);

	if (o)
		emit(sk, o, TCP_EVENT_ACCEPT, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* dns: DNS queries the targets send and the responses they get back, over UDP and TCP, IPv4 and IPv6.
 *
 * Only tracepoints of the network stack, which every kernel has: net/net_dev_queue sees each packet a
 * host sends, in the sending task for locally made packets, and net/netif_receive_skb each packet it
 * receives, in softirq context. A query is matched to its response by network namespace, addresses,
 * ports, protocol and DNS id, so the response row names the process that asked and carries the latency.
 * Packets whose transmit was deferred (a neighbour still being resolved, a TCP retransmit) leave from
 * softirq context: the socket's owner, noted when socket(2) or accept(2) returned it, names them.
 * The DNS message itself (up to DNS_CAPTURE bytes of it) goes to the user side, which parses it.
 */
#include "gadget.h"
#include "gadget_sock.h"

#define DNS_CAPTURE 512
#define DNS_HEADER 12
#define IPPROTO_UDP_ 17
#define DIRECTION_SENT 1
#define DIRECTION_RECEIVED 2

struct event {
	struct gadget_process proc;
	__u8 direction_raw;
	__u8 proto_raw;
	__u16 af_raw;
	__u16 dns_size; /* bytes of the DNS message on the wire */
	__u16 dns_captured; /* of which dns_raw holds this many */
	__u8 dns_raw[DNS_CAPTURE];
	__u64 latency_raw; /* a received response: ns since its query left; 0 otherwise */
	__u32 netns;
	__u16 sport;
	__u16 dport;
	__u8 saddr_raw[16];
	__u8 daddr_raw[16];
};
GADGET_EVENT(event);

const volatile __u16 targ_port = 53;

/* A query waiting for its response, keyed as the response will show it. */
struct query_key {
	__u32 netns;
	__u16 id;
	__u16 client_port;
	__u16 server_port;
	__u8 proto;
	__u8 af;
	__u8 client[16];
	__u8 server[16];
};

struct query {
	struct gadget_process proc;
	__u64 sent_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct query_key);
	__type(value, struct query);
} queries SEC(".maps");

/* Who made each socket of the selected processes (others are absent). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct gadget_process);
} owners SEC(".maps");

struct packet {
	__u16 af;
	__u8 proto;
	__u8 qr;
	__u16 id;
	__u16 sport;
	__u16 dport;
	__u16 dns_size;
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 dns; /* kernel address of the DNS message */
	__u32 avail; /* bytes readable there in one piece */
};

/* Scratch space: the packet and the query do not fit the BPF stack beside the rest. */
struct scratch {
	struct packet pkt;
	struct query q;
	struct query_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline struct scratch *scratch_space(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

#ifdef __TARGET_ARCH_x86
/* Where the direct map and the page array start: variables when the kernel randomizes its memory
 * layout (most distributions), else the fixed x86-64 (4-level) addresses. */
extern const void page_offset_base __ksym __weak;
extern const void vmemmap_base __ksym __weak;

static __always_inline __u64 page_address(__u64 page)
{
	__u64 direct = 0xffff888000000000ULL, pages = 0xffffea0000000000ULL;

	if (&page_offset_base)
		bpf_probe_read_kernel(&direct, sizeof(direct), &page_offset_base);
	if (&vmemmap_base)
		bpf_probe_read_kernel(&pages, sizeof(pages), &vmemmap_base);
	return direct + ((page - pages) / bpf_core_type_size(struct page) << 12);
}
#endif

/* The kernel address of byte `off` (from skb->head) of a packet, and how many bytes follow it in
 * one piece: in the linear area, or in the first page fragment (where TCP puts what it sends). */
static __always_inline bool locate(const struct sk_buff *skb, unsigned char *head, __u32 off, __u64 *addr,
				   __u32 *avail)
{
	__u32 linear_end = BPF_CORE_READ(skb, data) - head + BPF_CORE_READ(skb, len) - BPF_CORE_READ(skb, data_len);

	if (off < linear_end) {
		*addr = (__u64)head + off;
		*avail = linear_end - off;
		return true;
	}
#ifdef __TARGET_ARCH_x86
	struct skb_shared_info *shinfo = (void *)(head + BPF_CORE_READ(skb, end));
	/* skb_frag_t since 5.4: a page (or netmem) pointer, then length and offset. */
	struct {
		__u64 page;
		__u32 len;
		__u32 offset;
	} frag;

	if (!BPF_CORE_READ(shinfo, nr_frags) || bpf_probe_read_kernel(&frag, sizeof(frag), &shinfo->frags[0]))
		return false;
	__u32 skip = off - linear_end;

	/* Bit 0 marks memory that is not a page (device memory): not readable here. */
	if ((frag.page & 1) || skip >= frag.len)
		return false;
	*addr = page_address(frag.page) + frag.offset + skip;
	*avail = frag.len - skip;
	return true;
#else
	return false;
#endif
}

/* Fills p from the IP packet at head + l3; false unless it is a DNS message to or from targ_port. */
static __always_inline bool parse(const struct sk_buff *skb, __u32 l3, struct packet *p)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u8 ip[40];
	__u32 l4, payload;

	if (bpf_probe_read_kernel(ip, 20, head + l3))
		return false;
	__builtin_memset(p->saddr, 0, 16);
	__builtin_memset(p->daddr, 0, 16);
	if ((ip[0] >> 4) == 4) {
		__u32 ihl = (ip[0] & 0xf) * 4;

		/* Later fragments carry no header of their own. */
		if (((ip[6] & 0x1f) | ip[7]) != 0 || ihl < 20)
			return false;
		p->af = GADGET_AF_INET;
		p->proto = ip[9];
		__builtin_memcpy(p->saddr, &ip[12], 4);
		__builtin_memcpy(p->daddr, &ip[16], 4);
		l4 = l3 + ihl;
		payload = ((__u32)ip[2] << 8 | ip[3]) - ihl;
	} else if ((ip[0] >> 4) == 6) {
		if (bpf_probe_read_kernel(ip, 40, head + l3))
			return false;
		p->af = GADGET_AF_INET6;
		p->proto = ip[6]; /* extension headers are not followed: DNS packets carry none */
		__builtin_memcpy(p->saddr, &ip[8], 16);
		__builtin_memcpy(p->daddr, &ip[24], 16);
		l4 = l3 + 40;
		payload = (__u32)ip[4] << 8 | ip[5];
	} else {
		return false;
	}
	__u8 l4h[14];
	__u32 hlen;

	if (p->proto == IPPROTO_UDP_) {
		hlen = 8;
	} else if (p->proto == GADGET_IPPROTO_TCP) {
		hlen = 14;
	} else {
		return false;
	}
	if (bpf_probe_read_kernel(l4h, hlen == 8 ? 8 : 14, head + l4))
		return false;
	p->sport = (__u16)l4h[0] << 8 | l4h[1];
	p->dport = (__u16)l4h[2] << 8 | l4h[3];
	if (p->sport != targ_port && p->dport != targ_port)
		return false;
	__u32 skip = 0;

	if (p->proto == GADGET_IPPROTO_TCP) {
		hlen = (l4h[12] >> 4) * 4;
		/* A segment that starts a DNS message: its two-byte length, then the message. */
		if (hlen < 20 || payload < hlen + 2 + DNS_HEADER)
			return false;
		skip = 2;
	}
	if (payload < hlen + DNS_HEADER || !locate(skb, head, l4 + hlen, &p->dns, &p->avail) ||
	    p->avail < skip + DNS_HEADER)
		return false;
	__u8 hdr[6];

	if (bpf_probe_read_kernel(hdr, 6, (void *)p->dns))
		return false;
	if (skip) {
		p->dns_size = (__u16)hdr[0] << 8 | hdr[1];
		p->dns += 2;
		p->avail -= 2;
		p->id = (__u16)hdr[2] << 8 | hdr[3];
		p->qr = hdr[4] >> 7;
	} else {
		p->dns_size = payload - hlen;
		p->id = (__u16)hdr[0] << 8 | hdr[1];
		p->qr = hdr[2] >> 7;
	}
	return p->dns_size >= DNS_HEADER;
}

static __always_inline void fill_key(struct query_key *k, const struct packet *p, __u32 netns, bool response)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->netns = netns;
	k->id = p->id;
	k->proto = p->proto;
	k->af = p->af;
	if (response) {
		k->client_port = p->dport;
		k->server_port = p->sport;
		__builtin_memcpy(k->client, p->daddr, 16);
		__builtin_memcpy(k->server, p->saddr, 16);
	} else {
		k->client_port = p->sport;
		k->server_port = p->dport;
		__builtin_memcpy(k->client, p->saddr, 16);
		__builtin_memcpy(k->server, p->daddr, 16);
	}
}

static __always_inline void emit(const struct sk_buff *skb, const struct packet *p, const struct gadget_process *proc,
				 __u8 direction, __u64 latency, __u32 netns)
{
	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return;
	e->proc = *proc;
	e->proc.timestamp_raw = bpf_ktime_get_boot_ns();
	e->latency_raw = latency;
	e->netns = netns;
	e->direction_raw = direction;
	e->proto_raw = p->proto;
	e->af_raw = p->af;
	__builtin_memcpy(e->saddr_raw, p->saddr, 16);
	__builtin_memcpy(e->daddr_raw, p->daddr, 16);
	e->sport = p->sport;
	e->dport = p->dport;
	e->dns_size = p->dns_size;
	__u64 n = p->avail;

	if (n > p->dns_size)
		n = p->dns_size;
	if (n > DNS_CAPTURE)
		n = DNS_CAPTURE;
	e->dns_captured = n;
	if (n) {
		/* Bounds the verifier can follow: 1 to DNS_CAPTURE (a power of two). */
		barrier_var(n);
		n = ((n - 1) & (DNS_CAPTURE - 1)) + 1;
		if (bpf_probe_read_kernel(e->dns_raw, n, (void *)p->dns))
			e->dns_captured = 0;
	}
	gadget_submit(e);
}

static __always_inline __u32 dev_netns(const struct sk_buff *skb)
{
	return BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
}

SEC("tracepoint/net/net_dev_queue")
int tp_net_dev_queue(struct trace_event_raw_net_dev_template *ctx)
{
	const struct sk_buff *skb = ctx->skbaddr;
	struct sock *sk = BPF_CORE_READ(skb, sk);

	/* Forwarded packets (a bridge, a router) have no socket: they were traced where they were made. */
	if (!sk)
		return 0;
	struct scratch *s = scratch_space();

	if (!s || !parse(skb, BPF_CORE_READ(skb, network_header), &s->pkt))
		return 0;
	__u32 netns = dev_netns(skb);
	__u64 skaddr = (__u64)sk;
	struct gadget_process *owner = bpf_map_lookup_elem(&owners, &skaddr);

	if (owner) {
		s->q.proc = *owner;
	} else {
		/* A socket made before the run: the sending task, when it is in process context here. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) != netns || gadget_should_discard())
			return 0;
		gadget_fill_process(&s->q.proc);
	}
	if (!s->pkt.qr) {
		s->q.sent_ns = bpf_ktime_get_boot_ns();
		fill_key(&s->key, &s->pkt, netns, false);
		bpf_map_update_elem(&queries, &s->key, &s->q, BPF_ANY);
	}
	emit(skb, &s->pkt, &s->q.proc, DIRECTION_SENT, 0, netns);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int tp_netif_receive_skb(struct trace_event_raw_net_dev_template *ctx)
{
	const struct sk_buff *skb = ctx->skbaddr;
	struct scratch *s = scratch_space();

	/* The link-layer header is pulled by now: skb->data is the IP header. */
	if (!s || !parse(skb, BPF_CORE_READ(skb, data) - BPF_CORE_READ(skb, head), &s->pkt) || !s->pkt.qr)
		return 0;
	__u32 netns = dev_netns(skb);

	fill_key(&s->key, &s->pkt, netns, true);
	struct query *q = bpf_map_lookup_elem(&queries, &s->key);

	if (!q)
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();

	s->q = *q;
	bpf_map_delete_elem(&queries, &s->key);
	emit(skb, &s->pkt, &s->q.proc, DIRECTION_RECEIVED, now - s->q.sent_ns, netns);
	return 0;
}

/* Note who owns each new socket: the selected processes' are kept, any other's forgotten (an address
 * reused by a socket of someone else must not keep an old owner). */
static __always_inline int new_socket(long fd)
{
	if (fd < 0)
		return 0;
	struct sock *sk = gadget_fd_sock(fd);

	if (!sk)
		return 0;
	__u64 skaddr = (__u64)sk;

	if (gadget_should_discard()) {
		bpf_map_delete_elem(&owners, &skaddr);
		return 0;
	}
	struct scratch *s = scratch_space();

	if (!s)
		return 0;
	gadget_fill_process(&s->q.proc);
	bpf_map_update_elem(&owners, &skaddr, &s->q.proc, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_socket")
int tp_sys_exit_socket(struct trace_event_raw_sys_exit *ctx)
{
	return new_socket(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return new_socket(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return new_socket(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

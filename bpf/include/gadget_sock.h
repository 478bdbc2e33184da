/* SPDX-License-Identifier: GPL-2.0 */
/* Reading TCP/IP sockets from BPF: the 4-tuple, the network namespace, and
 * the socket behind a file descriptor of the current task. */
#ifndef GADGETBOOK_GADGET_SOCK_H
#define GADGETBOOK_GADGET_SOCK_H

#include "gadget.h"

#define GADGET_AF_INET 2
#define GADGET_AF_INET6 10
#define GADGET_IPPROTO_TCP 6

/* A connection as seen from one end; addresses are 16 bytes, IPv4 in the first 4. */
struct gadget_tuple {
	__u16 af;
	__u16 sport; /* host byte order */
	__u16 dport; /* host byte order */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Fills t from sk; false when sk is not an IPv4/IPv6 socket. */
static __always_inline bool gadget_sock_tuple(const struct sock *sk, struct gadget_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->af = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: the local port is released (skc_num = 0)
	 * before the CLOSE state change is traced. */
	t->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->af == GADGET_AF_INET) {
		bpf_core_read(t->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->daddr, 4, &sk->__sk_common.skc_daddr);
		return true;
	}
	if (t->af == GADGET_AF_INET6) {
		bpf_core_read(t->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->daddr, 16, &sk->__sk_common.skc_v6_daddr);
		return true;
	}
	return false;
}

static __always_inline __u32 gadget_sock_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The socket behind a file descriptor of the current task, or NULL. */
static __always_inline struct sock *gadget_fd_sock(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *file = NULL;

	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);

	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

#endif

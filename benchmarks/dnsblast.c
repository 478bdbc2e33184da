// SPDX-License-Identifier: Apache-2.0
/* DNS over UDP on loopback at full speed, for the dns gadget's benchmark.
 *   dnsblast serve PORT      answer every query with one A record, until killed
 *   dnsblast ask PORT N      after "go" on stdin, ask N queries one after the other (each waits for its
 *                            answer); print the mean nanoseconds per query
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const unsigned char QNAME[] = "\3web\3lab\4test";

static int udp(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	return fd;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int serve(int port)
{
	int fd = udp();
	struct sockaddr_in a = loopback(port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("bind");
		return 1;
	}
	unsigned char buf[512];
	static const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 213, 61, 80};
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - sizeof(answer), 0, (struct sockaddr *)&from, &len);
		if (n < 12)
			continue;
		buf[2] |= 0x80; /* QR: a response */
		buf[3] = 0x80; /* RA, NOERROR */
		buf[7] = 1; /* ANCOUNT */
		memcpy(buf + n, answer, sizeof(answer));
		sendto(fd, buf, n + sizeof(answer), 0, (struct sockaddr *)&from, len);
	}
}

static int ask(int port, long n)
{
	int fd = udp();
	struct sockaddr_in a = loopback(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		return 1;
	}
	unsigned char q[64] = {0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t qlen = 12;
	memcpy(q + qlen, QNAME, sizeof(QNAME));
	qlen += sizeof(QNAME);
	q[qlen++] = 0, q[qlen++] = 1, q[qlen++] = 0, q[qlen++] = 1; /* A, IN */
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	struct timespec t0, t1;
	unsigned char buf[512];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		q[0] = i >> 8, q[1] = i;
		if (send(fd, q, qlen, 0) < 0 || recv(fd, buf, sizeof(buf), 0) < 0) {
			perror("query");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "ask"))
		return ask(atoi(argv[2]), atol(argv[3]));
	fprintf(stderr, "usage: dnsblast serve PORT | dnsblast ask PORT N\n");
	return 2;
}

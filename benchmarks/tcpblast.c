// SPDX-License-Identifier: Apache-2.0
/* Loopback TCP workloads for benchmarks/network.py; each waits for "go" on stdin, then prints its time.
 *   tcpblast stream BYTES CHUNK   a forked receiver drains BYTES sent in CHUNK-byte send(2)s: prints the
 *                                 seconds it took, then the CPU seconds sender and receiver used together
 *                                 (what tracing adds to them, whatever else the machine runs)
 *   tcpblast connect N            N connect/accept/close rounds on 127.0.0.1: prints nanoseconds per round
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(const struct rusage *r)
{
	return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 + r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

static int listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		perror("listen");
		exit(1);
	}
	return fd;
}

static void wait_go(void)
{
	char line[16];

	if (!fgets(line, sizeof(line), stdin))
		exit(1);
}

static int stream(long long bytes, long chunk)
{
	struct sockaddr_in addr;
	int lfd = listener(&addr);
	pid_t child = fork();

	if (child == 0) {
		int c = accept(lfd, NULL, NULL);
		char *buf = malloc(1 << 20);
		long long got = 0;
		ssize_t n;

		while (got < bytes && (n = recv(c, buf, 1 << 20, 0)) > 0)
			got += n;
		send(c, "k", 1, 0);
		_exit(got == bytes ? 0 : 1);
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("connect");
		return 1;
	}
	char *buf = malloc(chunk);

	memset(buf, 'x', chunk);
	wait_go();
	struct rusage before;

	getrusage(RUSAGE_SELF, &before);
	double cpu0 = cpu_seconds(&before);
	double t0 = now();
	long long sent = 0;

	while (sent < bytes) {
		long want = bytes - sent < chunk ? bytes - sent : chunk;
		ssize_t n = send(fd, buf, want, 0);

		if (n <= 0) {
			perror("send");
			return 1;
		}
		sent += n;
	}
	char ack;

	if (recv(fd, &ack, 1, 0) != 1)
		return 1;
	double t1 = now();
	int status;

	waitpid(child, &status, 0);
	struct rusage self, children;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	printf("%.6f %.6f\n", t1 - t0, cpu_seconds(&self) - cpu0 + cpu_seconds(&children));
	return status;
}

static int connects(long n)
{
	struct sockaddr_in addr;
	int lfd = listener(&addr);

	wait_go();
	double t0 = now();
	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			perror("connect");
			return 1;
		}
		int s = accept(lfd, NULL, NULL);

		/* The server closes first: TIME_WAIT stays on its side, the client's ports stay free. */
		close(s);
		close(fd);
	}
	printf("%.1f\n", (now() - t0) * 1e9 / n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "stream"))
		return stream(atoll(argv[2]), atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "connect"))
		return connects(atol(argv[2]));
	fprintf(stderr, "usage: tcpblast stream BYTES CHUNK | tcpblast connect N\n");
	return 2;
}

// SPDX-License-Identifier: Apache-2.0
/* Benchmark workload: waits for a line on stdin, then runs N iterations of
 * getppid() or open()+close() of PATH and prints the ns per iteration.
 * LOOP_CLOCK=cpu measures the thread's CPU time instead of the wall clock:
 * time spent waiting for a CPU on a busy machine is then left out. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loop getppid|open N [PATH]\n");
		return 2;
	}
	long n = atol(argv[2]);
	const char *path = argc > 3 ? argv[3] : "/dev/null";
	int open_mode = strcmp(argv[1], "open") == 0;
	char line[8];
	struct timespec a, b;
	const char *clock_name = getenv("LOOP_CLOCK");
	clockid_t clock = clock_name && strcmp(clock_name, "cpu") == 0 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	clock_gettime(clock, &a);
	for (long i = 0; i < n; i++) {
		if (open_mode)
			close(open(path, O_RDONLY));
		else
			getppid();
	}
	clock_gettime(clock, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}

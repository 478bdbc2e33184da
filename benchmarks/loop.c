// SPDX-License-Identifier: Apache-2.0
/* Benchmark workload: waits for a line on stdin, then runs N iterations of
 * getppid() or open()+close() of PATH and prints the ns per iteration; with
 * RATE, at most RATE iterations per second (paced every 256 iterations). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loop getppid|open N [PATH [RATE]]\n");
		return 2;
	}
	long n = atol(argv[2]);
	const char *path = argc > 3 ? argv[3] : "/dev/null";
	double rate = argc > 4 ? atof(argv[4]) : 0;
	int open_mode = strcmp(argv[1], "open") == 0;
	char line[8];
	struct timespec a, b;

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (open_mode)
			close(open(path, O_RDONLY));
		else
			getppid();
		if (rate > 0 && (i & 255) == 255) {
			/* Sleep until iteration i is due: the average rate holds, bursts stay small. */
			double due = a.tv_sec + a.tv_nsec / 1e9 + (i + 1) / rate;
			struct timespec t = { (time_t)due, (long)((due - (time_t)due) * 1e9) };

			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}

// SPDX-License-Identifier: Apache-2.0
/* Benchmark workload: waits for a line on stdin, then runs N iterations of
 * getppid(), open()+close() of PATH, or kill(CHILD, 0) and prints the ns per iteration.
 *
 * kill mode (as root): a child first drops to user 65534, so each kill(child, 0)
 * of the root parent makes exactly one capability check (CAP_KILL, allowed). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loop getppid|open|kill N [PATH]\n");
		return 2;
	}
	long n = atol(argv[2]);
	const char *path = argc > 3 ? argv[3] : "/dev/null";
	int open_mode = strcmp(argv[1], "open") == 0;
	int kill_mode = strcmp(argv[1], "kill") == 0;
	pid_t child = 0;
	char line[8];
	struct timespec a, b;

	if (kill_mode) {
		child = fork();
		if (child == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(1);
			pause();
			_exit(0);
		}
		usleep(100000); /* the child has dropped its privileges */
	}
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (open_mode)
			close(open(path, O_RDONLY));
		else if (kill_mode)
			kill(child, 0);
		else
			getppid();
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (kill_mode) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}

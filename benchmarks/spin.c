// SPDX-License-Identifier: Apache-2.0
/* Benchmark workload: a fixed amount of CPU-bound work (frame pointers on), prints its wall seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

void keep(unsigned long x)
{
	sink ^= x;
}

unsigned long hot_leaf(unsigned long n)
{
	unsigned long x = 0;
	for (unsigned long i = 0; i < n; i++)
		x += i * i ^ (x >> 3);
	keep(x);
	return x;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 400;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long r = 0; r < rounds; r++)
		sink += hot_leaf(1000000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}

// A program with two phases, one after the other: phase_one's loop, then phase_two's, for the given
// seconds each (then it waits to be stopped), so a profile's time span can tell them apart.
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void phase_one(double end)
{
	while (now() < end)
		for (unsigned long i = 0; i < 100000; i++)
			sink += i * i ^ (sink >> 3);
}

__attribute__((noinline)) void phase_two(double end)
{
	while (now() < end)
		for (unsigned long i = 0; i < 100000; i++)
			sink ^= i + (sink << 1);
}

int main(int argc, char **argv)
{
	double one = argc > 1 ? atof(argv[1]) : 2.0;
	double two = argc > 2 ? atof(argv[2]) : one;
	double start = now();
	phase_one(start + one);
	phase_two(start + one + two);
	pause();
	return 0;
}

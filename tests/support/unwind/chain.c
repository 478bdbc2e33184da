// A CPU-bound program whose time is in a leaf function (no calls, so gcc gives it no frame pointer)
// reached through two known functions: main -> chain_outer -> chain_middle -> chain_leaf.
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) unsigned long chain_leaf(unsigned long n)
{
	unsigned long x = 0;
	for (unsigned long i = 0; i < n; i++)
		x += i * i ^ (x >> 3);
	return x;
}

__attribute__((noinline)) unsigned long chain_middle(unsigned long n)
{
	unsigned long r = chain_leaf(n);
	sink += r;
	return r + 1;
}

__attribute__((noinline)) unsigned long chain_outer(unsigned long n)
{
	unsigned long r = chain_middle(n);
	sink ^= r;
	return r + 2;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5.0;
	double end = now() + seconds;
	while (now() < end)
		sink += chain_outer(2000000);
	return 0;
}

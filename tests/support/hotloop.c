// A CPU-bound program with frame pointers whose time goes mostly to hot_leaf, called from hot_mid.
// Build: gcc -O1 -fno-omit-frame-pointer -fno-inline -o hotloop hotloop.c ; run: hotloop SECONDS
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

/* Called once per hot_leaf: it makes hot_leaf a non-leaf function, which gcc then gives a frame
 * pointer (gcc leaves leaf functions without one, and the unwinder would skip their caller). */
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

unsigned long hot_mid(unsigned long n)
{
	return hot_leaf(n) + 1;
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
		sink += hot_mid(2000000);
	return 0;
}

// A tiny JIT: copies a hot loop (machine code with a frame pointer) into anonymous executable memory,
// names it in /tmp/perf-PID.map as JIT runtimes do, and calls it until the time is up.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* push rbp; mov rbp,rsp; xor eax,eax; test rdi,rdi; je end;
 * loop: add rax,rdi; rol rax,3; dec rdi; jne loop; end: pop rbp; ret */
static const unsigned char code[] = {
	0x55, 0x48, 0x89, 0xe5, 0x31, 0xc0, 0x48, 0x85, 0xff, 0x74, 0x0c,
	0x48, 0x01, 0xf8, 0x48, 0xc1, 0xc0, 0x03, 0x48, 0xff, 0xcf, 0x75, 0xf4,
	0x5d, 0xc3,
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

volatile unsigned long sink;

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5.0;
	unsigned char *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	memcpy(mem, code, sizeof(code));
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
	FILE *map = fopen(path, "w");
	if (!map)
		return 1;
	fprintf(map, "%lx %zx jitted_hot_loop\n", (unsigned long)mem, sizeof(code));
	fclose(map);
	unsigned long (*hot)(unsigned long) = (unsigned long (*)(unsigned long))mem;
	double end = now() + seconds;
	while (now() < end)
		sink += hot(2000000);
	unlink(path);
	return 0;
}

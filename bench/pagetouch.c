/*
 * pagetouch: what a fresh page of memory costs on this machine, for
 * bench/floor.sh (bench/mount-results.md).
 *
 *	pagetouch [MIB]
 *
 * Maps MIB (256) MiB of anonymous memory, writes one byte in each 4 KiB page,
 * and unmaps it: first with 4 KiB pages (a page fault each), then in a region
 * advised MADV_HUGEPAGE (a fault each 2 MiB where the kernel has huge pages
 * to give), three times each. Prints the median of each as microseconds a
 * 4 KiB page. On bare metal a fault costs well under a microsecond; in a VM
 * whose host backs the guest's memory lazily, or takes it back (free page
 * reporting), it can cost ten times more, and so can every first write of a
 * page the kernel fills (the page cache).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE (2u << 20)
#define TRIES 3

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Seconds to write a byte in each page of len fresh bytes; -1 when they cannot be mapped. */
static double touch(size_t len, int huge)
{
	size_t map = len + (huge ? HUGE : 0);
	unsigned char *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *p;
	double t0, t1;

	if (m == MAP_FAILED)
		return -1;
	p = m;
	if (huge) {
		p = (unsigned char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
		(void)madvise(p, len, MADV_HUGEPAGE);
	}
	t0 = now();
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	t1 = now();
	munmap(m, map);
	return t1 - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 256;
	size_t len = (size_t)(mib > 0 ? mib : 256) << 20;
	double pages = (double)len / 4096, t[2][TRIES];

	for (int k = 0; k < TRIES; k++)
		for (int huge = 0; huge < 2; huge++)
			if ((t[huge][k] = touch(len, huge)) < 0) {
				perror("pagetouch: mmap");
				return 2;
			}
	qsort(t[0], TRIES, sizeof(double), cmp);
	qsort(t[1], TRIES, sizeof(double), cmp);
	printf("fresh memory, %ld MiB, median of %d: %.2f us a 4 KiB page with 4 KiB pages, "
	       "%.3f us with huge pages\n", (long)(len >> 20), TRIES, t[0][TRIES / 2] / pages * 1e6,
	       t[1][TRIES / 2] / pages * 1e6);
	return 0;
}

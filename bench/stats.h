/*
 * stats.h: what the random-read benchmarks (randread.c, randmnt.c) share: a
 * seeded splitmix64 generator, a monotonic clock in seconds, and percentiles
 * of a sorted array. Header only: each benchmark is one file compiled alone.
 */
#ifndef SNAPFS_BENCH_STATS_H
#define SNAPFS_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

static uint64_t rng_state;	/* the seed: set it before the first rng_next() */

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* For qsort() of doubles, ascending. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of v, sorted, n > 0: the nearest rank. */
static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

#endif

/*
 * randread: the cost of one random 4 KiB read through the library
 * (docs/BENCHMARKS.md).
 *
 *	randread [-n COUNT] [-s SEED] [-b BYTES] [-u] [-c SOURCE] ARCHIVE PATH
 *
 * Opens ARCHIVE with idx_open(), finds PATH (a regular file) with
 * idx_lookup_path(), and times COUNT (2000) reads of BYTES (4096) at uniformly
 * random offsets (fixed SEED) with idx_pread(), each with clock_gettime(
 * CLOCK_MONOTONIC). Offsets are multiples of BYTES, as the kernel asks a FUSE
 * daemon for pages; -u makes them byte-granular.
 *
 * No read is served from the reader's one-frame cache: one idx_reader is kept
 * for the whole run (its decompression context and frame buffer are reused, as
 * the daemon reuses them), and an offset whose frames include the frame the
 * previous read left cached is drawn again. Every timed read therefore
 * decompresses every frame it touches, one frame unless it straddles two.
 *
 * Warm page cache: before timing, the whole archive file is read once, so the
 * timings are decompression + copying, not disk. -c SOURCE compares every read
 * with the same bytes of SOURCE (outside the timed region).
 *
 * When PATH is a directory, each read is instead the first BYTES (or all) of
 * one of its regular files picked at random: the cost of reading a small
 * file, which decodes the frame its group of members was packed in.
 *
 * Prints one line: count, frames, p50/p90/p99/max/mean in microseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "index.h"
#include "zseek.h"

#include "stats.h"


static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "randread: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(2);
}

/* Read the whole file once so it is in the page cache. */
static void warm(const char *path)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die(path, NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
}

int main(int argc, char **argv)
{
	size_t count = 2000, bytes = 4096;
	uint64_t seed = 42;
	const char *source = NULL;
	int unaligned = 0, c;

	while ((c = getopt(argc, argv, "n:s:b:uc:")) != -1) {
		switch (c) {
		case 'n': count = strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'b': bytes = strtoul(optarg, NULL, 0); break;
		case 'u': unaligned = 1; break;
		case 'c': source = optarg; break;
		default:
			fprintf(stderr, "usage: randread [-n COUNT] [-s SEED] [-b BYTES] [-u] "
					"[-c SOURCE] ARCHIVE PATH\n");
			return 2;
		}
	}
	if (argc - optind != 2 || count == 0 || bytes == 0) {
		fprintf(stderr, "usage: randread [-n COUNT] [-s SEED] [-b BYTES] [-u] "
				"[-c SOURCE] ARCHIVE PATH\n");
		return 2;
	}
	const char *archive = argv[optind], *path = argv[optind + 1];
	struct err e = { 0 };
	struct idx *x;
	struct zseek *z;
	struct idx_entry ent;
	struct stat st;
	int fd, src = -1;

	warm(archive);
	if (idx_open(archive, &x, &e) < 0)
		die(archive, &e);
	uint32_t i = idx_lookup_path(x, path);
	if (i == IDX_NONE) {
		fprintf(stderr, "randread: no '%s' in '%s'\n", path, archive);
		return 2;
	}
	idx_get(x, i, &ent);
	uint32_t *files = NULL, nfiles = 0;
	if (S_ISDIR(ent.mode)) {
		files = calloc(ent.nchildren ? ent.nchildren : 1, sizeof(*files));
		for (uint32_t k = 0; files && k < ent.nchildren; k++) {
			struct idx_entry c;
			idx_get(x, ent.first_child + k, &c);
			if (S_ISREG(c.mode) && c.target == ent.first_child + k && c.size > 0 &&
			    !c.nsparse)
				files[nfiles++] = ent.first_child + k;
		}
		if (nfiles == 0) {
			fprintf(stderr, "randread: no regular files in '%s'\n", path);
			return 2;
		}
	} else if (!S_ISREG(ent.mode) || ent.size < bytes || ent.nsparse) {
		fprintf(stderr, "randread: '%s' is not a plain file of at least %zu bytes\n", path,
			bytes);
		return 2;
	}
	/* a second look at the seek table, only to know which frames a read touches */
	if ((fd = open(archive, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		die(archive, NULL);
	if (zseek_open(fd, archive, (uint64_t)st.st_size, &z, &e) < 0)
		die(archive, &e);
	if (source && (src = open(source, O_RDONLY | O_CLOEXEC)) < 0)
		die(source, NULL);

	struct idx_reader *r = idx_reader_new();
	unsigned char *buf = malloc(bytes), *want = malloc(bytes);
	double *t = malloc(count * sizeof(*t)), sum = 0;
	uint64_t slots = files ? 0 : unaligned ? ent.size - bytes + 1 : ent.size / bytes;
	uint32_t cached = UINT32_MAX;
	size_t straddles = 0, redraws = 0;

	if (!r || !buf || !want || !t)
		die("out of memory", NULL);
	rng_state = seed;
	for (size_t k = 0; k < count; k++) {
		uint64_t off, doff;
		uint32_t f0, f1, fi = i;
		size_t want_len = bytes;
		for (;;) {
			if (files) {
				struct idx_entry c;
				fi = files[rng_next() % nfiles];
				idx_get(x, fi, &c);
				off = 0;
				want_len = c.size < bytes ? (size_t)c.size : bytes;
				doff = c.data_off;
			} else {
				off = rng_next() % slots * (unaligned ? 1 : bytes);
				doff = ent.data_off + off;
			}
			f0 = zseek_find(z, doff);
			f1 = zseek_find(z, doff + want_len - 1);
			if (f0 != cached && f1 != cached)
				break;
			redraws++;
		}
		straddles += f0 != f1;
		double t0 = now_s() * 1e6;
		ssize_t n = idx_pread(x, fi, buf, bytes, off, r, &e);
		double t1 = now_s() * 1e6;
		if (n != (ssize_t)want_len)
			die("idx_pread", n < 0 ? &e : NULL);
		cached = f1;
		t[k] = t1 - t0;
		sum += t[k];
		if (src >= 0 && !files && (pread(src, want, bytes, (off_t)off) != (ssize_t)bytes ||
					   memcmp(buf, want, bytes) != 0)) {
			fprintf(stderr, "randread: bytes at %" PRIu64 " differ from '%s'\n", off,
				source);
			return 1;
		}
	}
	qsort(t, count, sizeof(*t), cmp_double);
	printf("reads=%zu bytes=%zu frames=%" PRIu32 " max_frame=%" PRIu32 " straddles=%zu "
	       "redraws=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f%s\n",
	       count, bytes, zseek_nframes(z), zseek_max_dsize(z), straddles, redraws,
	       pct(t, count, 50), pct(t, count, 90), pct(t, count, 99), t[count - 1],
	       sum / (double)count, src >= 0 ? " verified" : "");
	free(t);
	free(files);
	free(buf);
	free(want);
	idx_reader_free(r);
	zseek_close(z);
	close(fd);
	if (src >= 0)
		close(src);
	idx_close(x);
	return 0;
}

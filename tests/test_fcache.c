/*
 * fcache: the daemon's cache of decoded frames, driven through idx_pread() and
 * through its hooks on native archives cut into small frames. The bound on all
 * memory mapped holds, pinned frames count against it, a cache whose frames
 * are all pinned still serves, and a frame read twice is a miss then a hit.
 */
#include "fcache.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "index.h"
#include "writer.h"
#include "zseek.h"

#define FRAME (64u * 1024)	/* the writer's frame and group size here */
#define NFILES 24

/* An archive under test: its index, its frames, and the source bytes of its files. */
struct arc {
	struct idx *x;
	struct zseek *z;	/* the same archive's seek table, to name its frames */
	int fd;
	uint32_t nframes;
	uint32_t entry[NFILES];
	size_t size[NFILES];
	unsigned char *data[NFILES];
	/* per frame: the first file with data in it (-1: none) and where in the file */
	int *ffile;
	uint64_t *foff;
	size_t *flen;		/* bytes of that file in the frame */
	uint32_t *df, ndf;	/* the frames holding file data, in order */
};

/*
 * Write the archive: files of whole frames plus a short tail (each frame then
 * holds at most FRAME bytes), or, mixed, small files too, grouped by 2 FRAME
 * bytes into frames past FRAME (a second size class). Incompressible bytes.
 */
static void make_archive(struct arc *a, int mixed)
{
	static const char *const paths[] = { "." };
	char src[4200], path[4300];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 1, .level = 1, .threads = 2, .frame_size = FRAME,
			     .group_size = mixed ? 2 * FRAME : FRAME, .time = 1 };
	struct wr_stats st;
	struct err e;
	struct stat sb;

	memset(a, 0, sizeof(*a));
	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (int j = 0; j < NFILES; j++) {
		a->size[j] = mixed && j >= 12 && j < 20 ? 9000 + 1777 * (size_t)j
					   : (1 + (size_t)j % 4) * FRAME + 700 + 13 * (size_t)j;
		a->data[j] = malloc(a->size[j]);
		fixture_fill(a->data[j], a->size[j], 100 + (uint64_t)j, 0);
		snprintf(path, sizeof(path), "%s/f%02d", src, j);
		fixture_write(path, a->data[j], a->size[j]);
	}
	int fd = open(fixture_path("a.tar.zst"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(wr_write(fd, "a.tar.zst", &o, &st, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(st.warnings, 0);
	close(fd);
	ck_assert_msg(idx_open(fixture_path("a.tar.zst"), &a->x, &e) == 0, "%s", e.msg);
	ck_assert(idx_is_native(a->x));
	a->fd = open(fixture_path("a.tar.zst"), O_RDONLY);
	ck_assert_int_ge(a->fd, 0);
	ck_assert_int_eq(fstat(a->fd, &sb), 0);
	ck_assert_msg(zseek_open(a->fd, "a.tar.zst", (uint64_t)sb.st_size, &a->z, &e) == 0, "%s",
		      e.msg);
	a->nframes = zseek_nframes(a->z);
	a->ffile = malloc(a->nframes * sizeof(*a->ffile));
	a->foff = malloc(a->nframes * sizeof(*a->foff));
	a->flen = malloc(a->nframes * sizeof(*a->flen));
	a->df = malloc(a->nframes * sizeof(*a->df));
	for (int j = 0; j < NFILES; j++) {
		char rel[16];
		snprintf(rel, sizeof(rel), "f%02d", j);
		a->entry[j] = idx_lookup_path(a->x, rel);
		ck_assert_uint_ne(a->entry[j], IDX_NONE);
	}
	for (uint32_t f = 0; f < a->nframes; f++) {
		struct zseek_frame fr;
		zseek_frame(a->z, f, &fr);
		a->ffile[f] = -1;
		for (int j = 0; j < NFILES && fr.dsize; j++) {
			struct idx_entry ent;
			idx_get(a->x, a->entry[j], &ent);
			uint64_t lo = ent.data_off > fr.doff ? ent.data_off : fr.doff;
			uint64_t hi = ent.data_off + ent.size < fr.doff + fr.dsize
					      ? ent.data_off + ent.size : fr.doff + fr.dsize;
			if (lo < hi) {
				a->ffile[f] = j;
				a->foff[f] = lo - ent.data_off;
				a->flen[f] = (size_t)(hi - lo);
				a->df[a->ndf++] = f;
				break;
			}
		}
	}
	ck_assert_uint_ge(a->ndf, 40);
}

static void free_archive(struct arc *a)
{
	for (int j = 0; j < NFILES; j++)
		free(a->data[j]);
	free(a->ffile);
	free(a->foff);
	free(a->flen);
	free(a->df);
	zseek_close(a->z);
	close(a->fd);
	idx_close(a->x);
}

/* The largest decoded frame of the archive. */
static uint32_t max_frame(const struct arc *a)
{
	uint32_t m = 0;

	for (uint32_t f = 0; f < a->nframes; f++)
		if (idx_frame_size(a->x, f) > m)
			m = idx_frame_size(a->x, f);
	return m;
}

/*
 * What the cache maps for frame f, measured in a cache of its own: its data
 * rounded up to the 64 KiB size class, and a header, of a page at most.
 */
static size_t frame_map(const struct arc *a, uint32_t f)
{
	struct fcache *c = fcache_new((size_t)1 << 30);
	const struct idx_frames *h = fcache_frames(c);
	uint32_t len, cap = (idx_frame_size(a->x, f) + FRAME - 1) / FRAME * FRAME;
	void *pin;
	struct err e;
	struct fcache_stats s;

	ck_assert_ptr_nonnull(h->get(h->ctx, a->x, f, &len, &pin, &e));
	h->put(h->ctx, pin);
	fcache_stats(c, &s);
	fcache_free(c);
	ck_assert_uint_gt(s.mapped, cap);
	ck_assert_uint_le(s.mapped, cap + (size_t)sysconf(_SC_PAGESIZE));
	return (size_t)s.mapped;
}

static struct fcache_stats stats(struct fcache *c)
{
	struct fcache_stats s;

	fcache_stats(c, &s);
	return s;
}

/* Read n bytes of file j from off through the reader and compare with the source. */
static void read_check(struct arc *a, struct idx_reader *r, int j, uint64_t off, size_t n)
{
	unsigned char *buf = malloc(n + 1);
	struct err e;

	ck_assert_msg(idx_pread(a->x, a->entry[j], buf, n, off, r, &e) == (ssize_t)n, "%s", e.msg);
	ck_assert_msg(memcmp(buf, a->data[j] + off, n) == 0, "f%02d differs at %llu+%zu", j,
		      (unsigned long long)off, n);
	free(buf);
}

/* Read the file bytes of frame f (those of its first file) through the reader. */
static void read_frame(struct arc *a, struct idx_reader *r, uint32_t f)
{
	read_check(a, r, a->ffile[f], a->foff[f], a->flen[f]);
}

/* Frame f from the hooks, pinned until fcache_unpin(). */
static const unsigned char *pin_frame(struct fcache *c, struct arc *a, uint32_t f, void **pin)
{
	const struct idx_frames *h = fcache_frames(c);
	const unsigned char *p;
	uint32_t len;
	struct err e;

	p = h->get(h->ctx, a->x, f, &len, pin, &e);
	ck_assert_msg(p != NULL, "frame %u: %s", f, e.msg);
	ck_assert_uint_eq(len, idx_frame_size(a->x, f));
	return p;
}

/* Frame f's bytes at p: as our own decode gives them. */
static void check_frame(struct arc *a, uint32_t f, const unsigned char *p)
{
	uint32_t len = idx_frame_size(a->x, f);
	unsigned char *want = malloc(len);
	struct zseek_dctx *d = zseek_dctx_new();
	struct idx_entry ent;
	struct zseek_frame fr;
	struct err e;
	int j = a->ffile[f];

	ck_assert_int_eq(idx_frame_decode(a->x, f, d, want, &e), (ssize_t)len);
	ck_assert_msg(memcmp(p, want, len) == 0, "frame %u differs", f);
	/* and the file's bytes in it are those written */
	idx_get(a->x, a->entry[j], &ent);
	zseek_frame(a->z, f, &fr);
	ck_assert(memcmp(p + (ent.data_off + a->foff[f] - fr.doff), a->data[j] + a->foff[f],
			 a->flen[f]) == 0);
	zseek_dctx_free(d);
	free(want);
}

/* Every byte of every file, in odd-sized reads, then random reads: mapped stays within bound. */
static void read_all_bounded(struct arc *a, size_t bound)
{
	struct fcache *c = fcache_new(bound);
	struct idx_reader *r = idx_reader_new();
	uint64_t seed = 5;

	idx_reader_set_frames(r, fcache_frames(c));
	for (int j = 0; j < NFILES; j++)
		for (uint64_t off = 0; off < a->size[j]; off += 12345) {
			size_t n = a->size[j] - off < 12345 ? (size_t)(a->size[j] - off) : 12345;
			read_check(a, r, j, off, n);
			struct fcache_stats s = stats(c);
			ck_assert_msg(s.mapped <= bound, "%llu mapped, bound %zu",
				      (unsigned long long)s.mapped, bound);
			/* the frame just read stays cached */
			ck_assert_uint_ge(s.mapped, FRAME);
		}
	ck_assert_uint_ge(stats(c).misses, a->ndf);
	for (int k = 0; k < 400; k++) {
		int j = (int)(fixture_rand(&seed) % NFILES);
		uint64_t off = fixture_rand(&seed) % a->size[j];
		size_t n = 1 + fixture_rand(&seed) % (2 * FRAME);
		if (n > a->size[j] - off)
			n = (size_t)(a->size[j] - off);
		read_check(a, r, j, off, n);
		ck_assert_uint_le(stats(c).mapped, bound);
	}
	idx_reader_free(r);
	fcache_free(c);
}

/* A bound of a few frames holds over reads of 40+ frames, with one size class or two. */
START_TEST(bound_holds_over_all_reads)
{
	struct arc a;

	make_archive(&a, 0);
	ck_assert_uint_le(max_frame(&a), FRAME);
	size_t m = frame_map(&a, a.df[0]);
	read_all_bounded(&a, 6 * m);
	read_all_bounded(&a, 6 * m + m / 2);
	/* a 32nd of this bound holds a spare frame */
	read_all_bounded(&a, 40 * m);
	free_archive(&a);
}
END_TEST

START_TEST(bound_holds_with_two_size_classes)
{
	struct arc a;

	make_archive(&a, 1);
	ck_assert_uint_gt(max_frame(&a), FRAME);
	ck_assert_uint_le(max_frame(&a), 2 * FRAME);
	size_t m = frame_map(&a, a.df[0]) + FRAME;	/* the largest class, at most */
	read_all_bounded(&a, 6 * m);
	read_all_bounded(&a, 40 * m);
	free_archive(&a);
}
END_TEST

/*
 * With k frames pinned (from the hooks, as a zero-copy read holds them) and a
 * bound of k + 1 frames, read all the others: every read stays within the
 * bound, the pinned frames and the one just read are all mapped, two frames
 * read in turn never hit (there is room for one), and the pinned frames'
 * bytes stay intact.
 */
static void pinned_within_bound(struct arc *a, uint32_t k)
{
	size_t m = frame_map(a, a->df[0]), bound = (k + 1) * m;
	struct fcache *c = fcache_new(bound);
	struct idx_reader *r = idx_reader_new();
	void **pin = calloc(k, sizeof(*pin));
	const unsigned char **p = calloc(k, sizeof(*p));

	ck_assert_uint_le(k + 2, a->ndf);
	idx_reader_set_frames(r, fcache_frames(c));
	for (uint32_t i = 0; i < k; i++)
		p[i] = pin_frame(c, a, a->df[i], &pin[i]);
	ck_assert_uint_le(stats(c).mapped, bound);
	for (uint32_t d = k; d < a->ndf; d++) {
		read_frame(a, r, a->df[d]);
		struct fcache_stats s = stats(c);
		ck_assert_msg(s.mapped <= bound, "%llu mapped, bound %zu",
			      (unsigned long long)s.mapped, bound);
		ck_assert_uint_ge(s.mapped, (k + 1) * (uint64_t)FRAME);
	}
	struct fcache_stats before = stats(c);
	for (uint32_t i = 0; i < 4; i++)
		read_frame(a, r, a->df[k + i % 2]);
	ck_assert_uint_eq(stats(c).misses, before.misses + 4);
	ck_assert_uint_eq(stats(c).hits, before.hits);
	ck_assert_uint_le(stats(c).mapped, bound);
	for (uint32_t i = 0; i < k; i++)
		check_frame(a, a->df[i], p[i]);
	for (uint32_t i = 0; i < k; i++)
		fcache_unpin(c, pin[i]);
	ck_assert_uint_le(stats(c).mapped, bound);
	for (uint32_t d = 0; d < a->ndf; d++) {
		read_frame(a, r, a->df[d]);
		ck_assert_uint_le(stats(c).mapped, bound);
	}
	free(p);
	free(pin);
	idx_reader_free(r);
	fcache_free(c);
}

/* Pinned frames count against the bound, evicted or not: in a bound of 6 frames, and of 61. */
START_TEST(pinned_frames_count_against_the_bound)
{
	struct arc a;

	make_archive(&a, 0);
	ck_assert_uint_le(max_frame(&a), FRAME);
	pinned_within_bound(&a, 5);
	/* shards then hold several frames each, pinned ones at their tails */
	pinned_within_bound(&a, 60);
	free_archive(&a);
}
END_TEST

/*
 * With more frames pinned than the bound holds, every get still succeeds (the
 * bound passed meanwhile); once all are put, the next miss brings mapped back
 * within it.
 */
START_TEST(all_frames_pinned_still_progresses)
{
	enum { K = 10 };
	struct arc a;
	void *pin[K];
	const unsigned char *p[K];

	make_archive(&a, 0);
	ck_assert_uint_le(max_frame(&a), FRAME);
	size_t m = frame_map(&a, a.df[0]), bound = 6 * m;
	struct fcache *c = fcache_new(bound);
	struct idx_reader *r = idx_reader_new();

	idx_reader_set_frames(r, fcache_frames(c));
	for (int k = 0; k < K; k++) {
		p[k] = pin_frame(c, &a, a.df[k], &pin[k]);
		check_frame(&a, a.df[k], p[k]);
		ck_assert_uint_ge(stats(c).mapped, (uint64_t)(k + 1) * FRAME);
	}
	ck_assert_uint_gt(stats(c).mapped, bound);
	/* none was reused for another while pinned */
	for (int k = 0; k < K; k++)
		check_frame(&a, a.df[k], p[k]);
	for (int k = 0; k < K; k++)
		fcache_unpin(c, pin[k]);
	read_frame(&a, r, a.df[K]);
	ck_assert_msg(stats(c).mapped <= bound, "%llu mapped, bound %zu",
		      (unsigned long long)stats(c).mapped, bound);
	ck_assert_uint_ge(stats(c).mapped, FRAME);
	for (uint32_t d = 0; d < a.ndf; d++) {
		read_frame(&a, r, a.df[d]);
		ck_assert_uint_le(stats(c).mapped, bound);
	}
	idx_reader_free(r);
	fcache_free(c);
	free_archive(&a);
}
END_TEST

/* A frame read twice is decoded once: a miss, then hits, from idx_pread() or the hooks. */
START_TEST(second_read_of_a_frame_hits)
{
	struct arc a;
	void *pin1, *pin2;

	make_archive(&a, 0);
	uint32_t f = a.df[3];
	struct fcache *c = fcache_new(64 * frame_map(&a, f));
	struct idx_reader *r = idx_reader_new();

	idx_reader_set_frames(r, fcache_frames(c));
	read_check(&a, r, a.ffile[f], a.foff[f], 100);
	ck_assert_uint_eq(stats(c).misses, 1);
	ck_assert_uint_eq(stats(c).hits, 0);
	read_check(&a, r, a.ffile[f], a.foff[f], 100);
	ck_assert_uint_eq(stats(c).misses, 1);
	ck_assert_uint_eq(stats(c).hits, 1);
	read_frame(&a, r, f);
	ck_assert_uint_eq(stats(c).misses, 1);
	ck_assert_uint_eq(stats(c).hits, 2);
	const unsigned char *p1 = pin_frame(c, &a, f, &pin1);
	const unsigned char *p2 = pin_frame(c, &a, f, &pin2);
	ck_assert_ptr_eq(p1, p2);
	ck_assert_ptr_eq(pin1, pin2);
	ck_assert_uint_eq(stats(c).misses, 1);
	ck_assert_uint_eq(stats(c).hits, 4);
	fcache_unpin(c, pin1);
	fcache_unpin(c, pin2);
	idx_reader_free(r);
	fcache_free(c);
	/* a bound below one frame still keeps the last one */
	c = fcache_new(1);
	r = idx_reader_new();
	idx_reader_set_frames(r, fcache_frames(c));
	read_frame(&a, r, f);
	read_frame(&a, r, f);
	ck_assert_uint_eq(stats(c).misses, 1);
	ck_assert_uint_eq(stats(c).hits, 1);
	idx_reader_free(r);
	fcache_free(c);
	free_archive(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fcache");
	TCase *tc = tcase_create("fcache");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bound_holds_over_all_reads);
	tcase_add_test(tc, bound_holds_with_two_size_classes);
	tcase_add_test(tc, pinned_frames_count_against_the_bound);
	tcase_add_test(tc, all_frames_pinned_still_progresses);
	tcase_add_test(tc, second_read_of_a_frame_hits);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

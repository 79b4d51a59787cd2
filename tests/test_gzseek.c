/*
 * gzseek's bounds, shrunk so that a few MiB reach them: 4 checkpoints 4 KiB
 * apart at first (thin() runs again and again, also where deflate blocks of
 * zeros lie megabytes apart), and 16 chunk CRCs (widen_chunks() runs at 1, 2,
 * 4 ... MiB of output). Every read must return the file's own bytes.
 */
#define GZS_SPAN 4096u
#define GZS_POINTS 4
#define CHUNKS 16u
#include "../snapshot/gzseek.c"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>

#include "fixture.h"

#define SIZE (40u << 20)

static unsigned char *data;

/* 16 MiB of text and random runs, then 24 MiB of zeros (blocks of megabytes), as two gzip members. */
static int make_gzip(void)
{
	static const size_t cut[] = { 0, 26u << 20, SIZE };
	size_t cap = SIZE + (1u << 20);
	unsigned char *out = malloc(cap);
	uint64_t seed = 5;
	size_t used = 0;
	int fd;

	data = calloc(1, SIZE);
	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < (16u << 20); i++)
		data[i] = (i / 4096) % 3 ? (unsigned char)"queue state: ok\n"[i % 16]
					 : (unsigned char)fixture_rand(&seed);
	for (int m = 0; m < 2; m++) {
		z_stream z = { 0 };
		ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = data + cut[m];
		z.avail_in = (uInt)(cut[m + 1] - cut[m]);
		z.next_out = out + used;
		z.avail_out = (uInt)(cap - used);
		ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
		used = cap - z.avail_out;
		deflateEnd(&z);
	}
	fixture_write(fixture_path("x.gz"), out, used);
	free(out);
	fd = open(fixture_path("x.gz"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static void check_read(struct gzs *g, uint64_t pos, size_t len, unsigned char *buf)
{
	struct err e = { 0 };

	ck_assert_msg(gzs_read(g, pos, buf, len, &e) == 0, "read at %llu: %s",
		      (unsigned long long)pos, e.msg);
	ck_assert_msg(memcmp(buf, data + pos, len) == 0, "wrong bytes at %llu",
		      (unsigned long long)pos);
}

START_TEST(reads_right_through_thinning_and_widening)
{
	int fd = make_gzip();
	struct gzs *g = gzs_new(fd, "x.gz");
	unsigned char *buf = malloc(1u << 16);
	struct gzs_stats st;
	uint64_t seed = 9;

	ck_assert_ptr_nonnull(g);
	/*
	 * Just after each widening (the 17th chunk ends: the ring doubles), a read
	 * 3 chunks back lies in the bigger ring but before what it was given.
	 */
	for (uint64_t chunk = CHUNK0; 17 * chunk <= (16u << 20); chunk *= 2) {
		struct gzs *fresh = gzs_new(fd, "x.gz");
		ck_assert_ptr_nonnull(fresh);
		check_read(fresh, 17 * chunk - 4096, 4096, buf);
		for (uint64_t c = CHUNK0; c < chunk; c *= 2)	/* the widenings before */
			check_read(fresh, 17 * c - 4096, 4096, buf);
		check_read(fresh, 17 * chunk - 4096, 4096, buf);
		check_read(fresh, 17 * chunk - 3 * chunk, 4096, buf);
		gzs_free(fresh);
	}
	/* forward in steps, each followed by reads back into the ring and past it */
	for (uint64_t pos = 0; pos + 16384 <= SIZE; pos += 3u << 20) {
		check_read(g, pos, 16384, buf);
		for (uint64_t back = 100000; back <= 600000 && back <= pos; back += 100000)
			check_read(g, pos - back, 4096, buf);
	}
	gzs_stats(g, &st);
	ck_assert_uint_le(st.points, GZS_POINTS);
	ck_assert_uint_gt(st.span, GZS_SPAN);	/* it thinned */
	for (int k = 0; k < 300; k++) {
		uint64_t pos = fixture_rand(&seed) % SIZE;
		size_t len = 1 + (size_t)(fixture_rand(&seed) % (1u << 16));
		if (pos + len > SIZE)
			len = (size_t)(SIZE - pos);
		check_read(g, pos, len, buf);
	}
	gzs_stats(g, &st);
	ck_assert_uint_le(st.points, GZS_POINTS);
	ck_assert_uint_eq(st.starts, 1);
	gzs_free(g);
	close(fd);
	free(buf);
	free(data);
}
END_TEST

/*
 * A reader trimmed after its chunks widened (gzs_trim(): no checkpoints, ring
 * or inflate state left) reads right again from the start, and still finds a
 * byte changed in the file since the chunks were first decoded.
 */
START_TEST(a_trimmed_reader_reads_right_and_still_checks_its_chunks)
{
	int fd = make_gzip();
	struct gzs *g = gzs_new(fd, "x.gz");
	unsigned char *buf = malloc(1u << 20);
	struct gzs_stats st;
	struct err e = { 0 };
	uint64_t seed = 11;

	ck_assert_ptr_nonnull(g);
	for (uint64_t pos = 0; pos < SIZE; pos += 1u << 20)
		check_read(g, pos, 1u << 20, buf);
	ck_assert_uint_gt(g->chunk, CHUNK0);	/* widened */
	for (int round = 0; round < 3; round++) {
		gzs_trim(g);
		gzs_stats(g, &st);
		ck_assert_uint_eq(st.points, 0);
		for (int k = 0; k < 20; k++) {
			uint64_t pos = fixture_rand(&seed) % (SIZE - 65536);
			check_read(g, pos, 1 + (size_t)(fixture_rand(&seed) % 65536), buf);
		}
	}
	gzs_stats(g, &st);
	ck_assert_uint_ge(st.starts, 4);
	/* a byte of the first member's deflate data changes; read up to before its trailer */
	int wfd = open(fixture_path("x.gz"), O_RDWR);
	unsigned char c;
	ck_assert_int_eq(pread(wfd, &c, 1, 2000000), 1);
	c ^= 0x10;
	ck_assert_int_eq(pwrite(wfd, &c, 1, 2000000), 1);
	close(wfd);
	gzs_trim(g);
	int failed = 0;
	for (uint64_t pos = 0; pos < (16u << 20) && !failed; pos += 1u << 20)
		failed = gzs_read(g, pos, buf, 1u << 20, &e) < 0 ||
			 memcmp(buf, data + pos, 1u << 20) != 0 ? 1 + (e.code == EIO) : 0;
	ck_assert_msg(failed == 2, "the changed byte read as %s",
		      failed ? "wrong bytes" : "the right ones");
	fprintf(stderr, "after a trim: %s\n", e.msg);
	gzs_free(g);
	close(fd);
	free(buf);
	free(data);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gzseek");
	TCase *tc = tcase_create("bounds");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, reads_right_through_thinning_and_widening);
	tcase_add_test(tc, a_trimmed_reader_reads_right_and_still_checks_its_chunks);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

#include "zseek.h"

#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bytes.h"
#include "fixture.h"

#define DATA_SIZE (3u * 1024 * 1024 + 12345)
#define FRAME (64u * 1024)

static unsigned char *data;

static void setup(void)
{
	fixture_setup();
	data = malloc(DATA_SIZE);
	ck_assert_ptr_nonnull(data);
	fixture_fill(data, DATA_SIZE / 2, 1, 1);
	fixture_fill(data + DATA_SIZE / 2, DATA_SIZE - DATA_SIZE / 2, 2, 0);
}

static void teardown(void)
{
	free(data);
	fixture_teardown();
}

/* Write data with cuts at a few odd places and a skippable frame "hello" before the table. */
static const char *write_file(int threads)
{
	const char *path = fixture_path("f.zst");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct zseek_writer *w;
	struct err e;
	size_t pos = 0;
	static const size_t cuts[] = { 1, 1000, 70000, 200000, 1500000, DATA_SIZE };

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zseek_writer_new(fd, path, 3, threads, FRAME, &w, &e), 0);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		ck_assert_int_eq(zseek_write(w, data + pos, cuts[i] - pos, &e), 0);
		pos = cuts[i];
		ck_assert_uint_eq(zseek_pos(w), pos);
		ck_assert_int_eq(zseek_cut(w, &e), 0);
	}
	ck_assert_int_eq(zseek_write_skippable(w, 5, "hello", 5, &e), 0);
	ck_assert_int_eq(zseek_finish(w, &e), 0);
	zseek_writer_free(w);
	close(fd);
	return path;
}

static struct zseek *open_file(const char *path, int *fd, struct err *e)
{
	struct stat st;
	struct zseek *z = NULL;

	*fd = open(path, O_RDONLY);
	ck_assert_int_ge(*fd, 0);
	fstat(*fd, &st);
	if (zseek_open(*fd, path, (uint64_t)st.st_size, &z, e) < 0)
		return NULL;
	return z;
}

static void check_roundtrip(const char *path)
{
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char *buf = malloc(FRAME);
	struct zseek_frame f;
	struct err e;
	uint64_t total = 0;
	int fd;
	struct zseek *z = open_file(path, &fd, &e);

	ck_assert_msg(z != NULL, "%s", e.msg);
	ck_assert_uint_eq(zseek_size(z), DATA_SIZE);
	ck_assert_uint_le(zseek_max_dsize(z), FRAME);
	for (uint32_t i = 0; i + 1 < zseek_nframes(z); i++) {
		zseek_frame(z, i, &f);
		ck_assert_uint_eq(f.doff, total);
		ck_assert_int_eq(zseek_decode(z, i, d, buf, &e), (ssize_t)f.dsize);
		ck_assert_mem_eq(buf, data + f.doff, f.dsize);
		ck_assert_uint_eq(zseek_find(z, f.doff), i);
		ck_assert_uint_eq(zseek_find(z, f.doff + f.dsize - 1), i);
		total += f.dsize;
	}
	ck_assert_uint_eq(total, DATA_SIZE);
	ck_assert_uint_eq(zseek_find(z, DATA_SIZE), UINT32_MAX);
	free(buf);
	zseek_dctx_free(d);
	zseek_close(z);
	close(fd);
}

START_TEST(frames_decode_to_what_was_written)
{
	check_roundtrip(write_file(2));
}
END_TEST

START_TEST(one_thread_and_many_threads_write_the_same_frames)
{
	size_t a_len, b_len;
	unsigned char *a = fixture_read(write_file(1), &a_len);
	unsigned char *b;

	rename(fixture_path("f.zst"), fixture_path("one.zst"));
	b = fixture_read(write_file(5), &b_len);
	ck_assert_uint_eq(a_len, b_len);
	ck_assert_mem_eq(a, b, a_len);
	check_roundtrip(fixture_path("f.zst"));
	free(a);
	free(b);
}
END_TEST

START_TEST(frames_end_at_cuts_and_at_the_size_bound)
{
	struct err e;
	struct zseek_frame f;
	int fd;
	struct zseek *z = open_file(write_file(2), &fd, &e);

	ck_assert_ptr_nonnull(z);
	/* cut at 1: frame 0 holds one byte; cut at 1000: frame 1 holds 999 */
	zseek_frame(z, 0, &f);
	ck_assert_uint_eq(f.dsize, 1);
	zseek_frame(z, 1, &f);
	ck_assert_uint_eq(f.dsize, 999);
	zseek_frame(z, 2, &f);
	ck_assert_uint_eq(f.dsize, FRAME);
	zseek_close(z);
	close(fd);
}
END_TEST

START_TEST(skippable_frame_reads_back)
{
	struct err e;
	unsigned kind;
	void *buf;
	int fd;
	struct zseek *z = open_file(write_file(2), &fd, &e);

	ck_assert_ptr_nonnull(z);
	ck_assert_int_eq(zseek_read_skippable(z, zseek_nframes(z) - 1, &kind, &buf, &e), 5);
	ck_assert_uint_eq(kind, 5);
	ck_assert_mem_eq(buf, "hello", 5);
	free(buf);
	ck_assert_int_eq(zseek_read_skippable(z, 0, &kind, &buf, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	zseek_close(z);
	close(fd);
}
END_TEST

START_TEST(plain_zstd_decoder_reads_the_whole_stream)
{
	size_t len, got = 0;
	unsigned char *file = fixture_read(write_file(2), &len);
	unsigned char *out = malloc(DATA_SIZE + 1);
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer in = { file, len, 0 };

	while (in.pos < in.size) {
		ZSTD_outBuffer o = { out + got, DATA_SIZE + 1 - got, 0 };
		size_t r = ZSTD_decompressStream(ds, &o, &in);
		ck_assert_msg(!ZSTD_isError(r), "%s", ZSTD_getErrorName(r));
		got += o.pos;
	}
	ck_assert_uint_eq(got, DATA_SIZE);
	ck_assert_mem_eq(out, data, DATA_SIZE);
	ZSTD_freeDStream(ds);
	free(out);
	free(file);
}
END_TEST

/* Rewrite the file with one byte changed (or cut to len), then open it. */
static int open_damaged(const char *path, long flip, size_t cut, struct err *e)
{
	size_t len;
	unsigned char *buf = fixture_read(path, &len);
	int fd, rc;
	struct zseek *z;

	if (flip >= 0)
		buf[flip] ^= 0x5A;
	fixture_write(fixture_path("bad.zst"), buf, cut ? cut : len);
	free(buf);
	z = open_file(fixture_path("bad.zst"), &fd, e);
	rc = z ? 0 : -1;
	zseek_close(z);
	close(fd);
	return rc;
}

START_TEST(truncated_file_is_refused_at_every_length)
{
	const char *path = write_file(2);
	struct stat st;
	struct err e;

	stat(path, &st);
	for (size_t cut = 1; cut < (size_t)st.st_size; cut += cut < 200 ? 1 : 997) {
		ck_assert_int_eq(open_damaged(path, -1, cut, &e), -1);
		ck_assert_int_eq(e.code, EIO);
	}
}
END_TEST

START_TEST(damaged_seek_table_is_refused)
{
	const char *path = write_file(2);
	struct stat st;
	struct err e;
	long size;

	stat(path, &st);
	size = st.st_size;
	/* footer magic, descriptor, frame count, table magic, table length, first entry */
	static const long from_end[] = { 1, 4, 5, 9, 6, 0 };
	for (size_t i = 0; i < sizeof(from_end) / sizeof(from_end[0]) - 1; i++) {
		ck_assert_int_eq(open_damaged(path, size - from_end[i], 0, &e), -1);
		ck_assert_int_eq(e.code, EIO);
	}
}
END_TEST

/* Damage is detected when the table is refused or some frame fails to decode. */
static bool damage_detected(const char *path, long flip)
{
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char *buf = malloc(ZSEEK_MAX_FRAME_SIZE / 1024);
	bool detected = false;
	struct err e;
	int fd;
	struct zseek *z;

	if (open_damaged(path, flip, 0, &e) < 0) {
		ck_assert_int_eq(e.code, EIO);
		detected = true;
	} else {
		z = open_file(fixture_path("bad.zst"), &fd, &e);
		for (uint32_t i = 0; i < zseek_nframes(z) && !detected; i++) {
			struct zseek_frame f;
			zseek_frame(z, i, &f);
			if (f.dsize > ZSEEK_MAX_FRAME_SIZE / 1024 || zseek_decode(z, i, d, buf, &e) < 0)
				detected = true;
		}
		zseek_close(z);
		close(fd);
	}
	free(buf);
	zseek_dctx_free(d);
	return detected;
}

START_TEST(every_flipped_table_byte_is_detected)
{
	const char *path = write_file(2);
	struct stat st;
	struct err e;
	int fd;
	struct zseek *z = open_file(path, &fd, &e);
	long tsize = 8 + 8 * (long)zseek_nframes(z) + 9;

	zseek_close(z);
	close(fd);
	stat(path, &st);
	for (long off = st.st_size - tsize; off < st.st_size; off++) {
		/* the descriptor's two low bits are unused by the format: a change there is harmless */
		if (off == st.st_size - 5)
			continue;
		ck_assert_msg(damage_detected(path, off), "flip at %ld went unnoticed", off);
	}
}
END_TEST

START_TEST(absurd_frame_count_is_refused)
{
	const char *path = write_file(2);
	size_t len;
	unsigned char *buf = fixture_read(path, &len);
	struct err e;
	int fd;

	le32_put(buf + len - 9, 0x7FFFFFF);
	fixture_write(fixture_path("bad.zst"), buf, len);
	ck_assert_ptr_null(open_file(fixture_path("bad.zst"), &fd, &e));
	ck_assert_int_eq(e.code, EIO);
	close(fd);
	le32_put(buf + len - 9, 0xFFFFFFFF);
	fixture_write(fixture_path("bad.zst"), buf, len);
	ck_assert_ptr_null(open_file(fixture_path("bad.zst"), &fd, &e));
	close(fd);
	free(buf);
}
END_TEST

START_TEST(file_without_table_says_so)
{
	struct err e;
	int fd;

	fixture_write(fixture_path("plain"), data, 100000);
	ck_assert_ptr_null(open_file(fixture_path("plain"), &fd, &e));
	ck_assert_int_eq(e.code, EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a seekable zstd file"));
	close(fd);
}
END_TEST

START_TEST(damaged_frame_fails_with_its_offset_never_wrong_bytes)
{
	const char *path = write_file(2);
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char *buf = malloc(FRAME);
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct zseek_frame f;
	struct err e;
	int fd;
	struct zseek *z = open_file(path, &fd, &e);

	/* flip bytes all through frame 3; each decode fails or, never, returns other bytes */
	zseek_frame(z, 3, &f);
	zseek_close(z);
	close(fd);
	for (uint32_t k = 0; k < f.csize; k += 1 + f.csize / 64) {
		file[f.coff + k] ^= 0x10;
		fixture_write(fixture_path("bad.zst"), file, len);
		file[f.coff + k] ^= 0x10;
		z = open_file(fixture_path("bad.zst"), &fd, &e);
		ck_assert_ptr_nonnull(z);
		ssize_t r = zseek_decode(z, 3, d, buf, &e);
		if (r >= 0)
			ck_assert_mem_eq(buf, data + f.doff, f.dsize);
		else
			ck_assert_int_eq(e.code, EIO);
		zseek_close(z);
		close(fd);
	}
	free(file);
	free(buf);
	zseek_dctx_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("zseek");
	TCase *tc = tcase_create("zseek");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, frames_decode_to_what_was_written);
	tcase_add_test(tc, one_thread_and_many_threads_write_the_same_frames);
	tcase_add_test(tc, frames_end_at_cuts_and_at_the_size_bound);
	tcase_add_test(tc, skippable_frame_reads_back);
	tcase_add_test(tc, plain_zstd_decoder_reads_the_whole_stream);
	tcase_add_test(tc, truncated_file_is_refused_at_every_length);
	tcase_add_test(tc, damaged_seek_table_is_refused);
	tcase_add_test(tc, every_flipped_table_byte_is_detected);
	tcase_add_test(tc, absurd_frame_count_is_refused);
	tcase_add_test(tc, file_without_table_says_so);
	tcase_add_test(tc, damaged_frame_fails_with_its_offset_never_wrong_bytes);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

#include "zseek.h"

#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_getFrameHeader, to check the window asked for */
#include <zstd.h>

#include "bytes.h"
#include "fillmem.h"
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

/* Data frame i, described by f, decodes to data's bytes and holds its first and last byte. */
static void check_frame(struct zseek *z, uint32_t i, const struct zseek_frame *f,
			struct zseek_dctx *d, unsigned char *buf)
{
	struct err e;

	ck_assert_msg(zseek_decode(z, i, d, buf, &e) == (ssize_t)f->dsize, "frame %u: %s", i, e.msg);
	ck_assert_mem_eq(buf, data + f->doff, f->dsize);
	ck_assert_uint_eq(zseek_find(z, f->doff), i);
	ck_assert_uint_eq(zseek_find(z, f->doff + f->dsize - 1), i);
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
		check_frame(z, i, &f, d, buf);
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
	struct err e = { 0 };
	unsigned kind;
	void *buf;
	int fd;
	struct zseek *z = open_file(write_file(2), &fd, &e);

	ck_assert_ptr_nonnull(z);
	ck_assert_int_eq(zseek_read_skippable(z, zseek_nframes(z) - 1, 5, &buf, &e), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	fill_free(buf);
	buf = NULL;	/* another kind is refused before the content is read */
	ck_assert_int_eq(zseek_read_skippable(z, zseek_nframes(z) - 1, 6, &buf, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "expected a skippable frame of kind 6, not 5 at byte"));
	ck_assert_ptr_null(buf);
	e = (struct err){ 0 };
	ck_assert_int_eq(zseek_read_skippable(z, 0, 5, &buf, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	kind = 0;	/* the header alone tells the kind, and a data frame is not one */
	ck_assert_int_eq(zseek_skippable_kind(z, zseek_nframes(z) - 1, &kind, &e), 0);
	ck_assert_uint_eq(kind, 5);
	e = (struct err){ 0 };
	ck_assert_int_eq(zseek_skippable_kind(z, 0, &kind, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "expected a skippable frame"));
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

/*
 * Frames bigger than the piece zseek_decode() reads at a time. Random bytes are
 * stored in raw blocks (9 bytes of frame header, 3 per 128 KiB block, 4 of
 * checksum), so a frame of RAW_FIT of them (two blocks) is exactly a piece,
 * read whole, and one of RAW_FIT + 1 a byte more, read through the window: its
 * second read is that one byte. A random 1 MiB frame has blocks that straddle
 * the window's reads.
 */
#define BIG_FRAME (1024u * 1024)
#define PIECE ZSEEK_PIECE
#define RAW_FIT (PIECE - 9 - 2 * 3 - 4)
#define BIG_TAIL 300000u
#define BIG_SIZE (2 * BIG_FRAME + 2 * RAW_FIT + 1 + BIG_TAIL)
#define BIG_FRAMES 5u

/* A compressible first frame, then random ones: whole, RAW_FIT, RAW_FIT + 1 and a short tail. */
static unsigned char *big_data(uint64_t seed)
{
	unsigned char *b = malloc(BIG_SIZE);

	ck_assert_ptr_nonnull(b);
	fixture_fill(b, BIG_FRAME, seed, 1);
	fixture_fill(b + BIG_FRAME, BIG_SIZE - BIG_FRAME, seed + 1, 0);
	return b;
}

static const char *write_big(const char *name, const unsigned char *src)
{
	const char *path = fixture_path(name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct zseek_writer *w;
	struct err e;
	size_t pos = 0;
	static const size_t cuts[] = { BIG_FRAME, 2 * BIG_FRAME, 2 * BIG_FRAME + RAW_FIT,
				       2 * BIG_FRAME + 2 * RAW_FIT + 1, BIG_SIZE };

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zseek_writer_new(fd, path, 3, 2, BIG_FRAME, &w, &e), 0);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		ck_assert_int_eq(zseek_write(w, src + pos, cuts[i] - pos, &e), 0);
		pos = cuts[i];
		ck_assert_int_eq(zseek_cut(w, &e), 0);
	}
	ck_assert_int_eq(zseek_finish(w, &e), 0);
	zseek_writer_free(w);
	close(fd);
	return path;
}

/* Frames of many pieces round-trip, one context decoding frames of two files in turn. */
START_TEST(frames_bigger_than_a_piece_decode_with_one_context)
{
	unsigned char *src[2] = { big_data(3), big_data(5) };
	const char *path[2] = { write_big("a.zst", src[0]), write_big("b.zst", src[1]) };
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char *buf = malloc(BIG_FRAME);
	struct zseek *z[2];
	struct zseek_frame f;
	struct err e;
	int fd[2];

	ck_assert_ptr_nonnull(d);
	for (int k = 0; k < 2; k++) {
		z[k] = open_file(path[k], &fd[k], &e);
		ck_assert_msg(z[k] != NULL, "%s", e.msg);
		ck_assert_uint_eq(zseek_nframes(z[k]), BIG_FRAMES);
		ck_assert_uint_eq(zseek_size(z[k]), BIG_SIZE);
		zseek_frame(z[k], 0, &f);
		ck_assert_uint_lt(f.csize, BIG_FRAME / 4);
		zseek_frame(z[k], 1, &f);
		ck_assert_uint_gt(f.csize, 4 * PIECE);
		/* random frames of RAW_FIT and RAW_FIT + 1 bytes: a piece, and a byte more */
		zseek_frame(z[k], 2, &f);
		ck_assert_uint_eq(f.csize, PIECE);
		zseek_frame(z[k], 3, &f);
		ck_assert_uint_eq(f.csize, PIECE + 1);
	}
	/* forwards then backwards, alternating files: the context resets between frames */
	for (uint32_t j = 0; j < 2 * BIG_FRAMES; j++) {
		uint32_t i = j < BIG_FRAMES ? j : 2 * BIG_FRAMES - 1 - j;
		for (int k = 0; k < 2; k++) {
			zseek_frame(z[k], i, &f);
			memset(buf, 0, BIG_FRAME);
			ck_assert_msg(zseek_decode(z[k], i, d, buf, &e) == (ssize_t)f.dsize,
				      "frame %u of %s: %s", i, path[k], e.msg);
			ck_assert_mem_eq(buf, src[k] + f.doff, f.dsize);
		}
	}
	for (int k = 0; k < 2; k++) {
		zseek_close(z[k]);
		close(fd[k]);
		free(src[k]);
	}
	free(buf);
	zseek_dctx_free(d);
}
END_TEST

/* Decoding frame i of path fails with EIO naming the file and the frame's offset. */
static void decode_refused(struct zseek *z, const char *path, uint32_t i, struct zseek_dctx *d)
{
	struct zseek_frame f;
	struct err e;
	char off[32];
	size_t room = zseek_max_dsize(z) + 64;
	unsigned char *buf = malloc(room);

	zseek_frame(z, i, &f);
	memset(buf, 0xA5, room);
	ck_assert_msg(zseek_decode(z, i, d, buf, &e) == -1, "frame %u of %s was accepted", i, path);
	ck_assert_int_eq(e.code, EIO);
	snprintf(off, sizeof(off), "byte %llu", (unsigned long long)f.coff);
	ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, off), "%s", e.msg);
	/* nothing is written past the room the table gave the frame */
	size_t k = f.dsize;
	while (k < room && buf[k] == 0xA5)
		k++;
	ck_assert_msg(k == room, "frame %u of %s: byte %zu past its dsize written", i, path,
		      k - f.dsize);
	free(buf);
}

/* A flipped byte in a late piece of a big frame, or in its checksum, fails that frame only. */
START_TEST(damage_in_a_late_piece_is_caught)
{
	unsigned char *src = big_data(7);
	const char *path = write_big("f.zst", src), *badp = fixture_path("bad.zst");
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char *buf = malloc(BIG_FRAME);
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct zseek_frame f[BIG_FRAMES];
	struct err e;
	int fd;
	struct zseek *z = open_file(path, &fd, &e);

	ck_assert_ptr_nonnull(z);
	for (uint32_t i = 0; i < BIG_FRAMES; i++)
		zseek_frame(z, i, &f[i]);
	zseek_close(z);
	close(fd);
	/* frame 1 is a whole random frame; frame 3 is a piece and a byte */
	static const uint32_t damaged[] = { 1, 3 };
	for (size_t j = 0; j < sizeof(damaged) / sizeof(damaged[0]); j++) {
		const struct zseek_frame *g = &f[damaged[j]];
		const uint32_t at[] = { PIECE, PIECE + 1, 3 * PIECE + 12345, g->csize / 2,
					g->csize - PIECE / 2, g->csize - 5, g->csize - 4,
					g->csize - 2, g->csize - 1 };
		for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
			if (at[k] >= g->csize)
				continue;
			file[g->coff + at[k]] ^= 0x10;
			fixture_write(badp, file, len);
			file[g->coff + at[k]] ^= 0x10;
			z = open_file(badp, &fd, &e);
			ck_assert_msg(z != NULL, "%s", e.msg);
			ssize_t r = zseek_decode(z, damaged[j], d, buf, &e);
			if (r >= 0)
				ck_assert_mem_eq(buf, src + g->doff, g->dsize);
			else
				ck_assert_int_eq(e.code, EIO);
			/* a content checksum catches every such flip */
			ck_assert_msg(r == -1, "flip at %u of frame %u went unnoticed", at[k],
				      damaged[j]);
			decode_refused(z, badp, damaged[j], d);
			/* the same context goes on to decode an intact frame */
			ck_assert_int_eq(zseek_decode(z, 2, d, buf, &e), (ssize_t)f[2].dsize);
			ck_assert_mem_eq(buf, src + f[2].doff, f[2].dsize);
			zseek_close(z);
			close(fd);
		}
	}
	free(file);
	free(buf);
	free(src);
	zseek_dctx_free(d);
}
END_TEST

#define MAX_ENTRIES 16u

/* Read a seekable file: its bytes, *body of them before the table, and the n entries (pairs). */
static unsigned char *read_frames(const char *path, size_t *body, uint32_t *ent, uint32_t *n)
{
	size_t len;
	unsigned char *file = fixture_read(path, &len);

	*n = le32_get(file + len - 9);
	ck_assert_uint_le(*n, MAX_ENTRIES);
	*body = len - (8 + 8 * (size_t)*n + 9);
	for (uint32_t i = 0; i < 2 * *n; i++)
		ent[i] = le32_get(file + *body + 8 + 4 * i);
	return file;
}

/* Write body followed by a seek table of n entries (pairs of compressed, decompressed size). */
static const char *write_with_table(const void *body, size_t len, const uint32_t *ent, uint32_t n)
{
	const char *path = fixture_path("lie.zst");
	size_t tsize = 8 + 8 * (size_t)n + 9;
	unsigned char *buf = malloc(len + tsize), *t = buf + len;

	memcpy(buf, body, len);
	le32_put(t, ZSEEK_TABLE_MAGIC);
	le32_put(t + 4, (uint32_t)(tsize - 8));
	for (uint32_t i = 0; i < 2 * n; i++)
		le32_put(t + 8 + 4 * i, ent[i]);
	le32_put(t + 8 + 8 * n, n);
	t[12 + 8 * n] = 0;
	le32_put(t + 13 + 8 * n, ZSEEK_FOOTER_MAGIC);
	fixture_write(path, buf, len + tsize);
	free(buf);
	return path;
}

/* body with ins inserted at byte at (a new buffer). */
static unsigned char *insert_at(const unsigned char *body, size_t len, size_t at, const void *ins,
			     size_t inslen)
{
	unsigned char *b = malloc(len + inslen);

	memcpy(b, body, at);
	memcpy(b + at, ins, inslen);
	memcpy(b + at + inslen, body + at, len - at);
	return b;
}

/*
 * The table's entry i is made to cover its frame plus what follows up to the next
 * entry: the file opens (the sizes add up) and decoding entry i fails there.
 */
static void lie_refused(const void *body, size_t len, const uint32_t *ent, uint32_t n, uint32_t i,
			struct zseek_dctx *d)
{
	const char *path = write_with_table(body, len, ent, n);
	struct err e;
	int fd;
	struct zseek *z = open_file(path, &fd, &e);

	ck_assert_msg(z != NULL, "%s", e.msg);
	decode_refused(z, path, i, d);
	zseek_close(z);
	close(fd);
}

/* The entries ent with entry i merged into entry i - 1 (into out; returns the new count). */
static uint32_t merge(const uint32_t *ent, uint32_t n, uint32_t i, uint32_t *out)
{
	uint32_t m = 0;

	for (uint32_t k = 0; k < n; k++) {
		if (k == i) {
			out[2 * m - 2] += ent[2 * k];
			out[2 * m - 1] += ent[2 * k + 1];
			continue;
		}
		out[2 * m] = ent[2 * k];
		out[2 * m + 1] = ent[2 * k + 1];
		m++;
	}
	return m;
}

/* Frames with no content size in their header (a writer other than ours): text, then random. */
static unsigned char *unsized_frames(const unsigned char *src, size_t *len, uint32_t *ent)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t cap = 2 * ZSTD_compressBound(BIG_FRAME);
	unsigned char *b = malloc(cap);
	size_t r;

	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
	*len = 0;
	for (uint32_t i = 0; i < 2; i++) {
		r = ZSTD_compress2(c, b + *len, cap - *len, src + i * BIG_FRAME, BIG_FRAME);
		ck_assert_msg(!ZSTD_isError(r), "%s", ZSTD_getErrorName(r));
		ent[2 * i] = (uint32_t)r;
		ent[2 * i + 1] = BIG_FRAME;
		*len += r;
	}
	ZSTD_freeCCtx(c);
	return b;
}

/* An entry that is not exactly one frame of exactly its dsize is refused by zseek_decode(). */
START_TEST(seek_table_that_lies_is_refused)
{
	unsigned char *src = big_data(9);
	const char *path = write_big("f.zst", src);
	struct zseek_dctx *d = zseek_dctx_new();
	uint32_t ent[2 * MAX_ENTRIES], lie[2 * MAX_ENTRIES], n, m;
	size_t body, len;
	unsigned char *file = read_frames(path, &body, ent, &n), *b;
	static const unsigned char garbage[7] = "garbage";
	unsigned char skip[13] = { 0 };
	uint64_t coff[BIG_FRAMES + 1] = { 0 };
	struct err e;
	int fd;
	struct zseek *z;

	ck_assert_uint_eq(n, BIG_FRAMES);
	for (uint32_t i = 0; i < n; i++)
		coff[i + 1] = coff[i] + ent[2 * i];
	/* the table written back as it is decodes: the helpers are sound */
	z = open_file(write_with_table(file, body, ent, n), &fd, &e);
	ck_assert_msg(z != NULL, "%s", e.msg);
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *buf = malloc(BIG_FRAME);
		struct zseek_frame f;
		zseek_frame(z, i, &f);
		ck_assert_int_eq(zseek_decode(z, i, d, buf, &e), (ssize_t)f.dsize);
		ck_assert_mem_eq(buf, src + f.doff, f.dsize);
		free(buf);
	}
	zseek_close(z);
	close(fd);

	/* two real frames as one entry: the first ends inside a piece, on a piece boundary, ... */
	for (uint32_t i = 1; i < n; i++) {
		m = merge(ent, n, i, lie);
		lie_refused(file, body, lie, m, i - 1, d);
	}
	/* one frame plus garbage, in the same piece or the next */
	for (uint32_t i = 0; i < n; i++) {
		b = insert_at(file, body, coff[i + 1], garbage, sizeof(garbage));
		memcpy(lie, ent, sizeof(uint32_t) * 2 * n);
		lie[2 * i] += sizeof(garbage);
		lie_refused(b, body + sizeof(garbage), lie, n, i, d);
		free(b);
	}
	/* the boundary between two entries moved: a frame short of its checksum, or of more */
	for (uint32_t i = 0; i + 1 < n; i++) {
		static const uint32_t by[] = { 1, 4, 5, 1000, PIECE / 2 };
		for (size_t k = 0; k < sizeof(by) / sizeof(by[0]); k++) {
			memcpy(lie, ent, sizeof(uint32_t) * 2 * n);
			lie[2 * i] -= by[k];
			lie[2 * i + 2] += by[k];
			lie_refused(file, body, lie, n, i, d);
			lie_refused(file, body, lie, n, i + 1, d);
			lie[2 * i] += 2 * by[k];
			lie[2 * i + 2] -= 2 * by[k];
			lie_refused(file, body, lie, n, i, d);
			lie_refused(file, body, lie, n, i + 1, d);
		}
	}
	/* a frame and a skippable frame as one entry, either way round */
	le32_put(skip, ZSEEK_SKIPPABLE_MAGIC_BASE + 3);
	le32_put(skip + 4, sizeof(skip) - 8);
	for (uint32_t i = 0; i < n; i++) {
		b = insert_at(file, body, coff[i + 1], skip, sizeof(skip));
		memcpy(lie, ent, sizeof(uint32_t) * 2 * n);
		lie[2 * i] += sizeof(skip);
		lie_refused(b, body + sizeof(skip), lie, n, i, d);
		free(b);
		b = insert_at(file, body, coff[i], skip, sizeof(skip));
		lie_refused(b, body + sizeof(skip), lie, n, i, d);
		free(b);
	}
	/* dsize smaller or larger than the frame's content: by one byte, to 0, by a piece */
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t ds = ent[2 * i + 1];
		const uint32_t wrong[] = { ds - 1, ds + 1, 0, ds / 2, ds + PIECE };
		for (size_t k = 0; k < sizeof(wrong) / sizeof(wrong[0]); k++) {
			memcpy(lie, ent, sizeof(uint32_t) * 2 * n);
			lie[2 * i + 1] = wrong[k];
			lie_refused(file, body, lie, n, i, d);
		}
	}
	free(file);

	/* the same for frames that do not state their content size */
	file = unsized_frames(src, &len, ent);
	z = open_file(write_with_table(file, len, ent, 2), &fd, &e);
	ck_assert_msg(z != NULL, "%s", e.msg);
	for (uint32_t i = 0; i < 2; i++) {
		unsigned char *buf = malloc(BIG_FRAME);
		ck_assert_int_eq(zseek_decode(z, i, d, buf, &e), BIG_FRAME);
		ck_assert_mem_eq(buf, src + i * BIG_FRAME, BIG_FRAME);
		free(buf);
	}
	zseek_close(z);
	close(fd);
	m = merge(ent, 2, 1, lie);
	lie_refused(file, len, lie, m, 0, d);
	for (uint32_t i = 0; i < 2; i++) {
		const uint32_t wrong[] = { BIG_FRAME - 1, BIG_FRAME + 1, 0, BIG_FRAME / 2,
					   BIG_FRAME - PIECE - 1 };
		for (size_t k = 0; k < sizeof(wrong) / sizeof(wrong[0]); k++) {
			memcpy(lie, ent, sizeof(uint32_t) * 4);
			lie[2 * i + 1] = wrong[k];
			lie_refused(file, len, lie, 2, i, d);
		}
	}
	free(file);
	free(src);
	zseek_dctx_free(d);
}
END_TEST

/* A frame of src (n bytes) that declares a 1 GiB window: the size is not known up front. */
static unsigned char *huge_window_frame(const unsigned char *src, size_t n, size_t *len)
{
	size_t cap = ZSTD_compressBound(n) + 64;
	unsigned char *frame = malloc(cap);
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_inBuffer in = { src, n / 2, 0 };
	ZSTD_outBuffer out = { frame, cap, 0 };
	ZSTD_frameHeader h;

	ck_assert_ptr_nonnull(frame);
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 30)));
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
	/* two calls, so the window is not cut down to the size */
	ck_assert(!ZSTD_isError(ZSTD_compressStream2(c, &out, &in, ZSTD_e_continue)));
	in.size = n;
	ck_assert_uint_eq(ZSTD_compressStream2(c, &out, &in, ZSTD_e_end), 0);
	ZSTD_freeCCtx(c);
	*len = out.pos;
	ck_assert_uint_eq(ZSTD_getFrameHeader(&h, frame, *len), 0);
	ck_assert_uint_eq(h.windowSize, 1ull << 30);
	return frame;
}


/*
 * The reader keeps the start of every 32nd frame only (zseek.c, ZSEEK_SPAN): offsets
 * and lookups across those spans, with runs of empty (skippable) frames inside a span,
 * filling a whole span and ending on a span's edge, for tables of n frames around the
 * multiples of 32.
 */
START_TEST(offsets_and_lookups_across_spans)
{
	static const uint32_t counts[] = { 1, 31, 32, 33, 63, 64, 65, 100, 129 };
	struct zseek_dctx *d = zseek_dctx_new();
	unsigned char buf[200];
	struct err e;

	ck_assert_ptr_nonnull(d);
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		const char *path = fixture_path("spans.zst");
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		struct zseek_writer *w;
		uint32_t n = 0, want[300];	/* frame i: 1 + the data frame it is, or 0 if skippable */
		uint64_t pos = 0;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(zseek_writer_new(fd, path, 1, 1, 4096, &w, &e), 0);
		for (uint32_t k = 0; n < counts[c]; k++) {
			/* skippable runs: 3 after data frame 5, 40 after 20 (a whole span), 1 last */
			uint32_t skip = k == 6 ? 3 : k == 21 ? 40 : 0;
			for (uint32_t j = 0; j < skip && n < counts[c]; j++) {
				ck_assert_int_eq(zseek_write_skippable(w, 1, "x", 1, &e), 0);
				want[n++] = 0;
			}
			if (n == counts[c])
				break;
			size_t len = 50 + (k * 37) % 150;	/* 50-199 bytes */
			ck_assert_int_eq(zseek_write(w, data + pos, len, &e), 0);
			ck_assert_int_eq(zseek_cut(w, &e), 0);
			pos += len;
			want[n++] = 1 + k;
		}
		ck_assert_int_eq(zseek_finish(w, &e), 0);
		zseek_writer_free(w);
		close(fd);

		struct zseek *z = open_file(path, &fd, &e);
		struct zseek_frame f;
		uint64_t doff = 0, coff = 0;
		ck_assert_msg(z != NULL, "%s", e.msg);
		ck_assert_uint_eq(zseek_nframes(z), counts[c]);
		ck_assert_uint_eq(zseek_size(z), pos);
		for (uint32_t i = 0; i < counts[c]; i++) {
			zseek_frame(z, i, &f);
			ck_assert_msg(f.doff == doff && f.coff == coff, "%u frames: frame %u at %llu/%llu",
				      counts[c], i, (unsigned long long)f.doff,
				      (unsigned long long)f.coff);
			ck_assert_uint_eq(f.dsize == 0, want[i] == 0);
			if (f.dsize)
				check_frame(z, i, &f, d, buf);
			doff += f.dsize;
			coff += f.csize;
		}
		ck_assert_uint_eq(doff, pos);
		ck_assert_uint_eq(zseek_find(z, pos), UINT32_MAX);
		zseek_close(z);
		close(fd);
	}
	zseek_dctx_free(d);
}
END_TEST

/* Foreign frames that declare a window past zstd's default limit still decode, read whole or in pieces. */
/* Pages of fd's [off, off + len) in the page cache (len a multiple of the page size). */
static size_t resident(int fd, uint64_t off, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0;
	unsigned char *vec = malloc(len / page);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);

	ck_assert_ptr_nonnull(vec);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(mincore(m, len, vec), 0);
	for (size_t i = 0; i < len / page; i++)
		n += vec[i] & 1;
	munmap(m, len);
	free(vec);
	return n;
}

/*
 * Frames decoded front to back drop what they read more than 8 MiB back from
 * the page cache, from the start of the file on, but not the last 8 MiB.
 * Decoded in random order, nothing is dropped: the frames of the second half
 * at random leave the first half cached (a drop there would stay visible, as
 * nothing reads it again). On tmpfs, whose pages cannot be dropped, only the
 * decoding is checked.
 */
START_TEST(decoding_front_to_back_drops_behind_random_order_does_not)
{
	const size_t size = 24u << 20, mib = 1u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
	const char *path = fixture_path("big.zst");
	unsigned char *big = malloc(size), *buf = malloc(FRAME);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct zseek_writer *w;
	struct err e;
	struct statfs fs;

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	fixture_fill(big, size, 7, 0);	/* does not compress: 24 MiB of frames */
	ck_assert_int_eq(zseek_writer_new(fd, path, 1, 1, FRAME, &w, &e), 0);
	ck_assert_int_eq(zseek_write(w, big, size, &e), 0);
	ck_assert_int_eq(zseek_finish(w, &e), 0);
	zseek_writer_free(w);
	ck_assert_int_eq(fsync(fd), 0);	/* dirty pages are never dropped: snapkeep syncs too */
	close(fd);
	bool droppable = statfs(path, &fs) == 0 && fs.f_type != TMPFS_MAGIC;
	if (!droppable)
		fprintf(stderr, "test_zseek: drop-behind not checked: %s is on tmpfs, whose pages "
				"cannot be dropped; set TMPDIR to a disk to check it\n", path);
	for (int round = 0; round < 2; round++) {
		struct zseek *z = open_file(path, &fd, &e);
		struct zseek_dctx *d = zseek_dctx_new();
		struct stat st;
		ck_assert_ptr_nonnull(z);
		ck_assert_ptr_nonnull(d);
		fstat(fd, &st);
		uint64_t whole = (uint64_t)st.st_size / page * page;
		ck_assert_uint_ge(whole, 20 * mib);
		for (uint64_t off = 0; off < (uint64_t)st.st_size; off += FRAME)	/* all cached */
			ck_assert_int_eq(pread(fd, buf, FRAME, (off_t)off) >= 0, 1);
		uint32_t n = zseek_nframes(z);
		uint32_t *order = malloc(n * sizeof(*order));
		ck_assert_ptr_nonnull(order);
		for (uint32_t i = 0; i < n; i++)
			order[i] = i;
		uint64_t seed = 5;
		for (uint32_t i = n - 1; round == 1 && i > 0; i--) {
			uint32_t j = (uint32_t)(fixture_rand(&seed) % (i + 1)), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (uint32_t i = 0; i < n; i++) {
			struct zseek_frame f;
			zseek_frame(z, order[i], &f);
			if (f.dsize == 0 || (round == 1 && f.coff < 12 * mib))
				continue;	/* the table's own frame; the first half at random */
			ck_assert_int_eq(zseek_decode(z, order[i], d, buf, &e), (ssize_t)f.dsize);
			ck_assert_mem_eq(buf, big + f.doff, f.dsize);
		}
		if (droppable) {
			size_t first = resident(fd, 0, 4 * mib), last = resident(fd, whole - 8 * mib, 8 * mib);
			ck_assert_uint_eq(last, 8 * mib / page);
			if (round == 0)
				ck_assert_uint_eq(first, 0);
			else
				ck_assert_uint_eq(first, 4 * mib / page);
		}
		free(order);
		zseek_dctx_free(d);
		zseek_close(z);
		close(fd);
	}
	free(buf);
	free(big);
}
END_TEST

START_TEST(frame_with_a_huge_window_decodes)
{
	/* compressible bytes (one read), then incompressible ones (pieces) */
	const unsigned char *src[2] = { data, data + DATA_SIZE / 2 };
	size_t n = 600000;
	unsigned char *buf = malloc(n);
	struct zseek_dctx *d = zseek_dctx_new();
	struct err e;
	int fd;

	ck_assert_ptr_nonnull(buf);
	for (int k = 0; k < 2; k++) {
		size_t len;
		unsigned char *frame = huge_window_frame(src[k], n, &len);
		ck_assert(k == 0 ? len < ZSEEK_PIECE : len > 2 * ZSEEK_PIECE);
		uint32_t ent[2] = { (uint32_t)len, (uint32_t)n };
		const char *path = write_with_table(frame, len, ent, 1);
		struct zseek *z = open_file(path, &fd, &e);
		ck_assert_msg(z != NULL, "%s", e.msg);
		ck_assert_msg(zseek_decode(z, 0, d, buf, &e) == (ssize_t)n, "%s", e.msg);
		ck_assert_mem_eq(buf, src[k], n);
		zseek_close(z);
		close(fd);
		free(frame);
	}
	zseek_dctx_free(d);
	free(buf);
}
END_TEST

/*
 * fillmem: blocks of every size, made at once or as they are written, are
 * writable and aligned as malloc's; and a mapping's first fill bytes are
 * resident before anything writes them (where the kernel can make pages in
 * advance at all: Linux 5.14 and later).
 */
START_TEST(fill_blocks_are_writable_and_populated)
{
	static const size_t sizes[] = { 0, 1, 100, 65535, 65536, 1u << 20, (3u << 20) + 5 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[8];
	bool can_populate;
	void *probe;

	for (int fill = 0; fill < 2; fill++)
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			unsigned char *p = fill_alloc(sizes[k], fill);
			ck_assert_ptr_nonnull(p);
			ck_assert_uint_eq((uintptr_t)p % 16, 0);
			memset(p, 0xA5, sizes[k]);
			if (sizes[k])
				ck_assert_uint_eq(p[sizes[k] - 1], 0xA5);
			fill_free(p);
		}
	fill_free(NULL);

	probe = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(probe, MAP_FAILED);
	can_populate = madvise(probe, page, 23 /* MADV_POPULATE_WRITE */) == 0;
	munmap(probe, page);
	if (!can_populate)
		return;
	unsigned char *m = fill_map(16 * page, 8 * page - 1);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mincore(m, 8 * page, vec), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(vec[i] & 1, "page %d of the mapping is not resident", i);
	munmap(m, 16 * page);
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
	tcase_add_test(tc, frames_bigger_than_a_piece_decode_with_one_context);
	tcase_add_test(tc, damage_in_a_late_piece_is_caught);
	tcase_add_test(tc, seek_table_that_lies_is_refused);
	tcase_add_test(tc, frame_with_a_huge_window_decodes);
	tcase_add_test(tc, offsets_and_lookups_across_spans);
	tcase_add_test(tc, decoding_front_to_back_drops_behind_random_order_does_not);
	tcase_add_test(tc, fill_blocks_are_writable_and_populated);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

#include "index.h"

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_getFrameHeader */
#include <zstd.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bytes.h"
#include "fixture.h"
#include "foreign.h"
#ifdef SNAPFS_HAVE_ZLIB
#include "gzseek.h"
#endif
#include "hash.h"
#include "idxfmt.h"
#include "writer.h"
#include "zseek.h"

static void add(struct idx_builder *b, const char *path, unsigned mode, const char *hardlink,
		uint64_t size, uint64_t off)
{
	struct archive_entry *e = archive_entry_new();
	struct err err;

	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, mode);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, 1000, 5);
	if (hardlink)
		archive_entry_set_hardlink(e, hardlink);
	ck_assert_msg(idx_builder_add(b, e, off, &err) == 0, "%s", err.msg);
	archive_entry_free(e);
}

static struct idx *finish(struct idx_builder *b)
{
	void *blob;
	size_t len;
	struct err e;
	struct idx *x;

	ck_assert_int_eq(idx_builder_finish(b, &blob, &len, &e), 0);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	free(blob);
	return x;
}

/* The builder's blob (*len bytes); the builder is freed. */
static void *blob_of(struct idx_builder *b, size_t *len)
{
	void *blob;
	struct err e;

	ck_assert_msg(idx_builder_finish(b, &blob, len, &e) == 0, "%s", e.msg);
	idx_builder_free(b);
	return blob;
}

START_TEST(paths_are_normalised_and_parents_implied)
{
	struct idx_builder *b = idx_builder_new(77, NULL);
	struct idx *x;
	struct idx_entry ent;
	char path[256];
	struct err e;

	add(b, "./a/b/c.txt", S_IFREG | 0644, NULL, 3, 512);
	add(b, "/abs//file", S_IFREG | 0600, NULL, 0, 0);
	add(b, "a/./d/", S_IFDIR | 0700, NULL, 0, 0);
	ck_assert_uint_eq(idx_builder_members(b), 3);
	x = finish(b);
	idx_builder_free(b);
	uint32_t i = idx_lookup_path(x, "a/b/c.txt");
	ck_assert_uint_ne(i, IDX_NONE);
	ck_assert_int_eq(idx_path(x, i, path, sizeof(path), &e), 0);
	ck_assert_str_eq(path, "a/b/c.txt");
	idx_get(x, idx_lookup_path(x, "a/b"), &ent);
	ck_assert(ent.flags & IDX_F_IMPLICIT);
	ck_assert(S_ISDIR(ent.mode));
	ck_assert_int_eq(ent.mtime_sec, 77);
	idx_get(x, idx_lookup_path(x, "a/d"), &ent);
	ck_assert_uint_eq(ent.mode, S_IFDIR | 0700);
	ck_assert(!(ent.flags & IDX_F_IMPLICIT));
	ck_assert_uint_ne(idx_lookup_path(x, "abs/file"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "a/zzz"), IDX_NONE);
	ck_assert_uint_eq(idx_members(x), 3);
	ck_assert_uint_eq(idx_count(x), 7);	/* the root and a, a/b, a/d, abs: implied */
	idx_close(x);
}
END_TEST

START_TEST(member_climbing_out_is_skipped)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	struct archive_entry *ae = archive_entry_new();
	struct err e;

	archive_entry_set_pathname(ae, "a/../../etc/passwd");
	archive_entry_set_mode(ae, S_IFREG | 0644);
	ck_assert_int_eq(idx_builder_add(b, ae, 0, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
	/* left out, but counted: readers count members to find the ones after it */
	const char *first;
	ck_assert_uint_eq(idx_builder_members(b), 1);
	ck_assert_uint_eq(idx_builder_refused(b, IDX_REFUSED_CLIMBS, &first), 1);
	ck_assert_str_eq(first, "a/../../etc/passwd");
	archive_entry_free(ae);
	idx_builder_free(b);
}
END_TEST

START_TEST(children_are_sorted_and_contiguous)
{
	static const char *const names[] = { "zeta", "Alpha", "beta", "a", "b\xff", "b" };
	struct idx_builder *b = idx_builder_new(0, NULL);
	struct idx *x;
	struct idx_entry root, prev, cur;

	for (size_t i = 0; i < 6; i++) {
		char p[64];
		snprintf(p, sizeof(p), "dir/%s", names[i]);
		add(b, p, S_IFREG | 0644, NULL, 0, 0);
	}
	x = finish(b);
	idx_builder_free(b);
	idx_get(x, idx_lookup_path(x, "dir"), &root);
	ck_assert_uint_eq(root.nchildren, 6);
	for (uint32_t k = 1; k < root.nchildren; k++) {
		idx_get(x, root.first_child + k - 1, &prev);
		idx_get(x, root.first_child + k, &cur);
		ck_assert_int_lt(strncmp(prev.name, cur.name, 64), 0);
		ck_assert_uint_eq(cur.parent, idx_lookup_path(x, "dir"));
	}
	for (size_t i = 0; i < 6; i++)
		ck_assert_uint_ne(idx_lookup(x, root.first_child ? idx_lookup_path(x, "dir") : 0,
					     names[i], strlen(names[i])), IDX_NONE);
	idx_close(x);
}
END_TEST

START_TEST(later_member_replaces_earlier)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	struct idx *x;
	struct idx_entry ent;

	add(b, "f", S_IFREG | 0644, NULL, 10, 512);
	add(b, "f", S_IFREG | 0600, NULL, 20, 2048);
	x = finish(b);
	idx_builder_free(b);
	ck_assert_uint_eq(idx_count(x), 2);
	idx_get(x, idx_lookup_path(x, "f"), &ent);
	ck_assert_uint_eq(ent.size, 20);
	ck_assert_uint_eq(ent.data_off, 2048);
	ck_assert_uint_eq(ent.mode, S_IFREG | 0600);
	idx_close(x);
}
END_TEST

/*
 * The links of hard_links_share_one_target_and_count_links, built as version
 * v's writer builds them, or as a foreign archive's scan does.
 */
static struct idx *links_index(uint32_t v, bool foreign, uint32_t *left_out, const char **first)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	struct idx *x;

	idx_builder_compat(b, v);
	if (foreign)
		idx_builder_foreign(b);
	add(b, "d/file", S_IFREG | 0644, NULL, 10, 1024);
	add(b, "l1", S_IFREG | 0644, "d/file", 0, 0);
	add(b, "l2", S_IFREG | 0644, "./l1", 0, 0);	/* a link to a link */
	add(b, "d/broken", S_IFREG | 0644, "nowhere", 0, 0);	/* as after tar --delete nowhere */
	add(b, "d/to-broken", S_IFREG | 0644, "d/broken", 0, 0);
	add(b, "to-dir", S_IFREG | 0644, "d", 0, 0);
	x = finish(b);
	*left_out = idx_builder_refused(b, IDX_REFUSED_NO_TARGET, first);
	*first = *first ? strdup(*first) : NULL;
	idx_builder_free(b);
	return x;
}

START_TEST(hard_links_share_one_target_and_count_links)
{
	struct idx *x;
	struct idx_entry f, l1, l2, broken, dir;
	uint32_t left_out;
	char *first;

	x = links_index(IDX_VERSION, true, &left_out, (const char **)&first);
	idx_get(x, idx_lookup_path(x, "d/file"), &f);
	idx_get(x, idx_lookup_path(x, "l1"), &l1);
	idx_get(x, idx_lookup_path(x, "l2"), &l2);
	idx_get(x, idx_lookup_path(x, "d"), &dir);
	ck_assert_uint_eq(l1.target, idx_lookup_path(x, "d/file"));
	ck_assert_uint_eq(l2.target, l1.target);
	ck_assert_uint_eq(f.nlink, 3);
	ck_assert_uint_eq(l1.nlink, 3);
	/* links to no file stored are left out, as tar -x and bsdtar -x make nothing for them */
	ck_assert_uint_eq(idx_lookup_path(x, "d/broken"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "d/to-broken"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "to-dir"), IDX_NONE);
	ck_assert_uint_eq(left_out, 3);
	ck_assert_str_eq(first, "d/broken");
	ck_assert_uint_eq(dir.nlink, 2);
	ck_assert_uint_eq(dir.nchildren, 1);
	idx_get(x, IDX_ROOT, &dir);
	ck_assert_uint_eq(dir.nlink, 3);	/* ".", its entry, and d's ".." */
	ck_assert_uint_eq(idx_count(x), 5);	/* the root, d, d/file, l1, l2 */
	idx_close(x);
	free(first);
	/*
	 * A native archive's index keeps them as empty files (a take of a
	 * hard-linked socket wrote one), as version 1 did: so do the rebuilds
	 * that verify compares with them.
	 */
	for (uint32_t v = 1; v <= IDX_VERSION; v++) {
		x = links_index(v, false, &left_out, (const char **)&first);
		ck_assert_uint_eq(left_out, 0);
		idx_get(x, idx_lookup_path(x, "d/broken"), &broken);
		ck_assert_uint_eq(broken.target, idx_lookup_path(x, "d/broken"));
		ck_assert(S_ISREG(broken.mode));
		ck_assert_uint_eq(broken.size, 0);
		ck_assert_uint_ne(idx_lookup_path(x, "to-dir"), IDX_NONE);
		idx_close(x);
		free(first);
	}
}
END_TEST

/*
 * A hard link member whose mode says directory, with a member below it: no
 * link is a directory, so the later member makes it one (as tar -x does,
 * after failing the link), and a link to that member finds it.
 */
START_TEST(a_hard_link_with_a_directory_mode_is_no_directory)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	struct idx *x;
	struct idx_entry dir, y, z;
	const char *first;

	idx_builder_foreign(b);
	add(b, "keep", S_IFREG | 0644, NULL, 4, 512);
	add(b, "x", S_IFDIR | 0755, "nowhere", 0, 0);
	add(b, "x/y", S_IFREG | 0644, NULL, 3, 2048);
	add(b, "z", S_IFREG | 0644, "x/y", 0, 0);
	x = finish(b);
	ck_assert_uint_eq(idx_builder_refused(b, IDX_REFUSED_NO_TARGET, &first), 0);
	idx_builder_free(b);
	idx_get(x, idx_lookup_path(x, "x"), &dir);
	idx_get(x, idx_lookup_path(x, "x/y"), &y);
	idx_get(x, idx_lookup_path(x, "z"), &z);
	ck_assert(S_ISDIR(dir.mode));
	ck_assert_uint_eq(z.target, idx_lookup_path(x, "x/y"));
	ck_assert_uint_eq(y.nlink, 2);
	ck_assert_uint_eq(y.size, 3);
	idx_close(x);
}
END_TEST

static void *good_blob(size_t *len)
{
	struct idx_builder *b = idx_builder_new(0, NULL);

	add(b, "a/b/c", S_IFREG | 0644, NULL, 5, 512);
	add(b, "a/link", S_IFREG | 0644, "a/b/c", 0, 0);
	add(b, "z", S_IFDIR | 0755, NULL, 0, 0);
	return blob_of(b, len);
}

/* Walk everything an open index offers, so a sanitizer sees any bad access. */
static void walk_all(struct idx *x)
{
	char path[4096];
	struct err e;

	for (uint32_t i = 0; i < idx_count(x); i++) {
		struct idx_entry ent;
		idx_get(x, i, &ent);
		idx_path(x, i, path, sizeof(path), &e);
		if (ent.nchildren)
			idx_lookup(x, i, "c", 1);
	}
}

START_TEST(truncated_blob_is_refused)
{
	size_t len;
	unsigned char *blob = good_blob(&len);
	struct idx *x;
	struct err e;

	for (size_t cut = 0; cut < len; cut++) {
		ck_assert_int_eq(idx_open_blob(blob, cut, "t", &x, &e), -1);
		ck_assert_int_eq(e.code, EIO);
	}
	free(blob);
}
END_TEST

START_TEST(flipped_blob_byte_is_refused_or_harmless)
{
	size_t len;
	unsigned char *blob = good_blob(&len);
	struct idx *x;
	struct err e;

	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit += 3) {
			blob[i] ^= (unsigned char)(1 << bit);
			if (idx_open_blob(blob, len, "t", &x, &e) == 0) {
				walk_all(x);
				idx_close(x);
			} else {
				ck_assert_int_eq(e.code, EIO);
			}
			blob[i] ^= (unsigned char)(1 << bit);
		}
	free(blob);
}
END_TEST

START_TEST(absurd_counts_are_refused)
{
	size_t len;
	unsigned char *blob = good_blob(&len);
	struct idx *x;
	struct err e;

	/* entries, xattrs, sparse regions, string bytes (the member count is only reported) */
	static const int fields[] = { 0, 8, 12, 16 };
	for (int k = 0; k < 4; k++) {
		unsigned char save[4];
		memcpy(save, blob + fields[k], 4);
		memset(blob + fields[k], 0xFF, 4);
		ck_assert_int_eq(idx_open_blob(blob, len, "t", &x, &e), -1);
		ck_assert_int_eq(e.code, EIO);
		memcpy(blob + fields[k], save, 4);
	}
	free(blob);
}
END_TEST

/* A small native archive written by the real writer. */
static const char *native_archive(void)
{
	static const char *const paths[] = { "." };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 1, .level = 3 };
	struct wr_stats st;
	struct err e;
	unsigned char buf[3000];

	mkdir(fixture_path("src"), 0755);
	fixture_fill(buf, sizeof(buf), 1, 1);
	fixture_write(fixture_path("src/a.yaml"), buf, sizeof(buf));
	fixture_write(fixture_path("src/b.yaml"), buf, 100);
	int fd = open(fixture_path("a.tar.zst"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(wr_write(fd, "a.tar.zst", &o, &st, &e) == 0, "%s", e.msg);
	close(fd);
	return fixture_path("a.tar.zst");
}

/* Where the index frame of the archive at path begins, from its seek table. */
static uint64_t index_frame_offset(const char *path)
{
	struct err e = { 0 };
	struct stat st;
	struct zseek *z;
	struct zseek_frame f;
	int fd = open(path, O_RDONLY);

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg(zseek_open(fd, path, (uint64_t)st.st_size, &z, &e) == 0, "%s", e.msg);
	zseek_frame(z, zseek_nframes(z) - 1, &f);
	zseek_close(z);
	close(fd);
	return f.coff;
}

START_TEST(damaged_trailer_gives_eio_naming_the_archive)
{
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct idx *x;
	struct err e;
	uint64_t at = index_frame_offset(path);

	ck_assert_int_eq(idx_open(path, &x, &e), 0);
	ck_assert_uint_eq(idx_members(x), 3);
	idx_close(x);
	/* every byte from the index frame to the end: the index frame and the seek table */
	for (size_t i = at; i < len; i++) {
		/* the seek-table descriptor's two low bits are unused by the format */
		if (i == len - 5)
			continue;
		file[i] ^= 0x21;
		fixture_write(fixture_path("bad.tar.zst"), file, len);
		file[i] ^= 0x21;
		int rc = idx_open(fixture_path("bad.tar.zst"), &x, &e);
		/* a flip in the index frame's magic makes it foreign: it then scans as plain tar */
		if (rc == 0) {
			ck_assert_msg(!idx_is_native(x), "flip at %zu of %zu went unnoticed", i, len);
			idx_close(x);
			continue;
		}
		ck_assert_msg(e.code == EIO || e.code == ENOTSUP, "code %d: %s", e.code, e.msg);
		ck_assert_ptr_nonnull(strstr(e.msg, "bad.tar.zst"));
	}
	free(file);
}
END_TEST

/*
 * A skippable frame of another kind where the index belongs (a seekable zstd
 * file from another tool): refused by its header, and the file is scanned as
 * a foreign tar.
 */
START_TEST(a_last_frame_of_another_kind_scans_as_foreign)
{
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct idx *x;
	struct err e = { 0 };
	uint64_t at = index_frame_offset(path);

	ck_assert_uint_eq(file[at], 0x50 | IDX_FRAME_KIND);	/* the magic's low byte */
	file[at] = 0x50 | (IDX_FRAME_KIND + 1);
	fixture_write(fixture_path("kind.tar.zst"), file, len);
	ck_assert_msg(idx_open(fixture_path("kind.tar.zst"), &x, &e) == 0, "%s", e.msg);
	ck_assert(!idx_is_native(x));
	ck_assert_uint_eq(idx_members(x), 3);
	ck_assert_ptr_null(idx_damage(x));	/* another tool's frame is no damage */
	idx_close(x);
	free(file);
}
END_TEST

/* An archive of index version 1 (tests/data/README.md) opens and reads. */
START_TEST(an_index_of_version_1_reads)
{
	const char *dir = getenv("SNAPFS_TESTDATA");
	struct idx_reader *r = idx_reader_new();
	char path[4200], got[16] = "";
	struct idx *x;
	struct err e;

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof(path), "%s/v1-acl-fifo-link.tar.zst", dir);
	ck_assert_msg(idx_open(path, &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_is_native(x));
	ck_assert_uint_eq(idx_version(x), 1);
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "plain"), got, sizeof(got), 0, r, &e), 6);
	ck_assert_str_eq(got, "plain\n");
	idx_close(x);
	idx_reader_free(r);
}
END_TEST

/* Text named like an archive: libarchive would read it as an mtree manifest. */
START_TEST(text_under_an_archive_name_is_no_archive)
{
	const struct idx_opts salvage = { .salvage = true };
	struct idx *x;
	struct err e;

	fixture_write(fixture_path("junk-20260101_000000.tar.gz"), "garbage\n", 8);
	ck_assert_int_eq(idx_open_with(fixture_path("junk-20260101_000000.tar.gz"), &salvage, &x, &e),
			 -1);
	ck_assert_int_eq(e.code, ENOTSUP);
	ck_assert_msg(strstr(e.msg, "is not an archive snapfs reads"), "%s", e.msg);
}
END_TEST

/*
 * native_archive() with its index damaged, at path: it opens with o as a
 * foreign archive of the same three members, idx_damage() says why (saying
 * contains it) and that its files are read by a scan, and a.yaml reads right.
 */
static void opens_by_a_scan(const char *path, const struct idx_opts *o, const char *saying)
{
	struct idx_reader *r = idx_reader_new();
	unsigned char want[3000], got[3001];
	struct idx *x;
	struct err e = { 0 };

	fixture_fill(want, sizeof(want), 1, 1);	/* a.yaml's bytes, as native_archive() wrote them */
	ck_assert_msg(idx_open_with(path, o, &x, &e) == 0, "%s", e.msg);
	ck_assert(!idx_is_native(x));
	ck_assert_uint_eq(idx_members(x), 3);
	ck_assert_ptr_nonnull(idx_damage(x));
	ck_assert_msg(strstr(idx_damage(x), saying), "%s", idx_damage(x));
	ck_assert_msg(strstr(idx_damage(x), "its files are read by scanning the tar stream"), "%s",
		      idx_damage(x));
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "a.yaml"), got, sizeof(got), 0, r, &e),
			 sizeof(want));
	ck_assert_int_eq(memcmp(got, want, sizeof(want)), 0);
	idx_close(x);
	idx_reader_free(r);
}

/*
 * A snapfs index whose header is damaged (an absurd body size) leaves the tar
 * stream whole: the archive is scanned as a foreign one, its files read back,
 * and idx_damage() says so, for the daemon to log.
 */
START_TEST(a_damaged_index_header_scans_the_tar_and_says_so)
{
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	uint64_t at = index_frame_offset(path) + 8;	/* the skippable frame's header */

	ck_assert_int_eq(memcmp(file + at + IDX_HDR_MAGIC, IDX_MAGIC, 8), 0);
	le64_put(file + at + IDX_HDR_BODY_SIZE, UINT64_MAX / 4);
	fixture_write(fixture_path("header.tar.zst"), file, len);
	for (int salvage = 0; salvage < 2; salvage++) {
		struct idx_opts o = { .salvage = salvage };
		opens_by_a_scan(fixture_path("header.tar.zst"), &o,
				"header.tar.zst' is damaged: index size is wrong; ");
	}
	free(file);
}
END_TEST

/*
 * A body that fails to decode fails the open, as snapkeep verify wants; the
 * daemon, salvaging, reads the files by a scan of the tar stream instead,
 * whose frames carry checksums of their own.
 */
START_TEST(a_damaged_index_body_is_scanned_when_salvaging)
{
	const struct idx_opts salvage = { .salvage = true };
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	uint64_t at = index_frame_offset(path);
	uint32_t skip = le32_get(file + at + 4);	/* the skippable frame's content */
	struct idx *x;
	struct err e = { 0 };

	ck_assert_int_eq(memcmp(file + at + 8 + IDX_HDR_MAGIC, IDX_MAGIC, 8), 0);
	file[at + 8 + IDX_HDR_SIZE + (skip - IDX_HDR_SIZE) / 2] ^= 0x5a;
	fixture_write(fixture_path("body.tar.zst"), file, len);
	ck_assert_int_eq(idx_open(fixture_path("body.tar.zst"), &x, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	opens_by_a_scan(fixture_path("body.tar.zst"), &salvage, "body.tar.zst' is damaged: ");
	free(file);
}
END_TEST

START_TEST(truncated_archive_is_refused)
{
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct idx *x;
	struct err e;

	for (size_t cut = 1; cut < len; cut += 7) {
		fixture_write(fixture_path("cut.tar.zst"), file, cut);
		if (idx_open(fixture_path("cut.tar.zst"), &x, &e) == 0) {
			/* a cut stream with no trailer may still scan as a (short) tar */
			ck_assert(!idx_is_native(x));
			walk_all(x);
			idx_close(x);
		}
	}
	free(file);
}
END_TEST

START_TEST(foreign_tar_gz_is_indexed_by_a_scan)
{
	char cmd[8400];
	struct idx *x;
	struct idx_entry ent;
	struct err e;

	native_archive();
	snprintf(cmd, sizeof(cmd), "tar czf '%s' -C '%s' . 2>/dev/null", fixture_path("old.tar.gz"),
		 fixture_path("src"));
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(idx_open(fixture_path("old.tar.gz"), &x, &e) == 0, "%s", e.msg);
	ck_assert(!idx_is_native(x));
	ck_assert_uint_eq(idx_members(x), 3);
	idx_get(x, idx_lookup_path(x, "a.yaml"), &ent);
	ck_assert_uint_eq(ent.size, 3000);
	/* data offsets are in the decompressed tar stream, past each header */
	ck_assert_uint_eq(ent.data_off % 512, 0);
	idx_close(x);
	fixture_write(fixture_path("junk.tar.gz"), "not an archive at all", 21);
	ck_assert_int_eq(idx_open(fixture_path("junk.tar.gz"), &x, &e), -1);
}
END_TEST

/* Run a shell command with @A replaced by the archive's path and @S by the source's. */
static void run_with(const char *tmpl, const char *archive)
{
	char cmd[8400];
	size_t n = 0;

	for (const char *p = tmpl; *p && n < sizeof(cmd) - 4200; p++) {
		const char *sub = p[0] == '@' && p[1] == 'A' ? archive
				  : p[0] == '@' && p[1] == 'S' ? fixture_path("src") : NULL;
		if (sub) {
			n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "'%s'", sub);
			p++;
		} else {
			cmd[n++] = *p;
		}
	}
	cmd[n] = '\0';
	ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* A tree with small files, a big one and a hard link, archived by GNU tar or bsdtar. */
static void foreign_archive(const char *name, const char *tmpl)
{
	unsigned char *buf = malloc(6u << 20);

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/queue"), 0755);
	for (int i = 0; i < 40; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "src/queue/m%02d.yaml", i);
		fixture_fill(buf, 500 + (size_t)i * 37, (uint64_t)i, 1);
		fixture_write(fixture_path(rel), buf, 500 + (size_t)i * 37);
	}
	fixture_fill(buf, 6u << 20, 99, 0);
	fixture_write(fixture_path("src/big.bin"), buf, 6u << 20);
	ck_assert_int_eq(link(fixture_path("src/queue/m01.yaml"), fixture_path("src/hard")), 0);
	run_with(tmpl, fixture_path(name));
	free(buf);
}

/* Read every regular file of the index in member order and compare with the source. */
/* Read file i of x whole and compare it with its source under src/. */
static void read_back(struct idx *x, uint32_t i, struct idx_reader *r)
{
	char path[4096], src[8200];
	struct err e;
	size_t len;

	idx_path(x, i, path, sizeof(path), &e);
	snprintf(src, sizeof(src), "%s/%s", fixture_path("src"), path);
	unsigned char *want = fixture_read(src, &len);
	unsigned char *got = malloc(len + 1);
	ck_assert_int_eq(idx_pread(x, i, got, len + 1, 0, r, &e), (ssize_t)len);
	ck_assert_msg(memcmp(got, want, len) == 0, "%s differs", path);
	free(got);
	free(want);
}

/* The regular files of x (one of each hard-link group) in member order, into v (idx_members() long). */
static uint32_t files_in_order(struct idx *x, uint32_t *v)
{
	uint32_t n = 0;

	for (uint32_t seq = 0; seq < idx_members(x); seq++)
		for (uint32_t i = 1; i < idx_count(x); i++) {
			struct idx_entry ent;
			idx_get(x, i, &ent);
			if (ent.seq == seq && S_ISREG(ent.mode) && ent.target == i)
				v[n++] = i;
		}
	return n;
}

static void read_all_in_order(struct idx *x)
{
	struct idx_reader *r = idx_reader_new();
	uint32_t *v = malloc(idx_members(x) * sizeof(*v)), n = files_in_order(x, v);

	for (uint32_t k = 0; k < n; k++)
		read_back(x, v[k], r);
	free(v);
	idx_reader_free(r);
}

/*
 * Many small files in four directories (about 4 MiB of tar, several gzip
 * checkpoint spans), for reads out of archive order, as `cp -a` and
 * `find | xargs cat` read an archive tar wrote in readdir order.
 */
#define SMALL_FILES 720

static void small_files_archive(const char *name, const char *tmpl)
{
	mkdir(fixture_path("src"), 0755);
	for (int d = 0; d < 4; d++) {
		char dir[64];
		snprintf(dir, sizeof(dir), "src/d%d", d);
		mkdir(fixture_path(dir), 0755);
	}
	for (int i = 0; i < SMALL_FILES; i++) {
		char path[4200];
		unsigned char buf[6000];
		size_t len = 3000 + (size_t)i * 37 % 3000;
		snprintf(path, sizeof(path), "%s/d%d/f%04d", fixture_path("src"), i % 4,
			 (i * 389) % SMALL_FILES);
		fixture_fill(buf, len, (uint64_t)i + 100, 1);
		fixture_write(path, buf, len);
	}
	run_with(tmpl, fixture_path(name));
}

/*
 * The archive's small files (small_files_archive()'s) in archive order, then
 * reversed (rev) or shuffled with seed; the first most of them are read whole
 * and compared with their sources.
 * Returns the end of the last file's data in the decoded stream.
 */
static uint64_t read_out_of_order(struct idx *x, bool rev, uint64_t seed, uint32_t most)
{
	struct idx_reader *r = idx_reader_new();
	uint32_t *v = malloc(idx_members(x) * sizeof(*v)), all = files_in_order(x, v), n = 0;
	uint64_t end = 0;

	for (uint32_t k = 0; k < all; k++) {	/* the small ones */
		struct idx_entry ent;
		idx_get(x, v[k], &ent);
		if (ent.size < 6000) {
			v[n++] = v[k];
			end = ent.data_off + ent.size;
		}
	}
	ck_assert_uint_eq(n, SMALL_FILES);
	for (uint32_t k = 0; k < n && k < most; k++) {
		uint32_t j = rev ? n - 1 - k : k + (uint32_t)(fixture_rand(&seed) % (n - k));
		uint32_t t = v[k], i = v[j];
		v[j] = t;
		v[k] = i;
		read_back(x, i, r);
	}
	free(v);
	idx_reader_free(r);
	return end;
}

/*
 * Reads out of archive order spill the small members they decode on the way
 * (foreign.h): reading every file in reverse or shuffled order decodes about
 * twice what reading them in order does, not a restart from the start of the
 * archive for each file (libarchive's reader), nor a checkpoint span for each
 * (a tar.gz). A 7z decodes the members it skips too (a solid block is one
 * stream); a zip, a cpio and an iso seek over them, but would restart and seek
 * over every member before each file's: after a few such starts, they are read
 * the same way. With a spill bound too small for them all, they still read
 * back (a few of them: each read then restarts). A bare tar needs no decoder.
 */
START_TEST(foreign_reads_out_of_order_decode_about_once)
{
	static const char *const tmpl[] = {
		"tar cJf @A -C @S .", "tar cjf @A -C @S .", "tar cf @A -C @S .",
		"cd @S && bsdtar --format 7zip -cf @A .", "cd @S && bsdtar --format zip -cf @A .",
		"cd @S && find . | bsdtar --format newc -n -cf @A -T -",
		"cd @S && bsdtar --format iso9660 -cf @A ."
	};
	static const char *const names[] = { "small.tar.xz", "small.tar.bz2", "small.tar",
					      "small.7z", "small.zip", "small.cpio", "small.iso" };

	for (int k = 0; k < 7; k++) {
		small_files_archive(names[k], tmpl[k]);
		for (int order = 0; order < 2; order++) {
			struct idx *x;
			struct err e;
			ck_assert_msg(idx_open(fixture_path(names[k]), &x, &e) == 0, "%s", e.msg);
			read_out_of_order(x, order == 0, 7, SMALL_FILES);
			/* a zip, a cpio, an iso seek over members until FRN_SEEK_STARTS starts */
			uint32_t most = k == 2 ? 0u : k >= 4 ? FRN_SEEK_STARTS + 2u : 2u;
			ck_assert_msg(idx_decoder_starts(x) <= most, "%s: %u decoder starts",
				      names[k], idx_decoder_starts(x));
			idx_close(x);
		}
		struct idx_opts tight = { .spill_max = 256u << 10 };
		struct idx *x;
		struct err e;
		ck_assert_msg(idx_open_with(fixture_path(names[k]), &tight, &x, &e) == 0, "%s", e.msg);
		read_out_of_order(x, false, 9, 40);
		idx_close(x);
	}
#ifdef SNAPFS_HAVE_ZLIB
	small_files_archive("small.tar.gz", "tar czf @A -C @S .");
	for (int order = 0; order < 2; order++) {
		struct idx *x;
		struct err e;
		ck_assert_msg(idx_open(fixture_path("small.tar.gz"), &x, &e) == 0, "%s", e.msg);
		uint64_t tar = read_out_of_order(x, order == 0, 7, SMALL_FILES);
		ck_assert_uint_gt(tar, 3 * GZS_SPAN);
		fprintf(stderr, "tar.gz read %s: %llu of %llu bytes inflated\n",
			order == 0 ? "in reverse" : "shuffled",
			(unsigned long long)idx_decoder_inflated(x), (unsigned long long)tar);
		ck_assert_uint_eq(idx_decoder_starts(x), 1);
		ck_assert_uint_le(idx_decoder_inflated(x), 3 * tar);
		idx_close(x);
	}
	struct idx_opts tight = { .spill_max = 256u << 10 };
	struct idx *x;
	struct err e;
	ck_assert_msg(idx_open_with(fixture_path("small.tar.gz"), &tight, &x, &e) == 0, "%s", e.msg);
	read_out_of_order(x, false, 9, 40);
	idx_close(x);
#endif
}
END_TEST

/* The spill files this process holds open in dir (unlinked files): their bytes, and how many. */
static uint64_t spill_use(const char *dir, int *count)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char link[300], to[4096];
	uint64_t n = 0;
	int k = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		struct stat st;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(link, to, sizeof(to) - 1);
		if (len <= 0)
			continue;
		to[len] = '\0';
		if (strncmp(to, dir, strlen(dir)) == 0 && strstr(to, " (deleted)") &&
		    stat(link, &st) == 0) {
			n += (uint64_t)st.st_size;
			k++;
		}
	}
	closedir(d);
	if (count)
		*count = k;
	return n;
}

static int spill_files(const char *dir)
{
	int k;

	spill_use(dir, &k);
	return k;
}

/*
 * A zip seeks over the members a read passes: a few reads out of order only
 * seek (the spill file holds the members read), and only once its reader
 * started over FRN_SEEK_STARTS times are passed members spilled, as a cp -a
 * needs; FRN_SEEK_PASS bytes of them a read at most, so that reads going back
 * and forth between far members of a big zip decode little more than their own.
 */
START_TEST(a_few_reads_out_of_order_in_a_zip_only_seek)
{
	struct idx_opts o = { .spill_dir = fixture_path("spill") };
	struct idx_reader *r = idx_reader_new();
	uint32_t *v, n;
	struct idx *x;
	struct err e;

	small_files_archive("small.zip", "cd @S && bsdtar --format zip -cf @A .");
	mkdir(fixture_path("spill"), 0755);
	ck_assert_msg(idx_open_with(fixture_path("small.zip"), &o, &x, &e) == 0, "%s", e.msg);
	v = malloc(idx_members(x) * sizeof(*v));
	n = files_in_order(x, v);
	ck_assert_uint_eq(n, SMALL_FILES);
	read_back(x, v[700], r);
	read_back(x, v[10], r);
	read_back(x, v[600], r);
	ck_assert_uint_eq(idx_decoder_starts(x), 2);
	ck_assert_uint_lt(spill_use(fixture_path("spill"), NULL), 3 * 6000);
	read_out_of_order(x, true, 0, SMALL_FILES);
	ck_assert_uint_le(idx_decoder_starts(x), FRN_SEEK_STARTS + 2);
	ck_assert_uint_gt(spill_use(fixture_path("spill"), NULL), 2u << 20);
	idx_close(x);

	/* 40 members of 1 MiB, read 39, 0, 38, 1, 37, 2 (three starts over), then 36 */
	enum { MIB = 1u << 20 };
	unsigned char *buf = malloc(MIB);
	mkdir(fixture_path("src/big"), 0755);
	for (int k = 0; k < 40; k++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/big/b%02d", fixture_path("src"), k);
		fixture_fill(buf, MIB, (uint64_t)k + 500, 0);
		fixture_write(path, buf, MIB);
	}
	free(buf);
	run_with("cd @S && bsdtar --format zip --options zip:compression=store -cf @A big",
		 fixture_path("big.zip"));
	ck_assert_msg(idx_open_with(fixture_path("big.zip"), &o, &x, &e) == 0, "%s", e.msg);
	free(v);
	v = malloc(idx_members(x) * sizeof(*v));
	n = files_in_order(x, v);
	ck_assert_uint_eq(n, 40);
	static const int far[] = { 39, 0, 38, 1, 37, 2 };
	for (int k = 0; k < 6; k++)
		read_back(x, v[far[k]], r);
	uint64_t before = spill_use(fixture_path("spill"), NULL);
	read_back(x, v[36], r);
	uint64_t after = spill_use(fixture_path("spill"), NULL);
	ck_assert_msg(after <= before + FRN_SEEK_PASS + MIB, "one read spilled %llu bytes",
		      (unsigned long long)(after - before));
	idx_close(x);
	free(v);
	idx_reader_free(r);
}
END_TEST

/*
 * Big members read once fill the spill file first (`cp -a` reads logs/ before
 * queue/): the small files read out of order after them still decode about
 * once, the first of them starting the spill file over. The bound is 8 MiB
 * here: five members of 1.5 MiB fill more than the three quarters that passed
 * members may take.
 */
START_TEST(small_files_read_after_big_ones_start_the_spill_file_over)
{
	static const char *const tmpl[] = { "tar cJf @A -C @S b d0 d1 d2 d3",
					     "tar czf @A -C @S b d0 d1 d2 d3" };
	static const char *const names[] = { "after.tar.xz", "after.tar.gz" };
	static const struct idx_opts o = { .spill_max = 8u << 20 };
	enum { BIG = 3u << 19 };
	unsigned char *big = malloc(BIG), *got = malloc(BIG + 1);

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/b"), 0755);
	for (int b = 0; b < 5; b++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/b/%d", fixture_path("src"), b);
		fixture_fill(big, BIG, (uint64_t)b + 900, 1);
		fixture_write(path, big, BIG);
	}
	for (int k = 0; k < 2; k++) {
		struct idx_reader *r = idx_reader_new();
		struct idx *x;
		struct err e;
		small_files_archive(names[k], tmpl[k]);
		ck_assert_msg(idx_open_with(fixture_path(names[k]), &o, &x, &e) == 0, "%s", e.msg);
		for (int b = 0; b < 5; b++) {
			char rel[16];
			snprintf(rel, sizeof(rel), "b/%d", b);
			fixture_fill(big, BIG, (uint64_t)b + 900, 1);
			ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, rel), got, BIG + 1, 0, r, &e),
					 BIG);
			ck_assert_int_eq(memcmp(got, big, BIG), 0);
		}
		uint32_t starts = idx_decoder_starts(x);
		uint64_t inflated = idx_decoder_inflated(x);
		uint64_t end = read_out_of_order(x, false, 3, SMALL_FILES);
		fprintf(stderr, "%s: %u decoder starts, %llu bytes inflated after the big ones\n",
			names[k], idx_decoder_starts(x) - starts,
			(unsigned long long)(idx_decoder_inflated(x) - inflated));
		if (k == 0)
			ck_assert_uint_le(idx_decoder_starts(x) - starts, 2);
		else
			ck_assert_uint_le(idx_decoder_inflated(x) - inflated, 3 * (end - 5ull * BIG));
		idx_reader_free(r);
		idx_close(x);
	}
	free(big);
	free(got);
}
END_TEST

/*
 * A spill file that cannot be written (a full disk: here the file size limit,
 * which lets the first member in; or a spill_dir that is gone): the members
 * are read where they lie, as big ones are, not failed.
 */
START_TEST(foreign_reads_go_on_without_the_spill_file)
{
	static const char *const names[] = { "small.tar.xz", "small.tar.gz" };
	struct rlimit was, small;

	small_files_archive("small.tar.xz", "tar cJf @A -C @S .");
	small_files_archive("small.tar.gz", "tar czf @A -C @S .");
	mkdir(fixture_path("spill"), 0755);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
	small = was;
	small.rlim_cur = 8192;
	signal(SIGXFSZ, SIG_IGN);
	for (int k = 0; k < 2; k++)
		for (int how = 0; how < 2; how++) {
			struct idx_opts o = { .spill_dir = fixture_path(how ? "gone" : "spill") };
			struct idx *x;
			struct err e;
			ck_assert_msg(idx_open_with(fixture_path(names[k]), &o, &x, &e) == 0, "%s",
				      e.msg);
			ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
			read_out_of_order(x, false, 5 + (uint64_t)how, 60);
			ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
			idx_close(x);
		}
	/* a member read in chunks goes on where the last chunk ended: one decoder start */
	enum { FOUR = 4u << 20, CHUNK = 128u << 10 };
	unsigned char *want = malloc(FOUR), *got = malloc(CHUNK);
	char path[4200];
	snprintf(path, sizeof(path), "%s/four.bin", fixture_path("src"));
	fixture_fill(want, FOUR, 31, 1);
	fixture_write(path, want, FOUR);
	run_with("tar cJf @A -C @S four.bin", fixture_path("four.tar.xz"));
	struct idx_opts gone = { .spill_dir = fixture_path("gone") };
	struct idx_reader *r = idx_reader_new();
	struct idx *x;
	struct err e;
	ck_assert_msg(idx_open_with(fixture_path("four.tar.xz"), &gone, &x, &e) == 0, "%s", e.msg);
	uint32_t i = idx_lookup_path(x, "four.bin");
	for (uint32_t at = 0; at < FOUR; at += CHUNK) {
		ck_assert_msg(idx_pread(x, i, got, CHUNK, at, r, &e) == CHUNK, "%s", e.msg);
		ck_assert_int_eq(memcmp(got, want + at, CHUNK), 0);
	}
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	idx_close(x);
	idx_reader_free(r);
	free(want);
	free(got);
}
END_TEST

/*
 * Past the bound on foreign archives that keep their decoding state
 * (frn_limit()), the least recently read idle one gives up its reader, gzip
 * checkpoints and spill file at the next read of another, and its own next
 * read starts again with the right bytes. Archives read within the idle time
 * keep theirs; closing an archive takes it off the count.
 */
START_TEST(idle_foreign_archives_past_the_bound_give_up_their_decoders)
{
	static const char *const names[] = { "a.tar.xz", "a.tar.gz", "a.tar.bz2" };
	struct idx_opts o = { .spill_dir = fixture_path("spill") };
	struct idx_reader *r = idx_reader_new();
	struct idx *x[3];
	struct err e;

	foreign_archive("a.tar.xz", "tar cJf @A -C @S .");
	run_with("tar czf @A -C @S .", fixture_path("a.tar.gz"));
	run_with("tar cjf @A -C @S .", fixture_path("a.tar.bz2"));
	mkdir(fixture_path("spill"), 0755);
	frn_limit(1, 0);
	for (int k = 0; k < 3; k++) {
		ck_assert_msg(idx_open_with(fixture_path(names[k]), &o, &x[k], &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(frn_live(), k ? 1 : 0);	/* opening decodes nothing */
		read_back(x[k], idx_lookup_path(x[k], "queue/m20.yaml"), r);
		ck_assert_uint_eq(idx_decoder_starts(x[k]), 1);
		ck_assert_uint_eq(frn_live(), 1);
		ck_assert_int_eq(spill_files(fixture_path("spill")), 1);
	}
	/* the first two gave theirs up: a read behind the last restarts, with the right bytes */
	for (int k = 0; k < 2; k++) {
		read_back(x[k], idx_lookup_path(x[k], "queue/m10.yaml"), r);
		ck_assert_uint_eq(idx_decoder_starts(x[k]), 2);
		read_back(x[k], idx_lookup_path(x[k], "queue/m30.yaml"), r);
		ck_assert_uint_eq(idx_decoder_starts(x[k]), 2);
		ck_assert_uint_eq(frn_live(), 1);
	}
	/* read by turns within the idle time, all keep theirs */
	frn_limit(1, 60000);
	for (int turn = 0; turn < 2; turn++)
		for (int k = 0; k < 3; k++)
			read_back(x[k], idx_lookup_path(x[k], turn ? "big.bin" : "queue/m05.yaml"), r);
	ck_assert_uint_eq(frn_live(), 3);
	ck_assert_int_eq(spill_files(fixture_path("spill")), 3);
	/* m05 comes before what each read last (a start), big.bin after it (none) */
	ck_assert_uint_eq(idx_decoder_starts(x[0]), 3);
	ck_assert_uint_eq(idx_decoder_starts(x[1]), 2);
	ck_assert_uint_eq(idx_decoder_starts(x[2]), 2);
	for (int k = 0; k < 3; k++) {
		idx_close(x[k]);
		ck_assert_uint_eq(frn_live(), 2u - (unsigned)k);
	}
	ck_assert_int_eq(spill_files(fixture_path("spill")), 0);
	idx_reader_free(r);
	frn_limit(FRN_DEFAULT_LIVE, FRN_DEFAULT_IDLE_MS);
}
END_TEST

/* Read file i of x in chunks of 128 KiB from byte from to byte to, comparing with want. */
static void read_chunks(struct idx *x, uint32_t i, const unsigned char *want, uint64_t from,
			uint64_t to, struct idx_reader *r)
{
	enum { CHUNK = 128u << 10 };
	unsigned char *got = malloc(CHUNK);
	struct err e;

	for (uint64_t at = from; at < to; at += CHUNK) {
		size_t n = to - at < CHUNK ? (size_t)(to - at) : CHUNK;
		ck_assert_msg(idx_pread(x, i, got, n, at, r, &e) == (ssize_t)n, "%s", e.msg);
		ck_assert_msg(memcmp(got, want + at, n) == 0, "bytes at %llu differ",
			      (unsigned long long)at);
	}
	free(got);
}

/*
 * A member too big for the spill file (streamed: libarchive's reader, or
 * gzseek's checkpoints in a tar.gz) read part way, when its archive gives up
 * its state, reads on from a new start with the right bytes. A tar.gz keeps
 * its chunk CRCs through that, so bytes changed on disk since they were first
 * decoded still fail the read (EIO), as they do with no state given up.
 */
START_TEST(a_foreign_archive_that_gave_up_its_state_reads_on_and_still_sees_changes)
{
	static const char *const names[] = { "g.tar.gz", "g.tar.xz" };
	struct idx_opts o = { .spill_dir = fixture_path("spill"), .spill_max = 1u << 20 };
	struct idx_reader *r = idx_reader_new();
	struct idx *x[2];
	struct err e;
	char src[4200];
	size_t len;

	foreign_archive("g.tar.gz", "tar czf @A -C @S .");
	run_with("tar cJf @A -C @S .", fixture_path("g.tar.xz"));
	mkdir(fixture_path("spill"), 0755);
	snprintf(src, sizeof(src), "%s/big.bin", fixture_path("src"));
	unsigned char *want = fixture_read(src, &len);
	frn_limit(1, 0);
	for (int k = 0; k < 2; k++)
		ck_assert_msg(idx_open_with(fixture_path(names[k]), &o, &x[k], &e) == 0, "%s", e.msg);
	for (int k = 0; k < 2; k++) {
		uint32_t i = idx_lookup_path(x[k], "big.bin"), s0 = idx_decoder_starts(x[k]);
		read_chunks(x[k], i, want, 0, 3u << 20, r);
		uint32_t s1 = idx_decoder_starts(x[k]);
		ck_assert_uint_le(s1 - s0, 1);
		read_back(x[!k], idx_lookup_path(x[!k], "queue/m20.yaml"), r);
		ck_assert_uint_eq(frn_live(), 1);
		read_chunks(x[k], i, want, 3u << 20, len, r);
		ck_assert_uint_eq(idx_decoder_starts(x[k]), s1 + 1);	/* one new start, not one a chunk */
	}
	/* big.bin of the tar.gz was all decoded once; it gives up its state, then a byte changes */
	read_back(x[1], idx_lookup_path(x[1], "queue/m21.yaml"), r);
	size_t glen;
	unsigned char *gz = fixture_read(fixture_path("g.tar.gz"), &glen);
	unsigned char *at = memmem(gz, glen, want + (3u << 20), 64);	/* a stored block */
	ck_assert_ptr_nonnull(at);
	at[10] ^= 0x55;
	fixture_write(fixture_path("g.tar.gz"), gz, glen);
	unsigned char *got = malloc(len);
	ck_assert_int_eq(idx_pread(x[0], idx_lookup_path(x[0], "big.bin"), got, len, 0, r, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_msg(strstr(e.msg, "differ from their first decode"), "%s", e.msg);
	for (int k = 0; k < 2; k++)
		idx_close(x[k]);
	free(got);
	free(gz);
	free(want);
	idx_reader_free(r);
	frn_limit(FRN_DEFAULT_LIVE, FRN_DEFAULT_IDLE_MS);
}
END_TEST

/* One thread reading every file of one archive, in reverse archive order. */
struct churn {
	struct idx *x;
	int wrong;
};

static void *churn_reader(void *arg)
{
	struct churn *c = arg;
	struct idx_reader *r = idx_reader_new();

	for (uint32_t i = idx_count(c->x); i-- > 1;) {
		struct idx_entry ent;
		char path[4096], src[8200];
		struct err e;
		size_t len;
		idx_get(c->x, i, &ent);
		if (!S_ISREG(ent.mode) || ent.target != i)
			continue;
		idx_path(c->x, i, path, sizeof(path), &e);
		snprintf(src, sizeof(src), "%s/%s", fixture_path("src"), path);
		unsigned char *want = fixture_read(src, &len), *got = malloc(len + 1);
		c->wrong += idx_pread(c->x, i, got, len + 1, 0, r, &e) != (ssize_t)len ||
			    memcmp(got, want, len) != 0;
		free(got);
		free(want);
	}
	idx_reader_free(r);
	return NULL;
}

/*
 * Threads reading four archives at once with a bound of one and no idle time:
 * each read takes the others' state away whenever they rest between reads.
 * Every file reads its own bytes (and the sanitizers see the hand-overs).
 */
START_TEST(foreign_archives_giving_up_state_under_readers_read_right_bytes)
{
	static const char *const names[] = { "c.tar.xz", "c.tar.gz", "c.tar.bz2", "c.zip" };
	pthread_t t[4];
	struct churn c[4];
	struct err e;

	foreign_archive("c.tar.xz", "tar cJf @A -C @S .");
	run_with("tar czf @A -C @S .", fixture_path("c.tar.gz"));
	run_with("tar cjf @A -C @S .", fixture_path("c.tar.bz2"));
	run_with("cd @S && bsdtar --format zip -cf @A .", fixture_path("c.zip"));
	frn_limit(1, 0);
	for (int k = 0; k < 4; k++) {
		c[k].wrong = 0;
		ck_assert_msg(idx_open(fixture_path(names[k]), &c[k].x, &e) == 0, "%s", e.msg);
	}
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 4; k++)
			ck_assert_int_eq(pthread_create(&t[k], NULL, churn_reader, &c[k]), 0);
		for (int k = 0; k < 4; k++)
			pthread_join(t[k], NULL);
	}
	for (int k = 0; k < 4; k++) {
		ck_assert_msg(c[k].wrong == 0, "%s: %d files read wrong", names[k], c[k].wrong);
		idx_close(c[k].x);
	}
	ck_assert_uint_eq(frn_live(), 0);
	frn_limit(FRN_DEFAULT_LIVE, FRN_DEFAULT_IDLE_MS);
}
END_TEST

/*
 * A zip member that cannot be decoded (one flipped byte: a bad CRC) fails only
 * its own reads, whatever order the others are read in: the members a read
 * passes are spilled on the way until one fails to decode, and the read that
 * met it starts over without. Read in place, with no spill file, the bad
 * member still fails at its end, where its CRC is.
 */
START_TEST(a_bad_zip_member_fails_only_itself_out_of_order)
{
	static const char *const order[] = { "c.bin", "b.bin", "a.bin", "c.bin", "b.bin" };
	unsigned char want[3][20000], got[20001];
	struct idx_reader *r = idx_reader_new();
	struct idx *x;
	struct err e;
	struct stat st;

	mkdir(fixture_path("src"), 0755);
	for (int k = 0; k < 3; k++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%c.bin", fixture_path("src"), 'a' + k);
		fixture_fill(want[k], sizeof(want[k]), (uint64_t)k + 40, 0);
		fixture_write(path, want[k], sizeof(want[k]));
	}
	run_with("cd @S && bsdtar --format zip --options zip:compression=store -cf @A a.bin b.bin "
		 "c.bin", fixture_path("bad.zip"));
	/* a.bin's data starts after its local header (30 bytes and its name) */
	int fd = open(fixture_path("bad.zip"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	unsigned char c;
	ck_assert_int_eq(pread(fd, &c, 1, 30 + 5 + 10000), 1);
	c ^= 0x20;
	ck_assert_int_eq(pwrite(fd, &c, 1, 30 + 5 + 10000), 1);
	close(fd);
	run_with("gzip -c @A > @A.gz", fixture_path("bad.zip"));
	for (int v = 0; v < 4; v++) {
		const char *name = v & 1 ? "bad.zip.gz" : "bad.zip";
		struct idx_opts o = { .spill_dir = v & 2 ? fixture_path("gone") : NULL };
		ck_assert_msg(idx_open_with(fixture_path(name), &o, &x, &e) == 0, "%s", e.msg);
		for (int k = 0; k < 5; k++) {
			uint32_t i = idx_lookup_path(x, order[k]);
			int which = order[k][0] - 'a';
			ssize_t n = idx_pread(x, i, got, sizeof(got), 0, r, &e);
			if (which == 0) {
				ck_assert_msg(n == -1 && e.code == EIO, "%s%s: a.bin read %zd",
					      name, v & 2 ? " with no spill file" : "", n);
				continue;
			}
			ck_assert_msg(n == (ssize_t)sizeof(want[which]), "%s: %s: %s", name,
				      order[k], e.msg);
			ck_assert_int_eq(memcmp(got, want[which], sizeof(want[which])), 0);
		}
		idx_close(x);
	}
	idx_reader_free(r);
}
END_TEST

/*
 * A disk that fills part way through a member's spill (a 64 KiB tmpfs as the
 * spill_dir): the read goes on where the member lies, and so does the next
 * read of it, from the member's start, not from where the failed spill left
 * the reader (which served its first bytes as zeros).
 */
START_TEST(a_spill_that_fills_the_disk_part_way_reads_right_bytes)
{
	enum { BIG = 300000 };
	unsigned char *want = malloc(BIG), *got = malloc(BIG + 1);
	struct idx_reader *r = idx_reader_new();
	struct idx *x;
	struct err e;
	char path[4200];

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("tiny"), 0755);
	if (mount("snapfs-test", fixture_path("tiny"), "tmpfs", 0, "size=64k") < 0) {
		fixture_skip("cannot mount a tmpfs as a full disk (needs root)");
		free(want);
		free(got);
		idx_reader_free(r);
		return;
	}
	fixture_fill(want, BIG, 77, 0);
	snprintf(path, sizeof(path), "%s/big.bin", fixture_path("src"));
	fixture_write(path, want, BIG);
	snprintf(path, sizeof(path), "%s/a.txt", fixture_path("src"));
	fixture_write(path, "first\n", 6);
	run_with("tar cJf @A -C @S a.txt big.bin", fixture_path("full.tar.xz"));
	struct idx_opts o = { .spill_dir = fixture_path("tiny") };
	ck_assert_msg(idx_open_with(fixture_path("full.tar.xz"), &o, &x, &e) == 0, "%s", e.msg);
	uint32_t i = idx_lookup_path(x, "big.bin");
	for (int k = 0; k < 2; k++) {
		memset(got, 0xee, BIG);
		ck_assert_msg(idx_pread(x, i, got, BIG + 1, 0, r, &e) == BIG, "read %d: %s", k, e.msg);
		ck_assert_msg(memcmp(got, want, BIG) == 0, "read %d: wrong bytes", k);
	}
	idx_close(x);
	umount2(fixture_path("tiny"), MNT_DETACH);
	idx_reader_free(r);
	free(want);
	free(got);
}
END_TEST

START_TEST(foreign_tar_gz_reads_in_order_with_one_decoder_start)
{
	struct idx *x;
	struct err e;

	foreign_archive("old.tar.gz", "tar czf @A -C @S .");
	ck_assert_int_eq(idx_open(fixture_path("old.tar.gz"), &x, &e), 0);
	read_all_in_order(x);
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	idx_close(x);
}
END_TEST

/*
 * Members whose paths climb out with '..' are left out of the index, but they
 * keep their places: the members after them read their own bytes, not the
 * previous member's, whether read in order or not.
 */
START_TEST(foreign_members_after_a_refused_one_read_their_own_bytes)
{
	struct idx_reader *r = idx_reader_new();
	const char *first;
	struct idx *x;
	struct err e;
	char buf[64];

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/b"), 0755);
	fixture_write(fixture_path("src/escape.txt"), "dotdot\n", 7);
	fixture_write(fixture_path("src/b/c.txt"), "c\n", 2);
	fixture_write(fixture_path("src/after.txt"), "after\n", 6);
	fixture_write(fixture_path("src/late.txt"), "late\n", 5);
	fixture_write(fixture_path("src/dup.txt"), "the dup\n", 8);
	/* ../escape.txt, a/../b/c.txt, after.txt, ../after.txt (not a second after.txt), dup.txt */
	run_with("tar -P -czf @A -C @S "
		 "--transform 's,^escape,../escape,;s,^b/c,a/../b/c,;s,^late,../after,' "
		 "escape.txt b/c.txt after.txt late.txt dup.txt",
		 fixture_path("climb.tar.gz"));
	ck_assert_msg(idx_open(fixture_path("climb.tar.gz"), &x, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(idx_members(x), 5);
	ck_assert_uint_eq(idx_refused(x, IDX_REFUSED_CLIMBS, &first), 3);
	ck_assert_str_eq(first, "../escape.txt");
	ck_assert_uint_eq(idx_lookup_path(x, "escape.txt"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "b/c.txt"), IDX_NONE);
	for (int pass = 0; pass < 2; pass++) {	/* in order, then back to the first */
		ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "after.txt"), buf, sizeof(buf), 0,
					   r, &e), 6);
		ck_assert_int_eq(memcmp(buf, "after\n", 6), 0);
		ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "dup.txt"), buf, sizeof(buf), 0,
					   r, &e), 8);
		ck_assert_int_eq(memcmp(buf, "the dup\n", 8), 0);
	}
	idx_close(x);
	idx_reader_free(r);
}
END_TEST

/* Member path of x reads back whole as the len bytes of want. */
static void expect_bytes(struct idx *x, const char *path, const void *want, size_t len,
			 struct idx_reader *r)
{
	unsigned char *got = malloc(len + 1);
	struct err e = { 0 };

	ck_assert_ptr_nonnull(got);
	ck_assert_msg(idx_pread(x, idx_lookup_path(x, path), got, len + 1, 0, r, &e) == (ssize_t)len,
		      "%s: %s", path, e.msg);
	ck_assert_msg(memcmp(got, want, len) == 0, "%s: other bytes", path);
	free(got);
}

/*
 * A tar.gz cut in the middle: refused as damaged, or with salvage (the
 * daemon's way) indexed up to the cut, the member before it read whole and the
 * cut one failing with EIO.
 */
START_TEST(cut_tar_gz_is_refused_or_salvaged)
{
	const struct idx_opts salvage = { .salvage = true };
	struct idx_reader *r = idx_reader_new();
	unsigned char *a = malloc(1u << 20), *got = malloc(1u << 20);
	struct idx *x;
	struct err e;
	struct stat st;

	mkdir(fixture_path("src"), 0755);
	fixture_fill(a, 1u << 20, 3, 0);	/* incompressible: the cut falls in b */
	fixture_write(fixture_path("src/a.bin"), a, 1u << 20);
	fixture_write(fixture_path("src/b.bin"), a, 1u << 20);
	fixture_write(fixture_path("src/c.bin"), a, 1u << 20);
	run_with("tar czf @A -C @S a.bin b.bin c.bin", fixture_path("cut.tar.gz"));
	ck_assert_int_eq(stat(fixture_path("cut.tar.gz"), &st), 0);
	ck_assert_int_eq(truncate(fixture_path("cut.tar.gz"), st.st_size / 2), 0);
	ck_assert_int_eq(idx_open(fixture_path("cut.tar.gz"), &x, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_msg(strstr(e.msg, "cut.tar.gz") && strstr(e.msg, "damaged"), "%s", e.msg);
	ck_assert_msg(idx_open_with(fixture_path("cut.tar.gz"), &salvage, &x, &e) == 0, "%s", e.msg);
	ck_assert_ptr_nonnull(idx_damage(x));
	ck_assert_msg(strstr(idx_damage(x), "is damaged: gzip data ends early at byte"), "%s",
		      idx_damage(x));
	ck_assert_uint_eq(idx_lookup_path(x, "c.bin"), IDX_NONE);
	expect_bytes(x, "a.bin", a, 1u << 20, r);
	ck_assert_uint_ne(idx_lookup_path(x, "b.bin"), IDX_NONE);
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "b.bin"), got, 1u << 20, 0, r, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	idx_close(x);
	idx_reader_free(r);
	free(a);
	free(got);
}
END_TEST

/*
 * A command for run_with(): a tar of files in src, cut 1 MiB + 1 KiB in (in
 * b.bin), its two parts compressed apart by z, with the command gap between.
 */
#define TWO_MEMBERS(files, z, gap)                                                             \
	"tar cf - -C @S " files " > @A.tar && head -c 1049600 @A.tar | " z " > @A && " gap     \
	"tail -c +1049601 @A.tar | " z " >> @A && rm @A.tar"

/*
 * Damage that the decompressor meets only at a check (a gzip member's CRC-32, a
 * zstd or lz4 frame's checksum, an xz or bzip2 block's) after it has decoded
 * the damaged bytes: stored blocks of incompressible data, one byte flipped.
 * Salvaged, no member whose data the failed check covered reads: not a wrong
 * byte. A cut file keeps what lies before the cut, and a file of two members
 * (gzip members, xz or bzip2 streams) the first's.
 */
START_TEST(foreign_damage_seen_only_by_a_check_reads_no_wrong_byte)
{
	static const struct {
		const char *name, *make;
		bool flip, a_reads;	/* a byte flipped in the middle, else cut there */
	} cases[] = {
		{ "one.tar.gz", "tar czf @A -C @S a.bin b.bin c.bin", true, false },
		{ "two.tar.gz", TWO_MEMBERS("a.bin b.bin c.bin", "gzip -1", ""), true, true },
		{ "one.tar.zst", "tar cf - -C @S a.bin b.bin c.bin | zstd -q --check > @A", true, false },
		{ "cut.tar.zst", "tar cf - -C @S a.bin b.bin c.bin | zstd -q --check > @A", false, true },
#ifdef SNAPFS_HAVE_LZMA
		/* xz checks a block at its end, after handing out its bytes */
		{ "one.tar.xz", "tar cJf @A -C @S a.bin b.bin c.bin", true, false },
		{ "two.tar.xz", TWO_MEMBERS("a.bin b.bin c.bin", "xz -1", ""), true, true },
		{ "cut.tar.xz", "tar cJf @A -C @S a.bin b.bin c.bin", false, true },
#endif
#ifdef SNAPFS_HAVE_BZ2
		/* bzip2 likewise, block by block, and the stream's CRC at its end */
		{ "one.tar.bz2", "tar cjf @A -C @S a.bin b.bin c.bin", true, false },
		{ "two.tar.bz2", TWO_MEMBERS("a.bin b.bin c.bin", "bzip2 -1", ""), true, true },
		{ "cut.tar.bz2", "tar cjf @A -C @S a.bin b.bin c.bin", false, true },
#endif
#ifdef SNAPFS_HAVE_LZ4
		/* lz4's content checksum, at the frame's end (libarchive 3.6 ignores it) */
		{ "one.tar.lz4", "tar cf - -C @S a.bin b.bin c.bin | lz4 -q > @A", true, false },
		/* 64 KiB blocks: those whole before the cut decode */
		{ "cut.tar.lz4", "tar cf - -C @S a.bin b.bin c.bin | lz4 -q -B4 > @A", false, true },
#endif
	};
	const struct idx_opts salvage = { .salvage = true };
	struct idx_reader *r = idx_reader_new();
	unsigned char *a = malloc(1u << 20), *got = malloc(1u << 20);
	struct idx *x;
	struct err e;
	struct stat st;

	mkdir(fixture_path("src"), 0755);
	/* incompressible, and each unlike the others: stored blocks, no structure to break */
	fixture_fill(got, 1u << 20, 6, 0);
	fixture_write(fixture_path("src/b.bin"), got, 1u << 20);
	fixture_fill(got, 1u << 20, 7, 0);
	fixture_write(fixture_path("src/c.bin"), got, 1u << 20);
	fixture_fill(a, 1u << 20, 5, 0);
	fixture_write(fixture_path("src/a.bin"), a, 1u << 20);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *path = fixture_path(cases[k].name);
		run_with(cases[k].make, path);
		ck_assert_msg(idx_open(path, &x, &e) == 0, "%s", e.msg);	/* whole: fine */
		idx_close(x);
		ck_assert_int_eq(stat(path, &st), 0);
		if (cases[k].flip) {
			/*
			 * in b.bin's bytes, in the second member of two; past the
			 * bzip2 block that holds b.bin's header, which a flip in it
			 * keeps from decoding at all
			 */
			off_t at = cases[k].a_reads ? st.st_size * 2 / 3 : st.st_size * 3 / 5;
			unsigned char c;
			int fd = open(path, O_RDWR);
			ck_assert_int_eq(pread(fd, &c, 1, at), 1);
			c ^= 0x40;
			ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
			close(fd);
		} else {
			/* past the 900 kB bzip2 block that holds b.bin's header, as above */
			ck_assert_int_eq(truncate(path, st.st_size * 3 / 5), 0);
		}
		ck_assert_int_eq(idx_open(path, &x, &e), -1);
		ck_assert_msg(e.code == EIO && strstr(e.msg, "is damaged"), "%s: %s", cases[k].name,
			      e.msg);
		ck_assert_int_eq(idx_open(path, &x, NULL), -1);	/* as a partial restore asks */
		ck_assert_msg(idx_open_with(path, &salvage, &x, &e) == 0, "%s", e.msg);
		ck_assert_ptr_nonnull(idx_damage(x));
		ck_assert_msg(idx_lookup_path(x, "b.bin") != IDX_NONE, "%s: %s", cases[k].name,
			      idx_damage(x));
		ssize_t n;
		if (cases[k].a_reads) {
			expect_bytes(x, "a.bin", a, 1u << 20, r);
		} else {
			n = idx_pread(x, idx_lookup_path(x, "a.bin"), got, 1u << 20, 0, r, &e);
			ck_assert_msg(n == -1 && e.code == EIO, "%s: a.bin read %zd", cases[k].name, n);
		}
		n = idx_pread(x, idx_lookup_path(x, "b.bin"), got, 1u << 20, 0, r, &e);
		ck_assert_msg(n == -1 && e.code == EIO, "%s: b.bin read %zd", cases[k].name, n);
		ck_assert_msg(strstr(e.msg, cases[k].name) && strstr(e.msg, "damaged"), "%s", e.msg);
		idx_close(x);
	}
	/* damaged in the first block: no member at all, and no crash where no error is wanted */
	fixture_write(fixture_path("first.tar.gz"), "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
		      "\xff\xff\xff\xff\xff\xff\xff\xff", 18);
	ck_assert_int_eq(idx_open(fixture_path("first.tar.gz"), &x, NULL), -1);
	ck_assert_int_eq(idx_open_with(fixture_path("first.tar.gz"), &salvage, &x, &e), -1);
	ck_assert_msg(e.code == EIO && strstr(e.msg, "is damaged"), "%s", e.msg);
	/* bytes after the last gzip member: ignored, as gzip -d and tar do */
	run_with("tar czf @A -C @S a.bin && printf 'garbage after the end' >> @A",
		 fixture_path("tail.tar.gz"));
	ck_assert_msg(idx_open(fixture_path("tail.tar.gz"), &x, &e) == 0, "%s", e.msg);
	ck_assert_ptr_null(idx_damage(x));
	expect_bytes(x, "a.bin", a, 1u << 20, r);
	idx_close(x);
	/* bytes after a whole zstd frame: the frame's checks passed, its members read */
	run_with("tar cf - -C @S a.bin b.bin | zstd -q --check > @A && printf 'not zstd, no' >> @A",
		 fixture_path("tail.tar.zst"));
	ck_assert_msg(idx_open_with(fixture_path("tail.tar.zst"), &salvage, &x, &e) == 0, "%s",
		      e.msg);
	expect_bytes(x, "a.bin", a, 1u << 20, r);
	idx_close(x);
	/*
	 * Between members, as libarchive reads them: zero bytes only at the end,
	 * but for xz's stream padding in fours; after the last member, bytes that
	 * begin none. Reads go through the decoder the scan used, and agree.
	 */
	static const struct {
		const char *name, *make, *says;	/* says: NULL when whole */
	} gaps[] = {
		{ "zeros.tar.gz", "tar czf @A -C @S a.bin && head -c 5 /dev/zero >> @A", NULL },
		/* the tar stream goes on in the second member */
		{ "gap.tar.gz", TWO_MEMBERS("a.bin b.bin", "gzip -1", "printf '\\0\\0' >> @A && "),
		  "zero bytes between members" },
#ifdef SNAPFS_HAVE_LZMA
		{ "pad4.tar.xz", "tar cJf @A -C @S a.bin && head -c 8 /dev/zero >> @A", NULL },
		/* the last member reads: libarchive's own xz reader failed it at the bytes after */
		{ "tail.tar.xz", "tar cJf @A -C @S c.bin a.bin && printf 'not xz' >> @A", NULL },
		{ "pad3.tar.xz", TWO_MEMBERS("a.bin b.bin", "xz -1", "head -c 3 /dev/zero >> @A && "),
		  "not a multiple of 4" },
#endif
#ifdef SNAPFS_HAVE_BZ2
		{ "gap.tar.bz2", TWO_MEMBERS("a.bin b.bin", "bzip2 -1", "printf '\\0' >> @A && "),
		  "zero bytes between members" },
#endif
	};
	for (size_t k = 0; k < sizeof(gaps) / sizeof(gaps[0]); k++) {
		run_with(gaps[k].make, fixture_path(gaps[k].name));
		int rc = idx_open(fixture_path(gaps[k].name), &x, &e);
		if (!gaps[k].says) {
			ck_assert_msg(rc == 0, "%s: %s", gaps[k].name, e.msg);
			expect_bytes(x, "a.bin", a, 1u << 20, r);
			idx_close(x);
		} else {
			ck_assert_msg(rc == -1 && strstr(e.msg, gaps[k].says), "%s: %s", gaps[k].name,
				      rc ? e.msg : "opened");
		}
	}
	/*
	 * a plain tar whose first member's name begins as a bzip2 file does
	 * ("BZh9"; but not with a block's magic after it, "1AY&SY", which
	 * libarchive too would take for bzip2)
	 */
	mkdir(fixture_path("bz"), 0755);
	fixture_write(fixture_path("bz/BZh9x.txt"), "plain\n", 6);
	run_with("tar cf @A -C @S/../bz BZh9x.txt", fixture_path("bzname.tar"));
	ck_assert_msg(idx_open(fixture_path("bzname.tar"), &x, &e) == 0, "%s", e.msg);
	expect_bytes(x, "BZh9x.txt", (const unsigned char *)"plain\n", 6, r);
	idx_close(x);
	idx_reader_free(r);
	free(a);
	free(got);
}
END_TEST

/*
 * A member whose spill fails part way (the archive is cut inside it) takes
 * back what it wrote: a sparse member spilled next in its place reads zeros in
 * its holes, not the failed member's bytes.
 */
/* "sparse" of failed_spill_... reads "mid" and zeros to its 4 MiB, got its buffer. */
static void expect_sparse_mid(struct idx *x, struct idx_reader *r, unsigned char *got)
{
	struct err e = { 0 };

	memset(got, 0x55, 4u << 20);
	ck_assert_msg(idx_pread(x, idx_lookup_path(x, "sparse"), got, 4u << 20, 0, r, &e) == 4 << 20,
		      "%s", e.msg);
	ck_assert_int_eq(memcmp(got, "mid", 3), 0);
	for (size_t k = 3; k < 4u << 20; k++)
		ck_assert_msg(got[k] == 0, "byte %zu of the sparse file is %d", k, got[k]);
}

START_TEST(failed_spill_leaves_no_bytes_in_the_next_members_holes)
{
	const struct idx_opts salvage = { .salvage = true };
	struct idx_reader *r = idx_reader_new();
	unsigned char *big = malloc(3u << 20), *got = malloc(4u << 20);
	struct idx *x;
	struct err e;
	struct stat st;

	mkdir(fixture_path("src"), 0755);
	fixture_write(fixture_path("src/sparse"), "mid", 3);
	ck_assert_int_eq(truncate(fixture_path("src/sparse"), 4u << 20), 0);
	fixture_fill(big, 3u << 20, 9, 0);
	fixture_write(fixture_path("src/big"), big, 3u << 20);
	run_with("tar --sparse -cf @A -C @S sparse big", fixture_path("spill.tar"));
	ck_assert_int_eq(stat(fixture_path("spill.tar"), &st), 0);
	ck_assert_int_eq(truncate(fixture_path("spill.tar"), st.st_size - (1 << 20)), 0);
	ck_assert_msg(idx_open_with(fixture_path("spill.tar"), &salvage, &x, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "big"), got, 3u << 20, 0, r, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	expect_sparse_mid(x, r, got);
	idx_close(x);
	/* gzipped and cut in big: the sparse file's few stored bytes lie before the cut */
	run_with("tar --sparse -czf @A -C @S sparse big", fixture_path("spill.tar.gz"));
	ck_assert_int_eq(stat(fixture_path("spill.tar.gz"), &st), 0);
	ck_assert_int_eq(truncate(fixture_path("spill.tar.gz"), st.st_size / 2), 0);
	ck_assert_msg(idx_open_with(fixture_path("spill.tar.gz"), &salvage, &x, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "big"), got, 3u << 20, 0, r, &e), -1);
	expect_sparse_mid(x, r, got);
	idx_close(x);
	idx_reader_free(r);
	free(big);
	free(got);
}
END_TEST

START_TEST(foreign_random_reads_decode_a_member_once)
{
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct err e;
	size_t len;
	unsigned char buf[4096];
	uint64_t seed = 7;

	foreign_archive("old.tar.xz", "tar cJf @A -C @S .");
	ck_assert_int_eq(idx_open(fixture_path("old.tar.xz"), &x, &e), 0);
	unsigned char *want = fixture_read(fixture_path("src/big.bin"), &len);
	uint32_t i = idx_lookup_path(x, "big.bin");
	for (int k = 0; k < 300; k++) {
		uint64_t off = fixture_rand(&seed) % len;
		size_t n = off + sizeof(buf) <= len ? sizeof(buf) : len - off;
		ck_assert_int_eq(idx_pread(x, i, buf, sizeof(buf), off, r, &e), (ssize_t)n);
		ck_assert_msg(memcmp(buf, want + off, n) == 0, "differs at %llu",
			      (unsigned long long)off);
	}
	ck_assert_uint_le(idx_decoder_starts(x), 1);
	/* the hard link reads its target's bytes */
	struct idx_entry h;
	idx_get(x, idx_lookup_path(x, "hard"), &h);
	ck_assert_int_gt(idx_pread(x, idx_lookup_path(x, "hard"), buf, sizeof(buf), 0, r, &e), 0);
	free(want);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(foreign_zip_and_cpio_read_back)
{
	static const char *const fmts[][2] = {
		{ "old.zip", "cd @S && bsdtar --format zip -cf @A ." },
		{ "old.cpio", "cd @S && find . | bsdtar -n --format newc -cf @A -T -" },
		{ "old.tar.bz2", "tar cjf @A -C @S ." },
	};

	for (size_t k = 0; k < 3; k++) {
		struct idx *x;
		struct err e;
		if (k == 0)
			foreign_archive(fmts[k][0], fmts[k][1]);
		else
			run_with(fmts[k][1], fixture_path(fmts[k][0]));
		ck_assert_msg(idx_open(fixture_path(fmts[k][0]), &x, &e) == 0, "%s", e.msg);
		read_all_in_order(x);
		idx_close(x);
	}
}
END_TEST

/*
 * xz checks each block, so damage fails the read that meets it. (gzip and
 * single-frame zstd check only at the end of the whole stream: damage in a
 * stored block there shows only then; snapkeep verify decodes to the end.)
 */
START_TEST(damaged_tar_xz_fails_with_eio_not_wrong_bytes)
{
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct err e;
	size_t len;
	unsigned char *buf = malloc(6u << 20);

	foreign_archive("old.tar.xz", "tar cJf @A -C @S .");
	ck_assert_int_eq(idx_open(fixture_path("old.tar.xz"), &x, &e), 0);
	unsigned char *file = fixture_read(fixture_path("old.tar.xz"), &len);
	/* damage the compressed stream after the index was built */
	for (size_t k = len / 2; k < len / 2 + 64; k++)
		file[k] ^= 0xFF;
	fixture_write(fixture_path("old.tar.xz"), file, len);
	uint32_t i = idx_lookup_path(x, "big.bin");
	ssize_t n = idx_pread(x, i, buf, 6u << 20, 0, r, &e);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "old.tar.xz"));
	free(file);
	free(buf);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST


#ifdef SNAPFS_HAVE_ZLIB
/*
 * Big members of a tar.gz are read through gzip checkpoints (gzseek.h). The
 * spill bound is made small (members over 1 MiB are big) so the archive stays
 * small: src/big.bin is 8 MiB of text and random runs, so the gzip stream has
 * both Huffman-coded and stored blocks (or text only, when asked).
 */
#define GZ_BIG (8u << 20)
static const struct idx_opts gz_small_spill = { .spill_max = 4u << 20 };

static unsigned char *gz_archive(const char *name, const char *tmpl, bool text)
{
	unsigned char *big = malloc(GZ_BIG);

	mkdir(fixture_path("src"), 0755);
	for (int i = 0; i < 12; i++) {
		char rel[64];
		unsigned char small[3000];
		snprintf(rel, sizeof(rel), "src/s%02d.txt", i);
		fixture_fill(small, 1000 + (size_t)i * 150, (uint64_t)i + 1, 1);
		fixture_write(fixture_path(rel), small, 1000 + (size_t)i * 150);
	}
	for (size_t at = 0; at < GZ_BIG; at += 256u << 10)
		fixture_fill(big + at, 256u << 10, at, text || (at >> 18) % 3 != 2);
	fixture_write(fixture_path("src/big.bin"), big, GZ_BIG);
	unsigned char *second = malloc(2u << 20);
	fixture_fill(second, 2u << 20, 5, 1);
	fixture_write(fixture_path("src/zz-second.bin"), second, 2u << 20);
	free(second);
	run_with(tmpl, fixture_path(name));
	return big;
}

START_TEST(foreign_tar_gz_random_reads_restart_from_checkpoints)
{
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct err e;
	unsigned char buf[4096];
	uint64_t seed = 11, most = 0, total;

	unsigned char *want = gz_archive("old.tar.gz", "tar czf @A --sort=name -C @S .", false);
	ck_assert_msg(idx_open_with(fixture_path("old.tar.gz"), &gz_small_spill, &x, &e) == 0, "%s",
		      e.msg);
	uint32_t i = idx_lookup_path(x, "big.bin");
	/* the first read, at the end, lays the checkpoints over the whole member */
	ck_assert_int_eq(idx_pread(x, i, buf, sizeof(buf), GZ_BIG - sizeof(buf), r, &e),
			 (ssize_t)sizeof(buf));
	ck_assert_int_eq(memcmp(buf, want + GZ_BIG - sizeof(buf), sizeof(buf)), 0);
	struct idx_entry ent;
	idx_get(x, i, &ent);
	ck_assert_uint_le(idx_decoder_inflated(x), ent.data_off + GZ_BIG + (256u << 10));
	total = idx_decoder_inflated(x);
	for (int k = 0; k < 400; k++) {
		uint64_t off = fixture_rand(&seed) % GZ_BIG, before = idx_decoder_inflated(x);
		size_t n = off + sizeof(buf) <= GZ_BIG ? sizeof(buf) : GZ_BIG - off;
		ck_assert_int_eq(idx_pread(x, i, buf, sizeof(buf), off, r, &e), (ssize_t)n);
		ck_assert_msg(memcmp(buf, want + off, n) == 0, "differs at %llu",
			      (unsigned long long)off);
		if (idx_decoder_inflated(x) - before > most)
			most = idx_decoder_inflated(x) - before;
	}
	/*
	 * never from the archive's start again, and about one checkpoint span a
	 * read at most (checkpoints lie on deflate block ends, a read decodes on
	 * to the end of its checked chunk), about half of one on average
	 */
	fprintf(stderr, "gz random reads: %llu bytes inflated at most, %llu on average\n",
		(unsigned long long)most, (unsigned long long)(idx_decoder_inflated(x) - total) / 400);
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	ck_assert_uint_le(most, GZS_SPAN + (512u << 10));
	ck_assert_uint_le(idx_decoder_inflated(x) - total, 400ull * GZS_SPAN * 3 / 4);
	/* reading on from where the last read ended inflates no more than it returns */
	uint64_t off = GZ_BIG / 3, before = idx_decoder_inflated(x);
	ck_assert_int_eq(idx_pread(x, i, buf, sizeof(buf), off, r, &e), (ssize_t)sizeof(buf));
	before = idx_decoder_inflated(x);
	for (int k = 1; k <= 64; k++) {
		ck_assert_int_eq(idx_pread(x, i, buf, sizeof(buf), off + (uint64_t)k * sizeof(buf), r,
					   &e), (ssize_t)sizeof(buf));
		ck_assert_int_eq(memcmp(buf, want + off + (uint64_t)k * sizeof(buf), sizeof(buf)), 0);
	}
	ck_assert_uint_le(idx_decoder_inflated(x) - before, 65u * sizeof(buf) + (64u << 10));
	/* the small members (spilled from the same decoder) and the second big one read back */
	read_all_in_order(x);
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	free(want);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(foreign_tar_gz_in_order_inflates_once)
{
	struct idx *x;
	struct err e;

	free(gz_archive("old.tar.gz", "tar czf @A --sort=name -C @S .", false));
	ck_assert_msg(idx_open_with(fixture_path("old.tar.gz"), &gz_small_spill, &x, &e) == 0, "%s",
		      e.msg);
	read_all_in_order(x);
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	/* every byte up to the last member's end inflated once */
	struct idx_entry last;
	idx_get(x, idx_lookup_path(x, "zz-second.bin"), &last);
	ck_assert_uint_le(idx_decoder_inflated(x), last.data_off + last.size + (256u << 10));
	idx_close(x);
}
END_TEST

/* Several gzip members one after another (as `cat a.gz b.gz` makes), one with a name in its header. */
/* A ustar header for a member of len bytes, its checksum made. */
static void tar_header(unsigned char h[512], const char *name, char type, uint64_t len)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)len);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A member with its data, padded to the block. */
static void tar_put(FILE *f, const char *name, char type, const void *data, size_t len)
{
	static const unsigned char pad[512];
	unsigned char h[512];

	tar_header(h, name, type, len);
	ck_assert_uint_eq(fwrite(h, 1, 512, f), 512);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_uint_eq(fwrite(pad, 1, (512 - len % 512) % 512, f), (512 - len % 512) % 512);
}

/*
 * A GNU sparse 1.0 member, as pax writes it: the pax records, then a member
 * whose data is the map (regions, then offset and length of each), padded to
 * a block, then the regions' bytes.
 */
static void tar_sparse(FILE *f, const char *name, uint64_t realsize, const char *map,
		       const void *data, size_t len)
{
	char pax[1024], rec[256], body[4096];
	size_t plen = 0, mlen = strlen(map);
	const char *kv[4];
	char real[64], sname[300];

	snprintf(real, sizeof(real), "GNU.sparse.realsize=%llu", (unsigned long long)realsize);
	snprintf(sname, sizeof(sname), "GNU.sparse.name=%s", name);
	kv[0] = "GNU.sparse.major=1";
	kv[1] = "GNU.sparse.minor=0";
	kv[2] = sname;
	kv[3] = real;
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(kv[i]) + 2, d = 1;	/* "LEN kv\n": LEN counts its own digits */
		while (snprintf(rec, sizeof(rec), "%zu", n + d) != (int)d)
			d++;
		plen += (size_t)snprintf(pax + plen, sizeof(pax) - plen, "%zu %s\n", n + d, kv[i]);
	}
	tar_put(f, "PaxHeader/s", 'x', pax, plen);
	ck_assert_uint_le(mlen + len, sizeof(body) - 512);
	memset(body, 0, sizeof(body));
	memcpy(body, map, mlen);
	if (len)
		memcpy(body + 512, data, len);
	snprintf(rec, sizeof(rec), "GNUSparseFile.0/%s", name);
	tar_put(f, rec, '0', body, 512 + len);
}

/* The tar at fixture path name, and the same gzipped beside it (name.gz). */
static void tar_finish(FILE *f, const char *name)
{
	static const unsigned char end[1024];

	ck_assert_uint_eq(fwrite(end, 1, sizeof(end), f), sizeof(end));
	ck_assert_int_eq(fclose(f), 0);
	run_with("gzip -n < @A > @A.gz", fixture_path(name));
}

/*
 * A GNU sparse member whose map lists no region has a size but no bytes: it
 * reads as zeros (as bsdtar extracts it), never as the bytes that follow its
 * header, through each path: read through gzip checkpoints as a plain member
 * would be, decoded into the spill file, or streamed (spill_max small).
 */
START_TEST(foreign_sparse_member_with_no_region_reads_as_zeros)
{
	static const char *const names[] = { "nomap.tar", "nomap.tar.gz" };
	unsigned char want[1000], got[3001], zero[3000] = { 0 };
	FILE *f = fopen(fixture_path("nomap.tar"), "wb");

	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 100; i++)
		memcpy(want + i * 10, "SECRETDATA", 10);
	tar_sparse(f, "s", 3000, "0\n", NULL, 0);
	tar_put(f, "b", '0', want, sizeof(want));
	tar_finish(f, "nomap.tar");
	for (int k = 0; k < 4; k++) {
		struct idx_opts o = { .spill_max = k & 1 ? 4096 : 0 };
		struct idx_reader *r = idx_reader_new();
		struct idx_entry ent;
		struct idx *x;
		struct err e;
		ck_assert_msg(idx_open_with(fixture_path(names[k / 2]), &o, &x, &e) == 0, "%s", e.msg);
		idx_get(x, idx_lookup_path(x, "s"), &ent);
		ck_assert_uint_eq(ent.size, 3000);
		/* not plain (no bytes at its data offset), and no part of it claimed a hole */
		ck_assert(ent.flags & IDX_F_SPARSE);
		ck_assert_uint_eq(ent.nsparse, 1);
		memset(got, 0x55, sizeof(got));
		ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "s"), got, sizeof(got), 0, r, &e),
				 3000);
		ck_assert_msg(memcmp(got, zero, 3000) == 0, "%s, spill_max %llu: not zeros",
			      names[k / 2], (unsigned long long)o.spill_max);
		ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "b"), got, sizeof(got), 0, r, &e),
				 1000);
		ck_assert(memcmp(got, want, sizeof(want)) == 0);
		idx_reader_free(r);
		idx_close(x);
	}
}
END_TEST

/*
 * A sparse member of 16 TiB whose one byte is its last: a read there passes
 * the hole instead of making it (which took ~50 s a TiB, past the test's
 * timeout), and reads back in any order.
 */
START_TEST(foreign_read_far_into_a_sparse_member_passes_its_hole)
{
	static const char *const names[] = { "far.tar", "far.tar.gz" };
	const uint64_t size = 1ull << 44;
	char map[64];
	FILE *f = fopen(fixture_path("far.tar"), "wb");

	ck_assert_ptr_nonnull(f);
	snprintf(map, sizeof(map), "1\n%llu\n1\n", (unsigned long long)(size - 1));
	tar_sparse(f, "far", size, map, "X", 1);
	tar_finish(f, "far.tar");
	for (int k = 0; k < 2; k++) {
		static const uint64_t at[] = { size - 16, 1ull << 39, size - 1, 0, size - 16 };
		struct idx_reader *r = idx_reader_new();
		struct idx *x;
		struct err e;
		unsigned char got[16];
		ck_assert_msg(idx_open(fixture_path(names[k]), &x, &e) == 0, "%s", e.msg);
		uint32_t i = idx_lookup_path(x, "far");
		for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
			size_t want = at[j] + sizeof(got) > size ? (size_t)(size - at[j]) : sizeof(got);
			memset(got, 0x55, sizeof(got));
			ck_assert_msg(idx_pread(x, i, got, sizeof(got), at[j], r, &e) == (ssize_t)want,
				      "%s at %llu: %s", names[k], (unsigned long long)at[j], e.msg);
			for (size_t b = 0; b < want; b++)
				ck_assert_uint_eq(got[b], at[j] + b == size - 1 ? 'X' : 0);
		}
		idx_reader_free(r);
		idx_close(x);
	}
}
END_TEST

/*
 * A file two hard links name, then replaced by a member appended later
 * (tar -r): the links keep the old content, as tar extracts them, and stay
 * one file; the path holds the new one.
 */
START_TEST(foreign_links_keep_a_file_replaced_later)
{
	static const char *const want[][2] = {
		{ "a", "VERSION TWO\n" }, { "b", "version one\n" }, { "c", "version one\n" } };
	struct idx_reader *r = idx_reader_new();
	struct idx_entry a, b, c;
	struct idx *x;
	struct err e;
	char got[64];

	mkdir(fixture_path("src"), 0755);
	fixture_write(fixture_path("src/a"), "version one\n", 12);
	ck_assert_int_eq(link(fixture_path("src/a"), fixture_path("src/b")), 0);
	ck_assert_int_eq(link(fixture_path("src/a"), fixture_path("src/c")), 0);
	run_with("tar cf @A -C @S a b c", fixture_path("appended.tar"));
	ck_assert_int_eq(unlink(fixture_path("src/a")), 0);
	fixture_write(fixture_path("src/a"), "VERSION TWO\n", 12);
	run_with("tar rf @A -C @S a", fixture_path("appended.tar"));
	ck_assert_msg(idx_open(fixture_path("appended.tar"), &x, &e) == 0, "%s", e.msg);
	for (size_t k = 0; k < 3; k++) {
		uint32_t i = idx_lookup_path(x, want[k][0]);
		ck_assert_uint_ne(i, IDX_NONE);
		memset(got, 0, sizeof(got));
		ck_assert_int_eq(idx_pread(x, i, got, sizeof(got), 0, r, &e), 12);
		ck_assert_msg(strcmp(got, want[k][1]) == 0, "%s reads '%s'", want[k][0], got);
	}
	idx_get(x, idx_lookup_path(x, "a"), &a);
	idx_get(x, idx_lookup_path(x, "b"), &b);
	idx_get(x, idx_lookup_path(x, "c"), &c);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_uint_eq(b.target, c.target);	/* b and c: one file of two links */
	ck_assert_uint_eq(b.nlink, 2);
	ck_assert_uint_ne(a.target, b.target);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

/*
 * Hard links to a symlink and to a FIFO (trees made by cp -al, rsnapshot):
 * one entry each, of its type, with two links; the symlink keeps its text.
 * GNU tar stores each name of a FIFO as a FIFO of its own: two, as it extracts.
 */
START_TEST(foreign_hard_links_to_a_symlink_and_a_fifo)
{
	static const char *const makers[] = { "tar cf @A -C @S .", "bsdtar cf @A -C @S ." };
	struct idx_entry a, b;
	struct idx *x;
	struct err e;

	mkdir(fixture_path("src"), 0755);
	ck_assert_int_eq(symlink("some/target", fixture_path("src/sym")), 0);
	ck_assert_int_eq(linkat(AT_FDCWD, fixture_path("src/sym"), AT_FDCWD,
				fixture_path("src/sym_hl"), 0), 0);
	ck_assert_int_eq(mkfifo(fixture_path("src/fifo"), 0640), 0);
	ck_assert_int_eq(link(fixture_path("src/fifo"), fixture_path("src/fifo_hl")), 0);
	for (size_t k = 0; k < sizeof(makers) / sizeof(makers[0]); k++) {
		run_with(makers[k], fixture_path("links.tar"));
		ck_assert_msg(idx_open(fixture_path("links.tar"), &x, &e) == 0, "%s", e.msg);
		idx_get(x, idx_lookup_path(x, "sym"), &a);
		idx_get(x, idx_lookup_path(x, "sym_hl"), &b);
		ck_assert_uint_eq(a.target, b.target);
		idx_get(x, a.target, &a);
		ck_assert_msg(S_ISLNK(a.mode), "%s: mode %o", makers[k], a.mode);
		ck_assert_uint_eq(a.nlink, 2);
		ck_assert_uint_eq(a.size, 11);
		ck_assert_int_eq(a.link_len, 11);
		ck_assert_int_eq(memcmp(a.link, "some/target", 11), 0);
		idx_get(x, idx_lookup_path(x, "fifo"), &a);
		idx_get(x, idx_lookup_path(x, "fifo_hl"), &b);
		ck_assert_uint_eq(a.target == b.target, k == 1);
		idx_get(x, a.target, &a);
		ck_assert_msg(S_ISFIFO(a.mode), "%s: mode %o", makers[k], a.mode);
		ck_assert_uint_eq(a.nlink, k == 1 ? 2 : 1);
		idx_close(x);
		unlink(fixture_path("links.tar"));
	}
}
END_TEST

/*
 * bsdtar's pax writes each xattr twice (LIBARCHIVE.xattr and SCHILY.xattr):
 * one attribute each, as extraction leaves them.
 */
START_TEST(foreign_xattr_given_twice_is_one)
{
	struct idx_entry ent;
	struct idx_xattr xa;
	struct idx *x;
	struct err e;

	mkdir(fixture_path("src"), 0755);
	fixture_write(fixture_path("src/f"), "x", 1);
	if (setxattr(fixture_path("src/f"), "user.a", "one", 3, 0) < 0 ||
	    setxattr(fixture_path("src/f"), "user.b", "two", 3, 0) < 0) {
		fixture_skip("foreign_xattr_given_twice_is_one: no user xattrs on the test's file system");
		return;
	}
	run_with("bsdtar --format pax -cf @A -C @S f", fixture_path("pax.tar"));
	ck_assert_msg(idx_open(fixture_path("pax.tar"), &x, &e) == 0, "%s", e.msg);
	idx_get(x, idx_lookup_path(x, "f"), &ent);
	ck_assert_uint_eq(ent.nxattrs, 2);
	idx_xattr(x, &ent, 0, &xa);
	ck_assert_int_eq(xa.name_len, 6);
	ck_assert_int_eq(memcmp(xa.name, "user.a", 6), 0);
	ck_assert_int_eq(xa.value_len, 3);
	ck_assert_int_eq(memcmp(xa.value, "one", 3), 0);
	idx_xattr(x, &ent, 1, &xa);
	ck_assert_int_eq(memcmp(xa.name, "user.b", 6), 0);
	ck_assert_int_eq(memcmp(xa.value, "two", 3), 0);
	idx_close(x);
}
END_TEST

/*
 * cpio stores a file of three names with its data on the last name (newc) or
 * on every name (odc): one file of three links, its content whole.
 */
START_TEST(foreign_cpio_hard_links_are_one_file)
{
	static const char *const fmts[] = { "newc", "odc" };
	struct idx_reader *r = idx_reader_new();
	struct idx_entry ent;
	struct idx *x;
	struct err e;
	char cmd[256], got[64];

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/sub"), 0755);
	fixture_write(fixture_path("src/f1"), "hello links\n", 12);
	ck_assert_int_eq(link(fixture_path("src/f1"), fixture_path("src/f1link")), 0);
	ck_assert_int_eq(link(fixture_path("src/f1"), fixture_path("src/sub/f1link2")), 0);
	for (size_t k = 0; k < 2; k++) {
		snprintf(cmd, sizeof(cmd), "cd @S && printf 'f1\\0f1link\\0sub\\0sub/f1link2\\0' | "
			 "bsdtar -cf @A --format %s -n --null -T -", fmts[k]);
		run_with(cmd, fixture_path("links.cpio"));
		ck_assert_msg(idx_open(fixture_path("links.cpio"), &x, &e) == 0, "%s", e.msg);
		uint32_t target = IDX_NONE;
		static const char *const names[] = { "f1", "f1link", "sub/f1link2" };
		for (size_t n = 0; n < 3; n++) {
			uint32_t i = idx_lookup_path(x, names[n]);
			ck_assert_uint_ne(i, IDX_NONE);
			idx_get(x, i, &ent);
			if (target == IDX_NONE)
				target = ent.target;
			ck_assert_msg(ent.target == target, "%s: %s is a file of its own", fmts[k],
				      names[n]);
			ck_assert_uint_eq(ent.nlink, 3);
			memset(got, 0, sizeof(got));
			ck_assert_int_eq(idx_pread(x, i, got, sizeof(got), 0, r, &e), 12);
			ck_assert_str_eq(got, "hello links\n");
		}
		idx_close(x);
		unlink(fixture_path("links.cpio"));
	}
	/* a directory given twice, after its child: the second is a "link" to itself */
	run_with("cd @S && printf 'sub\\0sub/f1link2\\0sub\\0' | bsdtar -cf @A --format newc -n "
		 "--null -T -", fixture_path("dup.cpio"));
	ck_assert_msg(idx_open(fixture_path("dup.cpio"), &x, &e) == 0, "%s", e.msg);
	idx_get(x, idx_lookup_path(x, "sub"), &ent);
	ck_assert(S_ISDIR(ent.mode));
	ck_assert_int_eq(idx_pread(x, idx_lookup_path(x, "sub/f1link2"), got, sizeof(got), 0, r, &e),
			 12);
	idx_close(x);
	idx_reader_free(r);
}
END_TEST

/*
 * GNU tar given a file twice (`tar czf x.tgz d d/sub`) stores it the second
 * time as a hard link to itself: the file keeps its content, one link.
 */
START_TEST(foreign_file_given_twice_keeps_its_content)
{
	struct idx_reader *r = idx_reader_new();
	struct idx_entry ent;
	struct idx *x;
	struct err e;
	char got[64];

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/d"), 0755);
	mkdir(fixture_path("src/d/sub"), 0755);
	fixture_write(fixture_path("src/d/sub/f.txt"), "personality one\n", 16);
	run_with("tar czf @A -C @S d d/sub", fixture_path("twice.tar.gz"));
	run_with("tar tvzf @A | grep -q 'd/sub/f.txt link to d/sub/f.txt'",
		 fixture_path("twice.tar.gz"));	/* what this test is about */
	ck_assert_msg(idx_open(fixture_path("twice.tar.gz"), &x, &e) == 0, "%s", e.msg);
	uint32_t i = idx_lookup_path(x, "d/sub/f.txt");
	ck_assert_uint_ne(i, IDX_NONE);
	idx_get(x, i, &ent);
	ck_assert_uint_eq(ent.size, 16);
	ck_assert_uint_eq(ent.nlink, 1);
	ck_assert_uint_eq(ent.target, i);
	memset(got, 0, sizeof(got));
	ck_assert_int_eq(idx_pread(x, i, got, sizeof(got), 0, r, &e), 16);
	ck_assert_str_eq(got, "personality one\n");
	ck_assert_uint_eq(idx_members(x), 5);	/* d/ d/sub/ f.txt d/sub/ f.txt */
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(foreign_multi_member_tar_gz_reads_back)
{
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct err e;
	unsigned char buf[8192];
	uint64_t seed = 3;

	unsigned char *want = gz_archive("multi.tar.gz",
		"tar cf @A.tar --sort=name -C @S . && head -c 3000001 @A.tar > @A.p1 && "
		"tail -c +3000002 @A.tar | head -c 4000000 > @A.p2 && tail -c +7000002 @A.tar > @A.p3 && "
		"gzip -1 < @A.p1 > @A && gzip -9c @A.p2 >> @A && gzip -c < @A.p3 >> @A && "
		"rm @A.tar @A.p1 @A.p2 @A.p3", false);
	ck_assert_msg(idx_open_with(fixture_path("multi.tar.gz"), &gz_small_spill, &x, &e) == 0,
		      "%s", e.msg);
	read_all_in_order(x);
	uint32_t i = idx_lookup_path(x, "big.bin");
	for (int k = 0; k < 200; k++) {
		uint64_t off = fixture_rand(&seed) % GZ_BIG;
		size_t n = off + sizeof(buf) <= GZ_BIG ? sizeof(buf) : GZ_BIG - off;
		ck_assert_msg(idx_pread(x, i, buf, sizeof(buf), off, r, &e) == (ssize_t)n, "%s", e.msg);
		ck_assert_msg(memcmp(buf, want + off, n) == 0, "differs at %llu",
			      (unsigned long long)off);
	}
	ck_assert_uint_eq(idx_decoder_starts(x), 1);
	free(want);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

/*
 * A flipped byte in the deflate data of the big member: reads before it give
 * the right bytes, a read through it EIO naming the archive, never wrong
 * bytes; and the archive still reads before the damage afterwards.
 */
START_TEST(damaged_tar_gz_fails_with_eio_through_checkpoints)
{
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct err e;
	size_t len;
	unsigned char *buf = malloc(GZ_BIG);

	unsigned char *want = gz_archive("old.tar.gz", "tar czf @A --sort=name -C @S .", true);
	ck_assert_msg(idx_open_with(fixture_path("old.tar.gz"), &gz_small_spill, &x, &e) == 0, "%s",
		      e.msg);
	uint32_t i = idx_lookup_path(x, "big.bin");
	/* checkpoints over the whole member first, from the good archive */
	ck_assert_int_eq(idx_pread(x, i, buf, GZ_BIG, 0, r, &e), (ssize_t)GZ_BIG);
	unsigned char *file = fixture_read(fixture_path("old.tar.gz"), &len);
	file[len / 3] ^= 0x10;	/* in big.bin's Huffman-coded data */
	fixture_write(fixture_path("old.tar.gz"), file, len);
	ck_assert_int_eq(idx_pread(x, i, buf, 4096, 4096, r, &e), 4096);
	ck_assert_int_eq(memcmp(buf, want + 4096, 4096), 0);
	ssize_t n = idx_pread(x, i, buf, GZ_BIG, 0, r, &e);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(e.code, EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "old.tar.gz"));
	ck_assert_ptr_nonnull(strstr(e.msg, "is damaged"));
	fprintf(stderr, "gz damage: %s\n", e.msg);
	/* a read that ends before the damage is whole and right */
	ck_assert_int_eq(idx_pread(x, i, buf, 65536, 65536, r, &e), 65536);
	ck_assert_int_eq(memcmp(buf, want + 65536, 65536), 0);
	idx_close(x);
	free(file);
	free(want);
	free(buf);
	idx_reader_free(r);
}
END_TEST
#endif

/*
 * The reader transcodes every stored entry into a compact form (and an
 * extension record for the few entries that need one). These tests read each
 * entry back through idx_get() and compare it with the same entry decoded
 * directly from the blob's bytes, at the offsets of idxfmt.h.
 */

/*
 * ck_assert() records a mark point (a write to check's pipe) even when it
 * holds: in loops over tens of thousands of entries, test first.
 */
#define EXPECT(cond, ...)                          \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define SAME_NUM(i, what, got, want)                                                  \
	EXPECT((uint64_t)(got) == (uint64_t)(want),                                   \
	       "entry %u: %s reads back as %llu, stored %llu", (unsigned)(i), what,   \
	       (unsigned long long)(got), (unsigned long long)(want))

/* The parts of a body, as stored. */
struct stored {
	const unsigned char *ents, *xattrs, *sparse;
	const char *strings;
	uint32_t n, members, nxattrs, nsparse, nstrings;
};

static struct stored parse_body(const void *blob, size_t len)
{
	const unsigned char *p = blob;
	struct stored s;

	ck_assert_uint_ge(len, IDX_BODY_HDR_SIZE);
	s.n = le32_get(p + IDX_BODY_ENTRIES);
	s.members = le32_get(p + IDX_BODY_MEMBERS);
	s.nxattrs = le32_get(p + IDX_BODY_XATTRS);
	s.nsparse = le32_get(p + IDX_BODY_SPARSE);
	s.nstrings = le32_get(p + IDX_BODY_STRINGS);
	ck_assert_uint_eq(len, IDX_BODY_HDR_SIZE + (uint64_t)s.n * IDX_E_SIZEOF +
				       (uint64_t)s.nxattrs * IDX_X_SIZEOF +
				       (uint64_t)s.nsparse * IDX_S_SIZEOF + s.nstrings);
	s.ents = p + IDX_BODY_HDR_SIZE;
	s.xattrs = s.ents + (size_t)s.n * IDX_E_SIZEOF;
	s.sparse = s.xattrs + (size_t)s.nxattrs * IDX_X_SIZEOF;
	s.strings = (const char *)(s.sparse + (size_t)s.nsparse * IDX_S_SIZEOF);
	return s;
}

static const unsigned char *stored_ent(const struct stored *s, uint32_t i)
{
	return s->ents + (size_t)i * IDX_E_SIZEOF;
}

/* The string an (offset, length) pair at p refers to. */
static const char *stored_str(const struct stored *s, const unsigned char *p, uint32_t *len)
{
	uint32_t off = le32_get(p);

	*len = le32_get(p + 4);
	EXPECT((uint64_t)off + *len <= s->nstrings, "a stored string past the string area");
	return s->strings + off;
}

static void same_str(uint32_t i, const char *what, const void *got, uint32_t got_len,
		     const unsigned char *field, const struct stored *s)
{
	uint32_t len;
	const char *want = stored_str(s, field, &len);

	EXPECT(got_len == len, "entry %u: %s reads back with length %u, stored %u", i, what, got_len,
	       len);
	EXPECT(len == 0 || memcmp(got, want, len) == 0, "entry %u: %s reads back with other bytes",
	       i, what);
}

/* Entry i's path, built from the stored parents and names. */
static void stored_path(const struct stored *s, uint32_t i, char *buf, size_t size)
{
	size_t pos = size - 1;

	buf[pos] = '\0';
	for (int hops = 0; i != IDX_ROOT; hops++) {
		const unsigned char *p = stored_ent(s, i);
		uint32_t len;
		const char *name = stored_str(s, p + IDX_E_NAME, &len);
		EXPECT(hops < 1000 && (size_t)len + 1 < pos, "stored path of entry %u", i);
		pos -= len;
		memcpy(buf + pos, name, len);
		i = le32_get(p + IDX_E_PARENT);
		if (i != IDX_ROOT)
			buf[--pos] = '/';
	}
	memmove(buf, buf + pos, size - pos);
}

/*
 * Every field of every entry of x against the blob it was opened from; seq
 * reads IDX_NONE unless seq_kept (idx_opts.no_seq on a native archive).
 */
static void expect_reads_back(struct idx *x, const void *blob, size_t len, bool seq_kept)
{
	struct stored s = parse_body(blob, len);
	size_t size = 1u << 18;
	char *path = malloc(size), *want = malloc(size);
	struct err e;

	ck_assert_ptr_nonnull(path);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(idx_count(x), s.n);
	ck_assert_uint_eq(idx_members(x), s.members);
	for (uint32_t i = 0; i < s.n; i++) {
		const unsigned char *p = stored_ent(&s, i);
		struct idx_entry d;

		memset(&d, 0xA5, sizeof(d));	/* every field must be written */
		idx_get(x, i, &d);
		SAME_NUM(i, "data_off", d.data_off, le64_get(p + IDX_E_DATA_OFF));
		SAME_NUM(i, "size", d.size, le64_get(p + IDX_E_SIZE));
		EXPECT(d.mtime_sec == (int64_t)le64_get(p + IDX_E_MTIME),
		       "entry %u: mtime_sec reads back as %lld, stored %lld", i, (long long)d.mtime_sec,
		       (long long)(int64_t)le64_get(p + IDX_E_MTIME));
		SAME_NUM(i, "mtime_nsec", d.mtime_nsec, le32_get(p + IDX_E_NSEC));
		SAME_NUM(i, "rdev", d.rdev, le64_get(p + IDX_E_RDEV));
		SAME_NUM(i, "mode", d.mode, le32_get(p + IDX_E_MODE));
		SAME_NUM(i, "uid", d.uid, le32_get(p + IDX_E_UID));
		SAME_NUM(i, "gid", d.gid, le32_get(p + IDX_E_GID));
		SAME_NUM(i, "parent", d.parent, le32_get(p + IDX_E_PARENT));
		SAME_NUM(i, "first_child", d.first_child, le32_get(p + IDX_E_FIRST_CHILD));
		SAME_NUM(i, "nchildren", d.nchildren, le32_get(p + IDX_E_NCHILDREN));
		SAME_NUM(i, "nlink", d.nlink, le32_get(p + IDX_E_NLINK));
		SAME_NUM(i, "target", d.target, le32_get(p + IDX_E_TARGET));
		SAME_NUM(i, "flags", d.flags, le32_get(p + IDX_E_FLAGS));
		SAME_NUM(i, "seq", d.seq, seq_kept ? le32_get(p + IDX_E_SEQ) : IDX_NONE);
		same_str(i, "name", d.name, d.name_len, p + IDX_E_NAME, &s);
		same_str(i, "link", d.link, d.link_len, p + IDX_E_LINK, &s);
		same_str(i, "uname", d.uname, d.uname_len, p + IDX_E_UNAME, &s);
		same_str(i, "gname", d.gname, d.gname_len, p + IDX_E_GNAME, &s);
		/* a string of length 0 may sit anywhere, but must still be a valid pointer */
		EXPECT(d.name && d.link && d.uname && d.gname, "entry %u: a NULL string", i);
		SAME_NUM(i, "nxattrs", d.nxattrs, le32_get(p + IDX_E_XATTRS + 4));
		SAME_NUM(i, "nsparse", d.nsparse, le32_get(p + IDX_E_SPARSE + 4));
		/* with no records the first one means nothing; with some it must be the stored one */
		if (d.nxattrs)
			SAME_NUM(i, "xattr_first", d.xattr_first, le32_get(p + IDX_E_XATTRS));
		if (d.nsparse)
			SAME_NUM(i, "sparse_first", d.sparse_first, le32_get(p + IDX_E_SPARSE));
		for (uint32_t k = 0; k < d.nxattrs; k++) {
			const unsigned char *r =
				s.xattrs + ((size_t)le32_get(p + IDX_E_XATTRS) + k) * IDX_X_SIZEOF;
			struct idx_xattr xa;
			idx_xattr(x, &d, k, &xa);
			same_str(i, "xattr name", xa.name, xa.name_len, r + IDX_X_NAME, &s);
			same_str(i, "xattr value", xa.value, xa.value_len, r + IDX_X_VALUE, &s);
		}
		for (uint32_t k = 0; k < d.nsparse; k++) {
			const unsigned char *r =
				s.sparse + ((size_t)le32_get(p + IDX_E_SPARSE) + k) * IDX_S_SIZEOF;
			struct idx_sparse sp;
			idx_sparse(x, &d, k, &sp);
			SAME_NUM(i, "sparse off", sp.off, le64_get(r + IDX_S_OFF));
			SAME_NUM(i, "sparse len", sp.len, le64_get(r + IDX_S_LEN));
		}
		/* the path from the index, from the stored bytes, and back to the entry */
		EXPECT(idx_path(x, i, path, size, &e) == 0, "entry %u: %s", i, e.msg);
		stored_path(&s, i, want, size);
		EXPECT(strcmp(path, want) == 0, "entry %u: path '%.200s', stored '%.200s'", i, path,
		       want);
		EXPECT(idx_lookup_path(x, path) == i, "entry %u: '%.200s' looks up as %u", i, path,
		       idx_lookup_path(x, path));
		EXPECT(i == IDX_ROOT || idx_lookup(x, d.parent, d.name, d.name_len) == i,
		       "entry %u: not found by name in its parent", i);
	}
	free(path);
	free(want);
}

static void expect_blob_reads_back(struct idx *x, const void *blob, size_t len)
{
	expect_reads_back(x, blob, len, true);
}

/* Write v at field of entry i of a body (the fields before IDX_E_NSEC are 64-bit). */
static void poke_ent(unsigned char *blob, uint32_t i, size_t field, uint64_t v)
{
	unsigned char *p = blob + IDX_BODY_HDR_SIZE + (size_t)i * IDX_E_SIZEOF + field;

	if (field < IDX_E_NSEC)
		le64_put(p, v);
	else
		le32_put(p, (uint32_t)v);
}

/*
 * The size of a tar stream that holds the data of every file of the blob, as
 * the entries place it: at least 1024 bytes, in whole 1024-byte blocks.
 */
static uint64_t tar_size_for(const void *blob, size_t len)
{
	uint64_t end = 1024;
	struct idx *x;
	struct err e;

	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	for (uint32_t i = 0; i < idx_count(x); i++) {
		struct idx_entry d;
		idx_get(x, i, &d);
		if (!S_ISREG(d.mode) || d.target != i)
			continue;
		uint64_t stored = idx_stored_bytes(x, &d);
		if (d.data_off + stored > end)
			end = d.data_off + stored;
	}
	idx_close(x);
	return (end + 1023) / 1024 * 1024;
}

/*
 * The blob in a native archive (a tar stream of zeros as long as its files
 * need, then the index frame and the seek table) at fixture path name;
 * returns the path.
 */
static const char *write_as_native(const void *blob, size_t len, const char *name)
{
	static const unsigned char zeros[1u << 20];
	const char *path = fixture_path(name);
	uint64_t tar_size = tar_size_for(blob, len);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct zseek_writer *w;
	void *frame;
	size_t flen;
	struct err e;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zseek_writer_new(fd, path, 1, 1, 1u << 20, &w, &e), 0);
	for (uint64_t at = 0; at < tar_size; at += sizeof(zeros)) {
		size_t n = tar_size - at < sizeof(zeros) ? (size_t)(tar_size - at) : sizeof(zeros);
		ck_assert_int_eq(zseek_write(w, zeros, n, &e), 0);
	}
	ck_assert_int_eq(zseek_cut(w, &e), 0);
	ck_assert_uint_eq(zseek_pos(w), tar_size);
	ck_assert_int_eq(idx_pack_frame(blob, len, zseek_pos(w), &frame, &flen, &e), 0);
	ck_assert_int_eq(zseek_write_skippable(w, IDX_FRAME_KIND, frame, flen, &e), 0);
	ck_assert_msg(zseek_finish(w, &e) == 0, "%s", e.msg);
	zseek_writer_free(w);
	free(frame);
	close(fd);
	return path;
}

/*
 * The blob in a native archive, opened by idx_open(): its body is decompressed
 * and transcoded as it streams, not read from memory.
 */
static struct idx *open_as_native(const void *blob, size_t len, const char *name)
{
	const char *path = write_as_native(blob, len, name);
	struct idx *x;
	struct err e;

	ck_assert_msg(idx_open(path, &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_is_native(x));
	ck_assert_uint_eq(idx_tar_size(x), tar_size_for(blob, len));
	return x;
}

static struct archive_entry *ent_new(const char *path, unsigned mode, int64_t sec, long nsec)
{
	struct archive_entry *ae = archive_entry_new();

	ck_assert_ptr_nonnull(ae);
	archive_entry_set_pathname(ae, path);
	archive_entry_set_mode(ae, mode);
	archive_entry_set_mtime(ae, (time_t)sec, nsec);
	return ae;
}

static void ent_owner(struct archive_entry *ae, int64_t uid, int64_t gid, const char *uname,
		      const char *gname)
{
	archive_entry_set_uid(ae, uid);
	archive_entry_set_gid(ae, gid);
	if (uname)
		archive_entry_set_uname(ae, uname);
	if (gname)
		archive_entry_set_gname(ae, gname);
}

/* Add ae (freed) with its data at *off; the next member's data goes after it. */
static void put(struct idx_builder *b, struct archive_entry *ae, uint64_t *off)
{
	struct err e;

	ck_assert_msg(idx_builder_add(b, ae, *off, &e) == 0, "%s", e.msg);
	*off += 512 + (((uint64_t)archive_entry_size(ae) + 511) & ~(uint64_t)511);
	archive_entry_free(ae);
}

static const unsigned char xattr_bin[] = { 0x00, 0x01, 0xFF, 0x00, 0x7F, 0x80, 0x00, 0xFE };

/* An index with one of everything (see every_field_reads_back_as_stored). */
static void *rich_blob(size_t *len)
{
	struct idx_builder *b = idx_builder_new(-12345, NULL);	/* implied directories: before 1970 */
	struct archive_entry *ae;
	unsigned char big_value[300];
	uint64_t off = 0;

	ck_assert_ptr_nonnull(b);
	for (size_t k = 0; k < sizeof(big_value); k++)
		big_value[k] = (unsigned char)(k * 37 + 11);
	/* the root's own metadata, from a "./" member */
	ae = ent_new("./", S_IFDIR | 0750, 1700000000, 42);
	ent_owner(ae, 0, 0, "root", "root");
	put(b, ae, &off);
	/* owners: names and none, small and large ids */
	ae = ent_new("etc/passwd", S_IFREG | 0644, 1700000001, 123456789);
	ent_owner(ae, 0, 0, "root", "root");
	archive_entry_set_size(ae, 1234);
	put(b, ae, &off);
	ae = ent_new("home/alice/notes.txt", S_IFREG | 0600, 1700000002, 1);
	ent_owner(ae, 1000, 1000, "alice", "staff");
	archive_entry_set_size(ae, 77);
	put(b, ae, &off);
	ae = ent_new("home/bob/data.bin", S_IFREG | 0640, 1700000003, 999999999);
	ent_owner(ae, 1001, 100, NULL, NULL);
	archive_entry_set_size(ae, 3);
	put(b, ae, &off);
	ae = ent_new("home/carol/x", S_IFREG | 0644, 1700000004, 0);
	ent_owner(ae, 4000000000u, 4294967294u, NULL, "nogroup");
	put(b, ae, &off);
	ae = ent_new("home/dave/y", S_IFREG | 0644, 1700000005, 0);
	ent_owner(ae, 65534, 65534, "", "");	/* names present but empty */
	put(b, ae, &off);
	/* set-id and sticky bits */
	ae = ent_new("bin/su", S_IFREG | 04755, 1, 0);
	archive_entry_set_size(ae, 10);
	put(b, ae, &off);
	ae = ent_new("bin/wall", S_IFREG | 02755, 2, 0);
	put(b, ae, &off);
	ae = ent_new("bin/all", S_IFREG | 07777, 3, 0);
	put(b, ae, &off);
	ae = ent_new("tmp", S_IFDIR | 01777, 4, 0);
	put(b, ae, &off);
	/* mode bits past the 16 a compact entry holds */
	ae = ent_new("odd/widemode", S_IFREG | 0644 | 0x10000u, 5, 0);
	put(b, ae, &off);
	/* times */
	ae = ent_new("times/neg", S_IFREG | 0644, -1577836800, 999999999);
	put(b, ae, &off);
	ae = ent_new("times/minus1", S_IFREG | 0644, -1, 500000000);
	put(b, ae, &off);
	ae = ent_new("times/zero", S_IFREG | 0644, 0, 0);
	put(b, ae, &off);
	ae = ent_new("times/future", S_IFREG | 0644, 100000000000, 1);
	put(b, ae, &off);
	/* a deep tree with implied directories, one of them later made explicit */
	ae = ent_new("deep/a/b/c/d/e/f/leaf", S_IFREG | 0644, 6, 6);
	archive_entry_set_size(ae, 6);
	put(b, ae, &off);
	ae = ent_new("deep/a/b/c/d/e/f2/leaf2", S_IFREG | 0644, 7, 7);
	put(b, ae, &off);
	ae = ent_new("deep/a/b", S_IFDIR | 0700, 8, 8);
	ent_owner(ae, 7, 8, "b-owner", "b-group");
	put(b, ae, &off);
	ae = ent_new("emptydir", S_IFDIR | 0755, 9, 9);
	put(b, ae, &off);
	/* links and special files */
	ae = ent_new("bin/sh", S_IFLNK | 0777, 10, 10);
	archive_entry_set_symlink(ae, "bash");
	put(b, ae, &off);
	ae = ent_new("links/abs", S_IFLNK | 0777, 11, 11);
	archive_entry_set_symlink(ae, "/usr/lib/x86_64-linux-gnu/some/long/target/\xff\x01 name");
	put(b, ae, &off);
	ae = ent_new("dev/null", S_IFCHR | 0666, 12, 12);
	archive_entry_set_rdev(ae, makedev(1, 3));
	put(b, ae, &off);
	ae = ent_new("dev/sda", S_IFBLK | 0660, 13, 13);
	ent_owner(ae, 0, 6, "root", "disk");
	archive_entry_set_rdev(ae, makedev(8, 0));
	put(b, ae, &off);
	ae = ent_new("dev/nvme", S_IFBLK | 0660, 14, 14);
	archive_entry_set_rdev(ae, makedev(259, 70000));
	put(b, ae, &off);
	ae = ent_new("dev/fifo", S_IFIFO | 0644, 15, 15);
	put(b, ae, &off);
	ae = ent_new("dev/sock", S_IFSOCK | 0755, 16, 16);
	put(b, ae, &off);
	ae = ent_new("links/hard", S_IFREG | 0644, 17, 17);
	archive_entry_set_hardlink(ae, "etc/passwd");
	put(b, ae, &off);
	/* extended attributes, binary and empty values; on a directory too */
	ae = ent_new("xa/one", S_IFREG | 0644, 18, 18);
	archive_entry_set_size(ae, 5);
	archive_entry_xattr_add_entry(ae, "user.comment", "hello", 5);
	archive_entry_xattr_add_entry(ae, "security.bin", xattr_bin, sizeof(xattr_bin));
	archive_entry_xattr_add_entry(ae, "user.empty", "", 0);
	put(b, ae, &off);
	ae = ent_new("xa/two", S_IFREG | 0644, 19, 19);
	archive_entry_xattr_add_entry(ae, "trusted.big", big_value, sizeof(big_value));
	put(b, ae, &off);
	ae = ent_new("xa", S_IFDIR | 0755, 20, 20);
	archive_entry_xattr_add_entry(ae, "user.dir", "d", 1);
	put(b, ae, &off);
	/* sparse: regions, and one that is all hole */
	ae = ent_new("sparse/file", S_IFREG | 0644, 21, 21);
	archive_entry_set_size(ae, 10 << 20);
	archive_entry_sparse_add_entry(ae, 0, 4096);
	archive_entry_sparse_add_entry(ae, 1 << 20, 8192);
	archive_entry_sparse_add_entry(ae, (10 << 20) - 100, 100);
	put(b, ae, &off);
	ae = ent_new("sparse/hole", S_IFREG | 0644, 22, 22);
	archive_entry_set_size(ae, 4096);
	archive_entry_sparse_add_entry(ae, 4096, 0);
	put(b, ae, &off);
	/* sizes */
	ae = ent_new("empty", S_IFREG | 0644, 23, 23);
	archive_entry_set_size(ae, 0);
	put(b, ae, &off);
	ae = ent_new("big.iso", S_IFREG | 0644, 24, 24);
	archive_entry_set_size(ae, (5ll << 30) + 7);
	put(b, ae, &off);
	ae = ent_new("after-big", S_IFREG | 0644, 25, 25);	/* data offset past 4 GiB */
	archive_entry_set_size(ae, 1);
	put(b, ae, &off);
	/* names: non-ASCII bytes, spaces, 255 bytes */
	ae = ent_new("names/sp ace \xc3\xa9\xff", S_IFREG | 0644, 26, 26);
	put(b, ae, &off);
	{
		char longname[6 + 255 + 1] = "names/";
		memset(longname + 6, 'L', 255);
		longname[6 + 255] = '\0';
		ae = ent_new(longname, S_IFREG | 0644, 27, 27);
		put(b, ae, &off);
	}
	return blob_of(b, len);
}

START_TEST(every_field_reads_back_as_stored)
{
	size_t len;
	void *blob = rich_blob(&len);
	struct stored s = parse_body(blob, len);
	struct idx *x;
	struct idx_entry d, t;
	struct idx_xattr xa;
	struct idx_sparse sp;
	struct err e;
	uint32_t i;

	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	expect_blob_reads_back(x, blob, len);
	idx_close(x);
	x = open_as_native(blob, len, "rich.tar.zst");
	expect_blob_reads_back(x, blob, len);

	/* and the blob holds what went in, so the comparison above was not vacuous */
	ck_assert_uint_eq(s.nxattrs, 5);
	ck_assert_uint_eq(s.nsparse, 3);
	idx_get(x, IDX_ROOT, &d);
	ck_assert_uint_eq(d.mode, S_IFDIR | 0750);
	ck_assert_int_eq(d.mtime_sec, 1700000000);
	idx_get(x, idx_lookup_path(x, "home/carol/x"), &d);
	ck_assert_uint_eq(d.uid, 4000000000u);
	ck_assert_uint_eq(d.gid, 4294967294u);
	ck_assert_uint_eq(d.uname_len, 0);
	ck_assert_uint_eq(d.gname_len, 7);
	ck_assert_int_eq(memcmp(d.gname, "nogroup", 7), 0);
	idx_get(x, idx_lookup_path(x, "home/alice/notes.txt"), &d);
	ck_assert(d.uname_len == 5 && memcmp(d.uname, "alice", 5) == 0);
	ck_assert(d.gname_len == 5 && memcmp(d.gname, "staff", 5) == 0);
	idx_get(x, idx_lookup_path(x, "bin/su"), &d);
	ck_assert_uint_eq(d.mode, S_IFREG | 04755);
	idx_get(x, idx_lookup_path(x, "tmp"), &d);
	ck_assert_uint_eq(d.mode, S_IFDIR | 01777);
	idx_get(x, idx_lookup_path(x, "odd/widemode"), &d);
	ck_assert_uint_eq(d.mode, S_IFREG | 0644 | 0x10000u);
	idx_get(x, idx_lookup_path(x, "times/neg"), &d);
	ck_assert_int_eq(d.mtime_sec, -1577836800);
	ck_assert_uint_eq(d.mtime_nsec, 999999999);
	idx_get(x, idx_lookup_path(x, "times/minus1"), &d);
	ck_assert_int_eq(d.mtime_sec, -1);
	idx_get(x, idx_lookup_path(x, "times/future"), &d);
	ck_assert_int_eq(d.mtime_sec, 100000000000);
	idx_get(x, idx_lookup_path(x, "deep/a/b/c"), &d);
	ck_assert_uint_eq(d.flags, IDX_F_IMPLICIT);
	ck_assert_int_eq(d.mtime_sec, -12345);
	idx_get(x, idx_lookup_path(x, "deep/a/b"), &d);
	ck_assert_uint_eq(d.flags, 0);
	ck_assert_uint_eq(d.uid, 7);
	ck_assert_uint_eq(d.nchildren, 1);
	ck_assert_uint_ne(idx_lookup_path(x, "deep/a/b/c/d/e/f/leaf"), IDX_NONE);
	idx_get(x, idx_lookup_path(x, "emptydir"), &d);
	ck_assert(S_ISDIR(d.mode) && d.nchildren == 0 && d.nlink == 2);
	idx_get(x, idx_lookup_path(x, "links/abs"), &d);
	ck_assert(S_ISLNK(d.mode));
	ck_assert_uint_eq(d.link_len, d.size);
	ck_assert_int_eq(memcmp(d.link, "/usr/lib/", 9), 0);
	idx_get(x, idx_lookup_path(x, "dev/null"), &d);
	ck_assert(S_ISCHR(d.mode) && d.rdev == makedev(1, 3));
	idx_get(x, idx_lookup_path(x, "dev/sda"), &d);
	ck_assert(S_ISBLK(d.mode) && d.rdev == makedev(8, 0));
	idx_get(x, idx_lookup_path(x, "dev/nvme"), &d);
	ck_assert(S_ISBLK(d.mode) && d.rdev == makedev(259, 70000));
	idx_get(x, idx_lookup_path(x, "dev/fifo"), &d);
	ck_assert(S_ISFIFO(d.mode) && d.rdev == 0);
	i = idx_lookup_path(x, "links/hard");
	idx_get(x, i, &d);
	ck_assert_uint_eq(d.flags, IDX_F_HARDLINK);
	ck_assert_uint_eq(d.target, idx_lookup_path(x, "etc/passwd"));
	ck_assert(d.link_len == 10 && memcmp(d.link, "etc/passwd", 10) == 0);
	idx_get(x, d.target, &t);
	ck_assert_uint_eq(t.nlink, 2);
	ck_assert_uint_eq(d.nlink, 2);
	idx_get(x, idx_lookup_path(x, "xa/one"), &d);
	ck_assert_uint_eq(d.nxattrs, 3);
	for (uint32_t k = 0; k < 3; k++) {
		idx_xattr(x, &d, k, &xa);
		if (xa.name_len == 12 && memcmp(xa.name, "security.bin", 12) == 0)
			ck_assert(xa.value_len == sizeof(xattr_bin) &&
				  memcmp(xa.value, xattr_bin, sizeof(xattr_bin)) == 0);
		else if (xa.name_len == 10 && memcmp(xa.name, "user.empty", 10) == 0)
			ck_assert_uint_eq(xa.value_len, 0);
		else
			ck_assert(xa.value_len == 5 && memcmp(xa.value, "hello", 5) == 0);
	}
	idx_get(x, idx_lookup_path(x, "xa"), &d);
	ck_assert(S_ISDIR(d.mode) && d.nxattrs == 1 && d.nchildren == 2);
	idx_get(x, idx_lookup_path(x, "sparse/file"), &d);
	ck_assert_uint_eq(d.flags, IDX_F_SPARSE);
	ck_assert_uint_eq(d.size, 10 << 20);
	ck_assert_uint_eq(d.nsparse, 3);
	idx_sparse(x, &d, 1, &sp);
	ck_assert(sp.off == 1 << 20 && sp.len == 8192);
	idx_get(x, idx_lookup_path(x, "sparse/hole"), &d);
	ck_assert_uint_eq(d.flags, IDX_F_SPARSE);
	ck_assert_uint_eq(d.nsparse, 0);
	idx_get(x, idx_lookup_path(x, "big.iso"), &d);
	ck_assert_uint_eq(d.size, (5ull << 30) + 7);
	idx_get(x, idx_lookup_path(x, "after-big"), &d);
	ck_assert_uint_gt(d.data_off, 5ull << 30);
	idx_get(x, idx_lookup_path(x, "empty"), &d);
	ck_assert(S_ISREG(d.mode) && d.size == 0 && d.nlink == 1);

	/*
	 * Each field alone at a value the builder does not write but the format
	 * allows, on an entry that is otherwise compact: it must read back too.
	 */
	uint32_t plain = idx_lookup_path(x, "empty"), reg = idx_lookup_path(x, "etc/passwd");
	idx_close(x);
	enum { NOFIELD = IDX_E_SIZEOF };
	const struct {
		size_t f1;
		uint64_t v1;
		size_t f2;
		uint64_t v2;
	} odd[] = {
		{ IDX_E_DATA_OFF, UINT64_MAX, NOFIELD, 0 },
		{ IDX_E_SIZE, UINT64_MAX, IDX_E_DATA_OFF, 0 },	/* from 0, or it wraps around */
		{ IDX_E_MTIME, (uint64_t)INT64_MIN, NOFIELD, 0 },
		{ IDX_E_MTIME, INT64_MAX, NOFIELD, 0 },
		{ IDX_E_NSEC, UINT32_MAX, NOFIELD, 0 },
		{ IDX_E_SEQ, UINT32_MAX, NOFIELD, 0 },
		{ IDX_E_RDEV, 0x123456789abcull, NOFIELD, 0 },
		{ IDX_E_MODE, 0x7FFF0000u | S_IFREG | 0644, NOFIELD, 0 },
		{ IDX_E_UID, UINT32_MAX, IDX_E_GID, UINT32_MAX },
		{ IDX_E_FIRST_CHILD, 5, NOFIELD, 0 },	/* with no children */
		{ IDX_E_NLINK, 0, NOFIELD, 0 },
		{ IDX_E_NLINK, UINT32_MAX, NOFIELD, 0 },
		{ IDX_E_TARGET, reg, NOFIELD, 0 },	/* another file's data, without the flag */
		{ IDX_E_FLAGS, IDX_F_SPARSE, NOFIELD, 0 },	/* all hole */
		{ IDX_E_FLAGS, 0x80000000u, NOFIELD, 0 },
		{ IDX_E_LINK, 0, IDX_E_LINK + 4, 3 },
		{ IDX_E_UNAME, 1, IDX_E_UNAME + 4, 2 },
		{ IDX_E_GNAME, 2, IDX_E_GNAME + 4, 4 },
		{ IDX_E_XATTRS, 0, IDX_E_XATTRS + 4, 2 },	/* shares another entry's records */
		{ IDX_E_SPARSE, 1, IDX_E_SPARSE + 4, 2 },	/* regions, without the flag */
	};
	unsigned char *odd_blob = malloc(len);
	ck_assert_ptr_nonnull(odd_blob);
	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		memcpy(odd_blob, blob, len);
		poke_ent(odd_blob, plain, odd[k].f1, odd[k].v1);
		if (odd[k].f2 != NOFIELD)
			poke_ent(odd_blob, plain, odd[k].f2, odd[k].v2);
		ck_assert_msg(idx_open_blob(odd_blob, len, "t", &x, &e) == 0, "case %zu: %s", k,
			      e.msg);
		expect_blob_reads_back(x, odd_blob, len);
		idx_close(x);
	}
	free(odd_blob);
	free(blob);
}
END_TEST

/* Group names of the files of many_owners_and_long_names_read_back. */
static const char *const many_groups[] = { "wheel", "staff", "users", "adm", "audio", "video",
					   "" };

START_TEST(many_owners_and_long_names_read_back)
{
	enum { NFILES = 70000, LONG1 = 65535, LONG2 = 65536, LONG3 = 70000 };
	struct idx_builder *b = idx_builder_new(1, NULL);
	struct archive_entry *ae = archive_entry_new();
	char name[64], *longpath = malloc(8 + LONG3 + 1);
	uint64_t off = 0;
	size_t len;
	void *blob;
	struct idx *x;
	struct err e;

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(longpath);
	/* one owner each: past the 65,536th the owner does not fit a compact entry */
	for (uint32_t k = 0; k < NFILES; k++) {
		archive_entry_clear(ae);
		snprintf(name, sizeof(name), "o/%c/f%05u", 'a' + (int)(k % 4), k);
		archive_entry_set_pathname(ae, name);
		archive_entry_set_mode(ae, S_IFREG | 0644);
		archive_entry_set_uid(ae, 100000 + (int64_t)k);
		archive_entry_set_gid(ae, k % 7);
		if (k % 5) {
			snprintf(name, sizeof(name), "user%u", k);
			archive_entry_set_uname(ae, name);
		}
		if (k % 3)
			archive_entry_set_gname(ae, many_groups[k % 7]);
		ck_assert_msg(idx_builder_add(b, ae, off, &e) == 0, "%s", e.msg);
		off += 512;
	}
	/*
	 * Names of 65,535 bytes (the most a compact entry holds), 65,536 and 70,000:
	 * idx_normalise() and the builder set no limit on a component's length.
	 */
	static const size_t longs[] = { LONG1, LONG2, LONG3 };
	for (size_t k = 0; k < 3; k++) {
		archive_entry_clear(ae);
		memcpy(longpath, "long/", 5);
		for (size_t j = 0; j < longs[k]; j++)
			longpath[5 + j] = (char)('a' + (j * 7 + k) % 26);
		longpath[5 + longs[k]] = '\0';
		archive_entry_set_pathname(ae, longpath);
		archive_entry_set_mode(ae, S_IFREG | 0600);
		archive_entry_set_size(ae, (la_int64_t)k);
		ck_assert_msg(idx_builder_add(b, ae, off, &e) == 0, "%s", e.msg);
		off += 1024;
	}
	archive_entry_free(ae);
	ck_assert_int_eq(idx_builder_finish(b, &blob, &len, &e), 0);
	idx_builder_free(b);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	expect_blob_reads_back(x, blob, len);
	idx_close(x);
	x = open_as_native(blob, len, "owners.tar.zst");
	expect_blob_reads_back(x, blob, len);

	/* each file against what went in, not only against the blob */
	uint32_t files = 0;
	for (uint32_t i = 0; i < idx_count(x); i++) {
		struct idx_entry d;
		unsigned k;
		idx_get(x, i, &d);
		if (d.name_len != 6 || d.name[0] != 'f' || sscanf(d.name + 1, "%5u", &k) != 1)
			continue;
		files++;
		EXPECT(d.uid == 100000 + k && d.gid == k % 7, "file %u: owner %u:%u", k, d.uid, d.gid);
		if (k % 5)
			snprintf(name, sizeof(name), "user%u", k);
		else
			name[0] = '\0';
		EXPECT(d.uname_len == strlen(name) && memcmp(d.uname, name, d.uname_len) == 0,
		       "file %u: user name '%.*s'", k, (int)d.uname_len, d.uname);
		EXPECT(d.gname_len == (k % 3 ? strlen(many_groups[k % 7]) : 0) &&
			       memcmp(d.gname, many_groups[k % 7], d.gname_len) == 0,
		       "file %u: group name '%.*s'", k, (int)d.gname_len, d.gname);
	}
	ck_assert_uint_eq(files, NFILES);
	for (size_t k = 0; k < 3; k++) {
		struct idx_entry d;
		uint32_t i;
		for (size_t j = 0; j < longs[k]; j++)
			longpath[5 + j] = (char)('a' + (j * 7 + k) % 26);
		i = idx_lookup(x, idx_lookup_path(x, "long"), longpath + 5, longs[k]);
		ck_assert_uint_ne(i, IDX_NONE);
		idx_get(x, i, &d);
		ck_assert_uint_eq(d.name_len, longs[k]);
		ck_assert_int_eq(memcmp(d.name, longpath + 5, longs[k]), 0);
		ck_assert_uint_eq(d.size, k);
	}
	idx_close(x);
	free(blob);
	free(longpath);
}
END_TEST

/*
 * A compact entry packs size with mode (48 + 16 bits) and seconds with
 * nanoseconds (34 signed + 30 bits). Each value at, and one past, what its
 * packed field holds, alone and with its neighbour in the word, must read back
 * as stored: past the bound it is kept whole, through an extension record.
 * The cases go on an entry that is otherwise compact and on two that have an
 * extension record anyway, so neither side of the choice goes untested.
 */
START_TEST(packed_fields_read_back_at_their_bounds)
{
	enum { NOFIELD = IDX_E_SIZEOF };
	static const uint64_t s48 = 1ull << 48, s33 = 1ull << 33, n30 = 1u << 30;
	static const struct {
		size_t f1;
		uint64_t v1;
		size_t f2;
		uint64_t v2;
	} cases[] = {
		{ IDX_E_SIZE, s48 - 1, NOFIELD, 0 },
		{ IDX_E_SIZE, s48, NOFIELD, 0 },
		{ IDX_E_SIZE, s48 + 1, NOFIELD, 0 },
		{ IDX_E_SIZE, UINT64_MAX, NOFIELD, 0 },
		{ IDX_E_SIZE, s48 - 1, IDX_E_MODE, 0xFFFF },	/* the word all ones */
		{ IDX_E_SIZE, s48, IDX_E_MODE, 0xFFFF },
		{ IDX_E_SIZE, 0, IDX_E_MODE, 0xFFFF },
		{ IDX_E_MTIME, s33 - 1, NOFIELD, 0 },
		{ IDX_E_MTIME, s33, NOFIELD, 0 },
		{ IDX_E_MTIME, -s33, NOFIELD, 0 },
		{ IDX_E_MTIME, -s33 - 1, NOFIELD, 0 },
		{ IDX_E_MTIME, (uint64_t)INT64_MIN, NOFIELD, 0 },
		{ IDX_E_MTIME, INT64_MAX, NOFIELD, 0 },
		{ IDX_E_MTIME, (uint64_t)-1, NOFIELD, 0 },
		{ IDX_E_MTIME, 0, NOFIELD, 0 },
		{ IDX_E_NSEC, 999999999, NOFIELD, 0 },
		{ IDX_E_NSEC, n30 - 1, NOFIELD, 0 },
		{ IDX_E_NSEC, n30, NOFIELD, 0 },
		{ IDX_E_NSEC, UINT32_MAX, NOFIELD, 0 },
		{ IDX_E_MTIME, s33 - 1, IDX_E_NSEC, n30 - 1 },	/* the word all ones */
		{ IDX_E_MTIME, -s33, IDX_E_NSEC, 0 },		/* the word all zeros */
		{ IDX_E_MTIME, -s33, IDX_E_NSEC, n30 - 1 },
		{ IDX_E_MTIME, s33 - 1, IDX_E_NSEC, n30 },
		{ IDX_E_MTIME, -s33 - 1, IDX_E_NSEC, 999999999 },
		{ IDX_E_MTIME, s33, IDX_E_SIZE, s48 },
		{ IDX_E_NSEC, n30, IDX_E_SIZE, s48 - 1 },
	};
	size_t len;
	unsigned char *good = rich_blob(&len), *bad = malloc(len);
	struct idx *x;
	struct err e;
	uint32_t ents[3];

	ck_assert_ptr_nonnull(bad);
	ck_assert_msg(idx_open_blob(good, len, "t", &x, &e) == 0, "%s", e.msg);
	ents[0] = idx_lookup_path(x, "empty");		/* compact */
	ents[1] = idx_lookup_path(x, "dev/null");	/* an extension record for rdev */
	ents[2] = idx_lookup_path(x, "emptydir");	/* and for nlink */
	ck_assert(ents[0] != IDX_NONE && ents[1] != IDX_NONE && ents[2] != IDX_NONE);
	idx_close(x);
	/* a file of 2^64 - 1 bytes can only start at 0 (data_outside() in index.c) */
	poke_ent(good, ents[0], IDX_E_DATA_OFF, 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		for (size_t j = 0; j < 3; j++) {
			memcpy(bad, good, len);
			poke_ent(bad, ents[j], cases[k].f1, cases[k].v1);
			if (cases[k].f2 != NOFIELD)
				poke_ent(bad, ents[j], cases[k].f2, cases[k].v2);
			ck_assert_msg(idx_open_blob(bad, len, "t", &x, &e) == 0, "case %zu: %s", k,
				      e.msg);
			expect_blob_reads_back(x, bad, len);
			idx_close(x);
		}
	free(bad);
	free(good);
}
END_TEST

/*
 * A compact entry holds owner numbers up to 32,767 (15 bits; the 16th is the
 * extension flag). Entry i is given owner number i: its stored uid is i, the
 * first of its kind. Entries cycle through plain files (compact) and symlinks
 * and directories (extension records), so each side of 32,767 is seen on both;
 * the last entries reuse owners 32,767 and 32,768, again on both kinds.
 */
START_TEST(owners_past_32767_read_back)
{
	enum { NFILES = 32800, LAST = 32767, REUSED = 8 };
	struct idx_builder *b = idx_builder_new(1, NULL);
	char name[64];
	uint64_t off = 0;
	size_t len;
	unsigned char *blob;
	struct idx *x;
	struct idx_entry d;
	struct err e;

	ck_assert_ptr_nonnull(b);
	for (uint32_t k = 0; k < NFILES; k++) {
		static const unsigned kinds[] = { S_IFREG | 0644, S_IFLNK | 0777, S_IFREG | 0600,
						  S_IFDIR | 0755 };
		struct archive_entry *ae;
		snprintf(name, sizeof(name), "o/f%05u", k);
		ae = ent_new(name, kinds[k % 4], 1700000000 + k, (long)k);
		if (S_ISLNK(kinds[k % 4]))
			archive_entry_set_symlink(ae, "t");
		else if (k % 4 == 2)
			archive_entry_set_size(ae, 5);
		put(b, ae, &off);
	}
	blob = blob_of(b, &len);
	struct stored s = parse_body(blob, len);
	ck_assert_uint_eq(s.n, NFILES + 2);	/* the root, "o" and its files, in name order */
	for (uint32_t i = 0; i < s.n; i++) {
		uint32_t uid = i < s.n - REUSED ? i : LAST + (i - (s.n - REUSED)) / 2 % 2;
		poke_ent(blob, i, IDX_E_UID, uid);
		poke_ent(blob, i, IDX_E_GID, 0);
		poke_ent(blob, i, IDX_E_UNAME, 0);
		poke_ent(blob, i, IDX_E_UNAME + 4, 0);
		poke_ent(blob, i, IDX_E_GNAME, 0);
		poke_ent(blob, i, IDX_E_GNAME + 4, 0);
	}
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	expect_blob_reads_back(x, blob, len);

	/* the premise: both kinds on each side of the bound, and among the reused */
	idx_get(x, LAST, &d);
	ck_assert(S_ISLNK(d.mode) && d.uid == LAST);
	idx_get(x, LAST + 1, &d);
	ck_assert(S_ISREG(d.mode) && d.nlink == 1 && d.uid == LAST + 1);
	idx_get(x, LAST + 2, &d);
	ck_assert(S_ISDIR(d.mode) && d.uid == LAST + 2);
	idx_get(x, LAST - 1, &d);
	ck_assert(S_ISREG(d.mode) && d.nlink == 1 && d.uid == LAST - 1);
	unsigned seen[2][2] = { { 0 } };	/* [owner - LAST][has an extension record] */
	for (uint32_t i = s.n - REUSED; i < s.n; i++) {
		idx_get(x, i, &d);
		ck_assert(d.uid == LAST || d.uid == LAST + 1);
		seen[d.uid - LAST][!S_ISREG(d.mode)]++;
	}
	ck_assert(seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
	idx_close(x);
	free(blob);
}
END_TEST

static void expect_refused(const unsigned char *blob, size_t len, const char *what)
{
	struct idx *x = NULL;
	struct err e;

	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == -1, "%s: opened", what);
	ck_assert_msg(e.code == EIO, "%s: code %d (%s)", what, e.code, e.msg);
}

START_TEST(damaged_compact_fields_are_refused)
{
	size_t len;
	unsigned char *good = rich_blob(&len), *bad = malloc(len);
	struct stored s = parse_body(good, len);
	struct idx *x;
	struct idx_entry d;
	struct err e;
	size_t xoff = (size_t)(s.xattrs - good);	/* the xattr table in the blob */
	size_t soff;	/* sparse/file's regions in the blob */
	uint32_t n = s.n, leaf, dir, hard, sym, xa, sp, nul, none, xa_dir;

	ck_assert_ptr_nonnull(bad);
	ck_assert_msg(idx_open_blob(good, len, "t", &x, &e) == 0, "%s", e.msg);
	leaf = idx_lookup_path(x, "deep/a/b/c/d/e/f/leaf");
	dir = idx_lookup_path(x, "deep/a/b/c");	/* implied, one child */
	hard = idx_lookup_path(x, "links/hard");
	sym = idx_lookup_path(x, "bin/sh");
	xa = idx_lookup_path(x, "xa/one");
	sp = idx_lookup_path(x, "sparse/file");
	nul = idx_lookup_path(x, "dev/null");
	none = idx_lookup_path(x, "empty");	/* a plain file: a compact entry */
	xa_dir = idx_lookup_path(x, "xa");
	ck_assert(leaf != IDX_NONE && dir != IDX_NONE && hard != IDX_NONE && sym != IDX_NONE &&
		  xa != IDX_NONE && sp != IDX_NONE && nul != IDX_NONE && none != IDX_NONE);
	idx_get(x, dir, &d);
	ck_assert_uint_eq(d.nchildren, 1);
	idx_get(x, sp, &d);
	ck_assert_uint_eq(d.nsparse, 3);
	soff = (size_t)(s.sparse - good) + (size_t)d.sparse_first * IDX_S_SIZEOF;
	idx_close(x);
	ck_assert_uint_lt(dir, n - 2);
	ck_assert_uint_lt(none, n - 1);
	uint32_t dfc = le32_get(stored_ent(&s, dir) + IDX_E_FIRST_CHILD);
	uint32_t rfc = le32_get(stored_ent(&s, IDX_ROOT) + IDX_E_FIRST_CHILD);
	uint32_t rnc = le32_get(stored_ent(&s, IDX_ROOT) + IDX_E_NCHILDREN);
	uint32_t last = rfc + rnc - 1;	/* the root's last child: "xa", a directory */
	uint32_t below = le32_get(stored_ent(&s, last) + IDX_E_FIRST_CHILD);
	ck_assert_uint_eq(last, xa_dir);
	ck_assert_uint_gt(below, last);

	/* each damage on a fresh copy of the good blob */
#define DAMAGE(what, ...)                               \
	do {                                            \
		memcpy(bad, good, len);                 \
		__VA_ARGS__;                            \
		expect_refused(bad, len, what);         \
	} while (0)

	/* parents */
	DAMAGE("parent is the entry itself", poke_ent(bad, leaf, IDX_E_PARENT, leaf));
	DAMAGE("parent after the entry", poke_ent(bad, none, IDX_E_PARENT, none + 1));
	DAMAGE("parent past the end", poke_ent(bad, none, IDX_E_PARENT, n));
	DAMAGE("parent UINT32_MAX", poke_ent(bad, leaf, IDX_E_PARENT, UINT32_MAX));
	/* children */
	DAMAGE("root's children past the end", poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, rnc + n));
	DAMAGE("child range over the end", poke_ent(bad, dir, IDX_E_FIRST_CHILD, n - 1);
	       poke_ent(bad, dir, IDX_E_NCHILDREN, 2));
	DAMAGE("first child wraps around", poke_ent(bad, dir, IDX_E_FIRST_CHILD, UINT32_MAX);
	       poke_ent(bad, dir, IDX_E_NCHILDREN, 2));
	DAMAGE("child count wraps around", poke_ent(bad, dir, IDX_E_NCHILDREN, UINT32_MAX));
	DAMAGE("first child is the directory itself", poke_ent(bad, dir, IDX_E_FIRST_CHILD, dir));
	DAMAGE("first child before the directory", poke_ent(bad, dir, IDX_E_FIRST_CHILD, 1));
	DAMAGE("children with another parent", poke_ent(bad, dir, IDX_E_FIRST_CHILD, dfc + 1));
	/* entries no directory lists: only their own parent field guards a walk up */
	DAMAGE("orphan whose parent is past the end",
	       poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, rnc - 1);
	       poke_ent(bad, last, IDX_E_PARENT, n));
	DAMAGE("orphan whose parent is itself", poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, rnc - 1);
	       poke_ent(bad, last, IDX_E_PARENT, last));
	DAMAGE("orphan in a parent cycle", poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, rnc - 1);
	       poke_ent(bad, last, IDX_E_PARENT, below));
	DAMAGE("children of a regular file", poke_ent(bad, none, IDX_E_FIRST_CHILD, none + 1);
	       poke_ent(bad, none, IDX_E_NCHILDREN, 1));
	/* hard link targets */
	DAMAGE("hard link to the root", poke_ent(bad, hard, IDX_E_TARGET, IDX_ROOT));
	DAMAGE("hard link to a directory", poke_ent(bad, hard, IDX_E_TARGET, dir));
	/* (to a symlink or a device is fine: foreign_hard_links_to_a_symlink_and_a_fifo) */
	DAMAGE("hard link past the end", poke_ent(bad, hard, IDX_E_TARGET, n));
	DAMAGE("hard link UINT32_MAX", poke_ent(bad, hard, IDX_E_TARGET, UINT32_MAX));
	DAMAGE("plain file's target a directory", poke_ent(bad, none, IDX_E_TARGET, dir));
	/* strings */
	DAMAGE("name offset past the strings", poke_ent(bad, leaf, IDX_E_NAME, s.nstrings));
	DAMAGE("name ends past the strings", poke_ent(bad, leaf, IDX_E_NAME, s.nstrings - 3));
	DAMAGE("name length past the strings", poke_ent(bad, leaf, IDX_E_NAME + 4, s.nstrings + 1));
	DAMAGE("name range wraps around", poke_ent(bad, leaf, IDX_E_NAME, 16);
	       poke_ent(bad, leaf, IDX_E_NAME + 4, UINT32_MAX - 8));
	DAMAGE("compact entry's name past the strings", poke_ent(bad, none, IDX_E_NAME, s.nstrings));
	DAMAGE("link past the strings", poke_ent(bad, sym, IDX_E_LINK, s.nstrings));
	DAMAGE("link length past the strings", poke_ent(bad, hard, IDX_E_LINK + 4, s.nstrings));
	DAMAGE("user name past the strings", poke_ent(bad, none, IDX_E_UNAME, s.nstrings);
	       poke_ent(bad, none, IDX_E_UNAME + 4, 1));
	DAMAGE("group name past the strings", poke_ent(bad, xa, IDX_E_GNAME + 4, s.nstrings + 1));
	/* extended attributes and sparse regions */
	DAMAGE("xattrs start past the table", poke_ent(bad, xa, IDX_E_XATTRS, s.nxattrs));
	DAMAGE("xattrs end past the table", poke_ent(bad, xa, IDX_E_XATTRS, s.nxattrs - 2));
	DAMAGE("xattr count past the table", poke_ent(bad, xa, IDX_E_XATTRS + 4, s.nxattrs + 1));
	DAMAGE("xattr range wraps around", poke_ent(bad, xa, IDX_E_XATTRS, UINT32_MAX));
	DAMAGE("xattrs on a compact entry", poke_ent(bad, none, IDX_E_XATTRS + 4, s.nxattrs + 1));
	DAMAGE("sparse regions past the table", poke_ent(bad, sp, IDX_E_SPARSE, s.nsparse));
	DAMAGE("sparse count past the table", poke_ent(bad, sp, IDX_E_SPARSE + 4, s.nsparse + 1));
	DAMAGE("sparse range wraps around", poke_ent(bad, sp, IDX_E_SPARSE, UINT32_MAX - 1));
	/* a file's bytes placed past 2^64 would wrap around to the archive's first ones */
	DAMAGE("file data wraps around", poke_ent(bad, leaf, IDX_E_DATA_OFF, UINT64_MAX - 2));
	DAMAGE("sparse data wraps around", poke_ent(bad, sp, IDX_E_DATA_OFF, UINT64_MAX - 4096));
	DAMAGE("sparse region past the file",
	       le64_put(bad + soff + 2 * IDX_S_SIZEOF + IDX_S_OFF, (10u << 20) - 99));
	DAMAGE("sparse region wraps around",
	       le64_put(bad + soff + 2 * IDX_S_SIZEOF + IDX_S_LEN, UINT64_MAX - 50));
	DAMAGE("sparse regions overlap", le64_put(bad + soff + IDX_S_SIZEOF + IDX_S_OFF, 4095));
	DAMAGE("sparse regions out of order", le64_put(bad + soff + IDX_S_OFF, 2u << 20));
	DAMAGE("xattr name past the strings", le32_put(bad + xoff + IDX_X_NAME, s.nstrings));
	DAMAGE("xattr value past the strings",
	       le32_put(bad + xoff + IDX_X_SIZEOF + IDX_X_VALUE + 4, s.nstrings + 1));
#undef DAMAGE
	free(bad);
	free(good);
}
END_TEST

/* Refused with EIO, by the check whose message holds why. */
static void expect_refused_as(const unsigned char *blob, size_t len, const char *what,
			      const char *why)
{
	struct idx *x = NULL;
	struct err e;

	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == -1, "%s: opened", what);
	ck_assert_msg(e.code == EIO && strstr(e.msg, why), "%s: code %d (%s), not '%s'", what,
		      e.code, e.msg, why);
}

/* The directories of a stored body that have children, in entry order; returns how many. */
static uint32_t stored_parents(const struct stored *s, uint32_t *dirs, uint32_t max)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->n; i++)
		if (le32_get(stored_ent(s, i) + IDX_E_NCHILDREN)) {
			ck_assert_uint_lt(n, max);
			dirs[n++] = i;
		}
	return n;
}

/* The next two tests: bad is good (len bytes) with the statements applied; refused with why. */
#define DAMAGE(what, why, ...)                          \
	do {                                            \
		memcpy(bad, good, len);                 \
		__VA_ARGS__;                            \
		expect_refused_as(bad, len, what, why); \
	} while (0)

/*
 * Parents are not kept per entry but found from the directories' child ranges,
 * so loading checks that the ranges say what the stored parents say: they
 * follow one another, breadth first, with no gap and no overlap, and each
 * entry lies in its stored parent's range.
 */
START_TEST(damaged_child_ranges_are_refused)
{
	size_t len;
	unsigned char *good = rich_blob(&len), *bad = malloc(len);
	struct stored s = parse_body(good, len);
	struct idx *x;
	struct err e;
	uint32_t dirs[64], nd = stored_parents(&s, dirs, 64), n = s.n;
	uint32_t leaf, c, none, bin, big, wide = UINT32_MAX, order = UINT32_MAX;

	ck_assert_ptr_nonnull(bad);
	ck_assert_msg(idx_open_blob(good, len, "t", &x, &e) == 0, "%s", e.msg);
	leaf = idx_lookup_path(x, "deep/a/b/c/d/e/f/leaf");
	c = idx_lookup_path(x, "deep/a/b/c");
	none = idx_lookup_path(x, "empty");
	bin = idx_lookup_path(x, "bin");
	big = idx_lookup_path(x, "big.iso");
	idx_close(x);
	ck_assert(c < leaf && bin < none && big < none);
#define FIRST(k) le32_get(stored_ent(&s, dirs[k]) + IDX_E_FIRST_CHILD)
#define COUNT(k) le32_get(stored_ent(&s, dirs[k]) + IDX_E_NCHILDREN)
	/* the premise: the ranges tile [1, n) in the order of their directories */
	ck_assert_uint_gt(nd, 4);
	ck_assert_uint_eq(dirs[0], IDX_ROOT);
	ck_assert_uint_eq(FIRST(0), 1);
	for (uint32_t k = 1; k < nd; k++)
		ck_assert_uint_eq(FIRST(k), FIRST(k - 1) + COUNT(k - 1));
	ck_assert_uint_eq(FIRST(nd - 1) + COUNT(nd - 1), n);
	/* a range of two or more children before another; one far enough after its directory */
	for (uint32_t k = 1; k + 1 < nd; k++) {
		if (wide == UINT32_MAX && COUNT(k) >= 2 && FIRST(k + 1) - 2 > dirs[k + 1])
			wide = k;
		if (order == UINT32_MAX && FIRST(k) - 1 > dirs[k + 1])
			order = k;
	}
	ck_assert(wide != UINT32_MAX && order != UINT32_MAX);

	/* an entry outside its stored parent's range, the parent itself before it */
	DAMAGE("parent a directory higher up", "outside its parent",
	       poke_ent(bad, leaf, IDX_E_PARENT, c));
	DAMAGE("parent the root, two levels down", "outside its parent",
	       poke_ent(bad, c, IDX_E_PARENT, IDX_ROOT));
	DAMAGE("parent a sibling directory", "outside its parent",
	       poke_ent(bad, none, IDX_E_PARENT, bin));
	DAMAGE("parent a regular file", "outside its parent",
	       poke_ent(bad, none, IDX_E_PARENT, big));
	DAMAGE("root's parent not itself", "root is not a directory whose parent is itself",
	       poke_ent(bad, IDX_ROOT, IDX_E_PARENT, 1));
	/* ranges overlapping, or out of order, or past the end */
	DAMAGE("range starts inside the one before", "overlap",
	       poke_ent(bad, dirs[wide + 1], IDX_E_FIRST_CHILD, FIRST(wide + 1) - 1));
	DAMAGE("range takes the last entry of the one before, parent and all", "overlap",
	       poke_ent(bad, dirs[wide + 1], IDX_E_FIRST_CHILD, FIRST(wide + 1) - 1);
	       poke_ent(bad, dirs[wide + 1], IDX_E_NCHILDREN, COUNT(wide + 1) + 1);
	       poke_ent(bad, FIRST(wide + 1) - 1, IDX_E_PARENT, dirs[wide + 1]));
	DAMAGE("range starts with the one before", "overlap",
	       poke_ent(bad, dirs[wide + 1], IDX_E_FIRST_CHILD, FIRST(wide)));
	DAMAGE("range starts before the one before", "out of order",
	       poke_ent(bad, dirs[order + 1], IDX_E_FIRST_CHILD, FIRST(order) - 1));
	DAMAGE("last range past the end", "children out of range",
	       poke_ent(bad, dirs[nd - 1], IDX_E_NCHILDREN, COUNT(nd - 1) + 1));
	DAMAGE("a regular file with children", "children out of range",
	       poke_ent(bad, dirs[wide], IDX_E_MODE, S_IFREG | 0644));
	/* orphans: entries in no range, their stored parents left as they were */
	DAMAGE("root's last child dropped", "orphan",
	       poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, COUNT(0) - 1));
	DAMAGE("root's first child dropped", "orphan",
	       poke_ent(bad, IDX_ROOT, IDX_E_FIRST_CHILD, 2);
	       poke_ent(bad, IDX_ROOT, IDX_E_NCHILDREN, COUNT(0) - 1));
	DAMAGE("a middle directory's last child dropped", "orphan",
	       poke_ent(bad, dirs[wide], IDX_E_NCHILDREN, COUNT(wide) - 1));
	DAMAGE("the last entry dropped", "orphan",
	       poke_ent(bad, dirs[nd - 1], IDX_E_NCHILDREN, COUNT(nd - 1) - 1));
	DAMAGE("a directory's whole range dropped", "orphan",
	       poke_ent(bad, dirs[wide], IDX_E_FIRST_CHILD, 0);
	       poke_ent(bad, dirs[wide], IDX_E_NCHILDREN, 0));
#undef FIRST
#undef COUNT
	free(bad);
	free(good);
}
END_TEST

/*
 * Lookups search a directory's children by name, so loading checks what the
 * search needs: every name but the root's is one path component, and sorts
 * after its previous sibling's, never equal to it; the root's is empty.
 * (Found by tests/fuzz: an index whose names were out of order opened, and
 * some of its files could be listed but not looked up.)
 */
START_TEST(damaged_names_are_refused)
{
	size_t len;
	unsigned char *good = rich_blob(&len), *bad = malloc(len);
	struct stored s = parse_body(good, len);
	size_t strings = (size_t)((const unsigned char *)s.strings - good);
	struct idx *x;
	struct err e;
	uint32_t alice, bob, carol;

	ck_assert_ptr_nonnull(bad);
	ck_assert_msg(idx_open_blob(good, len, "t", &x, &e) == 0, "%s", e.msg);
	alice = idx_lookup_path(x, "home/alice");
	bob = idx_lookup_path(x, "home/bob");
	carol = idx_lookup_path(x, "home/carol");
	idx_close(x);
	ck_assert(alice != IDX_NONE && bob == alice + 1 && carol == bob + 1);
#define NAME_OFF(i) le32_get(stored_ent(&s, i) + IDX_E_NAME)
#define NAME_LEN(i) le32_get(stored_ent(&s, i) + IDX_E_NAME + 4)
#define NAME_AT(i) ((char *)bad + strings + NAME_OFF(i))

	ck_assert_uint_eq(NAME_LEN(bob), 3);
	/* not one path component */
	DAMAGE("an empty name", "name that is", poke_ent(bad, bob, IDX_E_NAME + 4, 0));
	DAMAGE("'.'", "name that is", poke_ent(bad, bob, IDX_E_NAME + 4, 1); *NAME_AT(bob) = '.');
	DAMAGE("'..'", "name that is",
	       poke_ent(bad, bob, IDX_E_NAME + 4, 2); memcpy(NAME_AT(bob), "..", 2));
	DAMAGE("a slash", "name that is", NAME_AT(bob)[1] = '/');
	DAMAGE("a NUL", "name that is", NAME_AT(bob)[1] = '\0');
	DAMAGE("a name for the root", "root with a name",
	       poke_ent(bad, IDX_ROOT, IDX_E_NAME, NAME_OFF(bob));
	       poke_ent(bad, IDX_ROOT, IDX_E_NAME + 4, NAME_LEN(bob)));
	/* out of order, or twice */
	DAMAGE("two siblings swapped", "names out of order",
	       poke_ent(bad, bob, IDX_E_NAME, NAME_OFF(carol));
	       poke_ent(bad, bob, IDX_E_NAME + 4, NAME_LEN(carol));
	       poke_ent(bad, carol, IDX_E_NAME, NAME_OFF(bob));
	       poke_ent(bad, carol, IDX_E_NAME + 4, NAME_LEN(bob)));
	DAMAGE("one name twice", "names out of order",
	       poke_ent(bad, bob, IDX_E_NAME, NAME_OFF(alice));
	       poke_ent(bad, bob, IDX_E_NAME + 4, NAME_LEN(alice)));
	/* a prefix sorts first: "bob" then "bobol" is in order, "bobol" then "bob" is not */
	memcpy(bad, good, len);
	ck_assert_uint_ge(NAME_LEN(carol), 5);
	memcpy(NAME_AT(carol), "bob", 3);
	ck_assert_msg(idx_open_blob(bad, len, "t", &x, &e) == 0, "'bob' then 'bobol': %s", e.msg);
	idx_close(x);
	DAMAGE("a name after a longer one it begins", "names out of order",
	       memcpy(NAME_AT(carol), "bob", 3);
	       poke_ent(bad, bob, IDX_E_NAME, NAME_OFF(carol));
	       poke_ent(bad, bob, IDX_E_NAME + 4, NAME_LEN(carol));
	       poke_ent(bad, carol, IDX_E_NAME, NAME_OFF(bob));
	       poke_ent(bad, carol, IDX_E_NAME + 4, NAME_LEN(bob)));
#undef DAMAGE
#undef NAME_AT
#undef NAME_LEN
#undef NAME_OFF
	free(bad);
	free(good);
}
END_TEST

/*
 * Two directories whose children are stored in the other's order: a tree that
 * holds together (every parent before its children, every child's parent the
 * directory listing it) but is not breadth first, so parents could not be
 * found from the ranges. The builder never writes it; loading refuses it.
 */
START_TEST(ranges_not_breadth_first_are_refused)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	unsigned char *blob;
	size_t len;
	struct idx *x;
	struct err e;

	add(b, "A/x", S_IFREG | 0644, NULL, 0, 0);
	add(b, "B/y", S_IFREG | 0644, NULL, 0, 0);
	blob = blob_of(b, &len);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_lookup_path(x, "A") == 1 && idx_lookup_path(x, "B") == 2);
	ck_assert(idx_lookup_path(x, "A/x") == 3 && idx_lookup_path(x, "B/y") == 4);
	idx_close(x);
	poke_ent(blob, 1, IDX_E_FIRST_CHILD, 4);
	poke_ent(blob, 2, IDX_E_FIRST_CHILD, 3);
	poke_ent(blob, 3, IDX_E_PARENT, 2);
	poke_ent(blob, 4, IDX_E_PARENT, 1);
	expect_refused(blob, len, "ranges swapped");
	free(blob);
}
END_TEST

/*
 * An entry after the last range, whose stored parent is the directory of that
 * range: the range ends before it, so the entry is in no directory.
 */
START_TEST(entry_after_the_last_range_is_an_orphan)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	unsigned char *blob;
	size_t len;
	struct idx *x;
	struct err e;

	add(b, "A/x", S_IFREG | 0644, NULL, 0, 0);
	add(b, "A/y", S_IFREG | 0644, NULL, 0, 0);
	blob = blob_of(b, &len);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_count(x) == 4 && idx_lookup_path(x, "A/y") == 3);
	idx_close(x);
	poke_ent(blob, 1, IDX_E_NCHILDREN, 1);
	expect_refused_as(blob, len, "A lists x only", "orphan");
	free(blob);
}
END_TEST

/*
 * Each entry's parent, found from the child ranges, against the stored one
 * and against the ranges read back: in a chain 300 deep, in 2,000 directories
 * of which some are empty, some hold one entry and some a subdirectory, among
 * the root's children, and for the last entry.
 */
START_TEST(parents_read_back_in_deep_and_wide_trees)
{
	enum { DEPTH = 300, NDIRS = 2000 };
	struct idx_builder *b = idx_builder_new(1, NULL);
	char *deep = malloc(2 * DEPTH + 64), path[4096], name[64];
	unsigned char *blob;
	size_t len, dl = 0;
	uint32_t want = 1 + 10 + 1 + NDIRS + DEPTH + 2;	/* and the files and subdirectories */
	struct idx *x;
	struct idx_entry d, c;
	struct err e;

	ck_assert_ptr_nonnull(deep);
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "r%d", k);
		add(b, name, S_IFREG | 0644, NULL, 1, 0);
	}
	for (int k = 0; k < NDIRS; k++) {
		snprintf(name, sizeof(name), "w/d%04d", k);
		if (k % 3 == 0) {
			add(b, name, S_IFDIR | 0755, NULL, 0, 0);	/* empty */
			continue;
		}
		for (int j = 0; j < k % 5 + 1; j++) {
			snprintf(path, sizeof(path), "%s/f%d", name, j);
			add(b, path, S_IFREG | 0644, NULL, 1, 0);
			want++;
		}
		if (k % 7 == 0) {
			snprintf(path, sizeof(path), "%s/sub/g", name);
			add(b, path, S_IFREG | 0644, NULL, 1, 0);
			want += 2;
		}
	}
	for (int k = 0; k < DEPTH; k++)
		dl += (size_t)sprintf(deep + dl, "%sd", k ? "/" : "");
	/* the deepest level, last of all: an empty directory, then a file */
	snprintf(path, sizeof(path), "%s/empty", deep);
	add(b, path, S_IFDIR | 0755, NULL, 0, 0);
	snprintf(path, sizeof(path), "%s/leaf", deep);
	add(b, path, S_IFREG | 0644, NULL, 1, 0);
	blob = blob_of(b, &len);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	expect_blob_reads_back(x, blob, len);

	/* every entry but the root is the child of exactly the directory idx_get() names */
	uint32_t n = idx_count(x), *seen = calloc(n, sizeof(*seen));
	ck_assert_ptr_nonnull(seen);
	for (uint32_t i = 0; i < n; i++) {
		idx_get(x, i, &d);
		for (uint32_t k = d.first_child; k < d.first_child + d.nchildren; k++) {
			idx_get(x, k, &c);
			EXPECT(c.parent == i, "entry %u: parent %u, listed by %u", k, c.parent, i);
			seen[k]++;
		}
	}
	idx_get(x, IDX_ROOT, &d);
	ck_assert_uint_eq(d.parent, IDX_ROOT);
	ck_assert_uint_eq(seen[IDX_ROOT], 0);
	for (uint32_t i = 1; i < n; i++)
		EXPECT(seen[i] == 1, "entry %u listed %u times", i, seen[i]);
	free(seen);
	/* the premise: the last entry is the deep file; empty directories and the root's files */
	ck_assert_uint_eq(n, want);
	idx_get(x, n - 1, &d);
	ck_assert(d.name_len == 4 && memcmp(d.name, "leaf", 4) == 0);
	ck_assert_uint_eq(d.parent, idx_lookup_path(x, deep));
	ck_assert_int_eq(idx_path(x, n - 1, path, sizeof(path), &e), 0);
	ck_assert_int_eq(strncmp(path, deep, dl), 0);
	ck_assert_str_eq(path + dl, "/leaf");
	idx_get(x, n - 2, &d);
	ck_assert(S_ISDIR(d.mode) && d.nchildren == 0 && d.parent == idx_lookup_path(x, deep));
	idx_get(x, idx_lookup_path(x, "r0"), &d);
	ck_assert_uint_eq(d.parent, IDX_ROOT);
	idx_get(x, idx_lookup_path(x, "w/d0000"), &d);
	ck_assert(S_ISDIR(d.mode) && d.nchildren == 0 && d.parent == idx_lookup_path(x, "w"));
	idx_get(x, idx_lookup_path(x, "w/d1999/f4"), &d);
	ck_assert_uint_eq(d.parent, idx_lookup_path(x, "w/d1999"));
	idx_get(x, idx_lookup_path(x, "w/d1988/sub/g"), &d);
	ck_assert_uint_eq(d.parent, idx_lookup_path(x, "w/d1988/sub"));
	idx_close(x);
	x = open_as_native(blob, len, "tree.tar.zst");
	expect_blob_reads_back(x, blob, len);
	idx_close(x);
	free(blob);
	free(deep);
}
END_TEST

/*
 * Parents in 300 random trees of 1 to a few hundred entries, so that ranges
 * of every size start and end on each side of the 64-entry blocks the reader
 * searches by.
 */
START_TEST(parents_read_back_in_random_trees)
{
	uint64_t seed = 42;

	for (int t = 0; t < 300; t++) {
		struct idx_builder *b = idx_builder_new(1, NULL);
		int members = t < 10 ? t : (int)(fixture_rand(&seed) % 400);
		uint64_t letters = (uint64_t)(t % 12 + 2);
		unsigned char *blob;
		size_t len;
		struct idx *x;
		struct err e;

		for (int k = 0; k < members; k++) {
			char path[16];
			int depth = 1 + (int)(fixture_rand(&seed) % 4), n = 0;
			unsigned mode = fixture_rand(&seed) % 4 ? S_IFREG | 0644 : S_IFDIR | 0755;
			for (int j = 0; j < depth; j++) {
				if (j)
					path[n++] = '/';
				path[n++] = (char)('a' + fixture_rand(&seed) % letters);
			}
			path[n] = '\0';
			add(b, path, mode, NULL, 0, 0);
		}
		blob = blob_of(b, &len);
		ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "tree %d: %s", t, e.msg);
		expect_blob_reads_back(x, blob, len);
		idx_close(x);
		free(blob);
	}
}
END_TEST

/* Every entry of x has the seq of the same entry of y, and seq < members for members. */
static void expect_same_seq(const struct idx *x, const struct idx *y)
{
	ck_assert_uint_eq(idx_count(x), idx_count(y));
	for (uint32_t i = 0; i < idx_count(x); i++) {
		struct idx_entry a, b;
		idx_get(x, i, &a);
		idx_get(y, i, &b);
		EXPECT(a.seq == b.seq && a.seq < idx_members(x), "entry %u: seq %u and %u", i,
		       a.seq, b.seq);
	}
}

/*
 * The daemon opens native archives with no_seq: their entries drop the member
 * positions, and everything else, data included, reads as before. Without the
 * option, or with it false, they keep them (verify compares them).
 */
START_TEST(native_archives_keep_seq_unless_asked_not_to)
{
	const struct idx_opts keep = { .no_seq = false }, drop = { .no_seq = true };
	size_t len, want_len;
	void *blob = rich_blob(&len);
	const char *path = write_as_native(blob, len, "rich.tar.zst");
	struct idx *x;
	struct err e;
	int fd;

	ck_assert_msg(idx_open_with(path, NULL, &x, &e) == 0, "%s", e.msg);
	expect_reads_back(x, blob, len, true);
	idx_close(x);
	ck_assert_msg(idx_open_with(path, &keep, &x, &e) == 0, "%s", e.msg);
	expect_reads_back(x, blob, len, true);
	idx_close(x);
	ck_assert_msg(idx_open_with(path, &drop, &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_is_native(x));
	expect_reads_back(x, blob, len, false);
	idx_close(x);
	ck_assert_int_ge(fd = open(path, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_msg(idx_open_fd(fd, path, &drop, &x, &e) == 0, "%s", e.msg);
	expect_reads_back(x, blob, len, false);
	idx_close(x);
	free(blob);

	/* a real archive: the data reads by offset all the same */
	struct idx_reader *r = idx_reader_new();
	unsigned char got[4000];
	path = native_archive();
	ck_assert_msg(idx_open_with(path, &drop, &x, &e) == 0, "%s", e.msg);
	unsigned char *want = fixture_read(fixture_path("src/a.yaml"), &want_len);
	uint32_t i = idx_lookup_path(x, "a.yaml");
	struct idx_entry d;
	idx_get(x, i, &d);
	ck_assert_uint_eq(d.seq, IDX_NONE);
	ck_assert_int_eq(idx_pread(x, i, got, sizeof(got), 0, r, &e), (ssize_t)want_len);
	ck_assert_int_eq(memcmp(got, want, want_len), 0);
	free(want);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

/* The tar stream of src/ in a seekable zstd file with no snapfs index, as another tool writes. */
static const char *seekable_without_index(void)
{
	const char *path = fixture_path("other.tar.zst");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct zseek_writer *w;
	unsigned char *tar;
	size_t len;
	struct err e;

	run_with("tar cf @A -C @S .", fixture_path("plain.tar"));
	tar = fixture_read(fixture_path("plain.tar"), &len);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zseek_writer_new(fd, path, 1, 1, 1u << 20, &w, &e), 0);
	ck_assert_int_eq(zseek_write(w, tar, len, &e), 0);
	ck_assert_msg(zseek_finish(w, &e) == 0, "%s", e.msg);
	zseek_writer_free(w);
	close(fd);
	free(tar);
	return path;
}

/*
 * Foreign archives are read by member position, so no_seq leaves them as they
 * are: a tar.gz, and a seekable zstd file with no snapfs index (first tried as
 * native, then scanned).
 */
START_TEST(foreign_archives_keep_seq_with_no_seq)
{
	const struct idx_opts drop = { .no_seq = true };
	const char *paths[2];
	struct idx *x, *y;
	struct err e;

	foreign_archive("old.tar.gz", "tar czf @A -C @S .");
	paths[0] = fixture_path("old.tar.gz");
	paths[1] = seekable_without_index();
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(idx_open(paths[k], &y, &e) == 0, "%s", e.msg);
		ck_assert_msg(idx_open_with(paths[k], &drop, &x, &e) == 0, "%s", e.msg);
		ck_assert(!idx_is_native(x));
		ck_assert_uint_gt(idx_members(x), 40);
		expect_same_seq(x, y);
		read_all_in_order(x);
		ck_assert_uint_eq(idx_decoder_starts(x), 1);
		idx_close(x);
		idx_close(y);
	}
}
END_TEST

/* The index frame is written with a 128 KiB window (docs/FORMAT.md), and reads back. */
START_TEST(index_frame_has_a_small_window)
{
	struct idx_builder *b = idx_builder_new(0, NULL);
	char path[64];
	void *blob, *frame;
	size_t len, flen;
	struct err e;
	ZSTD_frameHeader h;
	struct idx *x;

	for (int i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "d%02d/f%05d", i % 50, i);
		add(b, path, AE_IFREG | 0644, NULL, (uint64_t)i, (uint64_t)i * 512);
	}
	ck_assert_int_eq(idx_builder_finish(b, &blob, &len, &e), 0);
	idx_builder_free(b);
	ck_assert_uint_gt(len, 4u << 17);	/* a level-3 window would be bigger than 128 KiB */
	ck_assert_msg(idx_pack_frame(blob, len, 0, &frame, &flen, &e) == 0, "%s", e.msg);
	const unsigned char *z = (const unsigned char *)frame + IDX_HDR_SIZE;
	ck_assert_uint_eq(ZSTD_getFrameHeader(&h, z, flen - IDX_HDR_SIZE), 0);
	ck_assert_uint_le(h.windowSize, 1u << 17);
	ck_assert_uint_eq(ZSTD_decompress(blob, len, z, flen - IDX_HDR_SIZE), len);
	ck_assert_msg(idx_open_blob(blob, len, "t", &x, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(idx_count(x), 5000 + 50 + 1);
	idx_close(x);
	free(frame);
	free(blob);
}
END_TEST

/* Peak RSS in KiB since the last reset_peak(), or -1 where it cannot be read. */
static long peak_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Make the peak RSS the current RSS (Linux 4.0): false where that cannot be done. */
static bool reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	bool ok = f && fputs("5", f) >= 0;

	return f && fclose(f) == 0 && ok;
}

/*
 * An index frame of 64 KiB declaring a body of 48 MiB (the loader's bound is
 * 1024 times the frame), whose stream holds only the body's header and a
 * blank entry in its first block, then garbage: opening it fails, and commits
 * no memory for the body it only claims. The tables of a body this much
 * bigger than its frame get their pages as they are written, not in advance.
 */
START_TEST(index_frame_claiming_a_huge_body_commits_no_memory_for_it)
{
	const char *path = fixture_path("liar.tar.zst");
	const uint64_t body = 48u << 20, tar = 512;
	const size_t flen = IDX_HDR_SIZE + (64u << 10);
	unsigned char *frame = malloc(flen), head[IDX_BODY_HDR_SIZE + IDX_E_SIZEOF] = { 0 };
	unsigned char zero[512] = { 0 };
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct zseek_writer *w;
	struct idx *x;
	struct err e;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_ptr_nonnull(frame);
	ck_assert_int_ge(fd, 0);
	memset(frame, 0xFF, flen);	/* past the first block: a block of a reserved type */
	memcpy(frame + IDX_HDR_MAGIC, IDX_MAGIC, 8);
	le32_put(frame + IDX_HDR_VERSION, IDX_VERSION);
	le32_put(frame + IDX_HDR_FLAGS, 0);
	le64_put(frame + IDX_HDR_TAR_SIZE, tar);
	le64_put(frame + IDX_HDR_BODY_SIZE, body);
	le32_put(head + IDX_BODY_ENTRIES, 1);
	le32_put(head + IDX_BODY_STRINGS, (uint32_t)(body - sizeof(head)));
	ZSTD_outBuffer out = { frame + IDX_HDR_SIZE, flen - IDX_HDR_SIZE, 0 };
	ZSTD_inBuffer in = { head, sizeof(head), 0 };	/* the body's header, a blank entry */
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cc, body)));
	ck_assert_uint_eq(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_flush), 0);
	ZSTD_freeCCtx(cc);

	ck_assert_int_eq(zseek_writer_new(fd, path, 3, 1, 65536, &w, &e), 0);
	ck_assert_int_eq(zseek_write(w, zero, sizeof(zero), &e), 0);
	ck_assert_int_eq(zseek_write_skippable(w, IDX_FRAME_KIND, frame, flen, &e), 0);
	ck_assert_int_eq(zseek_finish(w, &e), 0);
	zseek_writer_free(w);
	close(fd);
	free(frame);

	if (!reset_peak() || peak_kib() < 0) {
		fixture_skip("index_frame_claiming_a_huge_body: peak RSS cannot be reset here");
		return;
	}
	long before = peak_kib();
	ck_assert_int_eq(idx_open(path, &x, &e), -1);
	ck_assert_msg(strstr(e.msg, "damaged"), "%s", e.msg);
	long grew = peak_kib() - before;
	ck_assert_msg(grew < 16 * 1024, "opening it took %ld KiB more at its peak", grew);
}
END_TEST

/*
 * The mount's inode numbers are derived from this hash (fs/tree.c), so its
 * values must never change: these are the values the first versions gave.
 */
START_TEST(hash_fnv_keeps_its_values)
{
	ck_assert_uint_eq(hash_fnv("", 0), 0x14650fb0739d0383ull);
	ck_assert_uint_eq(hash_fnv("a", 1), 0x44bd8ad473cd9906ull);
	ck_assert_uint_eq(hash_fnv("foobar", 6), 0x88fad7c0a8ff07f2ull);
	ck_assert_uint_eq(hash_fnv("svc/app-20261206_181311.tar.zst", 31), 0x487ced14627330cbull);
	ck_assert_uint_eq(hash_fnv("a\nb", 2), hash_fnv("a\nc", 2));	/* len bytes, no more */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("index");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, paths_are_normalised_and_parents_implied);
	tcase_add_test(tc, member_climbing_out_is_skipped);
	tcase_add_test(tc, children_are_sorted_and_contiguous);
	tcase_add_test(tc, later_member_replaces_earlier);
	tcase_add_test(tc, hard_links_share_one_target_and_count_links);
	tcase_add_test(tc, a_hard_link_with_a_directory_mode_is_no_directory);
	tcase_add_test(tc, truncated_blob_is_refused);
	tcase_add_test(tc, flipped_blob_byte_is_refused_or_harmless);
	tcase_add_test(tc, absurd_counts_are_refused);
	tcase_add_test(tc, damaged_trailer_gives_eio_naming_the_archive);
	tcase_add_test(tc, a_last_frame_of_another_kind_scans_as_foreign);
	tcase_add_test(tc, a_damaged_index_header_scans_the_tar_and_says_so);
	tcase_add_test(tc, a_damaged_index_body_is_scanned_when_salvaging);
	tcase_add_test(tc, text_under_an_archive_name_is_no_archive);
	tcase_add_test(tc, an_index_of_version_1_reads);
	tcase_add_test(tc, truncated_archive_is_refused);
	tcase_add_test(tc, foreign_tar_gz_is_indexed_by_a_scan);
	tcase_add_test(tc, foreign_tar_gz_reads_in_order_with_one_decoder_start);
	tcase_add_test(tc, foreign_reads_out_of_order_decode_about_once);
	tcase_add_test(tc, a_few_reads_out_of_order_in_a_zip_only_seek);
	tcase_add_test(tc, foreign_reads_go_on_without_the_spill_file);
	tcase_add_test(tc, small_files_read_after_big_ones_start_the_spill_file_over);
	tcase_add_test(tc, a_bad_zip_member_fails_only_itself_out_of_order);
	tcase_add_test(tc, idle_foreign_archives_past_the_bound_give_up_their_decoders);
	tcase_add_test(tc, foreign_archives_giving_up_state_under_readers_read_right_bytes);
#ifdef SNAPFS_HAVE_ZLIB
	tcase_add_test(tc, a_foreign_archive_that_gave_up_its_state_reads_on_and_still_sees_changes);
#endif
	tcase_add_test(tc, a_spill_that_fills_the_disk_part_way_reads_right_bytes);
	tcase_add_test(tc, foreign_members_after_a_refused_one_read_their_own_bytes);
	tcase_add_test(tc, cut_tar_gz_is_refused_or_salvaged);
	tcase_add_test(tc, foreign_damage_seen_only_by_a_check_reads_no_wrong_byte);
	tcase_add_test(tc, failed_spill_leaves_no_bytes_in_the_next_members_holes);
	tcase_add_test(tc, foreign_random_reads_decode_a_member_once);
	tcase_add_test(tc, foreign_zip_and_cpio_read_back);
	tcase_add_test(tc, damaged_tar_xz_fails_with_eio_not_wrong_bytes);
#ifdef SNAPFS_HAVE_ZLIB
	tcase_add_test(tc, foreign_tar_gz_random_reads_restart_from_checkpoints);
	tcase_add_test(tc, foreign_tar_gz_in_order_inflates_once);
	tcase_add_test(tc, foreign_multi_member_tar_gz_reads_back);
	tcase_add_test(tc, foreign_links_keep_a_file_replaced_later);
	tcase_add_test(tc, foreign_file_given_twice_keeps_its_content);
	tcase_add_test(tc, foreign_cpio_hard_links_are_one_file);
	tcase_add_test(tc, foreign_xattr_given_twice_is_one);
	tcase_add_test(tc, foreign_hard_links_to_a_symlink_and_a_fifo);
	tcase_add_test(tc, foreign_sparse_member_with_no_region_reads_as_zeros);
	tcase_add_test(tc, foreign_read_far_into_a_sparse_member_passes_its_hole);
	tcase_add_test(tc, damaged_tar_gz_fails_with_eio_through_checkpoints);
#endif
	tcase_add_test(tc, every_field_reads_back_as_stored);
	tcase_add_test(tc, many_owners_and_long_names_read_back);
	tcase_add_test(tc, packed_fields_read_back_at_their_bounds);
	tcase_add_test(tc, owners_past_32767_read_back);
	tcase_add_test(tc, damaged_compact_fields_are_refused);
	tcase_add_test(tc, index_frame_has_a_small_window);
	tcase_add_test(tc, damaged_child_ranges_are_refused);
	tcase_add_test(tc, damaged_names_are_refused);
	tcase_add_test(tc, ranges_not_breadth_first_are_refused);
	tcase_add_test(tc, entry_after_the_last_range_is_an_orphan);
	tcase_add_test(tc, parents_read_back_in_deep_and_wide_trees);
	tcase_add_test(tc, parents_read_back_in_random_trees);
	tcase_add_test(tc, native_archives_keep_seq_unless_asked_not_to);
	tcase_add_test(tc, foreign_archives_keep_seq_with_no_seq);
	tcase_add_test(tc, hash_fnv_keeps_its_values);
	tcase_add_test(tc, index_frame_claiming_a_huge_body_commits_no_memory_for_it);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

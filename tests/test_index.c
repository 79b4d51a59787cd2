#include "index.h"

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
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

START_TEST(paths_are_normalised_and_parents_implied)
{
	struct idx_builder *b = idx_builder_new(77);
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
	struct idx_builder *b = idx_builder_new(0);
	struct archive_entry *ae = archive_entry_new();
	struct err e;

	archive_entry_set_pathname(ae, "a/../../etc/passwd");
	archive_entry_set_mode(ae, S_IFREG | 0644);
	ck_assert_int_eq(idx_builder_add(b, ae, 0, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_uint_eq(idx_builder_members(b), 0);
	archive_entry_free(ae);
	idx_builder_free(b);
}
END_TEST

START_TEST(children_are_sorted_and_contiguous)
{
	static const char *const names[] = { "zeta", "Alpha", "beta", "a", "b\xff", "b" };
	struct idx_builder *b = idx_builder_new(0);
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
	struct idx_builder *b = idx_builder_new(0);
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

START_TEST(hard_links_share_one_target_and_count_links)
{
	struct idx_builder *b = idx_builder_new(0);
	struct idx *x;
	struct idx_entry f, l1, l2, broken, dir;

	add(b, "d/file", S_IFREG | 0644, NULL, 10, 1024);
	add(b, "l1", S_IFREG | 0644, "d/file", 0, 0);
	add(b, "l2", S_IFREG | 0644, "./l1", 0, 0);	/* a link to a link */
	add(b, "broken", S_IFREG | 0644, "nowhere", 0, 0);
	x = finish(b);
	idx_builder_free(b);
	idx_get(x, idx_lookup_path(x, "d/file"), &f);
	idx_get(x, idx_lookup_path(x, "l1"), &l1);
	idx_get(x, idx_lookup_path(x, "l2"), &l2);
	idx_get(x, idx_lookup_path(x, "broken"), &broken);
	idx_get(x, idx_lookup_path(x, "d"), &dir);
	ck_assert_uint_eq(l1.target, idx_lookup_path(x, "d/file"));
	ck_assert_uint_eq(l2.target, l1.target);
	ck_assert_uint_eq(f.nlink, 3);
	ck_assert_uint_eq(l1.nlink, 3);
	ck_assert_uint_eq(broken.target, idx_lookup_path(x, "broken"));
	ck_assert(S_ISREG(broken.mode));
	ck_assert_uint_eq(broken.size, 0);
	ck_assert_uint_eq(dir.nlink, 2);
	idx_get(x, IDX_ROOT, &dir);
	ck_assert_uint_eq(dir.nlink, 3);	/* ".", its entry, and d's ".." */
	idx_close(x);
}
END_TEST

static void *good_blob(size_t *len)
{
	struct idx_builder *b = idx_builder_new(0);
	void *blob;
	struct err e;

	add(b, "a/b/c", S_IFREG | 0644, NULL, 5, 512);
	add(b, "a/link", S_IFREG | 0644, "a/b/c", 0, 0);
	add(b, "z", S_IFDIR | 0755, NULL, 0, 0);
	ck_assert_int_eq(idx_builder_finish(b, &blob, len, &e), 0);
	idx_builder_free(b);
	return blob;
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

START_TEST(damaged_trailer_gives_eio_naming_the_archive)
{
	const char *path = native_archive();
	size_t len;
	unsigned char *file = fixture_read(path, &len);
	struct idx *x;
	struct err e;
	struct stat st;
	struct zseek *z;
	struct zseek_frame f;

	ck_assert_int_eq(idx_open(path, &x, &e), 0);
	ck_assert_uint_eq(idx_members(x), 3);
	idx_close(x);
	int fd = open(path, O_RDONLY);
	fstat(fd, &st);
	ck_assert_int_eq(zseek_open(fd, path, (uint64_t)st.st_size, &z, &e), 0);
	zseek_frame(z, zseek_nframes(z) - 1, &f);
	zseek_close(z);
	close(fd);
	/* every byte from the index frame to the end: the index frame and the seek table */
	for (size_t i = f.coff; i < len; i++) {
		/* the seek-table descriptor's two low bits are unused by the format */
		if (i == len - 5)
			continue;
		file[i] ^= 0x21;
		fixture_write(fixture_path("bad.tar.zst"), file, len);
		file[i] ^= 0x21;
		int rc = idx_open(fixture_path("bad.tar.zst"), &x, &e);
		/* a flip of the index frame's kind makes it foreign: it then scans as plain tar */
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
static void read_all_in_order(struct idx *x)
{
	struct idx_reader *r = idx_reader_new();
	char path[4096], src[8200];
	struct err e;

	for (uint32_t seq = 0; seq < idx_members(x); seq++)
		for (uint32_t i = 1; i < idx_count(x); i++) {
			struct idx_entry ent;
			idx_get(x, i, &ent);
			if (ent.seq != seq || !S_ISREG(ent.mode) || ent.target != i)
				continue;
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
	idx_reader_free(r);
}

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
	tcase_add_test(tc, truncated_blob_is_refused);
	tcase_add_test(tc, flipped_blob_byte_is_refused_or_harmless);
	tcase_add_test(tc, absurd_counts_are_refused);
	tcase_add_test(tc, damaged_trailer_gives_eio_naming_the_archive);
	tcase_add_test(tc, truncated_archive_is_refused);
	tcase_add_test(tc, foreign_tar_gz_is_indexed_by_a_scan);
	tcase_add_test(tc, foreign_tar_gz_reads_in_order_with_one_decoder_start);
	tcase_add_test(tc, foreign_random_reads_decode_a_member_once);
	tcase_add_test(tc, foreign_zip_and_cpio_read_back);
	tcase_add_test(tc, damaged_tar_xz_fails_with_eio_not_wrong_bytes);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

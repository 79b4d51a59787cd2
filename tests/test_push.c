/*
 * The pusher's sibling list against the frame it pins (fs/ops.c): it is made
 * later than the read, by inode number, and a number may by then mean another
 * archive's file (a pruned archive, and one of the same name back in the store).
 * Runs fs/tree.c and fs/fcache.c with no FUSE.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcache.h"
#include "fixture.h"
#include "index.h"
#include "tree.h"
#include "writer.h"

#define ARCHIVE "host-20240101_000000.tar.zst"

/* snapkeep take of paths (relative to src) into store, framed by frame. */
static void take(const char *store, const char *src, const char *const *paths, size_t npaths,
		 size_t frame)
{
	struct wr_opts o = { .source = src, .paths = paths, .npaths = npaths, .level = 1,
			     .threads = 1, .frame_size = frame, .group_size = frame, .time = 1 };
	struct wr_stats st;
	struct err e;
	char p[1024], dst[1024];

	snprintf(p, sizeof(p), "%s/.tmp", store);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(wr_write(fd, "a", &o, &st, &e) == 0, "%s", e.msg);
	close(fd);
	snprintf(dst, sizeof(dst), "%s/%s", store, ARCHIVE);
	ck_assert_int_eq(rename(p, dst), 0);
}

/* 19 small files s01..s19 and one file a00 of big bytes, framed by frame. */
static void write_archive(const char *store, const char *src, size_t frame, size_t big)
{
	static const char *const paths[] = { "." };
	char p[1024];

	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (int j = 0; j < 20; j++) {
		size_t sz = j == 0 ? big : 3000 + 100 * (size_t)j;
		unsigned char *b = malloc(sz);
		ck_assert_ptr_nonnull(b);
		fixture_fill(b, sz, (uint64_t)j + frame, 0);
		snprintf(p, sizeof(p), "%s/%s%02d", src, j == 0 ? "a" : "s", j);
		fixture_write(p, b, sz);
		free(b);
	}
	take(store, src, paths, 1, frame);
}

static char snapname[256];

static int first_snapshot(void *ctx, const char *name, const struct stat *st, double to,
			  off_t next)
{
	(void)ctx;
	(void)st;
	(void)to;
	(void)next;
	if (strcmp(name, ".") && strcmp(name, "..") && strcmp(name, "latest") && !*snapname)
		snprintf(snapname, sizeof(snapname), "%s", name);
	return 0;
}

static uint64_t lookup(struct tree *t, uint64_t parent, const char *name)
{
	struct stat st;
	double to;
	struct err e;

	ck_assert_msg(tree_lookup(t, parent, name, &st, &to, &e) == 0, "%s: %s", name, e.msg);
	return st.st_ino;
}

static uint64_t snapshot_dir(struct tree *t)
{
	struct err e;

	*snapname = '\0';
	ck_assert_int_ge(tree_readdir(t, TREE_ROOT_INO, 0, false, first_snapshot, NULL, &e), 0);
	ck_assert(*snapname);
	return lookup(t, TREE_ROOT_INO, snapname);
}

/* A reader through a new frame cache c. */
static struct idx_reader *reader_over(struct fcache *c)
{
	struct idx_reader *r = idx_reader_new();

	ck_assert_ptr_nonnull(r);
	idx_reader_set_frames(r, fcache_frames(c));
	return r;
}

/* Siblings are listed from the pinned frame's index, inside that frame, or not at all. */
START_TEST(siblings_come_from_the_pinned_frames_index_only)
{
	const char *store = fixture_path("store");
	struct tree_opts o = { .store = store };
	struct tree *t;
	struct err e;
	const void *base[4];
	size_t size[4];
	void *pin[4];
	struct tree_sib v[64];
	uint32_t flen;
	uint64_t serial;

	ck_assert_int_eq(mkdir(store, 0755), 0);
	write_archive(store, fixture_path("x"), 64 * 1024, 3000);	/* small frames */
	ck_assert_msg(tree_new(&o, &t, &e) == 0, "%s", e.msg);
	uint64_t dir = snapshot_dir(t), ino = lookup(t, dir, "s05");
	struct fcache *c = fcache_new(64u << 20);
	struct idx_reader *r = reader_over(c);
	int np = tree_read_pieces(t, ino, 3500, 0, r, base, size, pin, 4, &e);
	ck_assert_msg(np >= 1, "%s", e.msg);
	const unsigned char *frame = fcache_pinned(pin[0], &flen, &serial);

	/* at read time: siblings, all inside the pinned frame */
	int n = tree_siblings(t, ino, 0, serial, v, 64);
	ck_assert_int_gt(n, 0);
	for (int k = 0; k < n; k++) {
		int64_t at = ((const unsigned char *)base[0] - frame) + v[k].delta;
		ck_assert(at >= 0 && (uint64_t)at + v[k].size <= flen);
	}
	ck_assert_int_eq(tree_siblings(t, ino, 0, serial + 1, v, 64), 0);

	/* the kernel forgets, the archive is pruned, one of the same name comes back, framed otherwise */
	tree_forget(t, ino, 1);
	tree_forget(t, dir, 1);
	ck_assert_int_eq(unlink(fixture_path("store/" ARCHIVE)), 0);
	tree_rescan(t, true);
	write_archive(store, fixture_path("y"), 1024 * 1024, 700000);
	tree_rescan(t, true);
	uint64_t dir2 = snapshot_dir(t), ino2 = lookup(t, dir2, "s05");
	ck_assert_uint_eq(ino2, ino);	/* the same number, another archive's file */
	const void *base2[4];
	void *pin2[4];
	int np2 = tree_read_pieces(t, ino2, 3500, 0, r, base2, size, pin2, 4, &e);
	uint64_t serial2;
	ck_assert_msg(np2 >= 1, "%s", e.msg);
	fcache_pinned(pin2[0], &flen, &serial2);
	ck_assert_uint_ne(serial2, serial);
	ck_assert_int_gt(tree_siblings(t, ino, 0, serial2, v, 64), 0);	/* what it would list */
	/* with the old frame's serial: nothing, not the other archive's offsets */
	ck_assert_int_eq(tree_siblings(t, ino, 0, serial, v, 64), 0);
	idx_unpin(r, pin2, np2);

	idx_unpin(r, pin, np);
	idx_reader_free(r);
	tree_free(t);
	fcache_free(c);
}
END_TEST

/* src/d1: f00..f19, m/ (x0..x2), n00..n19; src/d2: g00..g19. Files of 1,000-2,900 bytes. */
static void write_tree(const char *store, const char *src, size_t frame)
{
	static const char *const paths[] = { "." };
	static const char *const dirs[] = { "d1", "d1/m", "d2" };
	static const char *const files[][2] = { { "d1/f", "20" }, { "d1/m/x", "3" },
						{ "d1/n", "20" }, { "d2/g", "20" } };
	char p[1024];
	unsigned char b[4096];
	uint64_t seed = 1;

	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", src, dirs[i]);
		ck_assert_int_eq(mkdir(p, 0755), 0);
	}
	for (size_t i = 0; i < 4; i++)
		for (int j = 0; j < atoi(files[i][1]); j++) {
			size_t sz = 1000 + (size_t)(seed * 97 % 1900);
			fixture_fill(b, sz, seed++, 0);
			snprintf(p, sizeof(p), "%s/%s%02d", src, files[i][0], j);
			fixture_write(p, b, sz);
		}
	take(store, src, paths, 1, frame);
}

/*
 * The oracle: whether file ino (size bytes) reads whole from the frame pinned
 * as pin, and then where its bytes start counted from base (the file read).
 */
static bool mate(struct tree *t, struct idx_reader *r, uint64_t ino, uint64_t size,
		 const void *pin, const void *base, int64_t *delta)
{
	const void *b[4];
	size_t n[4];
	void *p[4];
	struct err e;
	int q = tree_read_pieces(t, ino, (size_t)size, 0, r, b, n, p, 4, &e);

	ck_assert_msg(q >= 1, "%s", e.msg);
	bool same = q == 1 && p[0] == pin;
	*delta = (const unsigned char *)b[0] - (const unsigned char *)base;
	idx_unpin(r, p, q);
	return same;
}

/* Read file ino's first byte: its place in the frame (*base), the frame pinned (*pin), its serial. */
static uint64_t read_first_byte(struct tree *t, struct idx_reader *r, uint64_t ino,
				const void **base, void **pin)
{
	size_t size;
	uint32_t flen;
	uint64_t serial;
	struct err e;

	ck_assert_msg(tree_read_pieces(t, ino, 1, 0, r, base, &size, pin, 1, &e) == 1, "%s", e.msg);
	fcache_pinned(*pin, &flen, &serial);
	return serial;
}

/*
 * The list against the read path itself: every file of the directory that a
 * read finds whole in the very frame pinned for the file read is listed, at
 * the same place, and nothing else is (no file of another directory, not the
 * file read), in the order of their bytes. Frames of 1 MiB hold the whole
 * tree; of 16 KiB, a few files each, so the list starts and stops inside the
 * directory, some of it before the file read.
 */
START_TEST(siblings_are_the_directorys_files_in_the_frame)
{
	static const size_t frames[] = { 1u << 20, 16u << 10 };
	static const char *const reads[] = { "f00", "f05", "f19", "n00", "n10", "n19" };
	const char *store = fixture_path("store");
	struct err e;

	ck_assert_int_eq(mkdir(store, 0755), 0);
	for (size_t fi = 0; fi < 2; fi++) {
		struct tree_opts o = { .store = store };
		struct tree *t;
		char src[64];

		snprintf(src, sizeof(src), "src%zu", fi);
		unlink(fixture_path("store/" ARCHIVE));
		write_tree(store, fixture_path(src), frames[fi]);
		ck_assert_msg(tree_new(&o, &t, &e) == 0, "%s", e.msg);
		uint64_t root = snapshot_dir(t), d1 = lookup(t, root, "d1");
		uint64_t d2 = lookup(t, root, "d2"), m = lookup(t, d1, "m");
		struct fcache *c = fcache_new(64u << 20);
		struct idx_reader *r = reader_over(c);
		for (size_t ri = 0; ri < sizeof(reads) / sizeof(reads[0]); ri++) {
			const void *base;
			void *pin;
			struct tree_sib v[64];
			uint64_t ino = lookup(t, d1, reads[ri]);
			uint64_t serial = read_first_byte(t, r, ino, &base, &pin);
			int n = tree_siblings(t, ino, 0, serial, v, 64), want = 0;
			for (int k = 1; k < n; k++)
				ck_assert_int_lt(v[k - 1].delta, v[k].delta);
			/* every file of d1, d1/m and d2: listed if and only if read whole from this frame */
			const struct { uint64_t dir; const char *pre; int n; } all[] = {
				{ d1, "f", 20 }, { d1, "n", 20 }, { m, "x", 3 }, { d2, "g", 20 }
			};
			for (size_t a = 0; a < 4; a++)
				for (int j = 0; j < all[a].n; j++) {
					char name[16];
					struct stat st;
					double to;
					int64_t delta;
					snprintf(name, sizeof(name), "%s%02d", all[a].pre, j);
					ck_assert(tree_lookup(t, all[a].dir, name, &st, &to, &e) == 0);
					bool listed = mate(t, r, st.st_ino, (uint64_t)st.st_size, pin,
						       base, &delta) &&
						  st.st_ino != ino && all[a].dir == d1;
					int found = -1;
					for (int k = 0; k < n; k++)
						if (v[k].ino == st.st_ino)
							found = k;
					ck_assert_msg(listed == (found >= 0), "frame %zu, read %s: %s%s listed",
						      fi, reads[ri], name, listed ? " not" : "");
					if (found >= 0) {
						ck_assert_int_eq(v[found].size, st.st_size);
						ck_assert_int_eq(v[found].delta, delta);
						want++;
					}
				}
			ck_assert_int_eq(n, want);
			if (fi == 0)
				ck_assert_int_eq(n, 39);	/* all of d1's other files */
			idx_unpin(r, &pin, 1);
		}
		idx_reader_free(r);
		tree_free(t);
		fcache_free(c);
	}
}
END_TEST

/* A file src/name of size bytes made from seed. */
static void put(const char *src, const char *name, size_t size, uint64_t seed)
{
	char p[PATH_MAX + 64];
	unsigned char b[4096];

	snprintf(p, sizeof(p), "%s/%s", src, name);
	ck_assert(size <= sizeof(b));
	fixture_fill(b, size, seed, 0);
	fixture_write(p, b, size);
}

/*
 * Entries that are not small files (directories, a symlink, an empty file)
 * between two frame-mates hide neither from the other, even when only one is
 * asked for (the reader's check in ops.c). With files taken out of the order
 * of their names, so that their bytes are not in the index's order, whatever
 * is listed still lies whole in the pinned frame where the read path finds it.
 */
START_TEST(siblings_past_other_entries_and_out_of_order)
{
	static const char *const paths[] = { "e", "o/c", "o/a", "o/b" };
	static const char *const outs[] = { "a", "b", "c" };
	static const size_t frames[] = { 1u << 20, 4096 };
	const char *store = fixture_path("store");
	struct err e;
	char p[PATH_MAX + 64];

	ck_assert_int_eq(mkdir(store, 0755), 0);
	for (size_t fi = 0; fi < 2; fi++) {
		struct tree_opts o = { .store = store };
		struct tree *t;
		char name[16];

		snprintf(name, sizeof(name), "src%zu", fi);
		const char *src = fixture_path(name);
		ck_assert_int_eq(mkdir(src, 0755), 0);
		snprintf(p, sizeof(p), "%s/e", src);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/o", src);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		put(src, "e/a00", 1500, 1);
		for (int j = 0; j < 5; j++) {
			snprintf(p, sizeof(p), "%s/e/b%d", src, j);
			ck_assert_int_eq(mkdir(p, 0755), 0);
		}
		snprintf(p, sizeof(p), "%s/e/c", src);
		ck_assert_int_eq(symlink("a00", p), 0);
		put(src, "e/d", 0, 2);
		put(src, "e/z00", 1500, 3);
		for (int j = 0; j < 3; j++) {
			snprintf(name, sizeof(name), "o/%s", outs[j]);
			put(src, name, 1500 + 300 * (size_t)j, 4 + (uint64_t)j);
		}
		unlink(fixture_path("store/" ARCHIVE));
		take(store, src, paths, 4, frames[fi]);
		ck_assert_msg(tree_new(&o, &t, &e) == 0, "%s", e.msg);
		uint64_t root = snapshot_dir(t), de = lookup(t, root, "e"), dout = lookup(t, root, "o");
		struct fcache *c = fcache_new(64u << 20);
		struct idx_reader *r = reader_over(c);
		const struct { uint64_t dir; const char *name; } reads[] = {
			{ de, "a00" }, { de, "z00" }, { dout, "a" }, { dout, "b" }, { dout, "c" }
		};
		for (size_t ri = 0; ri < 5; ri++) {
			const void *base;
			void *pin;
			struct tree_sib v[64];
			uint64_t ino = lookup(t, reads[ri].dir, reads[ri].name);
			uint64_t serial = read_first_byte(t, r, ino, &base, &pin);
			int n = tree_siblings(t, ino, 0, serial, v, 64);
			for (int k = 0; k < n; k++) {
				int64_t delta;
				ck_assert_uint_ne(v[k].ino, ino);
				ck_assert_msg(mate(t, r, v[k].ino, v[k].size, pin, base, &delta),
					      "frame %zu, read %s: a file outside its frame listed", fi,
					      reads[ri].name);
				ck_assert_int_eq(v[k].delta, delta);
			}
			if (fi == 0 && ri < 2) {	/* one frame: e/a00 and e/z00 are mates */
				uint64_t other = lookup(t, de, ri ? "a00" : "z00");
				ck_assert_int_eq(n, 1);
				ck_assert_uint_eq(v[0].ino, other);
				ck_assert_int_eq(tree_siblings(t, ino, 0, serial, v, 1), 1);
				ck_assert_uint_eq(v[0].ino, other);
			}
			idx_unpin(r, &pin, 1);
		}
		idx_reader_free(r);
		tree_free(t);
		fcache_free(c);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("push");
	TCase *tc = tcase_create("push");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, siblings_come_from_the_pinned_frames_index_only);
	tcase_add_test(tc, siblings_are_the_directorys_files_in_the_frame);
	tcase_add_test(tc, siblings_past_other_entries_and_out_of_order);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

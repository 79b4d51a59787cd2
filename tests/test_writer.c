#include "writer.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fixture.h"
#include "index.h"
#include "zseek.h"

#define BIG_SIZE (5u * 1024 * 1024 + 777)
#define SMALL_FRAME (64u * 1024)

static int warnings;
static char last_warning[512];

static void on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	warnings++;
	snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

static void mkfile(const char *rel, size_t len, uint64_t seed, int text)
{
	unsigned char *buf = malloc(len + 1);

	fixture_fill(buf, len, seed, text);
	fixture_write(fixture_path(rel), buf, len);
	free(buf);
}

/* A source tree with every kind of entry tar keeps. */
static void make_tree(void)
{
	struct timespec ts[2] = { { 1580612645, 123456789 }, { 1580612645, 123456789 } };
	char longname[300];

	ck_assert_int_eq(mkdir(fixture_path("src"), 0755), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/config"), 0750), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/config/personalities"), 0755), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/empty"), 0700), 0);
	mkfile("src/config/cc-cluster.yaml", 3000, 1, 1);
	mkfile("src/config/personalities/grand_boss.txt", 100, 2, 1);
	mkfile("src/big.bin", BIG_SIZE, 3, 0);
	mkfile("src/.env", 20, 4, 1);
	chmod(fixture_path("src/.env"), 0600);
	mkfile("src/empty-file", 0, 5, 0);
	ck_assert_int_eq(utimensat(AT_FDCWD, fixture_path("src/config/cc-cluster.yaml"), ts, 0), 0);
	ck_assert_int_eq(symlink("config/cc-cluster.yaml", fixture_path("src/link")), 0);
	ck_assert_int_eq(link(fixture_path("src/config/personalities/grand_boss.txt"),
			      fixture_path("src/hard")), 0);
	ck_assert_int_eq(mkfifo(fixture_path("src/fifo"), 0644), 0);
	mkfile("src/new\nline", 10, 6, 1);
	mkfile("src/bad\xffname", 10, 7, 1);
	memset(longname, 'n', 200);
	strcpy(longname + 200, ".yaml");
	char rel[320];
	snprintf(rel, sizeof(rel), "src/config/%s", longname);
	mkfile(rel, 33, 8, 1);
	setxattr(fixture_path("src/config/cc-cluster.yaml"), "user.note", "hello", 5, 0);
	/* sparse: a hole, 4 KiB of data at 1 MiB, a hole to 3 MiB */
	int fd = open(fixture_path("src/sparse"), O_WRONLY | O_CREAT, 0644);
	unsigned char blk[4096];
	fixture_fill(blk, sizeof(blk), 9, 0);
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 1 << 20), (ssize_t)sizeof(blk));
	ck_assert_int_eq(ftruncate(fd, 3 << 20), 0);
	close(fd);
	/* all hole: a sparse member with no data at all */
	fd = open(fixture_path("src/allhole"), O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(ftruncate(fd, 2 << 20), 0);
	close(fd);
	if (geteuid() == 0) {
		ck_assert_int_eq(mknod(fixture_path("src/null"), S_IFCHR | 0666, makedev(1, 3)), 0);
		ck_assert_int_eq(lchown(fixture_path("src/.env"), 4000000, 4000001), 0);
	} else {
		fixture_skip("device node and big uid in the tree: not root");
	}
}

static int take(struct wr_opts *o, const char *out, struct wr_stats *st, struct err *e)
{
	int fd = open(fixture_path(out), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int rc;

	ck_assert_int_ge(fd, 0);
	o->warn = on_warn;
	warnings = 0;
	rc = wr_write(fd, out, o, st, e);
	close(fd);
	return rc;
}

static struct idx *take_tree(size_t frame, struct wr_stats *st)
{
	static const char *const paths[] = { "." };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 1, .level = 3, .frame_size = frame, .group_size = frame,
			     .time = 1 };
	struct err e;
	struct idx *x;

	ck_assert_msg(take(&o, "a.tar.zst", st, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(warnings, 0);
	ck_assert_msg(idx_open(fixture_path("a.tar.zst"), &x, &e) == 0, "%s", e.msg);
	ck_assert(idx_is_native(x));
	return x;
}

/* Compare one source file with its index entry, content included. */
static void compare(struct idx *x, uint32_t i, const char *rel, struct idx_reader *r)
{
	char path[4200];
	struct idx_entry ent, t;
	struct stat st;
	struct err e;

	snprintf(path, sizeof(path), "%s/%s", fixture_path("src"), rel);
	ck_assert_int_eq(lstat(path, &st), 0);
	idx_get(x, i, &ent);
	idx_get(x, ent.target, &t);
	ck_assert_msg(t.mode == st.st_mode, "%s: mode %o != %o", rel, t.mode, st.st_mode);
	ck_assert_uint_eq(t.uid, st.st_uid);
	ck_assert_uint_eq(t.gid, st.st_gid);
	if (!S_ISDIR(st.st_mode)) {
		ck_assert_int_eq(t.mtime_sec, st.st_mtim.tv_sec);
		ck_assert_uint_eq(t.mtime_nsec, st.st_mtim.tv_nsec);
		ck_assert_uint_eq(t.nlink, st.st_nlink);
	}
	if (S_ISCHR(st.st_mode))
		ck_assert_uint_eq(t.rdev, st.st_rdev);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target));
		ck_assert_uint_eq(t.link_len, (size_t)n);
		ck_assert_mem_eq(t.link, target, (size_t)n);
	}
	if (S_ISREG(st.st_mode)) {
		size_t len;
		unsigned char *want = fixture_read(path, &len);
		unsigned char *got = malloc(len + 1);
		ck_assert_uint_eq(t.size, len);
		ck_assert_int_eq(idx_pread(x, i, got, len + 1, 0, r, &e), (ssize_t)len);
		ck_assert_msg(memcmp(got, want, len) == 0, "%s: content differs", rel);
		free(got);
		free(want);
	}
}

static void compare_tree(struct idx *x, uint32_t dir, char *rel, size_t len,
			 struct idx_reader *r, int *count)
{
	struct idx_entry d;

	idx_get(x, dir, &d);
	for (uint32_t k = d.first_child; k < d.first_child + d.nchildren; k++) {
		struct idx_entry c;
		idx_get(x, k, &c);
		size_t n = len ? (size_t)snprintf(rel + len, 4096 - len, "/%.*s", (int)c.name_len, c.name)
			       : (size_t)snprintf(rel, 4096, "%.*s", (int)c.name_len, c.name);
		compare(x, k, rel, r);
		(*count)++;
		if (S_ISDIR(c.mode))
			compare_tree(x, k, rel, len + n, r, count);
		rel[len] = '\0';
	}
}

static int count_source(const char *dir)
{
	char cmd[4200];
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 | wc -l", dir);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;	/* a name with a newline counts twice; see the caller */
}

START_TEST(every_kind_of_entry_round_trips)
{
	struct wr_stats st;
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	char rel[4096] = "";
	int count = 0;

	make_tree();
	x = take_tree(0, &st);
	compare_tree(x, IDX_ROOT, rel, 0, r, &count);
	/* find counts "new\nline" as two lines */
	ck_assert_int_eq(count + 1, count_source(fixture_path("src")));
	/* members: the root "." and every entry below it */
	ck_assert_uint_eq(idx_members(x), (uint32_t)count + 1);
	ck_assert_uint_eq(st.members, (uint64_t)count + 1);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(xattrs_and_hard_links_are_kept)
{
	struct wr_stats st;
	struct idx *x;
	struct idx_entry a, b;
	struct idx_xattr xa;

	make_tree();
	x = take_tree(0, &st);
	uint32_t i = idx_lookup_path(x, "config/cc-cluster.yaml");
	ck_assert_uint_ne(i, IDX_NONE);
	idx_get(x, i, &a);
	ck_assert_uint_eq(a.nxattrs, 1);
	idx_xattr(x, &a, 0, &xa);
	ck_assert_uint_eq(xa.name_len, 9);
	ck_assert_mem_eq(xa.name, "user.note", 9);
	ck_assert_uint_eq(xa.value_len, 5);
	ck_assert_mem_eq(xa.value, "hello", 5);
	idx_get(x, idx_lookup_path(x, "hard"), &a);
	idx_get(x, idx_lookup_path(x, "config/personalities/grand_boss.txt"), &b);
	ck_assert_uint_eq(a.target, b.target);
	ck_assert_uint_eq(b.nlink, 2);
	idx_close(x);
}
END_TEST

START_TEST(random_reads_match_the_source_bytes)
{
	struct wr_stats st;
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	size_t len;
	unsigned char *want, buf[70000];
	uint64_t seed = 42;
	struct err e;

	make_tree();
	x = take_tree(SMALL_FRAME, &st);
	want = fixture_read(fixture_path("src/big.bin"), &len);
	uint32_t i = idx_lookup_path(x, "big.bin");
	for (int k = 0; k < 2000; k++) {
		uint64_t off = fixture_rand(&seed) % (len + 10);
		size_t n = 1 + fixture_rand(&seed) % sizeof(buf);
		ssize_t got = idx_pread(x, i, buf, n, off, r, &e);
		size_t expect = off >= len ? 0 : (n < len - off ? n : len - off);
		ck_assert_int_eq(got, (ssize_t)expect);
		ck_assert_msg(memcmp(buf, want + (off < len ? off : 0), expect) == 0,
			      "bytes differ at %llu+%zu", (unsigned long long)off, n);
	}
	free(want);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(sparse_holes_read_as_zeros)
{
	struct wr_stats st;
	struct idx *x;
	struct idx_reader *r = idx_reader_new();
	struct idx_entry ent;
	size_t len;
	unsigned char *want, *got;
	struct err e;

	make_tree();
	x = take_tree(0, &st);
	uint32_t i = idx_lookup_path(x, "sparse");
	idx_get(x, i, &ent);
	want = fixture_read(fixture_path("src/sparse"), &len);
	got = malloc(len);
	ck_assert_uint_eq(ent.size, 3u << 20);
	ck_assert_uint_ge(ent.nsparse, 1);
	for (size_t off = 0; off < len; off += 65536 - 1) {
		size_t n = off + 100000 < len ? 100000 : len - off;
		ck_assert_int_eq(idx_pread(x, i, got, n, off, r, &e), (ssize_t)n);
		ck_assert_msg(memcmp(got, want + off, n) == 0, "sparse bytes differ at %zu", off);
	}
	/* the holes are not stored: the archive is far smaller than the file */
	ck_assert_uint_lt(st.tar_size, BIG_SIZE + (2u << 20));
	free(want);
	free(got);
	idx_reader_free(r);
	idx_close(x);
}
END_TEST

START_TEST(big_file_data_starts_a_frame)
{
	struct wr_stats st;
	struct idx *x;
	struct idx_entry ent;
	struct zseek *z;
	struct zseek_frame f;
	struct err e;

	make_tree();
	x = take_tree(SMALL_FRAME, &st);
	idx_get(x, idx_lookup_path(x, "big.bin"), &ent);
	int fd = open(fixture_path("a.tar.zst"), O_RDONLY);
	struct stat sb;
	fstat(fd, &sb);
	ck_assert_int_eq(zseek_open(fd, "a", (uint64_t)sb.st_size, &z, &e), 0);
	/* so a 4 KiB read in it decodes one frame of at most frame_size bytes */
	zseek_frame(z, zseek_find(z, ent.data_off), &f);
	ck_assert_uint_eq(f.doff, ent.data_off);
	for (uint64_t off = 0; off < ent.size; off += SMALL_FRAME) {
		zseek_frame(z, zseek_find(z, ent.data_off + off), &f);
		ck_assert_uint_eq(f.doff, ent.data_off + off);
		ck_assert_uint_le(f.dsize, SMALL_FRAME);
	}
	zseek_close(z);
	close(fd);
	idx_close(x);
}
END_TEST

START_TEST(excludes_match_names_and_directories)
{
	const char *ex[] = { "venv/", "__pycache__/", "*.pyc", "logs/old/*" };
	struct wr_opts o = { .exclude = ex, .nexclude = 4 };

	ck_assert(wr_excluded(&o, "venv", 1));
	ck_assert(!wr_excluded(&o, "venv", 0));
	ck_assert(wr_excluded(&o, "app/venv", 1));
	ck_assert(wr_excluded(&o, "app/__pycache__", 1));
	ck_assert(wr_excluded(&o, "a/b/c.pyc", 0));
	ck_assert(!wr_excluded(&o, "a/b/c.py", 0));
	ck_assert(wr_excluded(&o, "logs/old/x.log", 0));
	ck_assert(!wr_excluded(&o, "logs/new/x.log", 0));
	ck_assert(!wr_excluded(&o, "logs/old/deep/x.log", 0));
}
END_TEST

START_TEST(excluded_entries_are_not_archived)
{
	static const char *const paths[] = { "app" };
	const char *ex[] = { "venv/", "*.pyc" };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 1, .exclude = ex, .nexclude = 2, .level = 1 };
	struct wr_stats st;
	struct err e;
	struct idx *x;

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/app"), 0755);
	mkdir(fixture_path("src/app/venv"), 0755);
	mkfile("src/app/venv/lib.py", 10, 1, 1);
	mkfile("src/app/main.py", 10, 1, 1);
	mkfile("src/app/main.pyc", 10, 1, 1);
	ck_assert_msg(take(&o, "a.tar.zst", &st, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(idx_open(fixture_path("a.tar.zst"), &x, &e), 0);
	ck_assert_uint_ne(idx_lookup_path(x, "app/main.py"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "app/main.pyc"), IDX_NONE);
	ck_assert_uint_eq(idx_lookup_path(x, "app/venv"), IDX_NONE);
	ck_assert_uint_eq(idx_members(x), 2);
	idx_close(x);
}
END_TEST

START_TEST(missing_path_fails_unless_optional)
{
	static const char *const paths[] = { "config", "queue" };
	static const char *const optional[] = { "queue" };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 2 };
	struct err e;

	mkdir(fixture_path("src"), 0755);
	mkdir(fixture_path("src/config"), 0755);
	ck_assert_int_eq(wr_check_paths(&o, &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "'queue'"));
	o.optional = optional;
	o.noptional = 1;
	ck_assert_int_eq(wr_check_paths(&o, &e), 0);
}
END_TEST

START_TEST(file_that_shrinks_while_read_is_padded_with_a_warning)
{
	/* sysfs reports 4096 bytes for files that hold a few: a real file that "shrinks" */
	static const char *const paths[] = { "enabled" };
	struct wr_opts o = { .source = "/sys/kernel/mm/transparent_hugepage", .paths = paths,
			     .npaths = 1, .level = 1 };
	struct wr_stats st;
	struct err e;
	struct idx *x;
	struct idx_entry ent;

	if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0)
		return;	/* no such sysfs file here; the CLI test covers the same path */
	ck_assert_msg(take(&o, "a.tar.zst", &st, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(warnings, 1);
	ck_assert_ptr_nonnull(strstr(last_warning, "shrank"));
	ck_assert_uint_eq(st.warnings, 1);
	ck_assert_int_eq(idx_open(fixture_path("a.tar.zst"), &x, &e), 0);
	idx_get(x, idx_lookup_path(x, "enabled"), &ent);
	ck_assert_uint_eq(ent.size, 4096);
	idx_close(x);
}
END_TEST

static atomic_bool stop_growing;

static void *grow(void *arg)
{
	int fd = open(arg, O_WRONLY | O_APPEND);

	while (!atomic_load(&stop_growing))
		if (write(fd, "x", 1) != 1)
			break;
	close(fd);
	return NULL;
}

START_TEST(file_that_grows_while_read_is_cut_with_a_warning)
{
	static const char *const paths[] = { "log" };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 1, .level = 1 };
	struct wr_stats st;
	struct err e;
	pthread_t t;

	mkdir(fixture_path("src"), 0755);
	mkfile("src/log", 64u << 20, 1, 1);
	atomic_store(&stop_growing, false);
	pthread_create(&t, NULL, grow, (void *)fixture_path("src/log"));
	ck_assert_msg(take(&o, "a.tar.zst", &st, &e) == 0, "%s", e.msg);
	atomic_store(&stop_growing, true);
	pthread_join(t, NULL);
	ck_assert_int_ge(warnings, 1);
	ck_assert_ptr_nonnull(strstr(last_warning, "changed while it was read"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("writer");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_kind_of_entry_round_trips);
	tcase_add_test(tc, xattrs_and_hard_links_are_kept);
	tcase_add_test(tc, random_reads_match_the_source_bytes);
	tcase_add_test(tc, sparse_holes_read_as_zeros);
	tcase_add_test(tc, big_file_data_starts_a_frame);
	tcase_add_test(tc, excludes_match_names_and_directories);
	tcase_add_test(tc, excluded_entries_are_not_archived);
	tcase_add_test(tc, missing_path_fails_unless_optional);
	tcase_add_test(tc, file_that_shrinks_while_read_is_padded_with_a_warning);
	tcase_add_test(tc, file_that_grows_while_read_is_cut_with_a_warning);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

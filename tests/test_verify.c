#include "verify.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fixture.h"
#include "index.h"
#include "writer.h"
#include "zseek.h"

#define FRAME (64u * 1024)

static void mkfile(const char *rel, size_t len, uint64_t seed, int text)
{
	unsigned char *buf = malloc(len + 1);

	fixture_fill(buf, len, seed, text);
	fixture_write(fixture_path(rel), buf, len);
	free(buf);
}

/* A small orchestrator-cc-like tree with a big file, links, an xattr and a sparse file. */
static void make_tree(void)
{
	ck_assert_int_eq(mkdir(fixture_path("src"), 0755), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/config"), 0750), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/config/personalities"), 0755), 0);
	ck_assert_int_eq(mkdir(fixture_path("src/queue"), 0700), 0);
	mkfile("src/config/cc-cluster.yaml", 3000, 1, 1);
	mkfile("src/config/personalities/grand_boss.txt", 100, 2, 1);
	mkfile("src/queue/msg-0001.yaml", 400, 3, 1);
	mkfile("src/big.bin", 700 * 1024 + 3, 4, 0);
	mkfile("src/.env", 20, 5, 1);
	ck_assert_int_eq(symlink("config/cc-cluster.yaml", fixture_path("src/link")), 0);
	ck_assert_int_eq(link(fixture_path("src/queue/msg-0001.yaml"), fixture_path("src/hard")), 0);
	ck_assert_int_eq(mkfifo(fixture_path("src/fifo"), 0644), 0);
	setxattr(fixture_path("src/config/cc-cluster.yaml"), "user.note", "hi", 2, 0);
	int fd = open(fixture_path("src/sparse"), O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "data", 4, 1 << 20), 4);
	ck_assert_int_eq(ftruncate(fd, 2 << 20), 0);
	close(fd);
}

/* Take the tree into fixture/name with small frames, so there are several. */
static const char *take(const char *name)
{
	static const char *const paths[] = { "config", "queue", "big.bin", ".env", "link", "hard",
					     "fifo", "sparse" };
	char src[4200];
	struct wr_opts o = { .source = strcpy(src, fixture_path("src")), .paths = paths,
			     .npaths = 8, .level = 3, .frame_size = FRAME, .group_size = FRAME,
			     .time = 1700000000 };
	struct wr_stats st;
	struct err e;
	int fd = open(fixture_path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(wr_write(fd, name, &o, &st, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(st.warnings, 0);
	close(fd);
	return fixture_path(name);
}

static int verify(const char *path, const char *const *require, size_t n, struct err *e)
{
	struct vfy_opts o = { .require = require, .nrequire = n };
	struct vfy_result r;

	return vfy_archive(path, &o, &r, e);
}

static void flip(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void cut(const char *path, uint64_t size)
{
	ck_assert_int_eq(truncate(path, (off_t)size), 0);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Frame i of a native archive. */
static struct zseek_frame frame_of(const char *path, int i)
{
	struct zseek_frame f;
	struct zseek *z;
	struct err e;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(zseek_open(fd, path, file_size(path), &z, &e) == 0, "%s", e.msg);
	ck_assert_uint_gt(zseek_nframes(z), 3);
	zseek_frame(z, i < 0 ? zseek_nframes(z) + (uint32_t)i : (uint32_t)i, &f);
	zseek_close(z);
	close(fd);
	return f;
}

static void assert_msg_has(const struct err *e, const char *what)
{
	ck_assert_msg(strstr(e->msg, what) != NULL, "'%s' not in: %s", what, e->msg);
}

static void assert_msg_has_offset(const struct err *e, uint64_t off)
{
	char num[32];

	snprintf(num, sizeof(num), "byte %" PRIu64, off);
	assert_msg_has(e, num);
}

START_TEST(good_native_archive_passes)
{
	static const char *const req[] = { "config/cc-cluster.yaml", "./config/personalities/",
					   "/queue/msg-0001.yaml", "hard" };
	struct vfy_opts o = { .require = req, .nrequire = 4 };
	struct vfy_result r;
	struct err e;

	make_tree();
	ck_assert_msg(vfy_archive(take("a.tar.zst"), &o, &r, &e) == 0, "%s", e.msg);
	ck_assert(r.native);
	ck_assert_uint_eq(r.members, 12);	/* 4 dirs (config, personalities, queue...) + files */
}
END_TEST

/*
 * Hard links to a symlink and a FIFO, and ACLs (where the test's file system
 * takes them): what the writer's index says is what the tar stream rebuilds.
 */
START_TEST(links_to_symlinks_and_fifos_and_acls_pass)
{
	static const unsigned char acl[] = {
		2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 6, 0, 0xd2, 4, 0, 0,
		4, 0, 4, 0, 255, 255, 255, 255, 0x10, 0, 6, 0, 255, 255, 255, 255,
		0x20, 0, 4, 0, 255, 255, 255, 255 };
	static const char *const req[] = { "link", "fifo" };
	struct vfy_opts o = { .require = req, .nrequire = 2 };
	struct err e;

	make_tree();
	/* the paths take() stores: "link" and "fifo" get a second name each */
	ck_assert_int_eq(linkat(AT_FDCWD, fixture_path("src/link"), AT_FDCWD,
				fixture_path("src/config/link2"), 0), 0);
	ck_assert_int_eq(link(fixture_path("src/fifo"), fixture_path("src/queue/fifo2")), 0);
	if (setxattr(fixture_path("src/config/personalities/grand_boss.txt"),
		     "system.posix_acl_access", acl, sizeof(acl), 0) < 0)
		fixture_skip("links_to_symlinks_and_fifos_and_acls_pass: no ACL on this file system");
	ck_assert_msg(vfy_archive(take("links.tar.zst"), &o, NULL, &e) == 0, "%s", e.msg);
}
END_TEST

/* An archive of index version 1 (tests/data/README.md) still verifies. */
START_TEST(an_older_snapkeeps_archive_passes)
{
	const char *dir = getenv("SNAPFS_TESTDATA");
	char path[4200];
	struct vfy_result r;
	struct err e;

	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof(path), "%s/v1-acl-fifo-link.tar.zst", dir);
	struct vfy_opts o = { 0 };
	ck_assert_msg(vfy_archive(path, &o, &r, &e) == 0, "%s", e.msg);
	ck_assert(r.native);
}
END_TEST

START_TEST(one_decoding_thread_or_many_agree)
{
	struct vfy_opts o = { .threads = 1 };
	struct err e;
	const char *a;
	uint64_t off;

	make_tree();
	a = take("a.tar.zst");
	ck_assert_msg(vfy_archive(a, &o, NULL, &e) == 0, "%s", e.msg);
	o.threads = 7;
	ck_assert_msg(vfy_archive(a, &o, NULL, &e) == 0, "%s", e.msg);
	off = frame_of(a, 5).coff;
	flip(a, off + 20);
	ck_assert_int_eq(vfy_archive(a, &o, NULL, &e), -1);
	assert_msg_has_offset(&e, off);
	o.threads = 1;
	ck_assert_int_eq(vfy_archive(a, &o, NULL, &e), -1);
	assert_msg_has_offset(&e, off);
}
END_TEST

START_TEST(flipped_byte_in_a_data_frame_fails_naming_the_frame)
{
	struct zseek_frame f;
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	f = frame_of(a, 2);
	flip(a, f.coff + f.csize / 2);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	assert_msg_has_offset(&e, f.coff);
	ck_assert_ptr_null(strstr(e.msg, "snapkeep verify"));
}
END_TEST

START_TEST(flipped_byte_in_the_index_fails_naming_the_index)
{
	struct zseek_frame f;
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	f = frame_of(a, -1);	/* the index frame, before the seek table */
	flip(a, f.coff + f.csize - 6);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	assert_msg_has(&e, "index");
	assert_msg_has_offset(&e, f.coff);
}
END_TEST

START_TEST(flipped_byte_in_the_seek_table_fails)
{
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	flip(a, file_size(a) - 20);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	assert_msg_has(&e, "seek table");
}
END_TEST

START_TEST(damaged_footer_is_not_mistaken_for_a_foreign_archive)
{
	struct zseek_frame f;
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	f = frame_of(a, -1);
	flip(a, file_size(a) - 2);	/* the seekable magic: a plain tar.zst to any reader */
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	assert_msg_has(&e, "seek table");
	assert_msg_has_offset(&e, f.coff);
}
END_TEST

START_TEST(truncated_archive_fails_naming_where)
{
	struct zseek_frame f;
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	f = frame_of(a, 3);
	cut(a, f.coff + 100);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	assert_msg_has(&e, "ends inside");
	assert_msg_has_offset(&e, f.coff);
}
END_TEST

START_TEST(archive_cut_after_its_index_fails)
{
	struct zseek_frame f;
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	f = frame_of(a, -1);
	cut(a, f.coff + f.csize);	/* every frame whole, the seek table gone */
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	assert_msg_has(&e, "snapfs index");
	assert_msg_has_offset(&e, f.coff);
}
END_TEST

START_TEST(missing_required_path_fails_naming_it)
{
	static const char *const req[] = { "config/cc-cluster.yaml", "config/personalities/gone.txt" };
	struct err e;

	make_tree();
	ck_assert_int_eq(verify(take("a.tar.zst"), req, 2, &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
	assert_msg_has(&e, "'config/personalities/gone.txt'");
}
END_TEST

START_TEST(required_path_with_dotdot_is_refused)
{
	static const char *const req[] = { "config/../../etc/passwd" };
	struct err e;

	make_tree();
	ck_assert_int_eq(verify(take("a.tar.zst"), req, 1, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
}
END_TEST

/*
 * A native archive whose checksums are all good but whose index disagrees with
 * the tar stream: the tar from libarchive's writer, the index built from the
 * same entries with one of them changed by tweak().
 */
static const char *forge(const char *name, void (*tweak)(struct archive_entry *, uint64_t *))
{
	static char tar[64 * 1024];
	struct archive *w = archive_write_new(), *r = archive_read_new();
	struct idx_builder *b = idx_builder_new(1, NULL);
	struct archive_entry *ent;
	struct zseek_writer *z;
	void *blob, *frame;
	size_t used, len, flen;
	struct err e;
	int fd;

	archive_write_set_format_pax(w);
	archive_write_set_bytes_per_block(w, 0);
	archive_write_open_memory(w, tar, sizeof(tar), &used);
	for (int i = 0; i < 3; i++) {
		char path[32];
		ent = archive_entry_new();
		snprintf(path, sizeof(path), "dir/file%d", i);
		archive_entry_set_pathname(ent, path);
		archive_entry_set_filetype(ent, AE_IFREG);
		archive_entry_set_perm(ent, 0640);
		archive_entry_set_mtime(ent, 1700000000, 5);
		archive_entry_set_size(ent, 1000);
		archive_write_header(w, ent);
		archive_write_data(w, tar + 40000, 1000);	/* zeros */
		archive_entry_free(ent);
	}
	archive_write_close(w);
	archive_write_free(w);
	archive_read_support_format_tar(r);
	archive_read_open_memory(r, tar, used);
	while (archive_read_next_header(r, &ent) == ARCHIVE_OK) {
		uint64_t off = (uint64_t)archive_filter_bytes(r, 0);
		if (strcmp(archive_entry_pathname(ent), "dir/file1") == 0)
			tweak(ent, &off);
		ck_assert_int_eq(idx_builder_add(b, ent, off, &e), 0);
	}
	archive_read_free(r);
	ck_assert_int_eq(idx_builder_finish(b, &blob, &len, &e), 0);
	ck_assert_int_eq(idx_pack_frame(blob, len, used, &frame, &flen, &e), 0);
	fd = open(fixture_path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(zseek_writer_new(fd, name, 3, 1, 4096, &z, &e), 0);
	ck_assert_int_eq(zseek_write(z, tar, used, &e), 0);
	ck_assert_int_eq(zseek_write_skippable(z, IDX_FRAME_KIND, frame, flen, &e), 0);
	ck_assert_int_eq(zseek_finish(z, &e), 0);
	zseek_writer_free(z);
	close(fd);
	idx_builder_free(b);
	free(blob);
	free(frame);
	return fixture_path(name);
}

static void no_tweak(struct archive_entry *ent, uint64_t *off)
{
	(void)ent, (void)off;
}

static void other_mode(struct archive_entry *ent, uint64_t *off)
{
	(void)off;
	archive_entry_set_perm(ent, 0644);
}

static void other_offset(struct archive_entry *ent, uint64_t *off)
{
	(void)ent;
	*off += 512;
}

static void other_mtime(struct archive_entry *ent, uint64_t *off)
{
	(void)off;
	archive_entry_set_mtime(ent, 1700000000, 6);
}

START_TEST(index_that_disagrees_with_the_tar_headers_fails)
{
	struct err e;

	ck_assert_msg(verify(forge("ok.tar.zst", no_tweak), NULL, 0, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(verify(forge("mode.tar.zst", other_mode), NULL, 0, &e), -1);
	assert_msg_has(&e, "mode of 'dir/file1'");
	ck_assert_int_eq(verify(forge("mtime.tar.zst", other_mtime), NULL, 0, &e), -1);
	assert_msg_has(&e, "mtime of 'dir/file1'");
	ck_assert_int_eq(verify(forge("off.tar.zst", other_offset), NULL, 0, &e), -1);
	assert_msg_has(&e, "data of 'dir/file1'");
}
END_TEST

static void shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void shell(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

START_TEST(tar_gz_made_by_gnu_tar_passes)
{
	static const char *const req[] = { "config/cc-cluster.yaml", "queue" };
	struct vfy_opts o = { .require = req, .nrequire = 2 };
	struct vfy_result r;
	struct err e;

	make_tree();
	shell("cd '%s' && tar --format=gnu -czf ../old.tar.gz config queue big.bin",
	      fixture_path("src"));
	ck_assert_msg(vfy_archive(fixture_path("old.tar.gz"), &o, &r, &e) == 0, "%s", e.msg);
	ck_assert(!r.native);
	ck_assert_uint_eq(r.members, 7);
}
END_TEST

START_TEST(corrupted_tar_gz_fails)
{
	const char *a;
	uint64_t size;
	struct err e;

	make_tree();
	shell("cd '%s' && tar -czf ../old.tar.gz config queue big.bin", fixture_path("src"));
	a = fixture_path("old.tar.gz");
	size = file_size(a);
#ifdef SNAPFS_HAVE_ZLIB
	flip(a, size / 2);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	/* libarchive 3.6 ignores gzip's CRC-32: a change there alone is damage too */
	shell("cd '%s' && tar -czf ../crc.tar.gz config", fixture_path("src"));
	a = fixture_path("crc.tar.gz");
	flip(a, file_size(a) - 6);
	ck_assert_int_eq(verify(a, NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, EIO);
	assert_msg_has(&e, "gzip");
#else
	fputs("note: built without zlib: gzip's CRC-32 is not checked, only truncation\n", stderr);
#endif
	cut(fixture_path("old.tar.gz"), size - 100);
	ck_assert_int_eq(verify(fixture_path("old.tar.gz"), NULL, 0, &e), -1);
}
END_TEST

START_TEST(foreign_formats_pass_and_fail_by_their_checksums)
{
	struct err e;

	make_tree();
	shell("cd '%s' && tar --zstd -cf ../a.tar.zst config big.bin && "
	      "bsdtar --format zip -cf ../a.zip config big.bin", fixture_path("src"));
	ck_assert_msg(verify(fixture_path("a.tar.zst"), NULL, 0, &e) == 0, "%s", e.msg);
	ck_assert_msg(verify(fixture_path("a.zip"), NULL, 0, &e) == 0, "%s", e.msg);
	flip(fixture_path("a.tar.zst"), file_size(fixture_path("a.tar.zst")) / 2);
	ck_assert_int_eq(verify(fixture_path("a.tar.zst"), NULL, 0, &e), -1);
	flip(fixture_path("a.zip"), file_size(fixture_path("a.zip")) / 2);
	ck_assert_int_eq(verify(fixture_path("a.zip"), NULL, 0, &e), -1);
}
END_TEST

START_TEST(text_file_is_not_an_archive)
{
	struct err e;

	fixture_write(fixture_path("notes.tar"), "hello\n", 6);
	ck_assert_int_eq(verify(fixture_path("notes.tar"), NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, ENOTSUP);
	ck_assert_int_eq(verify(fixture_path("missing.tar"), NULL, 0, &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
}
END_TEST

static uint64_t last_done, calls;

static void on_progress(void *ctx, const struct vfy_progress *p)
{
	(void)ctx;
	ck_assert_uint_ge(p->done, last_done);
	ck_assert_uint_le(p->done, p->total);
	last_done = p->done;
	calls++;
}

START_TEST(progress_rises_to_the_file_size)
{
	struct vfy_opts o = { .progress = on_progress };
	struct err e;
	const char *a;

	make_tree();
	a = take("a.tar.zst");
	last_done = calls = 0;
	ck_assert_msg(vfy_archive(a, &o, NULL, &e) == 0, "%s", e.msg);
	ck_assert_uint_gt(calls, 3);
	/* the trailer is read by idx_open(), not the frame decoders */
	ck_assert_uint_ge(last_done, frame_of(a, -1).coff - FRAME);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, good_native_archive_passes);
	tcase_add_test(tc, links_to_symlinks_and_fifos_and_acls_pass);
	tcase_add_test(tc, an_older_snapkeeps_archive_passes);
	tcase_add_test(tc, one_decoding_thread_or_many_agree);
	tcase_add_test(tc, flipped_byte_in_a_data_frame_fails_naming_the_frame);
	tcase_add_test(tc, flipped_byte_in_the_index_fails_naming_the_index);
	tcase_add_test(tc, flipped_byte_in_the_seek_table_fails);
	tcase_add_test(tc, damaged_footer_is_not_mistaken_for_a_foreign_archive);
	tcase_add_test(tc, truncated_archive_fails_naming_where);
	tcase_add_test(tc, archive_cut_after_its_index_fails);
	tcase_add_test(tc, missing_required_path_fails_naming_it);
	tcase_add_test(tc, required_path_with_dotdot_is_refused);
	tcase_add_test(tc, index_that_disagrees_with_the_tar_headers_fails);
	tcase_add_test(tc, tar_gz_made_by_gnu_tar_passes);
	tcase_add_test(tc, corrupted_tar_gz_fails);
	tcase_add_test(tc, foreign_formats_pass_and_fail_by_their_checksums);
	tcase_add_test(tc, text_file_is_not_an_archive);
	tcase_add_test(tc, progress_rises_to_the_file_size);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

#include "store.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* 2026-02-04 02:00:00 UTC, `date -u -d '2026-02-04 02:00:00' +%s` */
#define T0 INT64_C(1770170400)
#define FIRST "n-20260204_020000.tar.zst"

/* POSIX TZ strings need no tzdata: "UTC0" is UTC, "XXX-1" one hour east of it. */
static void set_tz(const char *tz)
{
	ck_assert_int_eq(setenv("TZ", tz, 1), 0);
	tzset();
}

static void touch(const char *rel, const char *text)
{
	fixture_write(fixture_path(rel), text, strlen(text));
}

static int exists(const char *rel)
{
	struct stat st;

	return lstat(fixture_path(rel), &st) == 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* The names in dir (without "." and ".."), sorted, joined by spaces. */
static const char *names_in(const char *dir)
{
	static char buf[4096];
	struct dirent **v;
	int n = scandir(dir, &v, NULL, alphasort);
	size_t len = 0;

	ck_assert_int_ge(n, 0);
	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(v[i]->d_name, ".") != 0 && strcmp(v[i]->d_name, "..") != 0)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
						len ? " " : "", v[i]->d_name);
		free(v[i]);
	}
	free(v);
	return buf;
}

/* Create an archive of name at time in dir, holding text; returns the time used. */
static int64_t commit_one(const char *dir, const char *name, int64_t time, const char *text)
{
	struct store_tmp t;
	struct err e;

	ck_assert_msg(store_create(dir, name, &time, &t, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(write(t.fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_msg(store_commit(&t, &e) == 0, "%s", e.msg);
	store_abort(&t);
	return time;
}

/* store_parse_name */

START_TEST(parses_native_name_and_time)
{
	struct store_name n;

	ck_assert(store_parse_name("orchestrator-cc-20260204_020000.tar.zst", &n));
	ck_assert(n.native);
	ck_assert(n.has_time);
	ck_assert_uint_eq(n.name_len, strlen("orchestrator-cc"));
	ck_assert_uint_eq(n.ext_len, strlen(".tar.zst"));
	ck_assert_int_eq(n.year, 2026);
	ck_assert_int_eq(n.month, 2);
	ck_assert_int_eq(n.day, 4);
	ck_assert_int_eq(n.hour, 2);
	ck_assert_int_eq(n.min, 0);
	ck_assert_int_eq(n.sec, 0);
}
END_TEST

START_TEST(recognises_foreign_archive_extensions)
{
	static const char *const exts[] = {
		".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zstd",
		".tzst", ".tar.lz4", ".tlz4", ".tar.lzma", ".tar", ".zip", ".cpio", ".7z", ".iso",
	};
	char file[64];
	struct store_name n;

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		snprintf(file, sizeof(file), "cc-20260204_020000%s", exts[i]);
		ck_assert_msg(store_parse_name(file, &n), "%s not an archive", file);
		ck_assert_msg(!n.native, "%s taken as native", file);
		ck_assert_msg(n.has_time, "%s has no time", file);
		ck_assert_uint_eq(n.ext_len, strlen(exts[i]));
		ck_assert_uint_eq(n.name_len, 2);
	}
}
END_TEST

START_TEST(longest_extension_wins)
{
	struct store_name n;

	/* ".tar.gz", not ".gz" or ".tar": the time right before it still parses */
	ck_assert(store_parse_name("cc-20260204_020000.tar.gz", &n));
	ck_assert_uint_eq(n.ext_len, 7);
	ck_assert(store_parse_name("cc-20260204_020000.tar.zstd", &n));
	ck_assert_uint_eq(n.ext_len, 9);
	ck_assert(!n.native);
}
END_TEST

START_TEST(name_may_contain_dashes_and_digits)
{
	struct store_name n;

	ck_assert(store_parse_name("my-app-2-x-20260204_020000.tar.zst", &n));
	ck_assert(n.has_time);
	ck_assert_uint_eq(n.name_len, strlen("my-app-2-x"));
	ck_assert(store_parse_name("20260101_000000-20260204_020000.tgz", &n));
	ck_assert(n.has_time);
	ck_assert_uint_eq(n.name_len, 15);
	ck_assert_int_eq(n.day, 4);
}
END_TEST

START_TEST(archive_without_time_has_no_name_part)
{
	struct store_name n;

	ck_assert(store_parse_name("backup.tar.gz", &n));
	ck_assert(!n.has_time);
	ck_assert_uint_eq(n.name_len, 0);
	ck_assert_uint_eq(n.ext_len, 7);
	/* a time with no name before its '-' is no snapshot name */
	ck_assert(store_parse_name("20260204_020000.tar.zst", &n));
	ck_assert(!n.has_time);
	ck_assert(n.native);
}
END_TEST

START_TEST(invalid_time_is_an_archive_without_time)
{
	static const char *const bad[] = {
		"n-20260230_250000.tar.zst",	/* February 30th, hour 25 */
		"n-20260230_020000.tar.zst",	/* February 30th */
		"n-20250229_020000.tar.zst",	/* 2025 is no leap year */
		"n-21000229_020000.tar.zst",	/* nor is 2100 */
		"n-20261301_020000.tar.zst",	/* month 13 */
		"n-20260000_020000.tar.zst",	/* month 0 */
		"n-20260100_020000.tar.zst",	/* day 0 */
		"n-20260431_020000.tar.zst",	/* April 31st */
		"n-20260204_026000.tar.zst",	/* minute 60 */
		"n-20260204_240000.tar.zst",	/* hour 24 */
		"n-20260204-020000.tar.zst",	/* '-' for '_' */
		"n-2026a204_020000.tar.zst",
		"n-20260204_02000.tar.zst",	/* one digit short */
		"n_20260204_020000.tar.zst",	/* no '-' before the time */
		"n-19691231_235959.tar.zst",	/* before the epoch */
	};
	struct store_name n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(store_parse_name(bad[i], &n), "%s not an archive", bad[i]);
		ck_assert_msg(!n.has_time, "%s has a time", bad[i]);
		ck_assert_uint_eq(n.name_len, 0);
		ck_assert(n.native);
	}
	ck_assert(store_parse_name("n-20240229_235959.tar.zst", &n));
	ck_assert_msg(n.has_time, "2024-02-29 is a leap day");
	ck_assert(store_parse_name("n-20000229_000000.tar.zst", &n));
	ck_assert_msg(n.has_time, "2000-02-29 is a leap day");
}
END_TEST

START_TEST(hidden_and_temporary_files_are_not_archives)
{
	struct store_name n;

	ck_assert(!store_parse_name(".n-20260204_020000.tar.zst", &n));
	ck_assert(!store_parse_name(".n-20260204_020000.tar.zst.ab12cd", &n));
	ck_assert(!store_parse_name(".tar.zst", &n));
	ck_assert(!store_parse_name(STORE_LOCK_FILE, &n));
	ck_assert(!store_parse_name(".backup.tgz", &n));
}
END_TEST

START_TEST(other_files_are_not_archives)
{
	static const char *const other[] = {
		"notes.txt", "n-20260204_020000", "n-20260204_020000.tar.zst.ab12cd",
		"n-20260204_020000.tar.zst~", "n-20260204_020000.tar.zst.part", "README",
		"n-20260204_020000.yaml", "", "tar.zst", "n-20260204_020000.TAR.GZ.bak",
	};
	struct store_name n;

	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ck_assert_msg(!store_parse_name(other[i], &n), "'%s' taken as archive", other[i]);
		ck_assert_uint_eq(n.ext_len, 0);
	}
}
END_TEST

/* store_name_time, store_format_time */

START_TEST(name_time_is_local_time)
{
	struct store_name n;

	ck_assert(store_parse_name(FIRST, &n));
	set_tz("UTC0");
	ck_assert_int_eq(store_name_time(&n, 0), T0);
	set_tz("XXX-1");
	ck_assert_int_eq(store_name_time(&n, 0), T0 - 3600);
}
END_TEST

/* Berlin's rule as a POSIX TZ string (no tzdata): 2026-10-25 02:00-02:59 comes twice. */
#define BERLIN "CET-1CEST,M3.5.0,M10.5.0/3"
#define CEST_0230 INT64_C(1792888200)	/* 2026-10-25 00:30 UTC, 02:30 CEST */
#define CET_0230 (CEST_0230 + 3600)	/* 01:30 UTC, 02:30 CET */

START_TEST(name_time_in_the_repeated_hour_follows_the_file_time)
{
	struct tm summer = { .tm_year = 126, .tm_mon = 6, .tm_mday = 1, .tm_hour = 12,
			     .tm_isdst = -1 };
	struct store_name n;

	set_tz(BERLIN);
	ck_assert(store_parse_name("n-20261025_023000.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, CEST_0230 + 60), CEST_0230);	/* written in CEST */
	ck_assert_int_eq(store_name_time(&n, CET_0230 + 60), CET_0230);	/* in CET */
	ck_assert_int_eq(store_name_time(&n, CET_0230 + 86400 * 40), CET_0230);	/* copied later */
	ck_assert_int_eq(store_name_time(&n, CEST_0230 - 60), CEST_0230);	/* a clock behind */
	/* no file time: the later, though glibc's mktime() reads it by its last call's offset */
	ck_assert_int_ne(mktime(&summer), -1);
	ck_assert_int_eq(store_name_time(&n, 0), CET_0230);
	/* the second pass's take moved on a second, as its name was taken, and written at once */
	ck_assert(store_parse_name("n-20261025_023001.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, CET_0230), CET_0230 + 1);
	ck_assert_int_eq(store_name_time(&n, CEST_0230 + 1), CEST_0230 + 1);
	/* an hour before, or a day before: one reading, whatever the file's time */
	ck_assert(store_parse_name("n-20261025_013000.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, CET_0230), CEST_0230 - 3600);
	ck_assert(store_parse_name("n-20261024_023000.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, CET_0230), CEST_0230 - 86400);
	/* the spring gap: moved on by it (03:30 CEST), with or without a file time */
	ck_assert(store_parse_name("n-20260329_023000.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, INT64_C(1774748000)), INT64_C(1774747800));
	ck_assert_int_eq(store_name_time(&n, 0), INT64_C(1774747800));
}
END_TEST

START_TEST(format_time_round_trips_through_parse)
{
	char buf[16], file[64];
	struct store_name n;

	set_tz("UTC0");
	store_format_time(T0 + 3723, buf);
	ck_assert_str_eq(buf, "20260204_030203");
	set_tz("XXX-1");
	store_format_time(T0, buf);
	ck_assert_str_eq(buf, "20260204_030000");
	snprintf(file, sizeof(file), "n-%s.tar.zst", buf);
	ck_assert(store_parse_name(file, &n));
	ck_assert_int_eq(store_name_time(&n, 0), T0);
}
END_TEST

/* store_list */

START_TEST(list_is_oldest_first_with_timeless_archives_last_by_name)
{
	static const char *const want[] = {
		"c-20260204_010000.tar.zst", "a-20260204_020000.tar.gz",
		"b-20260204_020000.tar.zst", "b-20260205_020000.tar.zst",
		"old-20260301_000000.zip", "aa.zip", "zz.tar.zst",
	};
	struct store_entry *v;
	size_t n;
	struct err e;

	set_tz("UTC0");
	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	/* created in an order that is neither the answer nor its reverse */
	touch("s/zz.tar.zst", "z");
	touch("s/b-20260205_020000.tar.zst", "bb");
	touch("s/old-20260301_000000.zip", "o");
	touch("s/a-20260204_020000.tar.gz", "aaa");
	touch("s/aa.zip", "a");
	touch("s/c-20260204_010000.tar.zst", "c");
	touch("s/b-20260204_020000.tar.zst", "b");
	touch("s/notes.txt", "not an archive");
	touch("s/.x-20260101_000000.tar.zst.ab12cd", "temp");
	touch("s/" STORE_LOCK_FILE, "");
	ck_assert_msg(store_list(fixture_path("s"), &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(v[i].file, want[i]);
	ck_assert_int_eq(v[0].time, T0 - 3600);
	ck_assert_int_eq(v[1].time, T0);
	ck_assert_uint_eq(v[1].size, 3);
	ck_assert_uint_eq(v[3].size, 2);
	ck_assert(!v[5].parsed.has_time);
	ck_assert_int_eq(v[5].time, 0);
	store_list_free(v, n);
}
END_TEST

/*
 * A zone whose offset goes back with no daylight saving on either side (Moscow, 2014-10-26
 * 02:00 MSK+4 -> 01:00 MSK+3): 01:xx comes twice, both times isdst = 0. Needs tzdata.
 */
START_TEST(name_time_when_an_offset_goes_back_outside_dst)
{
	const int64_t first = INT64_C(1414272600);	/* 2014-10-25 21:30 UTC, 01:30 +04 */
	struct store_name n;

	if (access("/usr/share/zoneinfo/Europe/Moscow", R_OK) != 0) {
		fixture_skip("name_time_when_an_offset_goes_back_outside_dst: no tzdata");
		return;
	}
	set_tz("Europe/Moscow");
	ck_assert(store_parse_name("n-20141026_013000.tar.zst", &n));
	ck_assert_int_eq(store_name_time(&n, first + 40), first);
	ck_assert_int_eq(store_name_time(&n, first + 3600 + 40), first + 3600);
}
END_TEST

/* Taken at 02:30 CEST, then at 02:15 CET: the second is the newer, though its name sorts first. */
START_TEST(list_orders_the_repeated_hour_by_the_file_times)
{
	struct store_entry *v;
	size_t n;
	struct err e;
	struct timespec cest[2] = { { CEST_0230 + 40, 0 }, { CEST_0230 + 40, 0 } };
	struct timespec cet[2] = { { CET_0230 - 900 + 40, 0 }, { CET_0230 - 900 + 40, 0 } };

	set_tz(BERLIN);
	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	touch("s/n-20261025_023000.tar.zst", "first");
	touch("s/n-20261025_021500.tar.zst", "second");
	ck_assert_int_eq(utimensat(AT_FDCWD, fixture_path("s/n-20261025_023000.tar.zst"), cest,
				   0), 0);
	ck_assert_int_eq(utimensat(AT_FDCWD, fixture_path("s/n-20261025_021500.tar.zst"), cet,
				   0), 0);
	ck_assert_msg(store_list(fixture_path("s"), &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].file, "n-20261025_023000.tar.zst");
	ck_assert_int_eq(v[0].time, CEST_0230);
	ck_assert_str_eq(v[1].file, "n-20261025_021500.tar.zst");
	ck_assert_int_eq(v[1].time, CET_0230 - 900);
	store_list_free(v, n);
}
END_TEST

START_TEST(list_of_a_missing_directory_is_empty)
{
	struct store_entry *v = (struct store_entry *)1;
	size_t n = 99;
	struct err e;

	ck_assert_msg(store_list(fixture_path("nope"), &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 0);
	store_list_free(v, n);
	ck_assert(!exists("nope"));
}
END_TEST

START_TEST(list_skips_files_that_are_not_regular)
{
	struct store_entry *v;
	size_t n;
	struct err e;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	ck_assert_int_eq(mkdir(fixture_path("s/d-20260204_020000.tar.zst"), 0700), 0);
	ck_assert_int_eq(mkfifo(fixture_path("s/f-20260204_020000.tar.zst"), 0600), 0);
	ck_assert_int_eq(symlink("nowhere", fixture_path("s/l-20260204_020000.tar.zst")), 0);
	touch("s/r-20260204_020000.tar.zst", "r");
	ck_assert_msg(store_list(fixture_path("s"), &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].file, "r-20260204_020000.tar.zst");
	store_list_free(v, n);
}
END_TEST

START_TEST(list_does_not_descend_into_subdirectories)
{
	struct store_entry *v;
	size_t n;
	struct err e;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	ck_assert_int_eq(mkdir(fixture_path("s/hourly"), 0700), 0);
	touch("s/hourly/h-20260204_020000.tar.zst", "h");
	ck_assert_msg(store_list(fixture_path("s"), &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 0);
	store_list_free(v, n);
}
END_TEST

START_TEST(list_of_a_file_is_an_error_naming_it)
{
	struct store_entry *v = NULL;
	size_t n = 0;
	struct err e = { 0 };

	touch("plain", "x");
	ck_assert_int_eq(store_list(fixture_path("plain"), &v, &n, &e), -1);
	ck_assert_int_eq(e.code, ENOTDIR);
	ck_assert_ptr_nonnull(strstr(e.msg, fixture_path("plain")));
}
END_TEST

/* store_create, store_commit, store_abort */

START_TEST(commit_names_the_archive_by_local_time_with_mode_0600)
{
	char store[PATH_MAX + 1], path[PATH_MAX];
	struct store_tmp t;
	struct err e;
	int64_t time = T0;
	size_t len;

	umask(022);
	set_tz("UTC0");
	snprintf(store, sizeof(store), "%s", fixture_path("a/b/store"));
	ck_assert_msg(store_create(store, "n", &time, &t, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(time, T0);
	ck_assert_int_eq(write(t.fd, "payload", 7), 7);
	/* before the commit only a hidden temporary file exists */
	ck_assert(!exists("a/b/store/" FIRST));
	ck_assert_str_eq(names_in(store), t.tmp);
	ck_assert_msg(store_commit(&t, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(store_tmp_path(&t, path, sizeof(path)), fixture_path("a/b/store/" FIRST));
	store_abort(&t);
	ck_assert_str_eq(names_in(store), FIRST);
	ck_assert_uint_eq(mode_of(fixture_path("a/b/store/" FIRST)), 0600);
	ck_assert_uint_eq(mode_of(fixture_path("a")), 0700);
	ck_assert_uint_eq(mode_of(fixture_path("a/b")), 0700);
	ck_assert_uint_eq(mode_of(store), 0700);
	unsigned char *got = fixture_read(fixture_path("a/b/store/" FIRST), &len);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(got, "payload", 7);
	free(got);
}
END_TEST

START_TEST(temporary_file_is_hidden_0600_and_named_after_the_archive)
{
	struct store_tmp t;
	struct err e;
	int64_t time = T0;
	const char *tmp;

	set_tz("UTC0");
	ck_assert_msg(store_create(fixture_path("s"), "n", &time, &t, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(t.final, FIRST);
	tmp = t.tmp;
	ck_assert_uint_eq(strlen(tmp), 1 + strlen(FIRST) + 7);
	ck_assert_int_eq(tmp[0], '.');
	ck_assert_int_eq(strncmp(tmp + 1, FIRST, strlen(FIRST)), 0);
	ck_assert_int_eq(tmp[1 + strlen(FIRST)], '.');
	ck_assert_uint_eq(mode_of(fixture_path("s")), 0700);
	char path[PATH_MAX + NAME_MAX + 2];
	snprintf(path, sizeof(path), "%s/%s", fixture_path("s"), tmp);
	ck_assert_uint_eq(mode_of(path), 0600);
	store_abort(&t);
}
END_TEST

START_TEST(tz_applies_to_the_archive_name)
{
	set_tz("XXX-1");
	commit_one(fixture_path("s"), "n", T0, "x");
	ck_assert_str_eq(names_in(fixture_path("s")), "n-20260204_030000.tar.zst");
}
END_TEST

START_TEST(second_take_in_the_same_second_moves_on_a_second)
{
	size_t len;

	set_tz("UTC0");
	ck_assert_int_eq(commit_one(fixture_path("s"), "n", T0, "first"), T0);
	ck_assert_int_eq(commit_one(fixture_path("s"), "n", T0, "second"), T0 + 1);
	ck_assert_int_eq(commit_one(fixture_path("s"), "n", T0, "third"), T0 + 2);
	ck_assert_str_eq(names_in(fixture_path("s")),
			 FIRST " n-20260204_020001.tar.zst n-20260204_020002.tar.zst");
	unsigned char *got = fixture_read(fixture_path("s/" FIRST), &len);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(got, "first", 5);
	free(got);
	/* another name at the same time is free */
	ck_assert_int_eq(commit_one(fixture_path("s"), "m", T0, "m"), T0);
}
END_TEST

START_TEST(commit_never_replaces_an_existing_archive)
{
	struct store_tmp a, b;
	struct err e;
	int64_t ta = T0, tb = T0;
	size_t len;

	set_tz("UTC0");
	/* both started before either is committed: both aim at the same name */
	ck_assert_msg(store_create(fixture_path("s"), "n", &ta, &a, &e) == 0, "%s", e.msg);
	ck_assert_msg(store_create(fixture_path("s"), "n", &tb, &b, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(a.final, b.final);
	ck_assert_str_ne(a.tmp, b.tmp);
	ck_assert_int_eq(write(a.fd, "aaaa", 4), 4);
	ck_assert_int_eq(write(b.fd, "bb", 2), 2);
	ck_assert_msg(store_commit(&a, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_commit(&b, &e), -1);
	ck_assert_int_eq(e.code, EEXIST);
	store_abort(&b);
	store_abort(&a);
	ck_assert_str_eq(names_in(fixture_path("s")), FIRST);
	unsigned char *got = fixture_read(fixture_path("s/" FIRST), &len);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(got, "aaaa", 4);
	free(got);
}
END_TEST

START_TEST(abort_leaves_no_file)
{
	struct store_tmp t;
	struct err e;
	int64_t time = T0;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	ck_assert_msg(store_create(fixture_path("s"), "n", &time, &t, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(write(t.fd, "partial", 7), 7);
	store_abort(&t);
	ck_assert_str_eq(names_in(fixture_path("s")), "");
	ck_assert_int_eq(t.fd, -1);
	ck_assert_ptr_null(t.tmp);
	store_abort(&t);	/* twice is harmless */
	store_abort(NULL);
}
END_TEST

START_TEST(create_refuses_a_name_too_long_for_the_file_system)
{
	char name[NAME_MAX];
	struct store_tmp t;
	struct err e = { 0 };
	int64_t time = T0;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(store_create(fixture_path("s"), name, &time, &t, &e), -1);
	ck_assert_int_eq(e.code, ENAMETOOLONG);
	ck_assert_int_eq(time, T0);
	ck_assert_int_eq(t.fd, -1);
	ck_assert(!exists("s"));
}
END_TEST

START_TEST(create_in_an_unwritable_store_fails_and_leaves_nothing)
{
	struct store_tmp t;
	struct err e = { 0 };
	int64_t time = T0;

	/* a file where the store directory should be */
	touch("s", "x");
	ck_assert_int_eq(store_create(fixture_path("s/sub"), "n", &time, &t, &e), -1);
	ck_assert_int_ne(e.code, 0);
	ck_assert_ptr_nonnull(strstr(e.msg, fixture_path("s")));
	ck_assert_int_eq(t.fd, -1);
	store_abort(&t);
}
END_TEST

/*
 * A store directory we may read but not search: the name check fails with
 * EACCES. Run in a child with an alarm so a loop fails the test instead of
 * hanging it, as nobody when we are root (root searches any directory).
 */
START_TEST(create_in_an_unsearchable_store_fails_instead_of_looping)
{
	int status;
	pid_t pid;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(fixture_dir, 65534, 65534), 0);
		ck_assert_int_eq(chown(fixture_path("s"), 65534, 65534), 0);
	}
	ck_assert_int_eq(chmod(fixture_path("s"), 0400), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct store_tmp t;
		struct err e = { 0 };
		int64_t time = T0;
		signal(SIGALRM, SIG_DFL);	/* not check's handler, inherited through fork */
		alarm(10);
		if (geteuid() == 0 && (setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(3);
		if (store_create(fixture_path("s"), "n", &time, &t, &e) != -1)
			_exit(1);
		_exit(e.code == EACCES && time == T0 ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	chmod(fixture_path("s"), 0700);
	ck_assert_msg(!WIFSIGNALED(status), "store_create did not return (signal %d)",
		      WTERMSIG(status));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "store_create: child exit %d (1: succeeded, 2: wrong error, 3: setresuid)",
		      WEXITSTATUS(status));
}
END_TEST

START_TEST(mkdir_of_an_empty_path_is_an_error)
{
	struct err e = { 0 };

	ck_assert_int_eq(store_mkdir("", &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
}
END_TEST

/* store_clean_temps */

START_TEST(clean_temps_removes_only_hidden_temporary_files)
{
	static const char *const temps[] = {
		".n-20260204_020000.tar.zst.ab12cd",
		".my-app-20260204_020000.tar.zst.000000",
		".n-20260204_020000.tar.zst.zzzzzz",
	};
	static const char *const keep[] = {
		FIRST,
		STORE_LOCK_FILE,
		".n-20260204_020000.tar.zst",		/* no random part */
		"n-20260204_020000.tar.zst.ab12cd",	/* not hidden */
		".n-20260204_020000.tar.gz.ab12cd",	/* not ours: we write .tar.zst only */
		".notes.tar.zst.keep.ab12cd",		/* ".notes.tar.zst.keep" is no archive */
		".n-20260204_020000.tar.zst.ab12cd.bak",
		".n-20260204_020000.tar.zst.ab12c",	/* five random characters */
		".cache",
		"notes.txt",
	};
	char rel[128];
	struct err e;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	ck_assert_int_eq(mkdir(fixture_path("s/sub"), 0700), 0);
	for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
		snprintf(rel, sizeof(rel), "s/%s", temps[i]);
		touch(rel, "temp");
	}
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		snprintf(rel, sizeof(rel), "s/%s", keep[i]);
		touch(rel, "keep");
	}
	/* not below the directory */
	touch("s/sub/.n-20260204_020000.tar.zst.ab12cd", "temp below");
	ck_assert_msg(store_clean_temps(fixture_path("s"), &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
		snprintf(rel, sizeof(rel), "s/%s", temps[i]);
		ck_assert_msg(!exists(rel), "%s was kept", temps[i]);
	}
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		snprintf(rel, sizeof(rel), "s/%s", keep[i]);
		ck_assert_msg(exists(rel), "%s was removed", keep[i]);
	}
	ck_assert(exists("s/sub/.n-20260204_020000.tar.zst.ab12cd"));
}
END_TEST

START_TEST(clean_temps_removes_what_a_dead_take_left)
{
	struct store_tmp t;
	struct err e;
	int64_t time = T0;

	set_tz("UTC0");
	commit_one(fixture_path("s"), "n", T0, "kept");
	ck_assert_msg(store_create(fixture_path("s"), "n", &time, &t, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(write(t.fd, "dead", 4), 4);
	/* the take dies: its descriptors go, its temporary file stays */
	close(t.fd);
	close(t.dirfd);
	ck_assert_msg(store_clean_temps(fixture_path("s"), &e) == 0, "%s", e.msg);
	ck_assert_str_eq(names_in(fixture_path("s")), FIRST);
	free(t.tmp);
	free(t.final);
	free(t.dir);
}
END_TEST

START_TEST(clean_temps_of_a_missing_directory_is_done)
{
	struct err e;

	ck_assert_msg(store_clean_temps(fixture_path("nope"), &e) == 0, "%s", e.msg);
}
END_TEST

/* store_delete */

START_TEST(delete_removes_an_archive)
{
	struct err e;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	touch("s/" FIRST, "x");
	touch("s/b-20260204_020000.tar.gz", "x");
	ck_assert_msg(store_delete(fixture_path("s"), FIRST, &e) == 0, "%s", e.msg);
	ck_assert_msg(store_delete(fixture_path("s"), "b-20260204_020000.tar.gz", &e) == 0, "%s",
		      e.msg);
	ck_assert_str_eq(names_in(fixture_path("s")), "");
	ck_assert_int_eq(store_delete(fixture_path("s"), FIRST, &e), -1);
	ck_assert_int_eq(e.code, ENOENT);
}
END_TEST

START_TEST(delete_refuses_names_that_are_not_archives)
{
	static const char *const refused[] = {
		"notes.txt", STORE_LOCK_FILE, ".n-20260204_020000.tar.zst.ab12cd",
		".n-20260204_020000.tar.zst", "sub/" FIRST, "../" FIRST, "/etc/passwd", ".", "..",
		"",
	};
	struct err e;

	ck_assert_int_eq(mkdir(fixture_path("s"), 0700), 0);
	ck_assert_int_eq(mkdir(fixture_path("s/sub"), 0700), 0);
	touch("s/notes.txt", "x");
	touch("s/" STORE_LOCK_FILE, "");
	touch("s/.n-20260204_020000.tar.zst.ab12cd", "x");
	touch("s/.n-20260204_020000.tar.zst", "x");
	touch("s/sub/" FIRST, "x");
	touch(FIRST, "outside the store");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		e.code = 0;
		ck_assert_msg(store_delete(fixture_path("s"), refused[i], &e) == -1,
			      "'%s' was deleted", refused[i]);
		ck_assert_int_eq(e.code, EINVAL);
	}
	ck_assert_str_eq(names_in(fixture_path("s")),
			 ".n-20260204_020000.tar.zst .n-20260204_020000.tar.zst.ab12cd "
			 STORE_LOCK_FILE " notes.txt sub");
	ck_assert(exists("s/sub/" FIRST));
	ck_assert(exists(FIRST));
}
END_TEST

/* store_lock */

START_TEST(lock_creates_store_and_lock_file_private)
{
	struct err e;
	int fd;

	umask(022);
	fd = store_lock(fixture_path("s"), 0, &e);
	ck_assert_msg(fd >= 0, "%s", e.msg);
	ck_assert_uint_eq(mode_of(fixture_path("s")), 0700);
	ck_assert_uint_eq(mode_of(fixture_path("s/" STORE_LOCK_FILE)), 0600);
	store_unlock(fd);
	store_unlock(-1);
}
END_TEST

START_TEST(lock_is_exclusive_until_unlocked)
{
	struct err e = { 0 };
	int a, b;

	a = store_lock(fixture_path("s"), 0, &e);
	ck_assert_msg(a >= 0, "%s", e.msg);
	ck_assert_int_eq(store_lock(fixture_path("s"), 0, &e), -1);
	ck_assert_int_eq(e.code, EWOULDBLOCK);
	store_unlock(a);
	b = store_lock(fixture_path("s"), 0, &e);
	ck_assert_msg(b >= 0, "%s", e.msg);
	store_unlock(b);
}
END_TEST

/*
 * A child process that holds the lock: it writes one byte to *ready once it
 * holds it, and holds it until the write end of *release is closed.
 */
static pid_t start_holder(const char *dir, int *ready, int *release)
{
	int up[2], down[2];
	pid_t pid;

	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct err e;
		char c;
		close(up[0]);
		close(down[1]);
		int fd = store_lock(dir, 0, &e);
		if (fd < 0 || write(up[1], "L", 1) != 1)
			_exit(1);
		while (read(down[0], &c, 1) > 0)
			;
		store_unlock(fd);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	*ready = up[0];
	*release = down[1];
	return pid;
}

static void stop_holder(pid_t pid, int ready, int release)
{
	int status;

	close(release);
	close(ready);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

START_TEST(lock_held_by_another_process_would_block)
{
	struct err e = { 0 };
	struct timespec t0, t1;
	int ready, release;
	char c;
	pid_t pid;

	pid = start_holder(fixture_path("s"), &ready, &release);
	ck_assert_int_eq(read(ready, &c, 1), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(store_lock(fixture_path("s"), 150, &e), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(e.code, EWOULDBLOCK);
	ck_assert_ptr_nonnull(strstr(e.msg, fixture_path("s")));
	/* it gave up after about wait_ms, not at once and not much later */
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(waited >= 0.1 && waited < 5, "waited %.3f s", waited);
	ck_assert_int_eq(store_lock(fixture_path("s"), 0, &e), -1);
	ck_assert_int_eq(e.code, EWOULDBLOCK);
	stop_holder(pid, ready, release);
	int fd = store_lock(fixture_path("s"), 0, &e);
	ck_assert_msg(fd >= 0, "%s", e.msg);
	store_unlock(fd);
}
END_TEST

START_TEST(lock_waits_for_the_holder_to_finish)
{
	struct err e = { 0 };
	int ready, release, status, fd;
	char c;
	pid_t pid;

	pid = start_holder(fixture_path("s"), &ready, &release);
	ck_assert_int_eq(read(ready, &c, 1), 1);
	/* the holder lets go while (or before) we wait: either way we get it */
	close(release);
	fd = store_lock(fixture_path("s"), 30000, &e);
	ck_assert_msg(fd >= 0, "%s", e.msg);
	store_unlock(fd);
	close(ready);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, parses_native_name_and_time);
	tcase_add_test(tc, recognises_foreign_archive_extensions);
	tcase_add_test(tc, longest_extension_wins);
	tcase_add_test(tc, name_may_contain_dashes_and_digits);
	tcase_add_test(tc, archive_without_time_has_no_name_part);
	tcase_add_test(tc, invalid_time_is_an_archive_without_time);
	tcase_add_test(tc, hidden_and_temporary_files_are_not_archives);
	tcase_add_test(tc, other_files_are_not_archives);
	tcase_add_test(tc, name_time_is_local_time);
	tcase_add_test(tc, name_time_in_the_repeated_hour_follows_the_file_time);
	tcase_add_test(tc, name_time_when_an_offset_goes_back_outside_dst);
	tcase_add_test(tc, list_orders_the_repeated_hour_by_the_file_times);
	tcase_add_test(tc, format_time_round_trips_through_parse);
	tcase_add_test(tc, list_is_oldest_first_with_timeless_archives_last_by_name);
	tcase_add_test(tc, list_of_a_missing_directory_is_empty);
	tcase_add_test(tc, list_skips_files_that_are_not_regular);
	tcase_add_test(tc, list_does_not_descend_into_subdirectories);
	tcase_add_test(tc, list_of_a_file_is_an_error_naming_it);
	tcase_add_test(tc, commit_names_the_archive_by_local_time_with_mode_0600);
	tcase_add_test(tc, temporary_file_is_hidden_0600_and_named_after_the_archive);
	tcase_add_test(tc, tz_applies_to_the_archive_name);
	tcase_add_test(tc, second_take_in_the_same_second_moves_on_a_second);
	tcase_add_test(tc, commit_never_replaces_an_existing_archive);
	tcase_add_test(tc, abort_leaves_no_file);
	tcase_add_test(tc, create_refuses_a_name_too_long_for_the_file_system);
	tcase_add_test(tc, create_in_an_unwritable_store_fails_and_leaves_nothing);
	tcase_add_test(tc, create_in_an_unsearchable_store_fails_instead_of_looping);
	tcase_add_test(tc, mkdir_of_an_empty_path_is_an_error);
	tcase_add_test(tc, clean_temps_removes_only_hidden_temporary_files);
	tcase_add_test(tc, clean_temps_removes_what_a_dead_take_left);
	tcase_add_test(tc, clean_temps_of_a_missing_directory_is_done);
	tcase_add_test(tc, delete_removes_an_archive);
	tcase_add_test(tc, delete_refuses_names_that_are_not_archives);
	tcase_add_test(tc, lock_creates_store_and_lock_file_private);
	tcase_add_test(tc, lock_is_exclusive_until_unlocked);
	tcase_add_test(tc, lock_held_by_another_process_would_block);
	tcase_add_test(tc, lock_waits_for_the_holder_to_finish);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}

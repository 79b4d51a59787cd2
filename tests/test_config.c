/*
 * Tests for snapshot/config.c: the config file of SPEC, "The config file".
 *
 * Each test writes its YAML into a fresh mkdtemp() directory (removed in teardown) and loads
 * it with cfg_load(). Errors are pinned by FILE:LINE:COLUMN and, where the wording matters to
 * users, by the whole message.
 *
 * Tests that need keep_parse_dur() (retention.c) to accept durations: loads_spec_example,
 * loads_shipped_example, parses_keep_counts_and_durations, rejects_zero_duration.
 *
 * SNAPFS_EXAMPLES names the examples/ directory (default "../examples", relative to the cwd).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

/*
 * The checked fixture's state: check fixtures take no argument. tmpdir is kept short so that
 * every path built below it fits PATH_MAX.
 */
static char tmpdir[PATH_MAX / 4];
static char cfg_path[PATH_MAX];

static void setup(void)
{
	const char *base = getenv("TMPDIR");

	int len = snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX",
			   base && *base ? base : "/tmp");

	ck_assert(len > 0 && (size_t)len < sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/snapkeep.yaml", tmpdir);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void teardown(void)
{
	nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write text to tmpdir/rel (its directory must exist) and return the full path in buf. */
static const char *write_file(char *buf, size_t size, const char *rel, const char *text)
{
	FILE *f;

	snprintf(buf, size, "%s/%s", tmpdir, rel);
	f = fopen(buf, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0 || !*text, 1);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static void write_cfg(const char *text)
{
	char buf[PATH_MAX];

	write_file(buf, sizeof(buf), "snapkeep.yaml", text);
}

static struct cfg *load_path_ok(const char *path)
{
	struct cfg *c = NULL;
	struct err e = { 0 };

	ck_assert_msg(cfg_load(path, &c, &e) == 0, "cfg_load('%s') failed: %s", path, e.msg);
	ck_assert_ptr_nonnull(c);
	return c;
}

static struct cfg *load_ok(const char *text)
{
	write_cfg(text);
	return load_path_ok(cfg_path);
}

/* Load text, expect failure, and return the message with "FILE:" cut off. */
static const char *load_err(const char *text, struct err *e)
{
	struct cfg *c = (struct cfg *)&c;	/* a sentinel: cfg_load must not write *out */
	size_t len = strlen(cfg_path);

	write_cfg(text);
	ck_assert_int_eq(cfg_load(cfg_path, &c, e), -1);
	ck_assert_ptr_eq(c, (struct cfg *)&c);
	ck_assert_int_eq(e->code, EINVAL);
	ck_assert_msg(!strncmp(e->msg, cfg_path, len) && e->msg[len] == ':',
		      "'%s' does not start with the file name", e->msg);
	return e->msg + len + 1;
}

/* The whole message after "FILE:" is "WHERE: msg". */
static void fails_exactly(const char *text, const char *where, const char *msg)
{
	struct err e = { 0 };
	char want[512];

	snprintf(want, sizeof(want), "%s: %s", where, msg);
	ck_assert_str_eq(load_err(text, &e), want);
}

/* The message after "FILE:" starts with "WHERE: " and contains part. */
static void fails_at(const char *text, const char *where, const char *part)
{
	struct err e = { 0 };
	const char *got = load_err(text, &e);
	size_t len = strlen(where);

	ck_assert_msg(!strncmp(got, where, len) && !strncmp(got + len, ": ", 2),
		      "'%s' is not at %s", got, where);
	ck_assert_msg(strstr(got, part), "'%s' does not say '%s'", got, part);
}

static void assert_strv(const struct cfg_strv *sv, const char *const *want, size_t n)
{
	ck_assert_uint_eq(sv->n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(sv->v[i], want[i]);
}

#define ASSERT_STRV(sv, ...)                                                                  \
	do {                                                                                  \
		static const char *const want_[] = { __VA_ARGS__ };                           \
		assert_strv((sv), want_, sizeof(want_) / sizeof(want_[0]));                   \
	} while (0)

static void assert_no_rule(const struct keep_policy *p)
{
	for (int r = 0; r < KEEP_NRULES; r++) {
		ck_assert_int_eq(p->count[r], 0);
		ck_assert(!p->has_within[r]);
	}
	ck_assert(!p->has_keep_within);
}

static void assert_dur(const struct keep_dur *d, int years, int months, int days, int hours)
{
	ck_assert_int_eq(d->years, years);
	ck_assert_int_eq(d->months, months);
	ck_assert_int_eq(d->days, days);
	ck_assert_int_eq(d->hours, hours);
}

/* ---- the SPEC's example ---- */

static const char spec_example[] =
	"store: /backup/orchestrator-cc          # the backing store\n"
	"source: /opt/orchestrator-cc            # paths below are relative to it (like tar -C)\n"
	"compression: { level: 3, threads: 0 }   # zstd level; threads 0 = all cores\n"
	"sets:\n"
	"  full:                                  # archives go to "
	"STORE/full/full-YYYYMMDD_HHMMSS.tar.zst\n"
	"    paths: [config, queue, status, logs, .env]\n"
	"    optional: [queue, status, logs, .env] # may be missing at take time\n"
	"    exclude: [\"venv/\", \"__pycache__/\", \"*.pyc\"]\n"
	"    require: [config/cc-cluster.yaml, config/personalities/grand_boss.txt]\n"
	"    keep: { daily: 30d, weekly: 90d, monthly: 365d }\n"
	"  hourly:\n"
	"    paths: [queue, status]\n"
	"    keep: { hourly: 24h }\n"
	"  config:\n"
	"    paths: [config]                      # no keep: nothing is ever pruned\n";

static void assert_spec_example(const struct cfg *c)
{
	const struct cfg_set *s = c->sets;

	ck_assert_str_eq(c->store, "/backup/orchestrator-cc");
	ck_assert_str_eq(c->source, "/opt/orchestrator-cc");
	ck_assert_int_eq(c->level, 3);
	ck_assert_int_eq(c->threads, 0);
	ck_assert_uint_eq(c->nsets, 3);
	ck_assert_str_eq(s[0].name, "full");
	ASSERT_STRV(&s[0].paths, "config", "queue", "status", "logs", ".env");
	ASSERT_STRV(&s[0].optional, "queue", "status", "logs", ".env");
	ASSERT_STRV(&s[0].exclude, "venv/", "__pycache__/", "*.pyc");
	ASSERT_STRV(&s[0].require, "config/cc-cluster.yaml", "config/personalities/grand_boss.txt");
	ck_assert(s[0].has_keep);
	ck_assert(s[0].keep.has_within[KEEP_DAILY] && s[0].keep.has_within[KEEP_WEEKLY]);
	ck_assert(s[0].keep.has_within[KEEP_MONTHLY] && !s[0].keep.has_within[KEEP_HOURLY]);
	assert_dur(&s[0].keep.within[KEEP_DAILY], 0, 0, 30, 0);
	assert_dur(&s[0].keep.within[KEEP_WEEKLY], 0, 0, 90, 0);
	assert_dur(&s[0].keep.within[KEEP_MONTHLY], 0, 0, 365, 0);
	ck_assert_int_eq(s[0].keep.count[KEEP_DAILY], 0);
	ck_assert_str_eq(s[1].name, "hourly");
	ASSERT_STRV(&s[1].paths, "queue", "status");
	ck_assert_uint_eq(s[1].optional.n + s[1].exclude.n + s[1].require.n, 0);
	ck_assert(s[1].has_keep && s[1].keep.has_within[KEEP_HOURLY]);
	assert_dur(&s[1].keep.within[KEEP_HOURLY], 0, 0, 0, 24);
	ck_assert_str_eq(s[2].name, "config");
	ASSERT_STRV(&s[2].paths, "config");
	ck_assert(!s[2].has_keep);
	assert_no_rule(&s[2].keep);
}

START_TEST(loads_spec_example)
{
	struct cfg *c = load_ok(spec_example);

	ck_assert_str_eq(c->file, cfg_path);
	assert_spec_example(c);
	cfg_free(c);
}
END_TEST

START_TEST(loads_shipped_example)
{
	const char *dir = getenv("SNAPFS_EXAMPLES");
	char path[PATH_MAX];
	struct cfg *c;

	snprintf(path, sizeof(path), "%s/orchestrator-cc.yaml", dir && *dir ? dir : "../examples");
	ck_assert_msg(access(path, R_OK) == 0, "cannot read '%s': %s; set SNAPFS_EXAMPLES to the "
		      "examples directory", path, strerror(errno));
	c = load_path_ok(path);
	assert_spec_example(c);
	cfg_free(c);
}
END_TEST

START_TEST(applies_defaults_for_optional_keys)
{
	struct cfg *c = load_ok("store: /b\nsets:\n  all:\n    paths: [.]\n");

	ck_assert_ptr_null(c->source);
	ck_assert_int_eq(c->level, 3);
	ck_assert_int_eq(c->threads, 0);
	ck_assert_uint_eq(c->nsets, 1);
	ck_assert_uint_eq(c->sets[0].optional.n + c->sets[0].exclude.n + c->sets[0].require.n, 0);
	ck_assert(!c->sets[0].has_keep);
	assert_no_rule(&c->sets[0].keep);
	cfg_free(c);
}
END_TEST

static void assert_same_counts(const struct cfg *a, const struct cfg *b)
{
	ck_assert_str_eq(a->store, b->store);
	ck_assert_int_eq(a->level, b->level);
	ck_assert_int_eq(a->threads, b->threads);
	ck_assert_uint_eq(a->nsets, 1);
	ck_assert_uint_eq(b->nsets, 1);
	ck_assert_str_eq(a->sets[0].name, b->sets[0].name);
	ASSERT_STRV(&a->sets[0].paths, "a", "b c");
	ASSERT_STRV(&b->sets[0].paths, "a", "b c");
	ASSERT_STRV(&a->sets[0].exclude, "*.o");
	ASSERT_STRV(&b->sets[0].exclude, "*.o");
	for (int r = 0; r < KEEP_NRULES; r++)
		ck_assert_int_eq(a->sets[0].keep.count[r], b->sets[0].keep.count[r]);
	ck_assert_int_eq(a->sets[0].keep.count[KEEP_LAST], 5);
	ck_assert_int_eq(a->sets[0].keep.count[KEEP_WEEKLY], 4);
}

START_TEST(reads_flow_and_block_style_alike)
{
	struct cfg *block = load_ok("store: /b\n"
				    "compression:\n  level: -7\n  threads: 4\n"
				    "sets:\n  s:\n    paths:\n      - a\n      - 'b c'\n"
				    "    exclude:\n      - \"*.o\"\n"
				    "    keep:\n      last: 5\n      weekly: 4\n");
	struct cfg *flow = load_ok("{store: /b, compression: {level: -7, threads: 4},\n"
				   " sets: {s: {paths: [a, \"b c\"], exclude: ['*.o'],\n"
				   "            keep: {last: 5, weekly: 4}}}}\n");

	ck_assert_int_eq(block->level, -7);
	ck_assert_int_eq(block->threads, 4);
	assert_same_counts(block, flow);
	cfg_free(block);
	cfg_free(flow);
}
END_TEST

START_TEST(follows_anchors_and_aliases)
{
	struct cfg *c = load_ok("store: /b\nsets:\n"
				"  a: {paths: &p [x, y], optional: *p}\n"
				"  b: {paths: *p}\n");

	ASSERT_STRV(&c->sets[0].optional, "x", "y");
	ASSERT_STRV(&c->sets[1].paths, "x", "y");
	cfg_free(c);
}
END_TEST

START_TEST(parses_keep_counts_and_durations)
{
	struct cfg *c = load_ok("store: /b\nsets:\n  s:\n    paths: [a]\n    keep:\n"
				"      last: 3\n      hourly: 24h\n      daily: 7\n"
				"      weekly: \"1y6m\"\n      monthly: 12\n      yearly: 2y\n"
				"      within: 2d12h\n");
	const struct keep_policy *p = &c->sets[0].keep;

	ck_assert_int_eq(p->count[KEEP_LAST], 3);
	ck_assert(p->has_within[KEEP_HOURLY] && p->count[KEEP_HOURLY] == 0);
	assert_dur(&p->within[KEEP_HOURLY], 0, 0, 0, 24);
	ck_assert(!p->has_within[KEEP_DAILY] && p->count[KEEP_DAILY] == 7);
	assert_dur(&p->within[KEEP_WEEKLY], 1, 6, 0, 0);
	ck_assert_int_eq(p->count[KEEP_MONTHLY], 12);
	assert_dur(&p->within[KEEP_YEARLY], 2, 0, 0, 0);
	ck_assert(p->has_keep_within);
	assert_dur(&p->keep_within, 0, 0, 2, 12);
	cfg_free(c);
}
END_TEST

/* ---- unknown, duplicate and missing keys ---- */

START_TEST(rejects_unknown_top_level_key)
{
	fails_exactly("store: /b\nstroe: /c\nsets: {a: {paths: [x]}}\n", "2:1",
		      "unknown key 'stroe' at the top level; "
		      "expected one of store, source, compression, sets");
}
END_TEST

START_TEST(rejects_unknown_key_in_set)
{
	fails_exactly("store: /etc/b\nsource: /s\n\n# sets\nsets:\n  full:\n    pathz: [a]\n",
		      "7:5", "unknown key 'pathz' in set 'full'; "
		      "expected one of paths, optional, exclude, require, keep");
}
END_TEST

START_TEST(rejects_unknown_key_in_keep)
{
	fails_exactly("store: /b\nsets:\n  s:\n    paths: [a]\n    keep: {daily: 7, dayly: 3}\n",
		      "5:22", "unknown key 'dayly' in 'keep' of set 's'; "
		      "expected one of last, hourly, daily, weekly, monthly, yearly, within");
}
END_TEST

START_TEST(rejects_unknown_key_in_compression)
{
	fails_exactly("store: /b\ncompression:\n  level: 3\n  thread: 2\nsets: {a: {paths: [x]}}\n",
		      "4:3", "unknown key 'thread' in 'compression'; "
		      "expected one of level, threads");
}
END_TEST

START_TEST(rejects_duplicate_keys)
{
	fails_exactly("store: /b\nsets: {a: {paths: [x]}}\nstore: /c\n", "3:1",
		      "duplicate key 'store' at the top level, first given at 1:1; remove one");
	fails_at("store: /b\nsets: {a: {paths: [x], paths: [y]}}\n", "2:24",
		 "duplicate key 'paths' in set 'a', first given at 2:12");
	fails_at("store: /b\nsets: {a: {paths: [x], keep: {last: 1, last: 2}}}\n", "2:40",
		 "duplicate key 'last' in 'keep' of set 'a'");
}
END_TEST

START_TEST(rejects_duplicate_set_name)
{
	fails_exactly("store: /b\nsets:\n  a: {paths: [x]}\n  b: {paths: [x]}\n  a: {paths: [y]}\n",
		      "5:3", "duplicate set 'a' in 'sets', first given at 3:3; "
		      "rename or remove one");
}
END_TEST

START_TEST(rejects_non_scalar_key)
{
	fails_at("store: /b\n? [k]\n: v\nsets: {a: {paths: [x]}}\n", "2:3",
		 "expected a key name at the top level, found a sequence");
}
END_TEST

START_TEST(rejects_missing_store)
{
	fails_exactly("# no store\nsource: /s\nsets: {a: {paths: [x]}}\n", "2:1",
		      "missing key 'store' at the top level; "
		      "add store: DIR, the directory that holds the archives");
}
END_TEST

START_TEST(rejects_missing_sets)
{
	fails_at("store: /b\n", "1:1", "missing key 'sets' at the top level");
	fails_at("{store: /b}\n", "1:1", "missing key 'sets' at the top level");
}
END_TEST

START_TEST(rejects_empty_sets)
{
	fails_at("store: /b\nsets: {}\n", "2:7", "'sets' is empty; add at least one set");
}
END_TEST

START_TEST(rejects_missing_paths)
{
	/* named at the mapping that lacks the key: its first key in block style, '{' in flow */
	fails_exactly("store: /b\nsets:\n  s:\n    exclude: [a]\n", "4:5",
		      "missing key 'paths' in set 's'; "
		      "add paths: [PATH, ...], what to archive below source");
	fails_at("store: /b\nsets:\n  s: {keep: {last: 1}}\n", "3:6", "missing key 'paths'");
}
END_TEST

START_TEST(rejects_empty_paths)
{
	fails_at("store: /b\nsets: {s: {paths: []}}\n", "2:19",
		 "'paths' of set 's' is empty; list at least one path");
}
END_TEST

/* ---- wrong types ---- */

struct bad_type {
	const char *yaml, *where, *msg;
};

static void fails_each(const struct bad_type *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fails_exactly(t[i].yaml, t[i].where, t[i].msg);
}

START_TEST(rejects_wrong_type_for_strings)
{
	static const struct bad_type t[] = {
		{ "store: [a]\nsets: {a: {paths: [x]}}\n", "1:8",
		  "expected a string for 'store' at the top level, found a sequence" },
		{ "store: /b\nsource: {a: 1}\nsets: {a: {paths: [x]}}\n", "2:9",
		  "expected a string for 'source' at the top level, found a mapping" },
		{ "store:\nsets: {a: {paths: [x]}}\n", "1:7",
		  "expected a string for 'store' at the top level, found nothing" },
		{ "store: ~\nsets: {a: {paths: [x]}}\n", "1:8",
		  "expected a string for 'store' at the top level, found nothing" },
		{ "store: ''\nsets: {a: {paths: [x]}}\n", "1:8",
		  "'store' at the top level is empty; give a value or remove the key" },
	};

	fails_each(t, sizeof(t) / sizeof(t[0]));
}
END_TEST

START_TEST(rejects_wrong_type_for_integers)
{
	static const struct bad_type t[] = {
		{ "store: /b\ncompression: {level: fast}\nsets: {a: {paths: [x]}}\n", "2:22",
		  "expected an integer for 'level' in 'compression', found 'fast'" },
		{ "store: /b\ncompression: {level: \"3\"}\nsets: {a: {paths: [x]}}\n", "2:22",
		  "expected an integer for 'level' in 'compression', found '3'" },
		{ "store: /b\ncompression: {threads: [1]}\nsets: {a: {paths: [x]}}\n", "2:24",
		  "expected an integer for 'threads' in 'compression', found a sequence" },
		{ "store: /b\ncompression: {level: 2.5}\nsets: {a: {paths: [x]}}\n", "2:22",
		  "expected an integer for 'level' in 'compression', found '2.5'" },
	};

	fails_each(t, sizeof(t) / sizeof(t[0]));
}
END_TEST

START_TEST(rejects_wrong_type_for_sequences)
{
	static const struct bad_type t[] = {
		{ "store: /b\nsets: {a: {paths: config}}\n", "2:19",
		  "expected a sequence of strings such as [a, b] for 'paths' in set 'a', "
		  "found 'config'" },
		{ "store: /b\nsets: {a: {paths: [x], exclude: {x: 1}}}\n", "2:33",
		  "expected a sequence of strings such as [a, b] for 'exclude' in set 'a', "
		  "found a mapping" },
		{ "store: /b\nsets: {a: {paths: [x, [y]]}}\n", "2:23",
		  "expected a string in 'paths' of set 'a', found a sequence" },
		{ "store: /b\nsets: {a: {paths: [x], require: [~]}}\n", "2:34",
		  "expected a string in 'require' of set 'a', found nothing" },
		{ "store: /b\nsets: {a: {paths: [x], exclude: ['']}}\n", "2:34",
		  "expected a string in 'exclude' of set 'a', found ''" },
	};

	fails_each(t, sizeof(t) / sizeof(t[0]));
}
END_TEST

START_TEST(rejects_wrong_type_for_mappings)
{
	static const struct bad_type t[] = {
		{ "store: /b\ncompression: 3\nsets: {a: {paths: [x]}}\n", "2:14",
		  "expected a mapping such as { level: 3, threads: 0 } for 'compression' "
		  "at the top level, found '3'" },
		{ "store: /b\nsets: [a]\n", "2:7",
		  "expected a mapping of set names to sets for 'sets' at the top level, "
		  "found a sequence" },
		{ "store: /b\nsets:\n  a:\n", "3:5",
		  "expected a mapping for set 'a', found nothing; give it paths: [PATH, ...]" },
		{ "store: /b\nsets: {a: {paths: [x], keep: [daily]}}\n", "2:30",
		  "expected a mapping such as { daily: 30d } for 'keep' in set 'a', "
		  "found a sequence" },
	};

	fails_each(t, sizeof(t) / sizeof(t[0]));
}
END_TEST

START_TEST(rejects_wrong_type_for_keep_values)
{
	static const struct bad_type t[] = {
		{ "store: /b\nsets: {a: {paths: [x], keep: {daily: [1]}}}\n", "2:38",
		  "expected a count such as 7 or a duration such as 30d for 'daily' "
		  "in 'keep' of set 'a', found a sequence" },
		{ "store: /b\nsets: {a: {paths: [x], keep: {last: }}}\n", "2:37",
		  "expected a count such as 10 for 'last' in 'keep' of set 'a', found nothing" },
		{ "store: /b\nsets: {a: {paths: [x], keep: {last: 30d}}}\n", "2:37",
		  "expected a count for 'last' in 'keep' of set 'a', found '30d'; "
		  "'last' keeps the N newest snapshots" },
		{ "store: /b\nsets: {a: {paths: [x], keep: {within: 5}}}\n", "2:39",
		  "expected a duration for 'within' in 'keep' of set 'a', found '5'; "
		  "write it as restic does, e.g. 24h, 30d, 1y6m" },
	};

	fails_each(t, sizeof(t) / sizeof(t[0]));
}
END_TEST

/* ---- values out of range ---- */

START_TEST(accepts_levels_from_fast_to_max)
{
	static const char *const levels[] = { "-7", "-1", "1", "19", "+5" };
	static const int want[] = { -7, -1, 1, 19, 5 };
	char yaml[128];

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct cfg *c;

		snprintf(yaml, sizeof(yaml), "store: /b\ncompression: {level: %s, threads: 200}\n"
			 "sets: {a: {paths: [x]}}\n", levels[i]);
		c = load_ok(yaml);
		ck_assert_int_eq(c->level, want[i]);
		ck_assert_int_eq(c->threads, 200);
		cfg_free(c);
	}
}
END_TEST

START_TEST(rejects_level_out_of_range)
{
	static const char *const levels[] = { "0", "20", "-8", "99999999999999999999999" };
	char yaml[128], msg[256];

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(yaml, sizeof(yaml), "store: /b\ncompression: {level: %s}\n"
			 "sets: {a: {paths: [x]}}\n", levels[i]);
		snprintf(msg, sizeof(msg), "'level' in 'compression' is '%s'; expected 1 to 19, "
			 "or -7 to -1 for zstd's fast levels", levels[i]);
		fails_exactly(yaml, "2:22", msg);
	}
}
END_TEST

START_TEST(rejects_threads_out_of_range)
{
	fails_exactly("store: /b\ncompression: {threads: -1}\nsets: {a: {paths: [x]}}\n", "2:24",
		      "'threads' in 'compression' is '-1'; expected 0 (all cores) to 200");
	fails_at("store: /b\ncompression: {threads: 201}\nsets: {a: {paths: [x]}}\n", "2:24",
		 "'threads' in 'compression' is '201'");
}
END_TEST

START_TEST(rejects_zero_and_negative_counts)
{
	fails_exactly("store: /b\nsets: {a: {paths: [x], keep: {daily: 0}}}\n", "2:38",
		      "'daily' in 'keep' of set 'a' is '0'; expected a count of 1 or more, "
		      "or remove the rule");
	fails_at("store: /b\nsets: {a: {paths: [x], keep: {last: -3}}}\n", "2:37",
		 "'last' in 'keep' of set 'a' is '-3'; expected a count of 1 or more");
	fails_at("store: /b\nsets: {a: {paths: [x], keep: {hourly: 3000000000}}}\n", "2:39",
		 "is '3000000000'; expected a count of 1 or more");
}
END_TEST

START_TEST(rejects_bad_duration)
{
	static const char *const bad[] = { "30x", "d", "1.5d", "'30'", "24 h" };
	char yaml[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "store: /b\nsets:\n  a:\n    paths: [x]\n"
			 "    keep: {weekly: %s}\n", bad[i]);
		fails_at(yaml, "5:20", "invalid duration '");
		fails_at(yaml, "5:20", "for 'weekly' in 'keep' of set 'a'; "
			 "write it as restic does, e.g. 24h, 30d, 1y6m");
	}
}
END_TEST

START_TEST(rejects_zero_duration)
{
	fails_exactly("store: /b\nsets: {a: {paths: [x], keep: {within: 0d}}}\n", "2:39",
		      "duration '0d' for 'within' in 'keep' of set 'a' is zero; "
		      "give a longer one or remove the rule");
}
END_TEST

START_TEST(rejects_empty_keep)
{
	fails_at("store: /b\nsets: {a: {paths: [x], keep: {}}}\n", "2:30",
		 "'keep' of set 'a' has no rule; add one of last, hourly");
}
END_TEST

/* ---- names and paths ---- */

START_TEST(rejects_bad_set_names)
{
	static const char *const bad[] = {
		".hidden", "-x", "a/b", "'a b'", "\"\"", "caf\xc3\xa9", "'a:b'", "a*",
	};
	char yaml[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "store: /b\nsets:\n  %s: {paths: [x]}\n", bad[i]);
		fails_at(yaml, "3:3", "cannot be used in file names; use letters, digits, "
			 "'_', '.' and '-', not starting with '.' or '-'");
	}
}
END_TEST

START_TEST(rejects_overlong_set_name)
{
	char yaml[512], name[300];

	memset(name, 'n', 232);
	name[232] = '\0';
	snprintf(yaml, sizeof(yaml), "store: /b\nsets:\n  %s: {paths: [x]}\n", name);
	fails_at(yaml, "3:3", "is longer than 231 characters; shorten it");
	name[231] = '\0';
	snprintf(yaml, sizeof(yaml), "store: /b\nsets:\n  %s: {paths: [x]}\n", name);
	cfg_free(load_ok(yaml));
}
END_TEST

START_TEST(accepts_set_names_with_dots_dashes_underscores)
{
	struct cfg *c = load_ok("store: /b\nsets:\n  a.b-c_D9: {paths: [x]}\n  9: {paths: [y]}\n");

	ck_assert_str_eq(c->sets[0].name, "a.b-c_D9");
	ck_assert_str_eq(c->sets[1].name, "9");
	cfg_free(c);
}
END_TEST

START_TEST(rejects_absolute_paths)
{
	fails_exactly("store: /b\nsets:\n  a:\n    paths: [config, /etc/passwd]\n", "4:21",
		      "absolute path '/etc/passwd' in 'paths' of set 'a'; "
		      "write it relative to source, as tar -C takes it");
	fails_at("store: /b\nsets: {a: {paths: [x], require: [/x/y]}}\n", "2:34",
		 "absolute path '/x/y' in 'require' of set 'a'");
}
END_TEST

START_TEST(rejects_dotdot_components)
{
	static const char *const bad[] = { "..", "../x", "a/../b", "a/..", "a//..//b" };
	char yaml[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "store: /b\nsets: {a: {paths: [x], require: [%s]}}\n",
			 bad[i]);
		fails_at(yaml, "2:34", "in 'require' of set 'a' leaves source with '..'; "
			 "name a path below source");
	}
}
END_TEST

START_TEST(accepts_dots_that_are_not_dotdot)
{
	struct cfg *c = load_ok("store: /b\nsets: {a: {paths: [., ..x, a..b, .env, x/.../y]}}\n");

	ASSERT_STRV(&c->sets[0].paths, ".", "..x", "a..b", ".env", "x/.../y");
	cfg_free(c);
}
END_TEST

START_TEST(rejects_duplicate_path)
{
	fails_exactly("store: /b\nsets: {a: {paths: [x, y, x]}}\n", "2:26",
		      "path 'x' is listed twice in 'paths' of set 'a'; remove one");
}
END_TEST

START_TEST(rejects_optional_not_in_paths)
{
	fails_exactly("store: /b\nsets:\n  a:\n    optional: [x, logs]\n    paths: [x, y]\n",
		      "4:19", "'logs' in 'optional' of set 'a' is not in its paths; "
		      "add it to paths or remove it from optional");
}
END_TEST

/* ---- the document ---- */

START_TEST(reports_yaml_syntax_error_with_position)
{
	fails_exactly("store: /b\nsets:\n  a:\n    paths: [x\n  b: 1\n", "5:4",
		      "invalid YAML: did not find expected ',' or ']' "
		      "while parsing a flow sequence at 4:12");
	fails_at("store: /b\n  bad: 1\n", "2:6", "invalid YAML: mapping values are not allowed");
	fails_at("store: x\n\tsets: 1\n", "2:1", "invalid YAML: found a tab character");
}
END_TEST

START_TEST(reports_invalid_utf8_with_position)
{
	fails_exactly("store: /b\nsource: \"s\xff\"\n", "2:11",
		      "invalid leading UTF-8 octet; save the file as UTF-8 text");
	fails_at("store: /b\nsource: \"\xc3\xa9\xc3\xa9\xff\"\n", "2:12", "UTF-8");
}
END_TEST

START_TEST(rejects_empty_file)
{
	static const char *const empty[] = { "", "\n\n", "# only a comment\n", "---\n", "~\n" };

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
		fails_exactly(empty[i], "1:1",
			      "the config is empty; give at least 'store' and 'sets'");
}
END_TEST

START_TEST(rejects_document_that_is_not_a_mapping)
{
	fails_exactly("# a list\n- store: /b\n", "2:1", "expected a mapping with 'store' and "
		      "'sets' at the top level, found a sequence");
	fails_at("just text\n", "1:1", "found 'just text'");
}
END_TEST

START_TEST(rejects_multiple_documents)
{
	fails_exactly("store: /b\nsets: {a: {paths: [x]}}\n---\nstore: /c\n", "4:1",
		      "a second YAML document; keep the whole config in one document, "
		      "without another '---'");
	fails_at("store: /b\nsets: {a: {paths: [x]}}\n---\n[\n", "5:1", "invalid YAML");
	cfg_free(load_ok("---\nstore: /b\nsets: {a: {paths: [x]}}\n...\n"));
}
END_TEST

START_TEST(rejects_oversized_file)
{
	char *big = malloc(2 * 1024 * 1024);
	struct cfg *c = NULL;
	struct err e = { 0 };

	ck_assert_ptr_nonnull(big);
	memset(big, '#', 2 * 1024 * 1024 - 1);
	big[2 * 1024 * 1024 - 1] = '\0';
	write_cfg(big);
	free(big);
	ck_assert_int_eq(cfg_load(cfg_path, &c, &e), -1);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(e.code, EFBIG);
	ck_assert_ptr_nonnull(strstr(e.msg, "is larger than 1024 KiB"));
}
END_TEST

START_TEST(reports_unopenable_file_with_errno)
{
	struct cfg *c = NULL;
	struct err e = { 0 };
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "cannot open '%s/missing.yaml': %s", tmpdir, strerror(ENOENT));
	snprintf(cfg_path, sizeof(cfg_path), "%s/missing.yaml", tmpdir);
	ck_assert_int_eq(cfg_load(cfg_path, &c, &e), -1);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(e.code, ENOENT);
	ck_assert_str_eq(e.msg, want);

	ck_assert_int_eq(cfg_load(tmpdir, &c, &e), -1);
	ck_assert_int_eq(e.code, EISDIR);
	ck_assert_ptr_nonnull(strstr(e.msg, strerror(EISDIR)));
}
END_TEST

/* ---- damaged input ---- */

/* Load text: it either loads or fails with "FILE:" and a message; it never crashes. */
static void loads_or_fails_cleanly(const char *text)
{
	struct cfg *c = NULL;
	struct err e = { 0 };

	write_cfg(text);
	if (cfg_load(cfg_path, &c, &e) == 0) {
		ck_assert_ptr_nonnull(c);
		cfg_free(c);
		return;
	}
	ck_assert_ptr_null(c);
	ck_assert_int_ne(e.code, 0);
	ck_assert_msg(!strncmp(e.msg, cfg_path, strlen(cfg_path)), "'%s' names no file", e.msg);
}

START_TEST(survives_every_truncation)
{
	char buf[sizeof(spec_example)];

	for (size_t len = 0; len < sizeof(spec_example) - 1; len++) {
		memcpy(buf, spec_example, len);
		buf[len] = '\0';
		loads_or_fails_cleanly(buf);
	}
}
END_TEST

START_TEST(survives_every_flipped_byte)
{
	static const unsigned char flips[] = { 0x20, 0x80 };
	char buf[sizeof(spec_example)];

	for (size_t i = 0; i < sizeof(spec_example) - 1; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(buf, spec_example, sizeof(buf));
			buf[i] = (char)((unsigned char)buf[i] ^ flips[f]);
			loads_or_fails_cleanly(buf);
		}
	}
}
END_TEST

/* libyaml's scanner is quadratic in nesting depth: this must fail fast, not in minutes */
START_TEST(rejects_deep_nesting)
{
	enum { DEPTH = 1000 * 1000 - 64 };
	char *text = malloc(DEPTH + 64);

	ck_assert_ptr_nonnull(text);
	strcpy(text, "store: /b\nsets: ");
	memset(text + strlen(text), '[', DEPTH);
	text[16 + DEPTH] = '\0';
	/* the top-level mapping is level 1, so the 32nd '[' (column 7 + 31) is level 33 */
	fails_exactly(text, "2:38", "nested deeper than 32 levels; a config needs 4");
	memset(text + 16, '{', DEPTH);
	fails_at(text, "2:38", "nested deeper than 32 levels");
	/* 31 levels below the top level pass the depth check and fail the schema instead */
	snprintf(text, DEPTH, "a: %.31s%.31s\n", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	fails_at(text, "1:1", "unknown key 'a'");
	free(text);
}
END_TEST

/* ---- store and source ---- */

static void make_subdir(void)
{
	char sub[PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
}

START_TEST(resolves_relative_store_against_config_dir)
{
	char path[PATH_MAX], want[PATH_MAX + 32];
	struct cfg *c;

	make_subdir();
	write_file(path, sizeof(path), "sub/c.yaml",
		   "store: backup\nsource: ../src/\nsets: {a: {paths: [x]}}\n");
	c = load_path_ok(path);
	snprintf(want, sizeof(want), "%s/sub/backup", tmpdir);
	ck_assert_str_eq(c->store, want);
	snprintf(want, sizeof(want), "%s/sub/../src/", tmpdir);
	ck_assert_str_eq(c->source, want);
	cfg_free(c);
}
END_TEST

START_TEST(resolves_relative_config_path_against_cwd)
{
	char path[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 32];
	struct cfg *c;

	make_subdir();
	write_file(path, sizeof(path), "sub/c.yaml",
		   "store: ./backup\nsource: src\nsets: {a: {paths: [x]}}\n");
	ck_assert_ptr_nonnull(realpath(tmpdir, real));
	ck_assert_int_eq(chdir(tmpdir), 0);	/* fork mode: the cwd dies with this test */
	c = load_path_ok("./sub/c.yaml");
	ck_assert_str_eq(c->file, "./sub/c.yaml");
	snprintf(want, sizeof(want), "%s/sub/backup", real);
	ck_assert_str_eq(c->store, want);
	cfg_free(c);

	ck_assert_int_eq(chdir("sub"), 0);
	c = load_path_ok("c.yaml");
	snprintf(want, sizeof(want), "%s/sub/src", real);
	ck_assert_str_eq(c->source, want);
	cfg_free(c);
}
END_TEST

START_TEST(keeps_absolute_store_as_written)
{
	struct cfg *c = load_ok("store: /backup//x/\nsource: /\nsets: {a: {paths: [x]}}\n");

	ck_assert_str_eq(c->store, "/backup//x/");
	ck_assert_str_eq(c->source, "/");
	cfg_free(c);
}
END_TEST

START_TEST(rejects_tilde_store)
{
	fails_exactly("store: ~/backup\nsets: {a: {paths: [x]}}\n", "1:8",
		      "'store' starts with '~', which is not expanded; write the full path");
}
END_TEST

/* ---- lookup and lifetime ---- */

START_TEST(finds_set_by_name)
{
	struct cfg *c = load_ok("store: /b\nsets:\n  full: {paths: [a]}\n  hourly: {paths: [b]}\n");

	ck_assert_ptr_eq(cfg_find_set(c, "full"), &c->sets[0]);
	ck_assert_ptr_eq(cfg_find_set(c, "hourly"), &c->sets[1]);
	ck_assert_ptr_null(cfg_find_set(c, "Full"));
	ck_assert_ptr_null(cfg_find_set(c, "hour"));
	ck_assert_ptr_null(cfg_find_set(NULL, "full"));
	cfg_free(c);
}
END_TEST

START_TEST(frees_null)
{
	cfg_free(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);	/* the damage loops are slow under sanitizers */

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, loads_spec_example);
	tcase_add_test(tc, loads_shipped_example);
	tcase_add_test(tc, applies_defaults_for_optional_keys);
	tcase_add_test(tc, reads_flow_and_block_style_alike);
	tcase_add_test(tc, follows_anchors_and_aliases);
	tcase_add_test(tc, parses_keep_counts_and_durations);
	tcase_add_test(tc, rejects_unknown_top_level_key);
	tcase_add_test(tc, rejects_unknown_key_in_set);
	tcase_add_test(tc, rejects_unknown_key_in_keep);
	tcase_add_test(tc, rejects_unknown_key_in_compression);
	tcase_add_test(tc, rejects_duplicate_keys);
	tcase_add_test(tc, rejects_duplicate_set_name);
	tcase_add_test(tc, rejects_non_scalar_key);
	tcase_add_test(tc, rejects_missing_store);
	tcase_add_test(tc, rejects_missing_sets);
	tcase_add_test(tc, rejects_empty_sets);
	tcase_add_test(tc, rejects_missing_paths);
	tcase_add_test(tc, rejects_empty_paths);
	tcase_add_test(tc, rejects_wrong_type_for_strings);
	tcase_add_test(tc, rejects_wrong_type_for_integers);
	tcase_add_test(tc, rejects_wrong_type_for_sequences);
	tcase_add_test(tc, rejects_wrong_type_for_mappings);
	tcase_add_test(tc, rejects_wrong_type_for_keep_values);
	tcase_add_test(tc, accepts_levels_from_fast_to_max);
	tcase_add_test(tc, rejects_level_out_of_range);
	tcase_add_test(tc, rejects_threads_out_of_range);
	tcase_add_test(tc, rejects_zero_and_negative_counts);
	tcase_add_test(tc, rejects_bad_duration);
	tcase_add_test(tc, rejects_zero_duration);
	tcase_add_test(tc, rejects_empty_keep);
	tcase_add_test(tc, rejects_bad_set_names);
	tcase_add_test(tc, rejects_overlong_set_name);
	tcase_add_test(tc, accepts_set_names_with_dots_dashes_underscores);
	tcase_add_test(tc, rejects_absolute_paths);
	tcase_add_test(tc, rejects_dotdot_components);
	tcase_add_test(tc, accepts_dots_that_are_not_dotdot);
	tcase_add_test(tc, rejects_duplicate_path);
	tcase_add_test(tc, rejects_optional_not_in_paths);
	tcase_add_test(tc, reports_yaml_syntax_error_with_position);
	tcase_add_test(tc, reports_invalid_utf8_with_position);
	tcase_add_test(tc, rejects_empty_file);
	tcase_add_test(tc, rejects_document_that_is_not_a_mapping);
	tcase_add_test(tc, rejects_multiple_documents);
	tcase_add_test(tc, rejects_oversized_file);
	tcase_add_test(tc, reports_unopenable_file_with_errno);
	tcase_add_test(tc, survives_every_truncation);
	tcase_add_test(tc, survives_every_flipped_byte);
	tcase_add_test(tc, rejects_deep_nesting);
	tcase_add_test(tc, resolves_relative_store_against_config_dir);
	tcase_add_test(tc, resolves_relative_config_path_against_cwd);
	tcase_add_test(tc, keeps_absolute_store_as_written);
	tcase_add_test(tc, rejects_tilde_store);
	tcase_add_test(tc, finds_set_by_name);
	tcase_add_test(tc, frees_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run(config_suite());
}

/*
 * snapkeep: take, list, prune, verify and restore snapshots (SPEC, "snapkeep").
 * One cmd_<subcommand>() each, calling the library; this file only parses
 * arguments, prints, and maps failures to SPEC's exit codes:
 * 0 done, 1 done with warnings (or a failed verify), 2 failed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "extract.h"
#include "index.h"
#include "json.h"
#include "retention.h"
#include "store.h"
#include "verify.h"
#include "writer.h"

#define EXIT_WARN 1
#define EXIT_FAIL 2
#define LOCK_WAIT_MS (10 * 60 * 1000)

static const char usage_text[] =
	"usage: snapkeep [-c CONFIG] take [SET...]\n"
	"       snapkeep take --store STORE --name NAME [-C DIR] [--exclude PATTERN]... PATH...\n"
	"       snapkeep [-c CONFIG] list [SET...] [--json]\n"
	"       snapkeep list --store STORE [--json]\n"
	"       snapkeep [-c CONFIG] prune [SET...] [--dry-run] [--json]\n"
	"       snapkeep prune --store STORE [--keep-last N] [--keep-hourly N|DUR] ...\n"
	"       snapkeep [-c CONFIG] verify [SET...]\n"
	"       snapkeep verify [--require PATH]... ARCHIVE...\n"
	"       snapkeep restore ARCHIVE [PATH...] --to DIR\n";

/*
 * Text for the terminal with its control characters written as escapes. Names
 * come from archives, stores and source trees: a newline in one cannot start a
 * line of its own, nor an escape sequence steer the terminal.
 */
static void put_escaped(const char *text, FILE *f)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c >= 0x20 && *c != 0x7f)
			fputc(*c, f);
		else if (*c == '\n')
			fputs("\\n", f);
		else if (*c == '\t')
			fputs("\\t", f);
		else
			fprintf(f, "\\x%02x", *c);
	}
}

/* A message on stderr, one line (put_escaped). */
__attribute__((format(printf, 1, 2)))
static void complain(const char *fmt, ...)
{
	char buf[2 * PATH_MAX + 512], *msg = buf;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf)) {
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = buf;	/* cut short, then */
		va_end(ap);
	}
	fputs("snapkeep: ", stderr);
	put_escaped(msg, stderr);
	fputc('\n', stderr);
	if (msg != buf)
		free(msg);
}

static int fail(const struct err *e)
{
	complain("%s", e->msg);
	return EXIT_FAIL;
}

static int usage_error(const char *what)
{
	complain("%s", what);
	fputs(usage_text, stderr);
	return EXIT_FAIL;
}

/*
 * A take killed by a signal removes its temporary file. The signal handler
 * can reach it only through file scope, so this is the one piece of mutable
 * file-scope state here; it is set before the write starts and cleared after.
 */
static struct {
	volatile sig_atomic_t armed;
	int dirfd;
	char tmp[NAME_MAX + 1];
} pending;

static void on_signal(int sig)
{
	if (pending.armed)
		unlinkat(pending.dirfd, pending.tmp, 0);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void arm_cleanup(const struct store_tmp *t)
{
	pending.dirfd = t->dirfd;
	snprintf(pending.tmp, sizeof(pending.tmp), "%s", t->tmp);
	pending.armed = 1;
}

struct take_ui {
	bool tty;
	bool shown;
	struct timespec start;
};

static void on_warn(void *ctx, const char *msg)
{
	struct take_ui *ui = ctx;

	if (ui->shown)
		fputs("\r\033[K", stderr);
	complain("warning: %s", msg);
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A progress line on a terminal, once a take has run for a second. */
static void on_progress(void *ctx, const struct wr_progress *p)
{
	struct take_ui *ui = ctx;
	double secs = since(&ui->start);

	if (!ui->tty || secs < 1.0)
		return;
	fprintf(stderr, "\r\033[K%" PRIu64 " files, %.1f MiB read, %.1f MiB/s, %.1f MiB written",
		p->files, (double)p->bytes / 1048576, (double)p->bytes / 1048576 / secs,
		(double)p->written / 1048576);
	ui->shown = true;
}

struct take_job {
	const char *store;	/* the lock's directory */
	const char *dir;	/* where the archive goes */
	const char *name;
	struct wr_opts o;
};

static int take_one(struct take_job *j)
{
	struct take_ui ui = { .tty = isatty(STDERR_FILENO) };
	struct store_tmp t;
	struct wr_stats st;
	struct err e = { 0 };
	char path[PATH_MAX];
	int lock, rc = EXIT_FAIL;

	clock_gettime(CLOCK_MONOTONIC, &ui.start);
	j->o.warn = on_warn;
	j->o.progress = on_progress;
	j->o.ctx = &ui;
	j->o.time = (int64_t)time(NULL);
	j->o.skip_dir = j->store;	/* made below if missing; stat()ed once it is */
	/* a missing path fails before anything, even the store, is made */
	if (wr_check_paths(&j->o, &e) < 0)
		return fail(&e);
	if ((lock = store_lock(j->store, LOCK_WAIT_MS, &e)) < 0)
		return fail(&e);
	if (store_clean_temps(j->dir, &e) < 0 ||
	    store_create(j->dir, j->name, &j->o.time, &t, &e) < 0) {
		store_unlock(lock);
		return fail(&e);
	}
	arm_cleanup(&t);
	int w = wr_write(t.fd, t.tmp, &j->o, &st, &e);
	int c = w < 0 ? -1 : store_commit(&t, &e);
	if (ui.shown)
		fputs("\r\033[K", stderr);
	if (w < 0 || c < 0) {
		char hint[PATH_MAX + 64] = "";
		if (e.code == ENOSPC || e.code == EDQUOT || e.code == EFBIG)
			snprintf(hint, sizeof(hint), "; free space in '%s' or prune old snapshots",
				 j->dir);
		complain("taking '%s/%s' failed, nothing was kept: %s%s", j->dir, t.final, e.msg,
			 hint);
	} else {
		printf("%s\n", store_tmp_path(&t, path, sizeof(path)));
		fflush(stdout);
		if (c > 0)	/* in place, but the directory could not be synced */
			complain("warning: %s", e.msg);
		rc = st.warnings || c > 0 ? EXIT_WARN : 0;
	}
	pending.armed = 0;
	store_abort(&t);
	store_unlock(lock);
	return rc;
}

static void set_options(const struct cfg *c, const struct cfg_set *s, struct wr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->source = c->source;
	o->paths = (const char *const *)s->paths.v;
	o->npaths = s->paths.n;
	o->optional = (const char *const *)s->optional.v;
	o->noptional = s->optional.n;
	o->exclude = (const char *const *)s->exclude.v;
	o->nexclude = s->exclude.n;
	o->level = c->level;
	o->threads = c->threads;
}

/* The sets named in argv, or all of them; NULL after complaining about an unknown name. */
static const struct cfg_set **pick_sets(const struct cfg *c, int argc, char **argv, size_t *n)
{
	const struct cfg_set **v = calloc(argc > 0 ? (size_t)argc : c->nsets, sizeof(*v));

	if (!v)
		return NULL;
	*n = 0;
	if (argc == 0)
		for (size_t i = 0; i < c->nsets; i++)
			v[(*n)++] = &c->sets[i];
	for (int i = 0; i < argc; i++) {
		if (!(v[*n] = cfg_find_set(c, argv[i]))) {
			complain("no set '%s' in '%s'; the sets are listed under 'sets:'", argv[i],
				 c->file);
			free(v);
			return NULL;
		}
		(*n)++;
	}
	return v;
}

static void set_dir(const struct cfg *c, const struct cfg_set *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", c->store, s->name);
}

static int take_config(const char *file, int argc, char **argv)
{
	struct cfg *c;
	struct err e;
	const struct cfg_set **sets;
	size_t n;
	int worst = 0;

	if (cfg_load(file, &c, &e) < 0)
		return fail(&e);
	if (!(sets = pick_sets(c, argc, argv, &n))) {
		cfg_free(c);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		char dir[PATH_MAX];
		struct take_job j = { .store = c->store, .dir = dir, .name = sets[i]->name };
		set_dir(c, sets[i], dir, sizeof(dir));
		set_options(c, sets[i], &j.o);
		int rc = take_one(&j);
		if (rc > worst)
			worst = rc;
	}
	free(sets);
	cfg_free(c);
	return worst;
}

static bool valid_name(const char *name)
{
	if (!*name || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
			return false;
	return true;
}

static int cmd_take(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "level", required_argument, NULL, 'l' },
		{ "frame-size", required_argument, NULL, 'F' },
		{ "group-size", required_argument, NULL, 'G' },
		{ "threads", required_argument, NULL, 'T' },
		{ 0 },
	};
	const char **excl = calloc((size_t)argc + 1, sizeof(*excl));
	struct take_job j = { .o = { .level = 3 } };
	int c, rc;

	if (!excl)
		return EXIT_FAIL;
	while ((c = getopt_long(argc, argv, "+C:", opts, NULL)) != -1) {
		switch (c) {
		case 's': j.store = j.dir = optarg; break;
		case 'n': j.name = optarg; break;
		case 'C': j.o.source = optarg; break;
		case 'x': excl[j.o.nexclude++] = optarg; break;
		case 'l': j.o.level = atoi(optarg); break;
		case 'F': j.o.frame_size = strtoul(optarg, NULL, 0); break;
		case 'G': j.o.group_size = strtoul(optarg, NULL, 0); break;
		case 'T': j.o.threads = atoi(optarg); break;
		default: free(excl); return usage_error("take: unknown option");
		}
	}
	if (!j.store) {
		free(excl);
		if (j.name || j.o.source || j.o.nexclude)
			return usage_error("take: --store is required with --name, -C or --exclude");
		return take_config(config, argc - optind, argv + optind);
	}
	if (!j.name || !valid_name(j.name) || optind == argc) {
		free(excl);
		return usage_error(!j.name ? "take: --name is required with --store"
				   : optind == argc ? "take: name at least one PATH to archive"
						    : "take: --name may hold only letters, digits, "
						      "'.', '_' and '-', and not start with '.' or '-'");
	}
	j.o.exclude = excl;
	j.o.paths = (const char *const *)argv + optind;
	j.o.npaths = (size_t)(argc - optind);
	rc = take_one(&j);
	free(excl);
	return rc;
}

/* ISO 8601 with the local offset, as `date -Iseconds` prints it. */
static void iso_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char off[8];

	localtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(off, sizeof(off), "%z", &tm);
	snprintf(buf + strlen(buf), size - strlen(buf), "%.3s:%.2s", off, off + 3);
}

static void human_size(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

struct list_out {
	bool json;
	bool first;
	const char *set;	/* config mode: the set, shown in JSON */
};

/* Entries of an archive from its index: the trailer alone for native archives. */
static long long count_entries(const char *dir, const char *file)
{
	char path[PATH_MAX];
	struct idx *x;
	struct err e;
	long long n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (idx_open(path, &x, &e) < 0) {
		complain("warning: %s", e.msg);
		return -1;
	}
	n = idx_members(x);
	idx_close(x);
	return n;
}

static void list_entry(struct list_out *lo, const char *dir, const struct store_entry *s)
{
	long long n = count_entries(dir, s->file);
	char when[40] = "-", size[32];

	if (s->parsed.has_time)
		iso_time(s->time, when, sizeof(when));
	if (!lo->json) {
		human_size(s->size, size, sizeof(size));
		printf("%-25s  ", when);
		put_escaped(s->file, stdout);
		if (n >= 0)
			printf("  %10s  %lld\n", size, n);
		else
			printf("  %10s  ? (unreadable)\n", size);
		return;
	}
	printf("%s\n  {\"archive\": ", lo->first ? "" : ",");
	json_string(stdout, s->file);
	if (s->parsed.has_time)
		printf(", \"time\": \"%s\"", when);
	else
		printf(", \"time\": null");
	printf(", \"size\": %" PRIu64 ", \"entries\": ", s->size);
	if (n >= 0)
		printf("%lld", n);
	else
		printf("null");
	if (lo->set) {
		printf(", \"set\": ");
		json_string(stdout, lo->set);
	}
	printf("}");
	lo->first = false;
}

static int list_dir(struct list_out *lo, const char *dir)
{
	struct store_entry *v;
	struct err e;
	size_t n;

	if (store_list(dir, &v, &n, &e) < 0)
		return fail(&e);
	for (size_t i = 0; i < n; i++)
		list_entry(lo, dir, &v[i]);
	store_list_free(v, n);
	return 0;
}

static int cmd_list(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct list_out lo = { .first = true };
	const char *store = NULL;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			store = optarg;
		else if (c == 'j')
			lo.json = true;
		else
			return usage_error("list: unknown option");
	}
	if (lo.json)
		printf("[");
	if (store) {
		if (optind < argc)
			return usage_error("list: name no sets with --store");
		rc = list_dir(&lo, store);
	} else {
		struct cfg *cf;
		struct err e;
		const struct cfg_set **sets;
		size_t n;
		if (cfg_load(config, &cf, &e) < 0)
			return fail(&e);
		if (!(sets = pick_sets(cf, argc - optind, argv + optind, &n))) {
			cfg_free(cf);
			return EXIT_FAIL;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			char dir[PATH_MAX];
			set_dir(cf, sets[i], dir, sizeof(dir));
			lo.set = sets[i]->name;
			rc = list_dir(&lo, dir);
		}
		free(sets);
		cfg_free(cf);
	}
	if (lo.json)
		printf("%s]\n", lo.first ? "" : "\n");
	return rc;
}

/* ---- prune ---- */

static const char *const rule_flags[KEEP_NRULES] = {
	"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly",
};

#define RULES_HINT								\
	"--keep-last N, --keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/"	\
	"--keep-yearly N|DUR, or --keep-within DUR (DUR as restic writes it: 24h, 30d, 1y6m)"

/* "--keep-daily 7" or "--keep-daily 30d" into p; false after complaining. */
static bool parse_rule(struct keep_policy *p, enum keep_rule r, const char *arg)
{
	struct err e;
	char *end;

	if (*arg >= '0' && *arg <= '9' && arg[strspn(arg, "0123456789")] == '\0') {
		errno = 0;
		long n = strtol(arg, &end, 10);
		if (errno || n > INT_MAX) {
			complain("prune: --%s %s is too large", rule_flags[r], arg);
			return false;
		}
		p->count[r] = (int)n;	/* 0 leaves the rule unused, as in restic */
		return true;
	}
	if (r == KEEP_LAST || keep_parse_dur(arg, &p->within[r], &e) < 0) {
		complain("prune: --%s takes %s, not '%s'", rule_flags[r],
			 r == KEEP_LAST ? "a count N" : "a count N or a duration such as 30d", arg);
		return false;
	}
	p->has_within[r] = true;
	return true;
}

static bool parse_within(struct keep_policy *p, const char *arg)
{
	struct err e;

	if (keep_parse_dur(arg, &p->keep_within, &e) < 0) {
		complain("prune: --keep-within takes a duration such as 24h, 30d or 1y6m, not '%s'",
			 arg);
		return false;
	}
	p->has_keep_within = true;
	return true;
}

static int local_offset(int64_t t, void *arg)
{
	time_t tt = (time_t)t;
	struct tm tm;

	(void)arg;
	return localtime_r(&tt, &tm) ? (int)tm.tm_gmtoff : 0;
}

struct prune_out {
	bool json, dry_run, first;
	const char *set;	/* config form: the set, shown in JSON */
	int rc;
};

/* Extra reasons, besides the policy's, for keeping an archive. */
#define WHY_NO_TIME "no-time"		/* no valid time in its name: never pruned */
#define WHY_NO_POLICY "no-policy"	/* its set has no keep: rules */

static void print_verdict(struct prune_out *po, const char *file, bool keep, unsigned reasons,
			  const char *extra)
{
	const char *sep = "";

	if (po->json) {
		printf("%s\n  {\"archive\": ", po->first ? "" : ",");
		json_string(stdout, file);
		printf(", \"action\": \"%s\", \"reasons\": [", keep ? "keep" : "prune");
	} else {
		printf("%-5s  ", keep ? "keep" : "prune");
		put_escaped(file, stdout);
		fputs(reasons || extra ? "  " : "", stdout);
	}
	for (unsigned bit = 1; bit <= KEEP_REASON_WITHIN; bit <<= 1) {
		if (!(reasons & bit))
			continue;
		printf(po->json ? "%s\"%s\"" : "%s%s", sep, keep_reason_name(bit));
		sep = po->json ? ", " : ",";
	}
	if (extra)
		printf(po->json ? "%s\"%s\"" : "%s%s", sep, extra);
	if (po->json && po->set) {
		printf("], \"set\": ");
		json_string(stdout, po->set);
		printf("}");
	} else {
		printf(po->json ? "]}" : "\n");
	}
	po->first = false;
}

/* Whether a listed archive has a time the policy can use. */
static bool usable_time(const struct store_entry *s)
{
	return s->parsed.has_time && s->time != -1 && s->parsed.sec <= 59;
}

/* Decide for every archive in v; verdicts[i] for v[i], timeless ones kept. */
static int decide(const struct keep_policy *p, const struct store_entry *v, size_t n,
		  struct keep_verdict *verdicts, struct err *e)
{
	struct keep_clock clk = { .now = (int64_t)time(NULL), .utc_offset = local_offset };
	struct keep_snap *snaps = calloc(n + 1, sizeof(*snaps));
	struct keep_verdict *got = calloc(n + 1, sizeof(*got));
	size_t k = 0;
	int rc = 0;

	if (!snaps || !got) {
		rc = err_set(e, ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if (usable_time(&v[i]))
			snaps[k++] = (struct keep_snap){ v[i].parsed.year, v[i].parsed.month,
							 v[i].parsed.day, v[i].parsed.hour,
							 v[i].parsed.min, v[i].parsed.sec, v[i].time };
	if (k && (rc = keep_apply(p, &clk, snaps, k, got, e)) < 0)
		goto done;
	for (size_t i = 0, j = 0; i < n; i++)
		verdicts[i] = usable_time(&v[i]) ? got[j++] : (struct keep_verdict){ true, 0 };
done:
	free(snaps);
	free(got);
	return rc;
}

static bool same_name(const struct store_entry *a, const struct store_entry *b)
{
	return a->parsed.name_len == b->parsed.name_len &&
	       memcmp(a->file, b->file, a->parsed.name_len) == 0;
}

/*
 * As restic keeps apart the snapshots of different paths, the archives of
 * different names (NAME-YYYYMMDD_HHMMSS) in one directory are decided apart:
 * --keep-last 1 keeps the newest of each. A set's directory holds one name.
 */
static int decide_by_name(const struct keep_policy *p, const struct store_entry *v, size_t n,
			  struct keep_verdict *verdicts, struct err *e)
{
	struct store_entry *g = malloc((n + 1) * sizeof(*g));
	struct keep_verdict *gv = malloc((n + 1) * sizeof(*gv));
	size_t *at = malloc((n + 1) * sizeof(*at));
	bool *done = calloc(n + 1, sizeof(*done));
	int rc = 0;

	if (!g || !gv || !at || !done)
		rc = err_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t k = 0;
		for (size_t j = i; j < n && !done[i]; j++) {
			if (!done[j] && same_name(&v[i], &v[j])) {
				at[k] = j;
				g[k++] = v[j];
			}
		}
		for (size_t j = 0; j < k; j++)
			done[at[j]] = true;
		if (k && (rc = decide(p, g, k, gv, e)) == 0)
			for (size_t j = 0; j < k; j++)
				verdicts[at[j]] = gv[j];
	}
	free(g);
	free(gv);
	free(at);
	free(done);
	return rc;
}

static void prune_one(struct prune_out *po, const char *dir, const struct store_entry *s,
		      const struct keep_verdict *vd)
{
	struct err e;

	if (!vd->keep && !po->dry_run && store_delete(dir, s->file, &e) < 0) {
		complain("%s", e.msg);
		po->rc = EXIT_WARN;
	}
	print_verdict(po, s->file, vd->keep, vd->reasons, usable_time(s) ? NULL : WHY_NO_TIME);
}

/* Prune the archives in dir by p; p NULL: a set without keep rules, kept whole. */
static int prune_dir(struct prune_out *po, const char *dir, const struct keep_policy *p)
{
	struct store_entry *v;
	struct keep_verdict *vd;
	struct err e;
	size_t n;

	if (store_list(dir, &v, &n, &e) < 0)
		return fail(&e);
	if (!p && !po->json)
		printf("%s: no keep rules in the config, so nothing is pruned (%zu archive%s kept)\n",
		       po->set, n, n == 1 ? "" : "s");
	for (size_t i = 0; !p && po->json && i < n; i++)
		print_verdict(po, v[i].file, true, 0, WHY_NO_POLICY);
	if (!p || n == 0) {
		store_list_free(v, n);
		return 0;
	}
	if (!(vd = calloc(n, sizeof(*vd))) || decide_by_name(p, v, n, vd, &e) < 0) {
		free(vd);
		store_list_free(v, n);
		return vd ? fail(&e) : EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		prune_one(po, dir, &v[i], &vd[i]);
	free(vd);
	store_list_free(v, n);
	return 0;
}

/* The lock, unless it is a dry run (which deletes nothing, and may run on a read-only copy). */
static int prune_lock(const struct prune_out *po, const char *store)
{
	struct stat st;
	struct err e;
	int fd;

	if (stat(store, &st) < 0 || !S_ISDIR(st.st_mode)) {
		complain("no store at '%s'; check the path (snapkeep take creates it)", store);
		return -2;
	}
	if (po->dry_run)
		return -1;
	if ((fd = store_lock(store, LOCK_WAIT_MS, &e)) < 0) {
		fail(&e);
		return -2;
	}
	return fd;
}

static int prune_config(struct prune_out *po, const char *file, int argc, char **argv)
{
	const struct cfg_set **sets;
	struct cfg *c;
	struct err e;
	size_t n;
	int lock, rc = 0;

	if (cfg_load(file, &c, &e) < 0)
		return fail(&e);
	if (!(sets = pick_sets(c, argc, argv, &n))) {
		cfg_free(c);
		return EXIT_FAIL;
	}
	if ((lock = prune_lock(po, c->store)) == -2)
		rc = EXIT_FAIL;
	for (size_t i = 0; i < n && rc != EXIT_FAIL; i++) {
		char dir[PATH_MAX];
		set_dir(c, sets[i], dir, sizeof(dir));
		po->set = sets[i]->name;
		rc = prune_dir(po, dir, sets[i]->has_keep ? &sets[i]->keep : NULL);
	}
	store_unlock(lock);
	free(sets);
	cfg_free(c);
	return rc;
}

static int prune_store(struct prune_out *po, const char *store, const struct keep_policy *p)
{
	int lock, rc;

	if ((lock = prune_lock(po, store)) == -2)
		return EXIT_FAIL;
	rc = prune_dir(po, store, p);
	store_unlock(lock);
	return rc;
}

/* The --keep-* rules return their enum keep_rule value, 0 to 5. */
static const struct option prune_opts[] = {
	{ "keep-last", required_argument, NULL, KEEP_LAST },
	{ "keep-hourly", required_argument, NULL, KEEP_HOURLY },
	{ "keep-daily", required_argument, NULL, KEEP_DAILY },
	{ "keep-weekly", required_argument, NULL, KEEP_WEEKLY },
	{ "keep-monthly", required_argument, NULL, KEEP_MONTHLY },
	{ "keep-yearly", required_argument, NULL, KEEP_YEARLY },
	{ "keep-within", required_argument, NULL, 'w' },
	{ "store", required_argument, NULL, 's' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "json", no_argument, NULL, 'j' },
	{ 0 },
};

static int cmd_prune(const char *config, int argc, char **argv)
{
	struct prune_out po = { .first = true };
	struct keep_policy p = { 0 };
	const char *store = NULL;
	bool rules = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", prune_opts, NULL)) != -1) {
		if (c >= 0 && c < KEEP_NRULES && parse_rule(&p, (enum keep_rule)c, optarg))
			rules = true;
		else if (c == 'w' && parse_within(&p, optarg))
			rules = true;
		else if (c == 's')
			store = optarg;
		else if (c == 'n')
			po.dry_run = true;
		else if (c == 'j')
			po.json = true;
		else
			return c == '?' ? usage_error("prune: unknown option") : EXIT_FAIL;
	}
	if (store && optind < argc)
		return usage_error("prune: name no sets with --store");
	if (!store && rules)
		return usage_error("prune: --keep-* rules need --store; with a config, each set's "
				   "keep: holds its rules");
	if (store && !keep_policy_any(&p))
		return usage_error("prune: name at least one rule: " RULES_HINT);
	if (po.json)
		printf("[");
	rc = store ? prune_store(&po, store, &p) : prune_config(&po, config, argc - optind,
							     argv + optind);
	if (po.json)
		printf("%s]\n", po.first ? "" : "\n");
	return rc;
}

/* ---- verify ---- */

struct verify_ui {
	bool tty, shown;
	const char *name;
	struct timespec start, last;
};

static void verify_progress(void *ctx, const struct vfy_progress *p)
{
	struct verify_ui *ui = ctx;
	struct timespec now;

	if (!ui->tty)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (since(&ui->start) < 0.5 || since(&ui->last) < 0.2)
		return;
	ui->last = now;
	fputs("\r\033[Kverifying ", stderr);
	put_escaped(ui->name, stderr);
	fprintf(stderr, ": %.0f%%, %.1f MiB/s read",
		p->total ? 100.0 * (double)p->done / (double)p->total : 100.0,
		(double)p->done / 1048576 / since(&ui->start));
	ui->shown = true;
}

/* Verify one archive and print its line; 0 when OK, EXIT_WARN when not. */
static int verify_one(const char *path, const char *const *require, size_t nrequire,
		      int threads)
{
	struct verify_ui ui = { .tty = isatty(STDERR_FILENO), .name = path };
	struct vfy_opts o = { .require = require, .nrequire = nrequire, .threads = threads,
			      .progress = verify_progress, .ctx = &ui };
	struct err e;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ui.start);
	ui.last = ui.start;
	rc = vfy_archive(path, &o, NULL, &e);
	if (ui.shown)
		fputs("\r\033[K", stderr);
	fputs(rc < 0 ? "FAIL " : "OK ", stdout);
	put_escaped(path, stdout);
	if (rc < 0) {
		fputs(": ", stdout);
		put_escaped(e.msg, stdout);
	}
	putchar('\n');
	fflush(stdout);
	return rc < 0 ? EXIT_WARN : 0;
}

static int verify_set(const struct cfg *c, const struct cfg_set *s, int threads)
{
	struct store_entry *v;
	struct err e;
	char dir[PATH_MAX];
	size_t n;
	int rc = 0;

	set_dir(c, s, dir, sizeof(dir));
	if (store_list(dir, &v, &n, &e) < 0)
		return fail(&e);
	if (n == 0) {
		complain("set '%s' has no archives in '%s'; run 'snapkeep take %s'", s->name, dir,
			 s->name);
		rc = EXIT_WARN;
	}
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + NAME_MAX + 2];
		snprintf(path, sizeof(path), "%s/%s", dir, v[i].file);
		if (verify_one(path, (const char *const *)s->require.v, s->require.n, threads))
			rc = EXIT_WARN;
	}
	store_list_free(v, n);
	return rc;
}

static int verify_config(const char *file, int argc, char **argv, int threads)
{
	const struct cfg_set **sets;
	struct cfg *c;
	struct err e;
	size_t n;
	int rc = 0;

	if (cfg_load(file, &c, &e) < 0)
		return fail(&e);
	if (!(sets = pick_sets(c, argc, argv, &n))) {
		cfg_free(c);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n && rc != EXIT_FAIL; i++) {
		int r = verify_set(c, sets[i], threads);
		if (r > rc)
			rc = r;
	}
	free(sets);
	cfg_free(c);
	return rc;
}

/* ARCHIVE arguments are paths: they hold a '/' or name a file; anything else names a set. */
static bool names_files(int argc, char **argv)
{
	struct stat st;

	for (int i = 0; i < argc; i++)
		if (strchr(argv[i], '/') || stat(argv[i], &st) == 0)
			return true;
	return false;
}

static int cmd_verify(const char *config, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "require", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 'T' },
		{ 0 },
	};
	const char **require = calloc((size_t)argc + 1, sizeof(*require));
	size_t nrequire = 0;
	int c, threads = 0, rc = 0;

	if (!require)
		return EXIT_FAIL;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			require[nrequire++] = optarg;
		else if (c == 'T')
			threads = atoi(optarg);
		else {
			free(require);
			return usage_error("verify: unknown option");
		}
	}
	argc -= optind;
	argv += optind;
	if (nrequire && argc == 0)
		rc = usage_error("verify: name the ARCHIVE files to check for --require");
	else if (!nrequire && !names_files(argc, argv))
		rc = verify_config(config, argc, argv, threads);
	for (int i = 0; (nrequire || names_files(argc, argv)) && i < argc; i++)
		if (verify_one(argv[i], require, nrequire, threads))
			rc = EXIT_WARN;
	free(require);
	return rc;
}

/* ---- restore ---- */

static void restore_warn(void *ctx, const char *msg)
{
	(void)ctx;
	complain("warning: %s", msg);
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ 0 },
	};
	struct ext_opts o = { .warn = restore_warn };
	struct ext_stats st;
	struct err e;
	const char *to = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 't')
			return usage_error("restore: unknown option");
		to = optarg;
	}
	if (optind == argc || !to)
		return usage_error(optind == argc ? "restore: name the ARCHIVE to restore"
						  : "restore: name the directory to restore into "
						    "with --to DIR");
	o.paths = (const char *const *)argv + optind + 1;
	o.npaths = (size_t)(argc - optind - 1);
	if (ext_restore(argv[optind], to, &o, &st, &e) < 0)
		return fail(&e);
	return st.warnings ? EXIT_WARN : 0;
}

int main(int argc, char **argv)
{
	const char *config = getenv("SNAPKEEP_CONFIG");
	int i = 1;

	if (!config)
		config = "/etc/snapkeep.yaml";
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			puts("snapkeep " SNAPFS_VERSION);
			return 0;
		} else {
			return usage_error("unknown option before the command");
		}
	}
	if (i == argc)
		return usage_error("name a command: take, list, prune, verify or restore");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	const char *cmd = argv[i];
	argc -= i;
	argv += i;
	optind = 1;
	if (strcmp(cmd, "take") == 0)
		return cmd_take(config, argc, argv);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(config, argc, argv);
	if (strcmp(cmd, "prune") == 0)
		return cmd_prune(config, argc, argv);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(config, argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cmd_restore(argc, argv);
	return usage_error("unknown command");
}

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
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "index.h"
#include "json.h"
#include "store.h"
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

__attribute__((format(printf, 1, 2)))
static void complain(const char *fmt, ...)
{
	va_list ap;

	fputs("snapkeep: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
	if ((lock = store_lock(j->store, LOCK_WAIT_MS, &e)) < 0)
		return fail(&e);
	if (store_clean_temps(j->dir, &e) < 0 || wr_check_paths(&j->o, &e) < 0 ||
	    store_create(j->dir, j->name, &j->o.time, &t, &e) < 0) {
		store_unlock(lock);
		return fail(&e);
	}
	arm_cleanup(&t);
	if (wr_write(t.fd, t.tmp, &j->o, &st, &e) < 0 || store_commit(&t, &e) < 0) {
		if (ui.shown)
			fputs("\r\033[K", stderr);
		if (e.code == ENOSPC || e.code == EDQUOT)
			complain("%s; nothing was kept: free space in '%s' or prune old snapshots",
				 e.msg, j->dir);
		else
			fail(&e);
	} else {
		if (ui.shown)
			fputs("\r\033[K", stderr);
		printf("%s\n", store_tmp_path(&t, path, sizeof(path)));
		fflush(stdout);
		rc = st.warnings ? EXIT_WARN : 0;
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
		if (n >= 0)
			printf("%-25s  %s  %10s  %lld\n", when, s->file, size, n);
		else
			printf("%-25s  %s  %10s  ? (unreadable)\n", when, s->file, size);
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

static int not_yet(const char *what)
{
	complain("'%s' is not available in this build yet", what);
	return EXIT_FAIL;
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
	if (strcmp(cmd, "prune") == 0 || strcmp(cmd, "verify") == 0 ||
	    strcmp(cmd, "restore") == 0)
		return not_yet(cmd);
	return usage_error("unknown command");
}

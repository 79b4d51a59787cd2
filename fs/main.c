/*
 * snapfs: mount a store of snapshots read-only (SPEC, "snapfs").
 *
 *	snapfs [options] STORE MOUNTPOINT
 *
 * Returns once the mount is live (or failed, with a message and exit 1), then
 * serves it from a detached process that logs to syslog, unless -f or -d.
 * Also works as mount.fuse3's helper: `mount -t fuse.snapfs STORE MNT -o ...`.
 */
#include "ops.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fcache.h"
#include "foreign.h"
#include "log.h"
#include "tree.h"
#include "watch.h"

#define DEFAULT_CACHE_MIB 64
#define DEFAULT_READ_AHEAD_KIB 1024

static const char usage_text[] =
	"usage: snapfs [options] STORE MOUNTPOINT\n"
	"  -f              stay in the foreground, log to stderr\n"
	"  -d              debug output (implies -f)\n"
	"  -o OPT[,OPT]    mount options: allow_other, nodev, nosuid, ... and snapfs's own:\n"
	"                    cache_size=MIB   decompressed frames kept in memory (default 64)\n"
	"                    max_open=N       archive indexes kept open (default 256)\n"
	"                    spill_dir=DIR    where members of foreign archives are decoded to\n"
	"                    spill_size=MIB   per foreign archive (default 256)\n"
	"                    max_foreign=N    foreign archives that keep their decoders and\n"
	"                                     spill files once idle for a second (default 4;\n"
	"                                     0: all of them)\n"
	"                    read_ahead=KIB   the mount's read-ahead, set as root (default 1024;\n"
	"                                     0 leaves the kernel's 128)\n"
	"                    readdirplus=auto|always  listings with attributes only when the\n"
	"                                     kernel asks (faster bare find) or always (the\n"
	"                                     default: no lookup per file opened after a listing)\n"
	"  -h, --help / -V, --version\n"
	"Unmount with 'fusermount3 -u MOUNTPOINT' or 'umount MOUNTPOINT'.\n";

struct opts {
	const char *store, *mnt;
	bool foreground, debug;
	size_t cache_mib;
	unsigned max_open;
	const char *spill_dir;
	uint64_t spill_mib;
	unsigned max_foreign;
	unsigned long long read_ahead_kib;
	bool readdirplus_auto;
	char fuse_opts[4096];	/* passed to libfuse */
};

/* Options mount(8) and fstab use that mean nothing to a FUSE daemon. */
static bool ignored(const char *o)
{
	static const char *const names[] = {
		"defaults", "auto", "noauto", "user", "nouser", "users", "nofail", "_netdev",
		"relatime", "strictatime", "nodiratime", "lazytime", "rw", "ro", "owner", "group",
		/*
		 * A backup view never honours setuid bits or device nodes (they still show
		 * as such): mount.fuse3 appends "dev,suid" for root, so they are dropped.
		 */
		"dev", "suid",
	};

	if (strncmp(o, "x-", 2) == 0 || strncmp(o, "comment=", 8) == 0)
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(o, names[i]) == 0)
			return true;
	return false;
}

/* A number from min to max: past max, a shift into bytes would wrap. */
static int number(const char *o, const char *v, unsigned long long min, unsigned long long max,
		  unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || !*v || *end || *v == '-' || *out < min || *out > max) {
		fprintf(stderr, "snapfs: option '%s' takes a number from %llu to %llu\n", o, min,
			max);
		return -1;
	}
	return 0;
}

static int mount_option(struct opts *o, char *opt)
{
	char *eq = strchr(opt, '=');
	const char *v = eq ? eq + 1 : "";
	unsigned long long n;
	size_t len = strlen(o->fuse_opts);

	if (eq && strncmp(opt, "cache_size=", 11) == 0)
		return number(opt, v, 1, 1u << 20, &n) < 0 ? -1 : (o->cache_mib = (size_t)n, 0);
	if (eq && strncmp(opt, "max_open=", 9) == 0)
		return number(opt, v, 1, 1u << 20, &n) < 0 ? -1 : (o->max_open = (unsigned)n, 0);
	if (eq && strncmp(opt, "spill_size=", 11) == 0)
		return number(opt, v, 0, 1ull << 30, &n) < 0 ? -1 : (o->spill_mib = n, 0);
	if (eq && strncmp(opt, "max_foreign=", 12) == 0)
		return number(opt, v, 0, 1u << 20, &n) < 0 ? -1 : (o->max_foreign = (unsigned)n, 0);
	if (eq && strncmp(opt, "read_ahead=", 11) == 0)
		return number(opt, v, 0, 1u << 20, &n) < 0 ? -1 : (o->read_ahead_kib = n, 0);
	if (eq && strncmp(opt, "readdirplus=", 12) == 0) {
		if (strcmp(v, "auto") != 0 && strcmp(v, "always") != 0) {
			fprintf(stderr, "snapfs: readdirplus= takes 'auto' or 'always', not '%s'\n", v);
			return -1;
		}
		o->readdirplus_auto = strcmp(v, "auto") == 0;
		return 0;
	}
	if (eq && strncmp(opt, "spill_dir=", 10) == 0)
		return (o->spill_dir = v), 0;
	if (ignored(opt))
		return 0;
	if (len + strlen(opt) + 2 >= sizeof(o->fuse_opts)) {
		fprintf(stderr, "snapfs: too many mount options\n");
		return -1;
	}
	snprintf(o->fuse_opts + len, sizeof(o->fuse_opts) - len, ",%s", opt);
	return 0;
}

static int mount_options(struct opts *o, char *list)
{
	for (char *save, *opt = strtok_r(list, ",", &save); opt; opt = strtok_r(NULL, ",", &save))
		if (*opt && mount_option(o, opt) < 0)
			return -1;
	return 0;
}

/* 0 to go on, 1 to exit 0 (help, version), -1 to exit 1. */
static int parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .cache_mib = DEFAULT_CACHE_MIB, .max_foreign = FRN_DEFAULT_LIVE,
			    .read_ahead_kib = DEFAULT_READ_AHEAD_KIB };
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return fputs(usage_text, stdout), 1;
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
			return puts("snapfs " SNAPFS_VERSION), 1;
		if (strcmp(a, "-f") == 0) {
			o->foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			o->foreground = o->debug = true;
		} else if (strncmp(a, "-o", 2) == 0) {
			char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!list || mount_options(o, list) < 0)
				return fputs(list ? "" : "snapfs: -o needs options\n", stderr), -1;
		} else if (a[0] == '-' && a[1]) {
			return fprintf(stderr, "snapfs: unknown option '%s'\n%s", a, usage_text), -1;
		} else if (!o->store) {
			o->store = a;
		} else if (!o->mnt) {
			o->mnt = a;
		} else {
			return fprintf(stderr, "snapfs: too many arguments\n%s", usage_text), -1;
		}
	}
	if (!o->mnt)
		return fprintf(stderr, "snapfs: name a STORE and a MOUNTPOINT\n%s", usage_text), -1;
	return 0;
}

/* mountinfo escapes spaces and such as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/*
 * Whether path is a snapfs mount (other mounts there are fine: autofs); the
 * device of the last one mounted there goes to dev ("MAJOR:MINOR").
 */
static bool snapfs_mounted(const char *path, char *dev, size_t devsize)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], mnt[4096], type[256], mm[64];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %63s %*s %4095s", mm, mnt) != 2 ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		unescape(mnt);
		if (strcmp(mnt, path) == 0 && strcmp(type, "fuse.snapfs") == 0) {
			found = true;
			if (dev)
				snprintf(dev, devsize, "%s", mm);
		}
	}
	fclose(f);
	return found;
}

/* Where the mount's read-ahead is set (ops.h, ra_path), if the mount is found. */
static void find_read_ahead(const char *real, unsigned long long kib, struct ops *o)
{
	char dev[64];

	/* real was resolved before mounting: a stat now would wait for this very daemon */
	if (!kib || !*real || !snapfs_mounted(real, dev, sizeof(dev)))
		return;
	snprintf(o->ra_path, sizeof(o->ra_path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	o->ra_kib = kib;
}

/* A usable mount point, not yet a snapfs mount; its real path to real ("" for /dev/fd/N). */
static int check_mountpoint(const char *mnt, char real[PATH_MAX])
{
	struct stat st;

	*real = '\0';
	/* mount.fuse3 may have opened /dev/fuse and passes /dev/fd/N: libfuse knows it */
	if (strncmp(mnt, "/dev/fd/", 8) == 0)
		return 0;
	/*
	 * One stat: a second one could see a dead mount that the first did not
	 * yet. A mount whose daemon died fails with ENOTCONN, or ECONNABORTED
	 * once the kernel has aborted the connection.
	 */
	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN || errno == ECONNABORTED)
			fprintf(stderr, "snapfs: mount point '%s': %s; the daemon that served it is "
					"gone: unmount it first with fusermount3 -u '%s'\n", mnt,
				strerror(errno), mnt);
		else
			fprintf(stderr, "snapfs: mount point '%s': %s%s\n", mnt, strerror(errno),
				errno == ENOENT ? "; create it with mkdir first" : "");
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "snapfs: mount point '%s' is not a directory\n", mnt);
		return -1;
	}
	if (!realpath(mnt, real))
		*real = '\0';
	if (*real && snapfs_mounted(real, NULL, 0)) {
		fprintf(stderr, "snapfs: '%s' is already a snapfs mount; unmount it first with "
				"fusermount3 -u '%s'\n", mnt, mnt);
		return -1;
	}
	return 0;
}

__attribute__((format(printf, 2, 3)))
static void log_line(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/*
 * libfuse writes some messages in pieces ("unknown option(s): `", "-o ",
 * "x'\n"): they are gathered, per thread, into one line up to its newline.
 */
__attribute__((format(printf, 2, 0)))
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static _Thread_local char line[1024];
	static _Thread_local size_t len;
	int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);

	len = n < 0 ? len : len + (size_t)n < sizeof(line) ? len + (size_t)n : sizeof(line) - 1;
	if (len && (line[len - 1] == '\n' || len == sizeof(line) - 1)) {
		log_line((int)level, "%s", line);
		len = 0;
	}
}

/* The kernel's caches, told from the watch thread (never from inside a request). */
static void inval_entry(void *ctx, uint64_t parent, const char *name)
{
	fuse_lowlevel_notify_inval_entry(ctx, parent, name, strlen(name));
}

static void inval_inode(void *ctx, uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(ctx, ino, 0, 0);
}

static void inval_attr(void *ctx, uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(ctx, ino, -1, 0);	/* offset < 0: attributes only */
}

static void damaged(void *ctx, const char *msg)
{
	(void)ctx;
	log_err("%s", msg);
}

/* fsname=STORE: commas and backslashes escaped for libfuse's option parser. */
static void escape_opt(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; *in && n + 3 < size; in++) {
		if (*in == ',' || *in == '\\')
			out[n++] = '\\';
		out[n++] = *in;
	}
	out[n] = '\0';
}

struct daemon {
	struct opts o;
	char store[PATH_MAX];
	char mnt[PATH_MAX];	/* the mount point's real path, or "" */
	struct tree *tree;
	struct fcache *cache;
	struct ops ops;
	struct fuse_session *se;
	struct watch *watch;
};

static int start(struct daemon *d, const char *argv0)
{
	char optstr[16384], fsname[2 * PATH_MAX];
	char *fargv[] = { (char *)argv0, (char *)"-o", optstr, NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct tree_opts to = {
		.store = d->store, .max_open = d->o.max_open,
		.idx = { .spill_dir = d->o.spill_dir, .spill_max = d->o.spill_mib << 20 },
		.inval_entry = inval_entry, .inval_inode = inval_inode, .inval_attr = inval_attr, .damaged = damaged,
	};
	struct err e;

	if (!realpath(d->o.store, d->store)) {
		fprintf(stderr, "snapfs: cannot use '%s' as a store: %s\n", d->o.store,
			strerror(errno));
		return -1;
	}
	if (check_mountpoint(d->o.mnt, d->mnt) < 0)
		return -1;
	/* read-only, and the kernel checks the stored modes: always (SPEC) */
	escape_opt(d->store, fsname, sizeof(fsname));
	if (snprintf(optstr, sizeof(optstr),
		     "ro,nosuid,nodev,default_permissions,fsname=%s,subtype=snapfs%s", fsname,
		     d->o.fuse_opts) >= (int)sizeof(optstr))
		return fprintf(stderr, "snapfs: store path too long\n"), -1;
	if (d->o.debug)
		fargv[args.argc++] = (char *)"-d";
	frn_limit(d->o.max_foreign, FRN_DEFAULT_IDLE_MS);
	if (!(d->cache = fcache_new(d->o.cache_mib << 20)))
		return fprintf(stderr, "snapfs: out of memory\n"), -1;
	d->ops.cache = d->cache;
	d->ops.store = d->store;
	ops_init(&d->ops);
	d->ops.readdirplus_auto = d->o.readdirplus_auto;
	d->se = fuse_session_new(&args, ops_table(), sizeof(*ops_table()), &d->ops);
	fuse_opt_free_args(&args);
	if (!d->se)
		return fprintf(stderr, "snapfs: cannot start a FUSE session (see the message "
				       "above)\n"), -1;
	to.ctx = d->se;
	if (tree_new(&to, &d->tree, &e) < 0) {
		fprintf(stderr, "snapfs: %s\n", e.msg);
		return -1;
	}
	d->ops.tree = d->tree;
	/* the real path: a relative one would not reach the mount from "/" at unmount */
	if (fuse_session_mount(d->se, *d->mnt ? d->mnt : d->o.mnt) < 0)
		return fprintf(stderr, "snapfs: cannot mount '%s' on '%s'\n", d->store,
			       d->o.mnt), -1;
	find_read_ahead(d->mnt, d->o.read_ahead_kib, &d->ops);
	return 0;
}

/*
 * The daemon's memory is mostly the frame cache, which maps its own; what
 * malloc keeps besides should not grow with the number of threads. Two arenas
 * for all threads (the read path allocates little), and a fixed threshold for
 * mapping big blocks, so that a freed index or listing buffer goes back to the
 * system instead of staying in an arena as glibc's moving threshold would have it.
 */
static void tune_malloc(void)
{
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/*
 * Every archive the kernel holds inodes of keeps a descriptor (tree.h), and a
 * store may have thousands: the soft limit goes up to the hard one.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * SIGTERM, SIGINT and SIGHUP end the daemon, but not through libfuse's
 * handlers: those end the session loop at once, and a request a worker had
 * just taken is then dropped unanswered. The page it was to fill stays locked,
 * and the pushing thread (ops.h), if it waits for that page, waits for ever
 * and holds the device open, so even the unmount hangs. Here the handler only
 * wakes a thread that stops the pusher while requests are still answered, and
 * then ends the loop.
 */
static sem_t stop_sem;

static void on_stop_signal(int sig)
{
	(void)sig;
	sem_post(&stop_sem);	/* async-signal-safe */
}

static int set_signals(void)
{
	static const int stops[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa = { 0 };

	if (sem_init(&stop_sem, 0, 0) < 0)
		return -1;
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		if (sigaction(stops[i], &sa, NULL) < 0)
			return -1;
	sa.sa_handler = SIG_IGN;	/* a reply to a reader that went away */
	return sigaction(SIGPIPE, &sa, NULL);
}

struct stopper {
	struct daemon *d;
	pthread_t main;
	atomic_bool loop_done;
};

static void *stopper(void *arg)
{
	struct stopper *s = arg;
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	while (sem_wait(&stop_sem) < 0 && errno == EINTR)
		;
	if (atomic_load(&s->loop_done))
		return NULL;	/* unmounted: the loop ended by itself */
	log_info("signalled: stopping");
	/*
	 * Both threads that talk to the kernel on their own may wait on a request
	 * the kernel sent (a page a READ locked, a directory a LOOKUP holds): they
	 * stop while the loop still answers.
	 */
	tree_stop(s->d->tree);
	watch_stop(s->d->watch);
	s->d->watch = NULL;
	ops_stop(&s->d->ops);
	fuse_session_exit(s->d->se);
	/* the loop notices when its wait is interrupted: until it has */
	while (!atomic_load(&s->loop_done)) {
		pthread_kill(s->main, SIGTERM);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct daemon d = { 0 };
	struct stopper stop = { .d = &d };
	pthread_t stop_thread;
	bool stopping = false;
	struct fuse_loop_config *lc;
	struct err e;
	int rc;

	if ((rc = parse(argc, argv, &d.o)) != 0)
		return rc < 0 ? 1 : 0;
	log_open("snapfs", true, d.o.debug);
	fuse_set_log_func(fuse_log_to_ours);
	tune_malloc();
	raise_fd_limit();
	if (set_signals() < 0) {
		fprintf(stderr, "snapfs: cannot set signal handlers: %s\n", strerror(errno));
		return 1;
	}
	if (start(&d, argv[0]) < 0) {
		rc = 1;
		goto done;
	}
	/* the mount is live: the parent returns now, the child serves it */
	if (fuse_daemonize(d.o.foreground) < 0) {
		rc = 1;
		goto done;
	}
	if (!d.o.foreground)
		log_open("snapfs", false, d.o.debug);
	if (watch_start(d.store, d.tree, &d.watch, &e) < 0)
		log_warn("%s; new snapshots show only after a remount", e.msg);
	ops_start(&d.ops, d.se);	/* threads come after the fork of fuse_daemonize() */
	stop.main = pthread_self();
	atomic_init(&stop.loop_done, false);
	stopping = pthread_create(&stop_thread, NULL, stopper, &stop) == 0;
	if (!stopping)
		log_warn("no thread for signals: SIGTERM waits until the next request");
	log_info("serving '%s' on '%s'", d.store, d.o.mnt);
	lc = fuse_loop_cfg_create();
	rc = fuse_session_loop_mt(d.se, lc) != 0;
	fuse_loop_cfg_destroy(lc);
	log_info("unmounted '%s'", d.o.mnt);
	if (stopping) {
		atomic_store(&stop.loop_done, true);
		sem_post(&stop_sem);
		pthread_join(stop_thread, NULL);
	}
done:
	if (d.tree)
		tree_stop(d.tree);
	watch_stop(d.watch);
	if (d.cache)
		ops_stop(&d.ops);	/* it talks to the session; unmounted, nothing waits */
	if (d.se) {
		fuse_session_unmount(d.se);
		fuse_session_destroy(d.se);
	}
	if (d.cache)
		ops_release(&d.ops);
	tree_free(d.tree);
	fcache_free(d.cache);
	log_close();
	return rc;
}

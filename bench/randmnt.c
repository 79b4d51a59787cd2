/*
 * randmnt: helpers of bench/mount.sh that time things through a mounted file
 * system (bench/mount-results.md).
 *
 *	randmnt [-n COUNT] [-s SEED] [-b BYTES] [-u] [-t BUDGET_S] [-c SOURCE] FILE
 *
 * Times COUNT (2000) preads of BYTES (4096) at uniformly random offsets (fixed
 * SEED) in FILE, a file on a mount, each timed with clock_gettime(
 * CLOCK_MONOTONIC). Ordinary buffered reads (no O_DIRECT): what the kernel
 * page cache holds answers, so the caller drops it first for a cold run.
 * Offsets are multiples of BYTES, as pages are; -u makes them byte-granular.
 * -t stops after BUDGET_S seconds of reading (for peers that take minutes)
 * and says how many reads were done. -c SOURCE compares every read with the
 * same bytes of SOURCE, outside the timed region.
 * Prints one line: reads, p50/p90/p99/max/mean in microseconds.
 *
 *	randmnt -O COUNT FILE
 *
 * Opens and closes FILE COUNT times and prints the mean microseconds per
 * open+close: on a FUSE mount, one OPEN round trip to the daemon (the RELEASE
 * goes asynchronously), the fixed cost every small file pays.
 *
 *	find DIR -type f -print0 | randmnt -R
 *
 * Reads every file named on stdin (NUL-separated) once, front to back, in
 * reads of 128 KiB (cat's size) into one buffer, and prints how many files
 * and bytes it read. It makes open, posix_fadvise(SEQUENTIAL), the reads and
 * close a file, as `cat` does (the advice doubles the kernel's read-ahead:
 * squashfuse read the big files in 1.48-3.15 s with it, 4.89-6.74 s without).
 * `cat` (coreutils 9.1) also makes an fstat and a write a file, and maps a
 * fresh 128 KiB buffer for each file and unmaps it after: an mmap, a munmap
 * and two page faults a file; ~40 us a file in all, measured in session 11
 * on the VM of runs 6-12.
 *
 *	randmnt -S < LIST
 *
 * lstat()s every path named on stdin (NUL-separated) once and prints how many
 * and the mean microseconds a stat. On a FUSE mount whose listings carried no
 * attributes, each is one LOOKUP round trip to the daemon (bench/floor.sh).
 *
 *	randmnt -w TIMEOUT_S PATH CMD [ARG...]
 *
 * Mount to first stat: starts CMD (a mount command), then stat()s PATH every
 * 100 us until it succeeds; prints the seconds from the start of CMD to the
 * first successful stat, and when CMD itself exited (a daemon that returns
 * only once its mount is ready exits after the stat could succeed, one that
 * detaches early before). On TIMEOUT_S it kills CMD (if it still runs) and
 * prints timeout=1. CMD's output goes to stderr. Exit status: 0, or 1 on timeout
 * or a failed CMD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

extern char **environ;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "randmnt: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, ": %s\n", strerror(errno));
	exit(2);
}

static int wait_stat(int argc, char **argv)
{
	double timeout, t0, t_stat = -1, t_exit = -1;
	const char *path;
	struct stat st;
	pid_t pid;
	int status = 0, rc;

	if (argc < 5) {
		fprintf(stderr, "usage: randmnt -w TIMEOUT_S PATH CMD [ARG...]\n");
		return 2;
	}
	timeout = atof(argv[2]);
	path = argv[3];
	/* the command's output goes to our stderr: a daemon must not hold our stdout open */
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	t0 = now_s();
	if ((rc = posix_spawnp(&pid, argv[4], &fa, NULL, argv + 4, environ)) != 0) {
		errno = rc;
		die("cannot start '%s'", argv[4]);
	}
	for (;;) {
		double t = now_s();
		if (t_exit < 0 && waitpid(pid, &status, WNOHANG) == pid)
			t_exit = t - t0;
		if (t_stat < 0 && stat(path, &st) == 0)
			t_stat = now_s() - t0;
		if (t_stat >= 0 && t_exit >= 0)
			break;
		if (t_exit >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			break;	/* the mount command failed */
		if (t - t0 > timeout)
			break;
		usleep(100);
	}
	if (t_exit < 0 && t_stat < 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}
	if (t_stat < 0) {
		printf("timeout=%d stat_s=%.4f cmd_exit_s=%.4f cmd_status=%d\n", t_exit < 0 ? 1 : 0,
		       timeout, t_exit, t_exit < 0 ? -1 : status);
		return 1;
	}
	printf("timeout=0 stat_s=%.4f cmd_exit_s=%.4f cmd_status=%d\n", t_stat, t_exit,
	       t_exit < 0 ? -1 : status);
	return 0;
}

static int open_close(int argc, char **argv)
{
	long count = argc == 4 ? atol(argv[2]) : 0;
	double t0;

	if (count <= 0) {
		fprintf(stderr, "usage: randmnt -O COUNT FILE\n");
		return 2;
	}
	t0 = now_s();
	for (long i = 0; i < count; i++) {
		int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("cannot open '%s'", argv[3]);
		close(fd);
	}
	printf("opens=%ld open_close_us=%.1f\n", count, (now_s() - t0) / (double)count * 1e6);
	return 0;
}

static int read_all(void)
{
	static char buf[128 * 1024];
	unsigned long long files = 0, total = 0;
	char *name = NULL;
	size_t cap = 0;

	errno = 0;
	while (getdelim(&name, &cap, '\0', stdin) > 0) {
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0)
			die("cannot open '%s'", name);
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += (unsigned long long)n;
		if (n < 0)
			die("cannot read '%s'", name);
		close(fd);
		files++;
		errno = 0;
	}
	if (ferror(stdin) || errno == ENOMEM)
		die("cannot read the list of files%s", "");
	free(name);
	printf("files=%llu bytes=%llu\n", files, total);
	return 0;
}

static int stat_all(void)
{
	char *name = NULL;
	size_t cap = 0;
	unsigned long long files = 0;
	struct timespec t0, t1;
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	while (getdelim(&name, &cap, '\0', stdin) > 0) {
		if (lstat(name, &st) < 0)
			die("cannot stat '%s'", name);
		files++;
		errno = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ferror(stdin) || errno == ENOMEM)
		die("cannot read the list of files%s", "");
	free(name);
	double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		     (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3;
	printf("files=%llu stat_us=%.2f\n", files, files ? us / (double)files : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	size_t count = 2000, bytes = 4096, done = 0;
	uint64_t seed = 42;
	bool unaligned = false;
	double budget = 0, total = 0;
	const char *source = NULL;
	int opt, fd, sfd = -1;
	struct stat st;

	if (argc > 1 && strcmp(argv[1], "-w") == 0)
		return wait_stat(argc, argv);
	if (argc > 1 && strcmp(argv[1], "-O") == 0)
		return open_close(argc, argv);
	if (argc == 2 && strcmp(argv[1], "-R") == 0)
		return read_all();
	if (argc == 2 && strcmp(argv[1], "-S") == 0)
		return stat_all();
	while ((opt = getopt(argc, argv, "n:s:b:ut:c:")) != -1) {
		switch (opt) {
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'b': bytes = strtoull(optarg, NULL, 10); break;
		case 'u': unaligned = true; break;
		case 't': budget = atof(optarg); break;
		case 'c': source = optarg; break;
		default:
			fprintf(stderr, "usage: randmnt [-n COUNT] [-s SEED] [-b BYTES] [-u] "
					"[-t BUDGET_S] [-c SOURCE] FILE\n"
					"       randmnt -O COUNT FILE | -w TIMEOUT_S PATH CMD... "
					"| -R | -S\n");
			return 2;
		}
	}
	if (optind + 1 != argc || count == 0 || bytes == 0) {
		fprintf(stderr, "randmnt: name one FILE\n");
		return 2;
	}
	if ((fd = open(argv[optind], O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		die("cannot open '%s'", argv[optind]);
	if (source && (sfd = open(source, O_RDONLY | O_CLOEXEC)) < 0)
		die("cannot open '%s'", source);
	if ((uint64_t)st.st_size < bytes) {
		fprintf(stderr, "randmnt: '%s' is smaller than %zu bytes\n", argv[optind], bytes);
		return 2;
	}

	uint64_t span = (uint64_t)st.st_size - bytes + 1;
	double *us = malloc(count * sizeof(*us));
	char *buf = malloc(bytes), *ref = malloc(bytes);
	if (!us || !buf || !ref)
		die("out of memory%s", "");
	rng_state = seed;
	double start = now_s();
	for (size_t i = 0; i < count; i++) {
		uint64_t off = rng_next() % span;
		if (!unaligned)
			off -= off % bytes;
		double t0 = now_s();
		ssize_t n = pread(fd, buf, bytes, (off_t)off);
		double t1 = now_s();
		if (n != (ssize_t)bytes) {
			fprintf(stderr, "randmnt: read of %zu bytes at %" PRIu64 " gave %zd: %s\n",
				bytes, off, n, n < 0 ? strerror(errno) : "short");
			return 1;
		}
		us[done++] = (t1 - t0) * 1e6;
		total += (t1 - t0) * 1e6;
		if (sfd >= 0 && (pread(sfd, ref, bytes, (off_t)off) != (ssize_t)bytes ||
				 memcmp(buf, ref, bytes) != 0)) {
			fprintf(stderr, "randmnt: wrong bytes at %" PRIu64 "\n", off);
			return 1;
		}
		if (budget > 0 && t1 - start > budget)
			break;
	}
	qsort(us, done, sizeof(*us), cmp_double);
	printf("reads=%zu bytes=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f "
	       "wall_s=%.3f budget_hit=%d%s\n", done, bytes, pct(us, done, 50), pct(us, done, 90),
	       pct(us, done, 99), us[done - 1], total / (double)done, now_s() - start,
	       done < count, sfd >= 0 ? " verified" : "");
	return 0;
}

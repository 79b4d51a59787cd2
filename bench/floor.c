/*
 * floor: what a FUSE daemon that does no work costs on this machine, for
 * bench/floor.sh (bench/mount-results.md, "The floor").
 *
 *	floor [-o plus] [-o spin=US] [-f] SOURCE MOUNTPOINT
 *
 * Before mounting, reads the names and attributes of everything under directory
 * SOURCE into memory. Then mounts it read-only at MOUNTPOINT through libfuse3's
 * low-level API, multithreaded, as snapfs is mounted, and answers every lookup,
 * attribute and listing from memory: no index to load, no decompression. A READ
 * is one pread() of the source file into the thread's buffer, replied from
 * there. The kernel may cache everything for a day and keep file pages across
 * opens (keep_cache), as snapfs lets it; READs are up to 1 MiB.
 *
 * Listings: plain READDIR (names only, as squashfuse_ll answers) unless -o plus,
 * when every listing carries attributes (READDIRPLUS), as snapfs's do: the
 * kernel then makes an inode for every name listed.
 *
 * -o spin=US: one thread instead of libfuse's pool, which after each request
 * keeps asking /dev/fuse for the next (non-blocking) for US microseconds
 * before it sleeps in poll(): a request that comes meanwhile wakes no thread.
 * What that leaves of a round trip is the caller's own wakeup.
 *
 * A benchmark tool, not a file system: hard links are not told apart, "." and
 * ".." are not listed, and nothing is checked for a SOURCE that changes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define FUSE_USE_VERSION 34
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT 86400.0
#define READ_MAX (1u << 20)

struct node {
	char *path;		/* from SOURCE: "." for the root */
	const char *name;	/* in path */
	struct stat st;
	uint32_t first, n;	/* children, sorted by name: nodes[first..first+n) */
};

static struct node *nodes;
static uint32_t count, cap;
static int source = -1;		/* SOURCE, O_PATH */
static bool plus;
static long spin_us = -1;	/* -o spin=US; -1: libfuse's pool of threads */
static pthread_key_t read_buf;	/* each thread's READ buffer, freed when the thread ends */

static struct node *node_of(fuse_ino_t ino)
{
	return ino >= 1 && ino <= count ? &nodes[ino - 1] : NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->name, ((const struct node *)b)->name);
}

static int add(const char *path, size_t dirlen)
{
	struct node *n;

	if (count == cap) {
		uint32_t want = cap ? cap * 2 : 4096;
		struct node *v = realloc(nodes, want * sizeof(*v));
		if (!v)
			return -1;
		nodes = v;
		cap = want;
	}
	n = &nodes[count];
	memset(n, 0, sizeof(*n));
	if (!(n->path = strdup(path)))
		return -1;
	n->name = n->path + dirlen;
	if (fstatat(source, path, &n->st, AT_SYMLINK_NOFOLLOW) < 0) {
		fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
		free(n->path);
		return -1;
	}
	n->st.st_ino = ++count;
	return 0;
}

/* Everything under SOURCE into nodes[], breadth first: each directory's children together. */
static int scan(void)
{
	if (add(".", 0) < 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (!S_ISDIR(nodes[i].st.st_mode))
			continue;
		int fd = openat(source, nodes[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd < 0 ? NULL : fdopendir(fd);
		struct dirent *de;
		char *path;

		if (!d) {
			fprintf(stderr, "floor: %s: %s\n", nodes[i].path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		nodes[i].first = count;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			size_t dirlen = strlen(nodes[i].path) + 1;
			int rc = asprintf(&path, "%s/%s", nodes[i].path, de->d_name) < 0 ? -1 : 0;
			if (rc == 0) {
				rc = add(path, dirlen);
				free(path);
			}
			if (rc < 0) {
				closedir(d);
				return -1;
			}
		}
		closedir(d);
		nodes[i].n = count - nodes[i].first;
		qsort(nodes + nodes[i].first, nodes[i].n, sizeof(*nodes), by_name);
		for (uint32_t k = nodes[i].first; k < count; k++)
			nodes[k].st.st_ino = k + 1;
	}
	return 0;
}

static void fill_entry(struct fuse_entry_param *e, const struct node *n)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->st.st_ino;
	e->attr = n->st;
	e->attr_timeout = e->entry_timeout = TIMEOUT;
}

static void op_init(void *u, struct fuse_conn_info *c)
{
	(void)u;
	c->max_readahead = READ_MAX;
	c->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (!plus)
		c->want &= ~FUSE_CAP_READDIRPLUS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *d = node_of(parent), key = { .name = name };
	struct node *n = d ? bsearch(&key, nodes + d->first, d->n, sizeof(*nodes), by_name) : NULL;
	struct fuse_entry_param e;

	if (!n)
		return (void)fuse_reply_err(req, ENOENT);
	fill_entry(&e, n);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);

	(void)fi;
	if (!n)
		return (void)fuse_reply_err(req, ENOENT);
	fuse_reply_attr(req, &n->st, TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	struct node *n = node_of(ino);
	ssize_t len = n ? readlinkat(source, n->path, buf, sizeof(buf) - 1) : -1;

	if (len < 0)
		return (void)fuse_reply_err(req, n ? errno : ENOENT);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EROFS);
	if (!n || (fd = openat(source, n->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return (void)fuse_reply_err(req, n ? errno : ENOENT);
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = pthread_getspecific(read_buf);
	ssize_t n;

	(void)ino;
	if (!buf && (!(buf = malloc(READ_MAX)) || pthread_setspecific(read_buf, buf) != 0)) {
		free(buf);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	if (size > READ_MAX)
		size = READ_MAX;
	if ((n = pread((int)fi->fh, buf, size, off)) < 0)
		return (void)fuse_reply_err(req, errno);
	fuse_reply_buf(req, buf, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_of(ino);

	if (!n || !S_ISDIR(n->st.st_mode))
		return (void)fuse_reply_err(req, n ? ENOTDIR : ENOENT);
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

/* Position k is child k of the directory ("." and ".." are not listed). */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool with_attrs)
{
	struct node *d = node_of(ino);
	char *buf = malloc(size), *p = buf;
	size_t left = size;

	if (!d || !buf) {
		free(buf);
		return (void)fuse_reply_err(req, d ? ENOMEM : ENOENT);
	}
	for (uint32_t k = (uint32_t)off; k < d->n; k++) {
		const struct node *c = &nodes[d->first + k];
		struct fuse_entry_param e;
		size_t len;

		if (with_attrs) {
			fill_entry(&e, c);
			len = fuse_add_direntry_plus(req, p, left, c->name, &e, k + 1);
		} else {
			len = fuse_add_direntry(req, p, left, c->name, &c->st, k + 1);
		}
		if (len > left)
			break;
		p += len;
		left -= len;
	}
	fuse_reply_buf(req, buf, size - left);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* -o spin=US: one thread; polls the device for spin_us after each request, then sleeps. */
static int spin_loop(struct fuse_session *se)
{
	struct fuse_buf buf = { 0 };
	int fd = fuse_session_fd(se), rc = 0;
	uint64_t last = 0, window = (uint64_t)spin_us * 1000;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return 1;
	while (!fuse_session_exited(se)) {
		int r = fuse_session_receive_buf(se, &buf);
		if (r == -EAGAIN) {
			if (now_ns() - last >= window) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				poll(&p, 1, -1);
			}
			continue;
		}
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0;
			break;
		}
		fuse_session_process_buf(se, &buf);
		last = now_ns();
	}
	free(buf.mem);
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts o;
	struct fuse_session *se;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "-o") == 0 &&
		    strcmp(argv[i + 1], "plus") == 0) {
			plus = true;
			i++;
			continue;
		}
		if (i + 1 < argc && strcmp(argv[i], "-o") == 0 &&
		    strncmp(argv[i + 1], "spin=", 5) == 0) {
			spin_us = atol(argv[i + 1] + 5);
			i++;
			continue;
		}
		fuse_opt_add_arg(&args, argv[i]);
	}
	/* SOURCE is the first argument that is not an option; the mount point follows */
	for (int i = 1; i < args.argc; i++) {
		if (args.argv[i][0] == '-') {
			i += strcmp(args.argv[i], "-o") == 0;
			continue;
		}
		if ((source = open(args.argv[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "floor: %s: %s\n", args.argv[i], strerror(errno));
			return 1;
		}
		free(args.argv[i]);
		memmove(args.argv + i, args.argv + i + 1, (size_t)(args.argc - i) * sizeof(char *));
		args.argc--;
		break;
	}
	if (source < 0) {
		fprintf(stderr, "usage: floor [-o plus] [-o spin=US] [-f] SOURCE MOUNTPOINT\n");
		return 2;
	}
	fuse_opt_add_arg(&args, "-oro,default_permissions,fsname=floor,subtype=floor");
	if (fuse_parse_cmdline(&args, &o) != 0 || !o.mountpoint) {
		fprintf(stderr, "usage: floor [-o plus] [-o spin=US] [-f] SOURCE MOUNTPOINT\n");
		return 2;
	}
	if (pthread_key_create(&read_buf, free) != 0 || scan() < 0)
		return 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	/* TERM, INT and HUP end the loop, and the mount with it */
	if (se && fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, o.mountpoint) == 0) {
			struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = 10 };
			if (fuse_daemonize(o.foreground) == 0)
				rc = spin_us >= 0 ? spin_loop(se)
						  : fuse_session_loop_mt(se, &cfg) != 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	if (se)
		fuse_session_destroy(se);
	free(o.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}

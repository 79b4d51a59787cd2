#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

/* Frames one read may span without a copy: 1 MiB over frames of 128 KiB, with room. */
#define MAX_PIECES 32

/* One thread's read state: an index reader through the frame cache, and a reply buffer. */
struct ops_reader {
	struct idx_reader *r;
	char *buf;
	size_t cap;
};

static void set_read_ahead(struct ops *o)
{
	FILE *f;

	if (atomic_exchange(&o->ra_done, true) || !*o->ra_path)
		return;
	if (!(f = fopen(o->ra_path, "we"))) {
		log_debug("cannot set %s: %s", o->ra_path, strerror(errno));
		return;
	}
	fprintf(f, "%llu\n", o->ra_kib);
	if (fclose(f) != 0)
		log_debug("cannot set %s: %s", o->ra_path, strerror(errno));
}

static struct ops *ops_of(fuse_req_t req)
{
	struct ops *o = fuse_req_userdata(req);

	if (!atomic_load_explicit(&o->ra_done, memory_order_relaxed))
		set_read_ahead(o);	/* INIT has been answered: every request comes after */
	return o;
}

void ops_init(struct ops *o)
{
	pthread_mutex_init(&o->mu, NULL);
	o->pool = NULL;
	o->npool = o->cappool = 0;
	o->no_open = o->no_opendir = false;
	o->readdirplus_auto = false;
	o->ra_path[0] = '\0';
	o->ra_kib = 0;
	atomic_init(&o->ra_done, false);
	o->se = NULL;
	atomic_init(&o->pushing, false);
	atomic_init(&o->stop, false);
	pthread_mutex_init(&o->pmu, NULL);
	pthread_cond_init(&o->pcv, NULL);
	o->jobs = o->last = NULL;
	o->njobs = 0;
}

/* A frame whose small files to push: the frame stays pinned until they are. */
struct ops_push {
	struct ops_push *next;
	void *pin;
	const unsigned char *base;	/* byte off of the file that was read */
	fuse_ino_t ino;
	off_t off;
};

#define PUSH_MAX_FILES 4096	/* per frame: 1 MiB groups of files from 256 bytes */
#define PUSH_MAX_JOBS 8	/* each holds a frame pinned: at most 8 MiB past the cache */

static void *pusher(void *arg)
{
	struct ops *o = arg;
	struct ops_push *j;
	/* one list for every job, here rather than in each: the workers' arenas stay small */
	struct tree_sib *sib = malloc(PUSH_MAX_FILES * sizeof(*sib));

	for (;;) {
		pthread_mutex_lock(&o->pmu);
		while (!o->jobs && !o->stop)
			pthread_cond_wait(&o->pcv, &o->pmu);
		if ((j = o->jobs)) {
			o->jobs = j->next;
			o->last = o->jobs ? o->last : NULL;
			o->njobs--;
		}
		pthread_mutex_unlock(&o->pmu);
		if (!j)
			break;	/* stopped, nothing left */
		uint32_t flen;
		uint64_t serial;
		const unsigned char *frame = fcache_pinned(j->pin, &flen, &serial);
		/* listed now, from the index the pinned frame was decoded from, or not at all */
		int n = sib ? tree_siblings(o->tree, j->ino, j->off, serial, sib, PUSH_MAX_FILES) : 0;
		for (int k = 0; k < n && !o->stop; k++) {
			struct fuse_bufvec bv = FUSE_BUFVEC_INIT(sib[k].size);
			int64_t at = (int64_t)(j->base - frame) + sib[k].delta;
			if (at < 0 || (uint64_t)at + sib[k].size > flen)
				continue;	/* cannot happen with the right index; never push other bytes */
			bv.buf[0].mem = (void *)(frame + at);
			/* -ENOENT: the kernel has no such inode (never listed, or forgotten) */
			fuse_lowlevel_notify_store(o->se, sib[k].ino, 0, &bv, 0);
		}
		fcache_unpin(o->cache, j->pin);
		free(j);
	}
	free(sib);
	return NULL;
}

void ops_start(struct ops *o, struct fuse_session *se)
{
	sigset_t all, old;

	o->se = se;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);	/* signals are the session's business */
	o->pushing = pthread_create(&o->pusher, NULL, pusher, o) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!o->pushing)
		log_debug("no pushing thread: small files are read one request each");
}

/*
 * The pusher may be waiting in the kernel for a page that a read not yet
 * answered holds locked (a file being read while it is pushed): call this
 * while the session still answers requests, or once the connection is gone.
 */
void ops_stop(struct ops *o)
{
	if (!o->pushing)
		return;
	pthread_mutex_lock(&o->pmu);
	o->stop = true;
	pthread_cond_signal(&o->pcv);
	pthread_mutex_unlock(&o->pmu);
	pthread_join(o->pusher, NULL);
	atomic_init(&o->pushing, false);
	while (o->jobs) {	/* left when stopped in the middle */
		struct ops_push *j = o->jobs;
		o->jobs = j->next;
		fcache_unpin(o->cache, j->pin);
		free(j);
	}
	o->last = NULL;
	o->njobs = 0;
}

/*
 * After a read answered from a frame no read had claimed yet: queue the frame
 * for the pusher, which finds its other small files and takes over the pin.
 * False when it is not queued (the caller unpins).
 */
static bool push_siblings(struct ops *o, fuse_ino_t ino, off_t off, const void *base, void *pin)
{
	struct ops_push *j;
	struct tree_sib one;
	uint32_t flen;
	uint64_t serial;

	if (!o->pushing || !fcache_claim(o->cache, pin))
		return false;
	fcache_pinned(pin, &flen, &serial);
	/* most frames of big files have no small files to push: no job, no wakeup */
	if (tree_siblings(o->tree, ino, off, serial, &one, 1) == 0 || !(j = malloc(sizeof(*j))))
		return false;
	j->ino = ino;
	j->off = off;
	j->pin = pin;
	j->base = base;
	j->next = NULL;
	pthread_mutex_lock(&o->pmu);
	bool queued = o->njobs < PUSH_MAX_JOBS && !o->stop;
	if (queued) {
		if (o->last)
			o->last->next = j;
		else
			o->jobs = j;
		o->last = j;
		o->njobs++;
		pthread_cond_signal(&o->pcv);
	}
	pthread_mutex_unlock(&o->pmu);
	if (!queued)
		free(j);
	return queued;
}

void ops_release(struct ops *o)
{
	for (size_t i = 0; i < o->npool; i++) {
		idx_reader_free(o->pool[i]->r);
		free(o->pool[i]->buf);
		free(o->pool[i]);
	}
	free(o->pool);
	pthread_mutex_destroy(&o->mu);
	pthread_mutex_destroy(&o->pmu);
	pthread_cond_destroy(&o->pcv);
}

static struct ops_reader *reader_take(struct ops *o)
{
	struct ops_reader *rd = NULL;

	pthread_mutex_lock(&o->mu);
	if (o->npool)
		rd = o->pool[--o->npool];
	pthread_mutex_unlock(&o->mu);
	if (rd)
		return rd;
	if (!(rd = calloc(1, sizeof(*rd))) || !(rd->r = idx_reader_new())) {
		free(rd);
		return NULL;
	}
	idx_reader_set_frames(rd->r, fcache_frames(o->cache));
	return rd;
}

static void reader_give(struct ops *o, struct ops_reader *rd)
{
	pthread_mutex_lock(&o->mu);
	if (o->npool == o->cappool) {
		size_t cap = o->cappool ? o->cappool * 2 : 16;
		struct ops_reader **v = realloc(o->pool, cap * sizeof(*v));
		if (v) {
			o->pool = v;
			o->cappool = cap;
		}
	}
	if (o->npool < o->cappool) {
		o->pool[o->npool++] = rd;
		rd = NULL;
	}
	pthread_mutex_unlock(&o->mu);
	if (rd) {
		idx_reader_free(rd->r);
		free(rd->buf);
		free(rd);
	}
}

/* Reply with the error, logging what is not a plain "no such name". */
static void reply_err(fuse_req_t req, const struct err *e)
{
	if (e->code != ENOENT && e->code != ENODATA && e->code != ERANGE)
		log_debug("%s", e->msg);
	fuse_reply_err(req, e->code ? e->code : EIO);
}

static void fill_entry(struct fuse_entry_param *ep, const struct stat *st, double timeout)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = st->st_ino;
	ep->attr = *st;
	ep->attr_timeout = ep->entry_timeout = timeout;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct ops *o = userdata;

	/*
	 * Files and directories need no open: reads go by inode number, and the
	 * kernel then keeps their pages and listings (FOPEN_KEEP_CACHE,
	 * FOPEN_CACHE_DIR) with no OPEN, RELEASE, OPENDIR or RELEASEDIR round trips.
	 */
	o->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	o->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	/*
	 * Every listing carries the attributes (READDIRPLUS, never the kernel's
	 * "auto" downgrade to plain READDIR when nobody stats): `find | xargs cat`,
	 * cp -a, grep -r then open each file with no LOOKUP round trip. The price:
	 * the kernel makes an inode for every name listed, which makes a bare cold
	 * `find` over 20,000 files ~1.6x slower (bench/floor.sh, session 12);
	 * -o readdirplus=auto keeps it.
	 */
	if (!o->readdirplus_auto)
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/*
	 * The kernel enforces the stored POSIX ACLs (system.posix_acl_*, asked for
	 * once an inode) with the mode, whose group bits are then the mask: as a
	 * local file system does. Without it the kernel would check the mode alone
	 * and give the owning group the mask's rights.
	 */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->time_gran = 1;
}

/*
 * Whether the caller is in group gid: its own or a supplementary one, read
 * from /proc: 1, 0, or -1 when they cannot be read.
 */
static int in_group(fuse_req_t req, gid_t gid)
{
	gid_t list[64];
	int n, found = 0;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, list);
	if (n > 64) {
		gid_t *all = malloc((size_t)n * sizeof(*all));
		int m = all ? fuse_req_getgroups(req, n, all) : -1;
		for (int i = 0; i < m && i < n; i++)
			found |= all[i] == gid;
		free(all);
		return m < 0 ? -1 : found;
	}
	for (int i = 0; i < n; i++)
		found |= list[i] == gid;
	return n < 0 ? -1 : found;
}

/*
 * Whether the caller may read and search any directory, as CAP_DAC_OVERRIDE
 * or CAP_DAC_READ_SEARCH in its effective set lets it (read from /proc), in
 * the daemon's user namespace: 1, 0, or -1 when that cannot be read.
 */
static int dac_capable(fuse_req_t req)
{
	unsigned long pid = (unsigned long)fuse_req_ctx(req)->pid;
	char path[64], line[256];
	struct stat mine, its;
	int found = -1;
	FILE *f;

	/* capabilities count in the caller's user namespace: only in the daemon's own are they ours */
	snprintf(path, sizeof(path), "/proc/%lu/ns/user", pid);
	if (stat("/proc/self/ns/user", &mine) < 0 || stat(path, &its) < 0)
		return -1;
	if (mine.st_dev != its.st_dev || mine.st_ino != its.st_ino)
		return 0;
	snprintf(path, sizeof(path), "/proc/%lu/status", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:", 7) == 0) {
			unsigned long long caps = strtoull(line + 7, NULL, 16);
			found = (caps & (1ull << CAP_DAC_OVERRIDE | 1ull << CAP_DAC_READ_SEARCH)) != 0;
		}
	fclose(f);
	return found;
}

/*
 * A snapshot's own directory is shown from its archive file alone until its
 * index opens (tree.c, snaproot_stat()): the kernel may have let the caller in
 * by those attributes. The first lookups and listings inside, which open the
 * index, check what the archive stored for it, as the kernel would have
 * (owner, group, other; then CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH, or
 * root when its capabilities cannot be read); the kernel is
 * told to forget the first attributes before the reply, and checks by the
 * stored ones from then on. Reading user.* xattrs is checked too (which opens
 * the index). mask: 1 search, 4 read; open: the index may be opened.
 */
static bool root_denies(fuse_req_t req, fuse_ino_t ino, unsigned mask, bool open)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct stat st;
	unsigned bits;
	int member;

	if (!tree_ino_is_snaproot(ino) || tree_root_stat(ops_of(req)->tree, ino, open, &st) <= 0)
		return false;
	if (c->uid == st.st_uid)
		bits = (unsigned)st.st_mode >> 6;
	else if ((member = in_group(req, st.st_gid)) == 1)
		bits = (unsigned)st.st_mode >> 3;
	else if (member == 0)
		bits = (unsigned)st.st_mode;
	else	/* groups unknown: only what both group and other may */
		bits = ((unsigned)st.st_mode >> 3) & (unsigned)st.st_mode;
	if ((bits & mask) == mask)
		return false;
	int cap = dac_capable(req);
	return cap < 0 ? c->uid != 0 : !cap;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tree *t = ops_of(req)->tree;
	struct fuse_entry_param ep;
	struct stat st;
	struct err e = { 0 };
	double timeout;

	if (root_denies(req, parent, 1, true))
		return (void)fuse_reply_err(req, EACCES);
	if (tree_lookup(t, parent, name, &st, &timeout, &e) == 0) {
		fill_entry(&ep, &st, timeout);
		if (fuse_reply_entry(req, &ep) != 0)
			tree_forget(t, ep.ino, 1);	/* the kernel never got it */
	} else if (e.code == ENOENT && !(parent == TREE_ROOT_INO || tree_timeout(parent) < 2)) {
		/* inside an archive nothing appears later: the kernel may remember the miss */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = tree_timeout(parent);
		fuse_reply_entry(req, &ep);
	} else {
		reply_err(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tree_forget(ops_of(req)->tree, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *v)
{
	for (size_t i = 0; i < count; i++)
		tree_forget(ops_of(req)->tree, v[i].ino, v[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	struct err e = { 0 };

	(void)fi;
	if (tree_getattr(ops_of(req)->tree, ino, &st, &e) < 0)
		reply_err(req, &e);
	else
		fuse_reply_attr(req, &st, tree_timeout(ino));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	struct err e = { 0 };

	if (tree_readlink(ops_of(req)->tree, ino, buf, sizeof(buf), &e) < 0)
		reply_err(req, &e);
	else
		fuse_reply_readlink(req, buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	struct err e = { 0 };

	if (ops_of(req)->no_opendir)
		return (void)fuse_reply_err(req, ENOSYS);	/* none needed, ever again */
	if (tree_getattr(ops_of(req)->tree, ino, &st, &e) < 0)
		return reply_err(req, &e);
	if (!S_ISDIR(st.st_mode))
		return (void)fuse_reply_err(req, ENOTDIR);
	/* an archive's directories never change; the store's are invalidated when they do */
	fi->cache_readdir = 1;
	fi->keep_cache = tree_timeout(ino) > 2;
	fuse_reply_open(req, fi);
}

/* Inode numbers given to the kernel by readdirplus: runs of one snapshot's. */
struct given {
	uint64_t ino;
	uint64_t n;
};

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	int plus;
	struct given *given;
	size_t ngiven, capgiven;
};

static int give(struct dirbuf *d, uint64_t ino)
{
	if (ino == TREE_ROOT_INO || ino >> 63)
		return 0;	/* the store's own: nothing to count */
	if (d->ngiven && d->given[d->ngiven - 1].ino >> 32 == ino >> 32) {
		d->given[d->ngiven - 1].n++;
		return 0;
	}
	if (d->ngiven == d->capgiven) {
		size_t cap = d->capgiven ? d->capgiven * 2 : 16;
		struct given *v = realloc(d->given, cap * sizeof(*v));
		if (!v)
			return -1;
		d->given = v;
		d->capgiven = cap;
	}
	d->given[d->ngiven].ino = ino;
	d->given[d->ngiven++].n = 1;
	return 0;
}

static int add_dirent(void *ctx, const char *name, const struct stat *st, double timeout,
		      off_t next)
{
	struct dirbuf *d = ctx;
	bool dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
	size_t n;

	if (d->plus) {
		struct fuse_entry_param ep;
		fill_entry(&ep, st, timeout);
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &ep,
					   next);
	} else {
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, st, next);
	}
	if (n > d->size - d->used)
		return 1;
	/* the kernel counts a lookup for each entry given with its attributes, "." and ".." aside */
	if (d->plus && !dot && give(d, st->st_ino) < 0)
		return 1;	/* out of memory: a shorter reply */
	d->used += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct dirbuf d = { req, malloc(size), size, 0, plus, NULL, 0, 0 };
	struct tree *t = ops_of(req)->tree;
	struct err e = { 0 };

	if (!d.buf)
		return (void)fuse_reply_err(req, ENOMEM);
	if (root_denies(req, ino, 4, true)) {
		free(d.buf);
		return (void)fuse_reply_err(req, EACCES);
	}
	if (tree_readdir(t, ino, off, plus, add_dirent, &d, &e) < 0) {
		reply_err(req, &e);
	} else {
		/* the tree counted what was given; a reply that fails gives it back */
		if (fuse_reply_buf(req, d.buf, d.used) != 0)
			for (size_t i = 0; i < d.ngiven; i++)
				tree_forget(t, d.given[i].ino, d.given[i].n);
	}
	free(d.given);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct err e = { 0 };

	/* the mount is read-only, so the kernel refuses writers itself from now on */
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EROFS);
	if (tree_open(ops_of(req)->tree, ino, &e) < 0)
		return reply_err(req, &e);
	if (ops_of(req)->no_open)
		return (void)fuse_reply_err(req, ENOSYS);	/* success; no more OPEN requests */
	fi->fh = 0;		/* reads go by inode number */
	fi->keep_cache = 1;	/* the bytes of an archived file never change */
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ops *o = ops_of(req);
	struct ops_reader *rd = reader_take(o);
	struct err e = { 0 };
	ssize_t n;

	(void)fi;
	if (!rd)
		return (void)fuse_reply_err(req, ENOMEM);
	/* straight from the frame cache when the bytes lie in cached frames as they are */
	const void *base[MAX_PIECES];
	size_t len[MAX_PIECES];
	void *pin[MAX_PIECES];
	int np = tree_read_pieces(o->tree, ino, size, off, rd->r, base, len, pin, MAX_PIECES, &e);
	if (np >= 0) {
		struct iovec iov[MAX_PIECES];
		for (int k = 0; k < np; k++)
			iov[k] = (struct iovec){ (void *)base[k], len[k] };
		if (np)
			fuse_reply_iov(req, iov, np);
		else
			fuse_reply_buf(req, NULL, 0);
		/* the first read of a frame sends its other small files along */
		if (np && push_siblings(o, ino, off, base[0], pin[0]))
			idx_unpin(rd->r, pin + 1, np - 1);
		else
			idx_unpin(rd->r, pin, np);
		reader_give(o, rd);
		return;
	}
	if (e.code != ENOTSUP) {
		reply_err(req, &e);
		reader_give(o, rd);
		return;
	}
	e = (struct err){ 0 };
	if (size > rd->cap) {
		char *b = realloc(rd->buf, size);
		if (!b) {
			reader_give(o, rd);
			return (void)fuse_reply_err(req, ENOMEM);
		}
		rd->buf = b;
		rd->cap = size;
	}
	n = tree_read(o->tree, ino, rd->buf, size, off, rd->r, &e);
	if (n < 0)
		reply_err(req, &e);
	else
		fuse_reply_buf(req, rd->buf, (size_t)n);
	reader_give(o, rd);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct err e = { 0 };
	off_t r;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return (void)fuse_reply_err(req, EINVAL);	/* the kernel does the others */
	r = tree_lseek(ops_of(req)->tree, ino, off, whence, &e);
	if (r < 0)
		reply_err(req, &e);
	else
		fuse_reply_lseek(req, r);
}

/* An xattr answer: the size asked for with size 0, else the bytes; frees buf. */
static void reply_xattr(fuse_req_t req, ssize_t n, char *buf, size_t size, const struct err *e)
{
	if (n < 0)
		reply_err(req, e);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct err e = { 0 };
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	/* as the kernel: reading user.* asks for read permission, other names none */
	if (strncmp(name, "user.", 5) == 0 && root_denies(req, ino, 4, true)) {
		free(buf);
		return (void)fuse_reply_err(req, EACCES);
	}
	n = tree_getxattr(ops_of(req)->tree, ino, name, buf, size, &e);
	reply_xattr(req, n, buf, size, &e);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct err e = { 0 };
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf)
		return (void)fuse_reply_err(req, ENOMEM);
	/* uid 0 stands for CAP_SYS_ADMIN, which the kernel checks before reading one */
	n = tree_listxattr(ops_of(req)->tree, ino, buf, size, fuse_req_ctx(req)->uid == 0, &e);
	reply_xattr(req, n, buf, size, &e);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(ops_of(req)->store, &sv) < 0)
		return (void)fuse_reply_err(req, errno);
	sv.f_flag |= ST_RDONLY;
	sv.f_namemax = NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* Every write fails: the mount is read-only whatever the kernel was told. */
static void erofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)a, (void)set, (void)fi;
	erofs(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d)
{
	(void)p, (void)n, (void)m, (void)d;
	erofs(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{
	(void)p, (void)n, (void)m;
	erofs(req);
}

static void op_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{
	(void)p, (void)n;
	erofs(req);
}

static void op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{
	(void)l, (void)p, (void)n;
	erofs(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
		      unsigned flags)
{
	(void)p, (void)n, (void)np, (void)nn, (void)flags;
	erofs(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t np, const char *nn)
{
	(void)ino, (void)np, (void)nn;
	erofs(req);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *b, size_t s, off_t o,
		     struct fuse_file_info *fi)
{
	(void)ino, (void)b, (void)s, (void)o, (void)fi;
	erofs(req);
}

static void op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m,
		      struct fuse_file_info *fi)
{
	(void)p, (void)n, (void)m, (void)fi;
	erofs(req);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *n, const char *v, size_t s,
			int f)
{
	(void)ino, (void)n, (void)v, (void)s, (void)f;
	erofs(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *n)
{
	(void)ino, (void)n;
	erofs(req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t o, off_t l,
			 struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)o, (void)l, (void)fi;
	erofs(req);
}

static const struct fuse_lowlevel_ops table = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.open = op_open,
	.read = op_read,
	.lseek = op_lseek,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};

const struct fuse_lowlevel_ops *ops_table(void)
{
	return &table;
}

#include "foreign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arlib.h"
#include "decode.h"
#include "fdio.h"
#ifdef SNAPFS_HAVE_ZLIB
#include "gzseek.h"
#endif

struct spilled {
	uint32_t seq;
	uint64_t off;		/* in the spill file */
	uint64_t size;
};

struct frn {
	int fd;
	locale_t names;		/* arlib_names_locale() */
	bool bare_tar, gzip_tar;	/* frn_opts */
	char *path;
	char *spill_dir;
	uint64_t spill_max;
	pthread_mutex_t mu;

	struct archive *a;	/* positioned reader, or NULL */
	struct dec *dec;	/* the decoder a reads through, as the scan did; NULL: libarchive's */
	int64_t cur_seq;	/* member whose header was read last; -1 before the first */
	uint64_t cur_off;	/* bytes of its data passed (holes included) */
	/* the rest of the block stream_member() read last, at blk_at in the member */
	const unsigned char *blk;
	size_t blk_len;
	uint64_t blk_at;
	bool blk_end;		/* the member's blocks are all read */
	bool stream;		/* a decodes the members it passes: a compressed stream, a 7z */
	uint32_t back_starts;	/* readers started over for a member behind, since drop_state() */
	uint64_t passed_now;	/* bytes this read spilled in passing */
	uint32_t starts;

	int spill_fd;		/* -1 until first used */
	uint64_t spill_used;
	struct spilled *sp;
	size_t nsp, capsp;

	/* the archive's files in archive order (frn_opts), and where each is spilled */
	uint32_t nfiles;
	void (*file)(void *ctx, uint32_t k, struct frn_member *out);
	void *ctx;
	uint32_t *slot;		/* file k's struct spilled, if sp[slot[k]] is still its; NULL until a spill */
	int64_t last_seq;	/* the member read last; -1 before the first */
	int64_t unspilled;	/* the member the spill file failed last (read in place since) */
	bool scattered;		/* a read came before the one read last: spill what reads pass */
	bool spill_broke;	/* the spill file failed this read (spill_failed()) */
	bool spilled_now;	/* this read spilled a member: the spill file may not start over */
	bool no_passing;	/* a passed member failed to decode, which skipping it did not */

#ifdef SNAPFS_HAVE_ZLIB
	struct gzs *gz;		/* a gzip tar's decoded stream; NULL until the first read */
#endif

	/* live_*: the archives holding decoding state, the one read last first */
	struct frn *lprev, *lnext;
	bool live;
	uint64_t used_ms;	/* when it was read last */
};

/*
 * Each foreign archive holds, once read: a positioned reader (an xz decoder's
 * dictionary is 8 MiB at xz's default level, 64 MiB at -9; bzip2's 3.6 MiB),
 * a gzip tar's checkpoints (4.5 MiB at most, gzseek.h) and a spill file (up
 * to spill_max on disk). The daemon keeps up to max_open archives open, so
 * reading a file from each of many snapshots (`grep -r` over the mount, a
 * script that checks every backup) would hold all of that for each. Past
 * live_max archives holding it, the least recently read one that has been
 * idle for live_idle_ms gives it up at the next read of another; its own
 * next read starts decoding again. Archives read within that time keep it:
 * two snapshots read by turns (`diff -r`) or several copied at once do not
 * take each other's decoders away, and the bound holds again once they rest.
 */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct frn *live_head, *live_tail;
static unsigned live_n, live_max = FRN_DEFAULT_LIVE, live_idle_ms = FRN_DEFAULT_IDLE_MS;

int frn_new(int fd, const char *path, const struct frn_opts *o, struct frn **out, struct err *e)
{
	struct frn *f;
	const char *dir = o && o->spill_dir ? o->spill_dir : getenv("TMPDIR");

	if (arlib_load(e) < 0)
		return -1;
	if (!(f = calloc(1, sizeof(*f))))
		return err_set(e, ENOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	f->spill_fd = -1;
	if (!(f->path = strdup(path)) || !(f->spill_dir = strdup(dir ? dir : "/var/tmp"))) {
		frn_free(f);
		return err_set(e, ENOMEM, "out of memory");
	}
	f->fd = fd;
	f->names = arlib_names_locale(fd);
	f->bare_tar = o && o->bare_tar;
	f->gzip_tar = o && o->gzip_tar;
	f->spill_max = o && o->spill_max ? o->spill_max : FRN_DEFAULT_SPILL_MAX;
	f->cur_seq = -1;
	f->last_seq = -1;
	f->unspilled = -1;
	if (o && o->file) {
		f->nfiles = o->nfiles;
		f->file = o->file;
		f->ctx = o->ctx;
	}
	*out = f;
	return 0;
}

static void close_reader(struct frn *f)
{
	if (f->a)
		AR(archive_read_free)(f->a);
	f->a = NULL;
	dec_close(f->dec);
	f->dec = NULL;
	f->cur_seq = -1;
	f->cur_off = 0;
	f->blk_len = 0;
	f->blk_end = false;
}

/*
 * Give up the reader, the gzip decoder's place and the spill file: the next
 * read starts again. A gzip tar keeps its chunk CRCs (gzs_trim()), the check
 * that bytes decoded again are those first decoded, which nothing else in a
 * single-member gzip file gives before its end.
 */
static void drop_state(struct frn *f)
{
	close_reader(f);
	if (f->spill_fd >= 0)
		close(f->spill_fd);
	f->spill_fd = -1;
	f->spill_used = 0;
	free(f->sp);
	f->sp = NULL;
	f->nsp = f->capsp = 0;
	free(f->slot);
	f->slot = NULL;
	f->unspilled = -1;
	f->back_starts = 0;
#ifdef SNAPFS_HAVE_ZLIB
	if (f->gz)
		gzs_trim(f->gz);
#endif
}

static void live_unlink(struct frn *f)
{
	if (f->lprev)
		f->lprev->lnext = f->lnext;
	else
		live_head = f->lnext;
	if (f->lnext)
		f->lnext->lprev = f->lprev;
	else
		live_tail = f->lprev;
	f->lprev = f->lnext = NULL;
	f->live = false;
	live_n--;
}

/*
 * f (locked by the caller) is read now: first among the live archives, and
 * the idle ones past the bound give up their state. An archive another thread
 * holds is passed over (trylock: no lock order to keep).
 */
static void live_touch(struct frn *f)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	pthread_mutex_lock(&live_mu);
	if (f->live)
		live_unlink(f);
	f->lprev = NULL;
	f->lnext = live_head;
	if (live_head)
		live_head->lprev = f;
	live_head = f;
	if (!live_tail)
		live_tail = f;
	f->live = true;
	f->used_ms = now;
	live_n++;
	for (struct frn *v = live_tail; live_max && live_n > live_max && v != f;) {
		if (v->used_ms + live_idle_ms > now)
			break;	/* the ones before it were read later still (or since now was read) */
		if (pthread_mutex_trylock(&v->mu) != 0) {
			v = v->lprev;
			continue;
		}
		live_unlink(v);
		pthread_mutex_unlock(&live_mu);
		drop_state(v);
		pthread_mutex_unlock(&v->mu);
		pthread_mutex_lock(&live_mu);
		v = live_tail;	/* the list may have changed meanwhile */
	}
	pthread_mutex_unlock(&live_mu);
}

void frn_limit(unsigned max_live, unsigned idle_ms)
{
	pthread_mutex_lock(&live_mu);
	live_max = max_live;
	live_idle_ms = idle_ms;
	pthread_mutex_unlock(&live_mu);
}

unsigned frn_live(void)
{
	unsigned n;

	pthread_mutex_lock(&live_mu);
	n = live_n;
	pthread_mutex_unlock(&live_mu);
	return n;
}

void frn_free(struct frn *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&live_mu);
	if (f->live)
		live_unlink(f);
	pthread_mutex_unlock(&live_mu);
	pthread_mutex_lock(&f->mu);	/* a live_touch() dropping its state has finished */
	drop_state(f);
	pthread_mutex_unlock(&f->mu);
#ifdef SNAPFS_HAVE_ZLIB
	gzs_free(f->gz);
#endif
	pthread_mutex_destroy(&f->mu);
	free(f->spill_dir);
	free(f->path);
	free(f);
}

static int damaged(struct frn *f, const char *what, struct err *e)
{
	const char *why = f->a ? AR(archive_error_string)(f->a) : NULL;
	const struct err *de = dec_error(f->dec);

	if (de)	/* a check failed or the stream broke, and where (or memory ran out) */
		return err_set(e, de->code, "%s%s", de->msg,
			       de->code == EIO ? "; run 'snapkeep verify' on it" : "");
	return err_set(e, EIO, "'%s' is damaged: %s at byte %lld: %s; run 'snapkeep verify' on it",
		       f->path, what, f->a ? (long long)AR(archive_filter_bytes)(f->a, -1) : 0LL,
		       why ? why : "ends early");
}

/*
 * The spill file could not be made, written or read (a full disk, a spill_dir
 * gone): frn_pread() reads the member as a big one is read instead.
 */
static int spill_failed(struct frn *f, const char *what, struct err *e)
{
	int code = errno ? errno : ENOSPC;

	f->spill_broke = true;
	return err_set(e, code, "cannot %s the spill file in '%s': %s; free space there, or "
		       "give another with -o spill_dir", what, f->spill_dir,
		       errno ? strerror(errno) : "it ends short (is the disk full?)");
}

static int spill_open(struct frn *f, struct err *e)
{
	char path[PATH_MAX];

	if (f->spill_fd >= 0)
		return 0;
	f->spill_fd = open(f->spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f->spill_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/.snapfs-spill-XXXXXX", f->spill_dir);
	f->spill_fd = mkostemp(path, O_CLOEXEC);
	if (f->spill_fd < 0)
		return spill_failed(f, "create", e);
	unlink(path);
	return 0;
}

/*
 * The first of the files (frn_opts) whose seq, or data offset (by_off), is v
 * or more: both grow with the file's place (a plain member's data follows the
 * members before it).
 */
static uint32_t file_from(const struct frn *f, uint64_t v, bool by_off)
{
	uint32_t lo = 0, hi = f->nfiles;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct frn_member m;
		f->file(f->ctx, mid, &m);
		if ((by_off ? m.data_off : m.seq) < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The place of member seq among the files, or UINT32_MAX. */
static uint32_t file_of(const struct frn *f, uint32_t seq)
{
	uint32_t k = file_from(f, seq, false);
	struct frn_member m;

	if (k == f->nfiles)
		return UINT32_MAX;
	f->file(f->ctx, k, &m);
	return m.seq == seq ? k : UINT32_MAX;
}

/* File k's spill, which holds member seq, or NULL. */
static const struct spilled *spilled_file(const struct frn *f, uint32_t k, uint32_t seq)
{
	uint32_t s = f->slot ? f->slot[k] : UINT32_MAX;

	return s < f->nsp && f->sp[s].seq == seq ? &f->sp[s] : NULL;
}

static const struct spilled *find_spilled(const struct frn *f, uint32_t seq)
{
	uint32_t k = f->nfiles ? file_of(f, seq) : UINT32_MAX;

	if (k != UINT32_MAX)
		return spilled_file(f, k, seq);
	for (size_t i = 0; i < f->nsp; i++)
		if (f->sp[i].seq == seq)
			return &f->sp[i];
	return NULL;
}

/* Room for size more bytes: when the bound is reached, the spill file starts over. */
static int spill_reserve(struct frn *f, uint64_t size, struct err *e)
{
	if (f->spill_used + size > f->spill_max) {
		if (ftruncate(f->spill_fd, 0) < 0)
			return spill_failed(f, "reset", e);
		f->spill_used = 0;
		f->nsp = 0;
	}
	if (f->nsp == f->capsp) {
		size_t cap = f->capsp ? f->capsp * 2 : 64;
		struct spilled *v = realloc(f->sp, cap * sizeof(*v));
		if (!v)
			return err_set(e, ENOMEM, "out of memory");
		f->sp = v;
		f->capsp = cap;
	}
	if (f->nfiles && !f->slot) {
		if (!(f->slot = malloc((size_t)f->nfiles * sizeof(*f->slot))))
			return err_set(e, ENOMEM, "out of memory");
		memset(f->slot, 0xff, (size_t)f->nfiles * sizeof(*f->slot));
	}
	return 0;
}

/*
 * Whether a member of size bytes that a read passes is spilled: it is small,
 * and reads came out of order. Passed members fill three quarters of the
 * bound at most, leaving room for the member the read asked for (a quarter at
 * most). When that is full, the first member a read spills starts the spill
 * file over: what earlier reads spilled goes (the big members a `cp -a` read
 * once, say), never what this read spilled.
 */
static bool spill_passed(struct frn *f, uint64_t size)
{
	if (!f->scattered || !size || size > f->spill_max / 4)
		return false;
	if (f->spill_used + size <= f->spill_max - f->spill_max / 4)
		return true;
	if (f->spilled_now || f->spill_fd < 0 || ftruncate(f->spill_fd, 0) < 0)
		return false;
	f->spill_used = 0;
	f->nsp = 0;
	return true;
}

/* A new spill of member m at the end of the spill file, not yet counted. */
static struct spilled *spill_add(struct frn *f, const struct frn_member *m, struct err *e)
{
	struct spilled *s;

	if (spill_open(f, e) < 0 || spill_reserve(f, m->size, e) < 0)
		return NULL;
	s = &f->sp[f->nsp];
	s->seq = m->seq;
	s->off = f->spill_used;
	s->size = m->size;
	if (ftruncate(f->spill_fd, (off_t)(s->off + m->size)) < 0) {
		spill_failed(f, "grow", e);
		return NULL;
	}
	return s;
}

/* Count the spill spill_add() made, of file k (UINT32_MAX: none). */
static const struct spilled *spill_done(struct frn *f, uint32_t k)
{
	struct spilled *s = &f->sp[f->nsp];

	if (f->slot && k == UINT32_MAX && f->nfiles)
		k = file_of(f, s->seq);
	if (f->slot && k != UINT32_MAX)
		f->slot[k] = (uint32_t)f->nsp;
	f->spill_used += s->size;
	f->nsp++;
	f->spilled_now = true;
	return s;
}

/*
 * Take back a spill that failed: the file ends where the counted spills do
 * again (a member's holes must find no bytes of it); failing that, it starts over.
 */
static void spill_undo(struct frn *f)
{
	if (f->spill_fd >= 0 && ftruncate(f->spill_fd, (off_t)f->spill_used) < 0) {
		close(f->spill_fd);
		f->spill_fd = -1;
		f->spill_used = 0;
		f->nsp = 0;
	}
}

/*
 * Decode the data of the member the reader stands at into the spill at s.
 * Holes stay holes. -1: e says why; the reader is closed if its data failed.
 */
static int spill_blocks(struct frn *f, const struct spilled *s, struct err *e)
{
	const void *buf;
	size_t len;
	la_int64_t at;
	int r;

	f->cur_off = UINT64_MAX;	/* consumed from here on, spilled or not: a read restarts */
	while ((r = AR(archive_read_data_block)(f->a, &buf, &len, &at)) == ARCHIVE_OK) {
		if ((uint64_t)at + len > s->size)
			len = at < 0 || (uint64_t)at >= s->size ? 0 : (size_t)(s->size - (uint64_t)at);
		errno = 0;
		if (len && pwrite(f->spill_fd, buf, len, (off_t)(s->off + (uint64_t)at)) != (ssize_t)len)
			return spill_failed(f, "write", e);
	}
	if (r != ARCHIVE_EOF) {
		damaged(f, "a member's data", e);
		close_reader(f);
		return -1;
	}
	return 0;
}

/*
 * The reader has just read the header of a member a read passes: spill it if
 * it is a file to spill. -1 only when the reader failed (and closed); a spill
 * that cannot be written is taken back, and the read goes on.
 */
static int spill_header(struct frn *f, struct err *e)
{
	struct frn_member m;
	struct spilled *s;
	struct err se;
	uint32_t k = file_of(f, (uint32_t)f->cur_seq);

	if (k == UINT32_MAX)
		return 0;
	f->file(f->ctx, k, &m);
	if (spilled_file(f, k, m.seq) || (!f->stream && f->passed_now + m.size > FRN_SEEK_PASS) ||
	    !spill_passed(f, m.size))
		return 0;
	if (!(s = spill_add(f, &m, &se)) || spill_blocks(f, s, &se) < 0) {
		spill_undo(f);
		if (!f->a) {
			if (e)
				*e = se;
			return -1;
		}
		return 0;
	}
	spill_done(f, k);
	f->passed_now += m.size;
	return 0;
}

/* Put the reader at the start of member seq's data. */
static int seek_member(struct frn *f, uint32_t seq, struct err *e)
{
	struct archive_entry *entry;
	int r;

	if (f->a && (f->cur_seq > (int64_t)seq || (f->cur_seq == (int64_t)seq && f->cur_off))) {
		close_reader(f);
		f->back_starts++;
	}
	if (!f->a) {
		f->a = AR(archive_read_new)();
		if (!f->a)
			return err_set(e, ENOMEM, "out of memory");
		f->starts++;
		AR(archive_read_support_filter_all)(f->a);
		AR(archive_read_support_format_all)(f->a);
		/*
		 * Through the decoder the scan read it with (index.c), so that reads
		 * see the stream the scan vouched for, and stop where it stopped.
		 */
		struct stat st;
		if (lseek(f->fd, 0, SEEK_SET) < 0 || fstat(f->fd, &st) < 0) {
			err_set(e, errno, "cannot read '%s': %s", f->path, strerror(errno));
			close_reader(f);
			return -1;
		}
		if (dec_open_stream(f->fd, f->path, (uint64_t)st.st_size, NULL, &f->dec, e) < 0) {
			close_reader(f);
			return -1;
		}
		if ((f->dec ? dec_attach(f->dec, f->a) : AR(archive_read_open_fd)(f->a, f->fd, 65536)) !=
		    ARCHIVE_OK) {
			if (dec_error(f->dec))
				damaged(f, "its start", e);
			else
				err_set(e, EIO, "cannot read '%s': %s", f->path,
					AR(archive_error_string)(f->a));
			close_reader(f);
			return -1;
		}
		f->stream = f->dec || AR(archive_filter_count)(f->a) > 1;
	}
	while (f->cur_seq < (int64_t)seq) {
		locale_t before = arlib_names_enter(f->names);
		r = AR(archive_read_next_header)(f->a, &entry);
		arlib_names_leave(before);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			damaged(f, "a member is missing", e);
			close_reader(f);
			return -1;
		}
		f->cur_seq++;
		f->cur_off = 0;
		f->blk_len = 0;
		f->blk_end = false;
		if ((AR(archive_format)(f->a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_7ZIP)
			f->stream = true;	/* a solid block is one stream */
		/*
		 * Passed members are spilled once reads come out of order. A
		 * compressed stream or a 7z decodes them to pass them anyway. A
		 * zip, a cpio or an iso seeks over them, cheaply, so they are
		 * spilled only once the reader started over FRN_SEEK_STARTS times
		 * for a member behind it, and FRN_SEEK_PASS bytes of them a read
		 * at most: a few reads here and there seek, and one far forward
		 * decodes little more than its own member, while a cp -a, each of
		 * whose reads would start over and seek over every member before
		 * its own (n^2 / 2 headers for n files: minutes for 20,000 files
		 * in a zip), decodes the small ones about once. A bare tar reads
		 * its plain members in place and spills none. A member that cannot
		 * be decoded (damaged, encrypted) must not fail the read of
		 * another: should one fail, none are spilled in passing from then
		 * on, and the read starts over.
		 */
		if (f->cur_seq < (int64_t)seq && f->scattered && !f->bare_tar && !f->no_passing &&
		    (f->stream || f->back_starts >= FRN_SEEK_STARTS) && f->nfiles &&
		    spill_header(f, e) < 0) {
			f->no_passing = true;
			return seek_member(f, seq, e);
		}
	}
	return 0;
}

#ifdef SNAPFS_HAVE_ZLIB
/* Copy a plain member of a gzip tar from the decoded stream into the spill at s. */
static int spill_from_gz(struct frn *f, const struct frn_member *m, const struct spilled *s,
			 struct err *e)
{
	unsigned char buf[65536];

	for (uint64_t at = 0; at < m->size;) {
		size_t n = m->size - at < sizeof(buf) ? (size_t)(m->size - at) : sizeof(buf);
		if (gzs_read(f->gz, m->data_off + at, buf, n, e) < 0)
			return -1;
		errno = 0;
		if (pwrite(f->spill_fd, buf, n, (off_t)(s->off + at)) != (ssize_t)n)
			return spill_failed(f, "write", e);
		at += n;
	}
	return 0;
}

/*
 * Spill the plain members of a gzip tar from file k on whose data ends by end,
 * stopping at the first that starts at end or later. A spill that fails is
 * taken back and stops the run: the read that asked reports damage it meets.
 */
static void spill_run_gz(struct frn *f, uint32_t k, uint64_t end)
{
	for (; k < f->nfiles; k++) {
		struct frn_member p;
		struct spilled *s;
		struct err e;
		f->file(f->ctx, k, &p);
		if (p.data_off >= end)
			break;
		if (!p.plain || p.size > end - p.data_off || spilled_file(f, k, p.seq) ||
		    !spill_passed(f, p.size))
			continue;
		if (!(s = spill_add(f, &p, &e)) || spill_from_gz(f, &p, s, &e) < 0) {
			spill_undo(f);
			break;
		}
		spill_done(f, k);
	}
}
#endif

/* Decode member m whole into the spill file, and what the read passes with it. */
static const struct spilled *spill_member(struct frn *f, const struct frn_member *m,
					  struct err *e)
{
	struct spilled *s;

#ifdef SNAPFS_HAVE_ZLIB
	if (f->gz && m->plain) {
		/*
		 * Reads out of order: the members decoded on the way to m, and those
		 * after it up to about the next checkpoint, which the next read there
		 * would decode again (gzseek.h). So each span decodes about once.
		 */
		bool around = f->scattered && f->nfiles;
		uint64_t from = around ? gzs_from(f->gz, m->data_off) : 0;
		struct gzs_stats st;
		if (around)
			spill_run_gz(f, file_from(f, from, true), m->data_off);
		f->spill_broke = false;	/* only m's own spill sends its read elsewhere */
		if (!(s = spill_add(f, m, e)) || spill_from_gz(f, m, s, e) < 0) {
			spill_undo(f);
			return NULL;
		}
		size_t at = f->nsp;	/* the run below may move f->sp, drop it only on a failure */
		spill_done(f, UINT32_MAX);
		if (around) {
			gzs_stats(f->gz, &st);
			spill_run_gz(f, file_from(f, m->data_off + 1, true), from + st.span);
			if (at >= f->nsp || f->spill_fd < 0 || f->sp[at].seq != m->seq) {
				/* spill_undo() started over */
				errno = 0;
				spill_failed(f, "keep", e);
				return NULL;
			}
		}
		return &f->sp[at];
	}
#endif
	int rc = seek_member(f, m->seq, e);
	f->spill_broke = false;	/* only m's own spill sends its read elsewhere */
	if (rc < 0)
		return NULL;
	if (!(s = spill_add(f, m, e)) || spill_blocks(f, s, e) < 0) {
		spill_undo(f);
		return NULL;
	}
	return spill_done(f, UINT32_MAX);
}

/*
 * A member too big to spill, decoded forward from the reader's position block
 * by block: a hole between blocks is passed, not made, so a read far into a
 * sparse member costs the blocks before it, not its size. What no block holds
 * reads as zeros, as bsdtar extracts it (a hole, or a sparse member whose map
 * ends before its size). The rest of the last block read serves the next read.
 */
/*
 * A read of a streamed member ends: one that reaches the member's end reads on
 * to libarchive's end of it, where a zip checks the member's CRC-32.
 */
static ssize_t stream_done(struct frn *f, uint64_t end, uint64_t size, size_t len,
			   struct err *e)
{
	f->cur_off = end;
	while (end >= size && !f->blk_end) {
		const void *p;
		size_t n;
		la_int64_t at;
		int r = AR(archive_read_data_block)(f->a, &p, &n, &at);
		if (r == ARCHIVE_EOF) {
			f->blk_end = true;
			f->blk_len = 0;
		} else if (r != ARCHIVE_OK) {	/* a bad CRC is ARCHIVE_WARN, as spill_blocks() takes it */
			damaged(f, "a member's data", e);
			close_reader(f);
			return -1;
		}
	}
	return (ssize_t)len;
}

static ssize_t stream_member(struct frn *f, const struct frn_member *m, unsigned char *buf,
			     size_t len, uint64_t off, struct err *e)
{
	uint32_t seq = m->seq;
	uint64_t end = off + len;

	if (f->a && f->cur_seq == (int64_t)seq && f->cur_off > off)
		close_reader(f);
	if (!(f->a && f->cur_seq == (int64_t)seq) && seek_member(f, seq, e) < 0)
		return -1;
	memset(buf, 0, len);
	for (;;) {
		const void *p;
		size_t n;
		la_int64_t at;
		if (f->blk_len) {
			uint64_t b0 = f->blk_at, b1 = b0 + f->blk_len;
			uint64_t from = b0 > off ? b0 : off, to = b1 < end ? b1 : end;
			if (from < to)
				memcpy(buf + (from - off), f->blk + (from - b0), (size_t)(to - from));
			if (b1 >= end) {	/* done, with no block read past the window */
				if (b1 == end) {
					f->blk_len = 0;
				} else if (b0 < end) {
					f->blk += end - b0;
					f->blk_len = (size_t)(b1 - end);
					f->blk_at = end;
				}
				return stream_done(f, end, m->size, len, e);
			}
			f->blk_len = 0;
			f->cur_off = b1;
		}
		if (f->blk_end)
			return stream_done(f, end, m->size, len, e);
		int r = AR(archive_read_data_block)(f->a, &p, &n, &at);
		if (r == ARCHIVE_EOF) {
			f->blk_end = true;
			continue;
		}
		if ((r != ARCHIVE_OK && r != ARCHIVE_WARN) || at < 0 || (uint64_t)at < f->cur_off) {
			damaged(f, "a member's data", e);
			close_reader(f);
			return -1;
		}
		f->blk = p;
		f->blk_len = n;
		f->blk_at = (uint64_t)at;
	}
}

uint32_t frn_starts(struct frn *f)
{
	uint32_t n;

	pthread_mutex_lock(&f->mu);
	n = f->starts;
#ifdef SNAPFS_HAVE_ZLIB
	if (f->gz) {
		struct gzs_stats st;
		gzs_stats(f->gz, &st);
		n += st.starts;
	}
#endif
	pthread_mutex_unlock(&f->mu);
	return n;
}

uint64_t frn_inflated(struct frn *f)
{
	uint64_t n = 0;

	pthread_mutex_lock(&f->mu);
#ifdef SNAPFS_HAVE_ZLIB
	if (f->gz) {
		struct gzs_stats st;
		gzs_stats(f->gz, &st);
		n = st.inflated;
	}
#endif
	pthread_mutex_unlock(&f->mu);
	return n;
}

ssize_t frn_pread(struct frn *f, const struct frn_member *m, void *buf, size_t len, uint64_t off,
		  struct err *e)
{
	const struct spilled *s;
	ssize_t n = -1;

	if (off >= m->size)
		return 0;
	if (len > m->size - off)
		len = (size_t)(m->size - off);
	if (f->bare_tar && m->plain)	/* no lock: nothing of f changes */
		return fd_pread_all(f->fd, buf, len, m->data_off + off) == 0 ? (ssize_t)len
		       : errno ? err_set(e, errno, "cannot read '%s': %s", f->path, strerror(errno))
		       : err_set(e, EIO, "'%s' is damaged: it ends before byte %llu; run "
				 "'snapkeep verify' on it", f->path,
				 (unsigned long long)(m->data_off + off + len));
	pthread_mutex_lock(&f->mu);
	live_touch(f);
#ifdef SNAPFS_HAVE_ZLIB
	if (f->gzip_tar && !f->gz && !(f->gz = gzs_new(f->fd, f->path))) {
		pthread_mutex_unlock(&f->mu);
		return err_set(e, ENOMEM, "out of memory");
	}
#endif
	if ((int64_t)m->seq < f->last_seq)
		f->scattered = true;
	f->last_seq = m->seq;
	f->spill_broke = false;
	f->spilled_now = false;
	f->passed_now = 0;
	/*
	 * A small member is read from the spill file, unless the spill file
	 * failed it (a full disk): then it is read where it lies, as a big one,
	 * until a read is served from the spill file again (trying the spill
	 * file for each of its reads would restart the reader each time).
	 */
	if (m->size <= f->spill_max / 4 && (int64_t)m->seq != f->unspilled &&
	    ((s = find_spilled(f, m->seq)) || (s = spill_member(f, m, e))))
		n = fd_pread_all(f->spill_fd, buf, len, s->off + off) == 0 ? (ssize_t)len
		    : spill_failed(f, "read", e);
	if (f->spill_broke)
		f->unspilled = m->seq;
	else if (n >= 0)
		f->unspilled = -1;
	if (m->size > f->spill_max / 4 || f->spill_broke || (int64_t)m->seq == f->unspilled) {
#ifdef SNAPFS_HAVE_ZLIB
		if (f->gz && m->plain)
			n = gzs_read(f->gz, m->data_off + off, buf, len, e) < 0 ? -1 : (ssize_t)len;
		else
#endif
			n = stream_member(f, m, buf, len, off, e);
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

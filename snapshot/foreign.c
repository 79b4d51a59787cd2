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
	uint32_t starts;

	int spill_fd;		/* -1 until first used */
	uint64_t spill_used;
	struct spilled *sp;
	size_t nsp, capsp;

#ifdef SNAPFS_HAVE_ZLIB
	struct gzs *gz;		/* a gzip tar's decoded stream, or NULL */
#endif
};

int frn_new(int fd, const char *path, const struct frn_opts *o, struct frn **out, struct err *e)
{
	struct frn *f = calloc(1, sizeof(*f));
	const char *dir = o && o->spill_dir ? o->spill_dir : getenv("TMPDIR");

	if (arlib_load(e) < 0) {
		free(f);
		return -1;
	}
	if (!f || !(f->path = strdup(path)) || !(f->spill_dir = strdup(dir ? dir : "/var/tmp"))) {
		frn_free(f);
		return err_set(e, ENOMEM, "out of memory");
	}
	f->fd = fd;
	f->spill_max = o && o->spill_max ? o->spill_max : FRN_DEFAULT_SPILL_MAX;
	f->spill_fd = -1;
	f->cur_seq = -1;
	pthread_mutex_init(&f->mu, NULL);
#ifdef SNAPFS_HAVE_ZLIB
	if (o && o->gzip_tar && !(f->gz = gzs_new(fd, path))) {
		frn_free(f);
		return err_set(e, ENOMEM, "out of memory");
	}
#endif
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

void frn_free(struct frn *f)
{
	if (!f)
		return;
	close_reader(f);
	if (f->spill_fd >= 0)
		close(f->spill_fd);
#ifdef SNAPFS_HAVE_ZLIB
	gzs_free(f->gz);
#endif
	pthread_mutex_destroy(&f->mu);
	free(f->sp);
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

/* Put the reader at the start of member seq's data. */
static int seek_member(struct frn *f, uint32_t seq, struct err *e)
{
	struct archive_entry *entry;
	int r;

	if (f->a && (f->cur_seq > (int64_t)seq || (f->cur_seq == (int64_t)seq && f->cur_off)))
		close_reader(f);
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
	}
	while (f->cur_seq < (int64_t)seq) {
		r = AR(archive_read_next_header)(f->a, &entry);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			damaged(f, "a member is missing", e);
			close_reader(f);
			return -1;
		}
		f->cur_seq++;
		f->cur_off = 0;
		f->blk_len = 0;
		f->blk_end = false;
	}
	return 0;
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
		return err_set(e, errno, "cannot create a spill file in '%s': %s", f->spill_dir,
			       strerror(errno));
	unlink(path);
	return 0;
}

static const struct spilled *find_spilled(const struct frn *f, uint32_t seq)
{
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
			return err_set(e, errno, "cannot reset the spill file: %s", strerror(errno));
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
	return 0;
}

#ifdef SNAPFS_HAVE_ZLIB
/* Copy a plain member of a gzip tar from the decoded stream into the spill file at s. */
static int spill_from_gz(struct frn *f, const struct frn_member *m, const struct spilled *s,
			 struct err *e)
{
	unsigned char buf[65536];

	for (uint64_t at = 0; at < m->size;) {
		size_t n = m->size - at < sizeof(buf) ? (size_t)(m->size - at) : sizeof(buf);
		if (gzs_read(f->gz, m->data_off + at, buf, n, e) < 0)
			return -1;
		ssize_t w = pwrite(f->spill_fd, buf, n, (off_t)(s->off + at));
		if (w != (ssize_t)n)
			return err_set(e, w < 0 ? errno : ENOSPC, "cannot write the spill file: %s",
				       w < 0 ? strerror(errno) : "short write (disk full?)");
		at += n;
	}
	return 0;
}
#endif

/*
 * Decode member m whole into the spill file. Holes stay holes, and read as
 * zeros: a member that fails takes back what it wrote, so the next one spilled
 * in its place finds no bytes in its holes.
 */
static const struct spilled *spill_member(struct frn *f, const struct frn_member *m,
					  struct err *e)
{
	struct spilled *s;
	const void *buf;
	size_t len;
	la_int64_t at;
	uint32_t seq = m->seq;
	uint64_t size = m->size;
	int r;

	if (spill_open(f, e) < 0 || spill_reserve(f, size, e) < 0)
		return NULL;
	s = &f->sp[f->nsp];
	s->seq = seq;
	s->off = f->spill_used;
	s->size = size;
	if (ftruncate(f->spill_fd, (off_t)(s->off + size)) < 0) {
		err_set(e, errno, "cannot grow the spill file: %s", strerror(errno));
		goto fail;
	}
#ifdef SNAPFS_HAVE_ZLIB
	if (f->gz && m->plain) {
		if (spill_from_gz(f, m, s, e) < 0)
			goto fail;
		f->spill_used += size;
		f->nsp++;
		return s;
	}
#endif
	if (seek_member(f, seq, e) < 0)
		goto fail;
	while ((r = AR(archive_read_data_block)(f->a, &buf, &len, &at)) == ARCHIVE_OK) {
		if ((uint64_t)at + len > size)
			len = at < 0 || (uint64_t)at >= size ? 0 : (size_t)(size - (uint64_t)at);
		if (len && pwrite(f->spill_fd, buf, len, (off_t)(s->off + (uint64_t)at)) != (ssize_t)len) {
			err_set(e, errno ? errno : EIO, "cannot write the spill file: %s",
				strerror(errno));
			goto fail;
		}
	}
	if (r != ARCHIVE_EOF) {
		damaged(f, "a member's data", e);
		close_reader(f);
		goto fail;
	}
	f->cur_off = size ? size : 1;	/* consumed: a read of this member restarts */
	f->spill_used += size;
	f->nsp++;
	return s;
fail:
	/* the file ends where the spilled members do again; failing that, it starts over */
	if (f->spill_fd >= 0 && ftruncate(f->spill_fd, (off_t)f->spill_used) < 0) {
		close(f->spill_fd);
		f->spill_fd = -1;
		f->spill_used = 0;
		f->nsp = 0;
	}
	return NULL;
}

/*
 * A member too big to spill, decoded forward from the reader's position block
 * by block: a hole between blocks is passed, not made, so a read far into a
 * sparse member costs the blocks before it, not its size. What no block holds
 * reads as zeros, as bsdtar extracts it (a hole, or a sparse member whose map
 * ends before its size). The rest of the last block read serves the next read.
 */
static ssize_t stream_member(struct frn *f, uint32_t seq, unsigned char *buf, size_t len,
			     uint64_t off, struct err *e)
{
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
				f->cur_off = end;
				return (ssize_t)len;
			}
			f->blk_len = 0;
			f->cur_off = b1;
		}
		if (f->blk_end) {
			f->cur_off = end;
			return (ssize_t)len;
		}
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
	pthread_mutex_lock(&f->mu);
	if (m->size > f->spill_max / 4) {
#ifdef SNAPFS_HAVE_ZLIB
		if (f->gz && m->plain)
			n = gzs_read(f->gz, m->data_off + off, buf, len, e) < 0 ? -1 : (ssize_t)len;
		else
#endif
			n = stream_member(f, m->seq, buf, len, off, e);
	} else if ((s = find_spilled(f, m->seq)) || (s = spill_member(f, m, e))) {
		n = fd_pread_all(f->spill_fd, buf, len, s->off + off) == 0 ? (ssize_t)len
			: err_set(e, errno ? errno : EIO, "cannot read the spill file: %s",
				  strerror(errno));
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

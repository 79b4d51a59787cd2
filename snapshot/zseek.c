#include "zseek.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY	/* the buffer-less decoder: ZSTD_decompressContinue() */
#include <zstd.h>
#include <zstd_errors.h>

#include "bytes.h"
#include "fdio.h"
#include "fillmem.h"

/*
 * Writer. Frames are filled in slots of a ring; a full slot is queued, a
 * worker compresses it, and the filling thread writes finished slots in
 * sequence order. A slot is reused only after it was written, so at most
 * nslots frames are in memory.
 */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_DONE };

struct slot {
	unsigned char *in, *out;
	size_t inlen, outlen;
	size_t zerr;		/* a zstd error code, 0 if none */
	enum slot_state state;
};

struct zseek_writer {
	int fd;
	char *name;
	int level;
	size_t max_frame;
	size_t out_cap;

	pthread_mutex_t mu;
	pthread_cond_t work, done;
	bool stop;
	pthread_t *threads;
	int nthreads;

	struct slot *slots;
	size_t nslots;
	uint64_t next_fill;	/* sequence number of the slot being filled */
	bool filling;		/* slot next_fill is being filled (the filling thread's own) */
	uint64_t next_take;	/* the next queued slot a worker takes */
	uint64_t next_write;	/* the next slot to write out */

	uint32_t *table;	/* pairs: compressed size, decompressed size */
	size_t ntable, table_cap;
	uint64_t pos, written;
};

static void *worker_main(void *arg)
{
	struct zseek_writer *w = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	if (cctx) {
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, w->level);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
	}
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->next_take >= w->next_fill)
			pthread_cond_wait(&w->work, &w->mu);
		if (w->stop)
			break;
		struct slot *s = &w->slots[w->next_take++ % w->nslots];
		pthread_mutex_unlock(&w->mu);
		size_t r = cctx ? ZSTD_compress2(cctx, s->out, w->out_cap, s->in, s->inlen)
				: (size_t)-ZSTD_error_memory_allocation;
		pthread_mutex_lock(&w->mu);
		s->zerr = ZSTD_isError(r) ? r : 0;
		s->outlen = ZSTD_isError(r) ? 0 : r;
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->mu);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

static int table_add(struct zseek_writer *w, size_t csize, size_t dsize, struct err *e)
{
	if (w->ntable / 2 >= ZSEEK_MAX_FRAMES)
		return err_set(e, EFBIG, "'%s': more than %u frames", w->name, ZSEEK_MAX_FRAMES);
	if (w->ntable + 2 > w->table_cap) {
		size_t cap = w->table_cap ? w->table_cap * 2 : 1024;
		uint32_t *t = realloc(w->table, cap * sizeof(*t));
		if (!t)
			return err_set(e, ENOMEM, "out of memory for the seek table");
		w->table = t;
		w->table_cap = cap;
	}
	w->table[w->ntable++] = (uint32_t)csize;
	w->table[w->ntable++] = (uint32_t)dsize;
	return 0;
}

static int emit(struct zseek_writer *w, const void *buf, size_t len, size_t dsize, struct err *e)
{
	if (fd_write_all(w->fd, buf, len) < 0)
		return err_set(e, errno, "cannot write '%s': %s", w->name, strerror(errno));
	w->written += len;
	return table_add(w, len, dsize, e);
}

/* Write out finished slots in order; with wait, until every queued slot is written. */
static int drain(struct zseek_writer *w, bool wait, struct err *e)
{
	for (;;) {
		pthread_mutex_lock(&w->mu);
		if (w->next_write >= w->next_fill) {
			pthread_mutex_unlock(&w->mu);
			return 0;
		}
		struct slot *s = &w->slots[w->next_write % w->nslots];
		while (wait && s->state != SLOT_DONE)
			pthread_cond_wait(&w->done, &w->mu);
		bool ready = s->state == SLOT_DONE;
		pthread_mutex_unlock(&w->mu);
		if (!ready)
			return 0;
		if (s->zerr)
			return err_set(e, EIO, "cannot compress a frame of '%s': %s", w->name,
				       ZSTD_getErrorName(s->zerr));
		if (emit(w, s->out, s->outlen, s->inlen, e) < 0)
			return -1;
		s->inlen = 0;
		s->state = SLOT_FREE;
		w->next_write++;
	}
}

/* A slot's state, which a worker may be setting. */
static enum slot_state state_of(struct zseek_writer *w, const struct slot *s)
{
	enum slot_state st;

	pthread_mutex_lock(&w->mu);
	st = s->state;
	pthread_mutex_unlock(&w->mu);
	return st;
}

/* The slot being filled, waiting for it to be written out if it is still in use. */
static struct slot *fill_slot(struct zseek_writer *w, struct err *e)
{
	struct slot *s = &w->slots[w->next_fill % w->nslots];

	if (w->filling)
		return s;
	while (state_of(w, s) != SLOT_FREE)
		if (drain(w, true, e) < 0)
			return NULL;
	if (!s->in) {
		s->in = malloc(w->max_frame);
		s->out = malloc(w->out_cap);
		if (!s->in || !s->out) {
			err_set(e, ENOMEM, "out of memory for a %zu-byte frame", w->max_frame);
			return NULL;
		}
	}
	s->inlen = 0;
	s->state = SLOT_FILLING;
	w->filling = true;
	return s;
}

int zseek_cut(struct zseek_writer *w, struct err *e)
{
	struct slot *s = &w->slots[w->next_fill % w->nslots];

	if (!w->filling || s->inlen == 0)
		return 0;
	pthread_mutex_lock(&w->mu);
	s->state = SLOT_QUEUED;
	w->next_fill++;
	w->filling = false;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	return drain(w, false, e);
}

int zseek_write(struct zseek_writer *w, const void *buf, size_t len, struct err *e)
{
	const unsigned char *p = buf;

	while (len > 0) {
		struct slot *s = fill_slot(w, e);
		if (!s)
			return -1;
		size_t n = w->max_frame - s->inlen;
		if (n > len)
			n = len;
		memcpy(s->in + s->inlen, p, n);
		s->inlen += n;
		w->pos += n;
		p += n;
		len -= n;
		if (s->inlen == w->max_frame && zseek_cut(w, e) < 0)
			return -1;
	}
	return 0;
}

uint64_t zseek_pos(const struct zseek_writer *w)
{
	return w->pos;
}

size_t zseek_pending(const struct zseek_writer *w)
{
	const struct slot *s = &w->slots[w->next_fill % w->nslots];

	return w->filling ? s->inlen : 0;
}

uint64_t zseek_written(const struct zseek_writer *w)
{
	return w->written;
}

int zseek_write_skippable(struct zseek_writer *w, unsigned kind, const void *buf, size_t len,
			  struct err *e)
{
	unsigned char hdr[8];

	if (kind > 15 || ZSEEK_SKIPPABLE_MAGIC_BASE + kind == ZSEEK_TABLE_MAGIC || len > UINT32_MAX - 8)
		return err_set(e, EINVAL, "bad skippable frame (kind %u, %zu bytes)", kind, len);
	if (zseek_cut(w, e) < 0 || drain(w, true, e) < 0)
		return -1;
	le32_put(hdr, ZSEEK_SKIPPABLE_MAGIC_BASE + kind);
	le32_put(hdr + 4, (uint32_t)len);
	if (fd_write_all(w->fd, hdr, sizeof(hdr)) < 0 || fd_write_all(w->fd, buf, len) < 0)
		return err_set(e, errno, "cannot write '%s': %s", w->name, strerror(errno));
	w->written += sizeof(hdr) + len;
	return table_add(w, sizeof(hdr) + len, 0, e);
}

int zseek_finish(struct zseek_writer *w, struct err *e)
{
	unsigned char *t, *p;
	size_t n, size;
	int rc = 0;

	if (zseek_cut(w, e) < 0 || drain(w, true, e) < 0)
		return -1;
	n = w->ntable / 2;
	size = 8 + n * ZSEEK_ENTRY_SIZE + ZSEEK_FOOTER_SIZE;
	p = t = malloc(size);
	if (!t)
		return err_set(e, ENOMEM, "out of memory for the seek table");
	le32_put(p, ZSEEK_TABLE_MAGIC);
	le32_put(p + 4, (uint32_t)(size - 8));
	p += 8;
	for (size_t i = 0; i < n; i++, p += ZSEEK_ENTRY_SIZE) {
		le32_put(p, w->table[2 * i]);
		le32_put(p + 4, w->table[2 * i + 1]);
	}
	le32_put(p, (uint32_t)n);
	p[4] = 0;	/* descriptor: no per-entry checksums, zstd frames carry their own */
	le32_put(p + 5, ZSEEK_FOOTER_MAGIC);
	if (fd_write_all(w->fd, t, size) < 0)
		rc = err_set(e, errno, "cannot write '%s': %s", w->name, strerror(errno));
	else
		w->written += size;
	free(t);
	return rc;
}

int zseek_writer_new(int fd, const char *name, int level, int threads, size_t max_frame,
		     struct zseek_writer **out, struct err *e)
{
	struct zseek_writer *w;

	if (max_frame < 1024 || max_frame > ZSEEK_MAX_FRAME_SIZE)
		return err_set(e, EINVAL, "frame size %zu out of range 1 KiB..1 GiB", max_frame);
	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)n : 1;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ENOMEM, "out of memory");
	w->fd = fd;
	w->name = strdup(name);
	w->level = level;
	w->max_frame = max_frame;
	w->out_cap = ZSTD_compressBound(max_frame);
	w->nslots = (size_t)threads * 2 + 1;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	w->threads = calloc((size_t)threads, sizeof(*w->threads));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	if (!w->name || !w->slots || !w->threads) {
		zseek_writer_free(w);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (; w->nthreads < threads; w->nthreads++) {
		if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) {
			int code = errno;
			zseek_writer_free(w);
			return err_set(e, code, "cannot start a compression thread: %s", strerror(code));
		}
	}
	*out = w;
	return 0;
}

void zseek_writer_free(struct zseek_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	for (size_t i = 0; w->slots && i < w->nslots; i++) {
		free(w->slots[i].in);
		free(w->slots[i].out);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	free(w->slots);
	free(w->threads);
	free(w->table);
	free(w->name);
	free(w);
}

/*
 * Reader. The table is kept as it is stored, 8 bytes a frame, with the start of
 * every ZSEEK_SPAN-th frame beside it: 13,000 frames (a 1.6 GiB tree in 128 KiB
 * frames) take 105 KB instead of 210 with two offsets a frame. A frame's start
 * is its span's start plus fewer than ZSEEK_SPAN sizes.
 */
#define ZSEEK_SPAN 32u

struct zseek {
	int fd;
	char *name;
	uint32_t n;
	uint32_t max_dsize;
	uint32_t *size;		/* 2n: compressed, decompressed size of frame i */
	uint64_t *cstart;	/* one a span: where frame k * ZSEEK_SPAN starts, */
	uint64_t *dstart;	/* compressed and decompressed */
	uint64_t dtotal;	/* the decompressed stream's size */
	/* drop_behind()'s run of frames decoded front to back: readers' shared state */
	atomic_uint_fast64_t run_start, run_end;
};

/* A frame's input: whole (a piece), or a window of ZSEEK_PIECE bytes moved along it. */
struct zseek_dctx {
	ZSTD_DCtx *dctx;
	unsigned char *buf;	/* ZSEEK_PIECE bytes */
};

static int bad(const char *name, uint64_t off, const char *what, struct err *e)
{
	return err_set(e, EIO, "'%s' is damaged: %s at byte %llu; run 'snapkeep verify' on it, or "
			       "restore it from a copy of the store", name, what,
		       (unsigned long long)off);
}

static int load_table(struct zseek *z, uint64_t file_size, struct err *e)
{
	unsigned char foot[ZSEEK_FOOTER_SIZE], hdr[8];
	uint64_t tsize, toff, entsize, coff = 0, doff = 0;
	unsigned char *t = NULL;
	size_t nspan;
	int rc = -1;

	if (file_size < ZSEEK_FOOTER_SIZE + 8 ||
	    fd_pread_all(z->fd, foot, sizeof(foot), file_size - sizeof(foot)) < 0)
		return err_set(e, EIO, "'%s' is not a seekable zstd file (too short)", z->name);
	if (le32_get(foot + 5) != ZSEEK_FOOTER_MAGIC)
		return err_set(e, EIO, "'%s' is not a seekable zstd file (no seek table)", z->name);
	if ((foot[4] >> 2) & 0x1f)
		return bad(z->name, file_size - 5, "reserved seek-table bits set", e);
	entsize = ZSEEK_ENTRY_SIZE + ((foot[4] & 0x80) ? 4 : 0);
	z->n = le32_get(foot);
	tsize = 8 + (uint64_t)z->n * entsize + ZSEEK_FOOTER_SIZE;
	if (z->n > ZSEEK_MAX_FRAMES || tsize > file_size)
		return bad(z->name, file_size - 9, "absurd frame count in seek table", e);
	toff = file_size - tsize;
	if (fd_pread_all(z->fd, hdr, 8, toff) < 0 || le32_get(hdr) != ZSEEK_TABLE_MAGIC ||
	    le32_get(hdr + 4) != tsize - 8)
		return bad(z->name, toff, "seek table frame header wrong", e);
	nspan = ((size_t)z->n + ZSEEK_SPAN - 1) / ZSEEK_SPAN + 1;	/* + 1: never malloc(0) */
	z->size = malloc(((size_t)z->n * 2 + 1) * sizeof(uint32_t));
	z->cstart = malloc(nspan * sizeof(uint64_t));
	z->dstart = malloc(nspan * sizeof(uint64_t));
	t = malloc(tsize);
	if (!z->size || !z->cstart || !z->dstart || !t) {
		err_set(e, ENOMEM, "out of memory for the seek table of '%s'", z->name);
		goto done;
	}
	if (fd_pread_all(z->fd, t, tsize, toff) < 0) {
		err_set(e, errno ? errno : EIO, "cannot read '%s': %s", z->name, strerror(errno));
		goto done;
	}
	for (uint32_t i = 0; i < z->n; i++) {
		const unsigned char *p = t + 8 + i * entsize;
		uint32_t cs = le32_get(p), ds = le32_get(p + 4);
		if (ds > ZSEEK_MAX_FRAME_SIZE || cs == 0) {
			bad(z->name, toff + 8 + i * entsize, "absurd frame size in seek table", e);
			goto done;
		}
		if (i % ZSEEK_SPAN == 0) {
			z->cstart[i / ZSEEK_SPAN] = coff;
			z->dstart[i / ZSEEK_SPAN] = doff;
		}
		z->size[2 * i] = cs;
		z->size[2 * i + 1] = ds;
		coff += cs;
		doff += ds;
		if (ds > z->max_dsize)
			z->max_dsize = ds;
	}
	if (coff != toff) {
		bad(z->name, toff, "frame sizes in seek table do not add up to the file size", e);
		goto done;
	}
	z->dtotal = doff;
	rc = 0;
done:
	free(t);
	return rc;
}

int zseek_open(int fd, const char *name, uint64_t file_size, struct zseek **out, struct err *e)
{
	struct zseek *z = calloc(1, sizeof(*z));

	if (!z || !(z->name = strdup(name))) {
		free(z);
		return err_set(e, ENOMEM, "out of memory");
	}
	z->fd = fd;
	if (load_table(z, file_size, e) < 0) {
		zseek_close(z);
		return -1;
	}
	*out = z;
	return 0;
}

void zseek_close(struct zseek *z)
{
	if (!z)
		return;
	free(z->size);
	free(z->cstart);
	free(z->dstart);
	free(z->name);
	free(z);
}

uint32_t zseek_nframes(const struct zseek *z)
{
	return z->n;
}

uint64_t zseek_size(const struct zseek *z)
{
	return z->dtotal;
}

uint32_t zseek_max_dsize(const struct zseek *z)
{
	return z->max_dsize;
}

void zseek_frame(const struct zseek *z, uint32_t i, struct zseek_frame *f)
{
	uint64_t coff = z->cstart[i / ZSEEK_SPAN], doff = z->dstart[i / ZSEEK_SPAN];

	for (uint32_t k = i - i % ZSEEK_SPAN; k < i; k++) {
		coff += z->size[2 * k];
		doff += z->size[2 * k + 1];
	}
	f->coff = coff;
	f->doff = doff;
	f->csize = z->size[2 * i];
	f->dsize = z->size[2 * i + 1];
}

uint32_t zseek_find(const struct zseek *z, uint64_t doff)
{
	uint32_t lo = 0, hi = (z->n + ZSEEK_SPAN - 1) / ZSEEK_SPAN, end;
	uint64_t at;

	if (doff >= z->dtotal)
		return UINT32_MAX;
	/* the last span starting at or before doff, then its frame holding doff */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->dstart[mid] <= doff)
			lo = mid;
		else
			hi = mid;
	}
	at = z->dstart[lo];
	end = (lo + 1) * ZSEEK_SPAN < z->n ? (lo + 1) * ZSEEK_SPAN : z->n;
	for (uint32_t k = lo * ZSEEK_SPAN; k < end; k++) {
		at += z->size[2 * k + 1];
		if (doff < at)
			return k;	/* skippable frames are empty and never hold doff */
	}
	return UINT32_MAX;	/* not reached: doff is before the next span's start */
}

struct zseek_dctx *zseek_dctx_new(void)
{
	struct zseek_dctx *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->dctx = ZSTD_createDCtx();
	d->buf = malloc(ZSEEK_PIECE);
	if (!d->dctx || !d->buf) {
		zseek_dctx_free(d);
		return NULL;
	}
	return d;
}

void zseek_dctx_free(struct zseek_dctx *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->dctx);
	free(d->buf);
	free(d);
}

void zseek_prefetch(const struct zseek *z, uint32_t i)
{
	struct zseek_frame f;

	zseek_frame(z, i, &f);
	if (f.csize > ZSEEK_PIECE)
		posix_fadvise(z->fd, (off_t)f.coff, (off_t)f.csize, POSIX_FADV_WILLNEED);
}

static int read_piece(const struct zseek *z, uint64_t off, void *buf, size_t n, struct err *e)
{
	if (fd_pread_all(z->fd, buf, n, off) < 0)
		return err_set(e, errno ? errno : EIO, "cannot read '%s' at byte %llu: %s", z->name,
			       (unsigned long long)off, errno ? strerror(errno) : "short file");
	return 0;
}

/*
 * A frame bigger than a piece, decoded block by block with zstd's buffer-less
 * API straight into dst, as its bytes are read into a window of ZSEEK_PIECE
 * bytes. zstd asks for exactly the bytes of its next step (a header, a block of
 * at most ZSTD_BLOCKSIZE_MAX, the checksum), so a step always fits the window;
 * what is left of the window moves to its front before the next read. Like the
 * one-shot decoder, it needs no window of zstd's own, whatever the frame asks.
 */
static ssize_t decode_pieces(const struct zseek *z, const struct zseek_frame *f,
			     struct zseek_dctx *d, void *dst, struct err *e)
{
	uint64_t read = 0, used = 0;	/* bytes of the frame read, and decoded from */
	size_t at = 0, have = 0, out = 0, need, r;

	r = ZSTD_decompressBegin(d->dctx);
	if (ZSTD_isError(r))
		return bad(z->name, f->coff, ZSTD_getErrorName(r), e);
	while ((need = ZSTD_nextSrcSizeToDecompress(d->dctx)) != 0) {
		if (need > f->csize - used)
			return bad(z->name, f->coff, "frame size differs from the seek table", e);
		if (need > ZSEEK_PIECE)	/* zstd checks block sizes; this keeps the window's bound here */
			return bad(z->name, f->coff, "block bigger than zstd allows", e);
		if (have < need) {
			size_t n = ZSEEK_PIECE - have;
			if (n > f->csize - read)
				n = (size_t)(f->csize - read);
			memmove(d->buf, d->buf + at, have);
			at = 0;
			if (read_piece(z, f->coff + read, d->buf + have, n, e) < 0)
				return -1;
			read += n;
			have += n;
		}
		r = ZSTD_decompressContinue(d->dctx, (unsigned char *)dst + out, f->dsize - out,
					    d->buf + at, need);
		if (ZSTD_isError(r))
			return bad(z->name, f->coff, ZSTD_getErrorName(r), e);
		out += r;
		at += need;
		have -= need;
		used += need;
	}
	/* the frame is complete and its checksum holds: exactly one frame, exactly dsize bytes */
	if (used != f->csize)
		return bad(z->name, f->coff, "frame size differs from the seek table", e);
	if (out != f->dsize)
		return bad(z->name, f->coff, "frame decompresses to the wrong size", e);
	return (ssize_t)out;
}

/*
 * Drop-behind. While an archive is decoded front to back (a restore, `cp -a`,
 * reading every file), its compressed bytes are not read again: the frames
 * are cached decoded, and the files' pages by the kernel. Once such a run has
 * gone DROP_LAG + DROP_RUN past its start, the bytes more than DROP_LAG behind
 * it are dropped from the page cache in DROP_RUN steps, instead of filling it
 * with a second, compressed copy of what is read; the next reads then get
 * pages just freed rather than fresh ones (a 17 % shorter read of the bench
 * tree in a VM where each fresh page costs a fault in the host). A frame that
 * starts more than DROP_NEAR from where the last one ended starts a new run,
 * so random reads, and two files read side by side, drop nothing.
 */
#define DROP_LAG (8u << 20)
#define DROP_RUN (4u << 20)
#define DROP_NEAR (4u << 20)

static void drop_behind(const struct zseek *cz, uint64_t off, uint64_t n)
{
	struct zseek *z = (struct zseek *)cz;	/* the run is not the table: shared, mutable */
	uint_fast64_t start = atomic_load_explicit(&z->run_start, memory_order_relaxed);
	uint_fast64_t end = atomic_load_explicit(&z->run_end, memory_order_relaxed);

	if (off + DROP_NEAR < end || off > end + DROP_NEAR) {
		atomic_store_explicit(&z->run_start, off, memory_order_relaxed);
		atomic_store_explicit(&z->run_end, off + n, memory_order_relaxed);
		return;
	}
	if (off + n > end)
		atomic_store_explicit(&z->run_end, off + n, memory_order_relaxed);
	if (off < start + DROP_LAG + DROP_RUN)
		return;
	uint64_t to = (off - DROP_LAG) & ~(uint64_t)4095;
	/* one thread drops each stretch; a run started anew meanwhile drops nothing here */
	if (to > start && atomic_compare_exchange_strong(&z->run_start, &start, to))
		posix_fadvise(z->fd, (off_t)start, (off_t)(to - start), POSIX_FADV_DONTNEED);
}

static ssize_t decode_frame(const struct zseek *z, uint32_t i, struct zseek_dctx *d, void *dst,
			    struct err *e)
{
	struct zseek_frame f;
	size_t r;

	zseek_frame(z, i, &f);
	if (f.csize > ZSEEK_PIECE)
		return decode_pieces(z, &f, d, dst, e);
	if (read_piece(z, f.coff, d->buf, f.csize, e) < 0)
		return -1;
	/* exactly one frame must fill exactly dsize bytes; the frame checks its own checksum */
	if (ZSTD_findFrameCompressedSize(d->buf, f.csize) != f.csize)
		return bad(z->name, f.coff, "frame size differs from the seek table", e);
	r = ZSTD_decompressDCtx(d->dctx, dst, f.dsize, d->buf, f.csize);
	if (ZSTD_isError(r))
		return bad(z->name, f.coff, ZSTD_getErrorName(r), e);
	if (r != f.dsize)
		return bad(z->name, f.coff, "frame decompresses to the wrong size", e);
	return (ssize_t)r;
}

ssize_t zseek_decode(const struct zseek *z, uint32_t i, struct zseek_dctx *d, void *dst,
		     struct err *e)
{
	ssize_t r = decode_frame(z, i, d, dst, e);

	if (r >= 0) {
		struct zseek_frame f;
		zseek_frame(z, i, &f);
		drop_behind(z, f.coff, f.csize);
	}
	return r;
}

/* Frame f's 8-byte header: a skippable frame's magic, and a size the seek table agrees with. */
static int skippable_header(const struct zseek *z, const struct zseek_frame *f, unsigned *kind,
			    struct err *e)
{
	unsigned char hdr[8];

	if (f->csize < 8 || fd_pread_all(z->fd, hdr, 8, f->coff) < 0 ||
	    (le32_get(hdr) & 0xFFFFFFF0u) != ZSEEK_SKIPPABLE_MAGIC_BASE ||
	    le32_get(hdr + 4) != f->csize - 8)
		return bad(z->name, f->coff, "expected a skippable frame", e);
	*kind = le32_get(hdr) & 0xF;
	return 0;
}

int zseek_skippable_kind(const struct zseek *z, uint32_t i, unsigned *kind, struct err *e)
{
	struct zseek_frame f;

	zseek_frame(z, i, &f);
	return skippable_header(z, &f, kind, e);
}

ssize_t zseek_read_skippable(const struct zseek *z, uint32_t i, unsigned kind, void **out,
			     struct err *e)
{
	struct zseek_frame f;
	unsigned found;
	size_t cs;
	void *buf;

	zseek_frame(z, i, &f);
	if (skippable_header(z, &f, &found, e) < 0)
		return -1;
	if (found != kind) {
		char what[64];
		snprintf(what, sizeof(what), "expected a skippable frame of kind %u, not %u", kind,
			 found);
		return bad(z->name, f.coff, what, e);
	}
	cs = f.csize;
	buf = fill_alloc(cs - 8 ? cs - 8 : 1, true);	/* bytes the file holds: the read writes all */
	if (!buf)
		return err_set(e, ENOMEM, "out of memory for a %zu-byte frame of '%s'", cs, z->name);
	if (fd_pread_all(z->fd, buf, cs - 8, f.coff + 8) < 0) {
		fill_free(buf);
		return bad(z->name, f.coff + 8, "short skippable frame", e);
	}
	*out = buf;
	return (ssize_t)(cs - 8);
}

#include "decode.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <zstd.h>
#ifdef SNAPFS_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef SNAPFS_HAVE_LZMA
#include <lzma.h>
#endif
#ifdef SNAPFS_HAVE_BZ2
#include <bzlib.h>
#endif

#include "arlib.h"
#include "bytes.h"
#include "fdio.h"
#include "index.h"
#include "zseek.h"

/* Decoded frames in flight are bounded by count and by bytes. */
#define RING_MAX_BYTES (256u << 20)
#define STREAM_CHUNK (64u * 1024)	/* a reader in the daemon holds two: foreign.c */
#define ZSTD_MAGIC 0xFD2FB528u
#define ZSTD_SKIP_MASK 0xFFFFFFF0u

/*
 * The frame ring: worker threads decode the data frames in order into a ring
 * of slots, ahead of the reading thread. Frame k goes to slot k % nslots, and
 * a worker takes frame k only once frame k - nslots is released, so no slot
 * is overwritten while libarchive still reads from it (it reads a block until
 * it asks for the next one).
 */
enum slot_state { SLOT_EMPTY, SLOT_BUSY, SLOT_DONE };

struct slot {
	unsigned char *buf;
	ssize_t len;		/* -1: failed, e says why */
	enum slot_state state;
	struct err e;
};

struct ring {
	const struct zseek *z;
	uint32_t *frames;	/* the data frames (those with bytes), in order */
	uint32_t n;
	struct slot *slots;
	uint32_t nslots;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t next;		/* the next frame a worker takes */
	uint32_t taken;		/* frames handed to the reader */
	uint32_t released;	/* frames whose slots may be reused */
	uint64_t skip;		/* bytes of the first frame before the start asked for */
	uint32_t bad;		/* frames handed out before a frame that holds no data and */
	struct err bad_e;	/* is no skippable frame (UINT32_MAX: none): why, and where */
	uint64_t bad_doff;	/* in the tar stream */
	bool stop;
	pthread_t *threads;
	int nthreads;
};

/* A zstd (or lz4) file read as a stream of frames. */
struct zsf {
	ZSTD_DCtx *dctx;
	unsigned char *in, *out;
	size_t in_len, in_pos, out_cap;
	uint64_t in_off;	/* file offset of in[0] */
	uint64_t frame_start;
	bool boundary;		/* between frames */
	bool flushing;		/* the last call filled the output: call again before reading */
};

#if defined(SNAPFS_HAVE_ZLIB) || defined(SNAPFS_HAVE_LZMA) || defined(SNAPFS_HAVE_BZ2)
#define SEQ_CODECS
/* A gzip, xz or bzip2 file, read from the start, member by member. */
struct seq {
	unsigned char in[STREAM_CHUNK], out[STREAM_CHUNK];
	const unsigned char *next;	/* input not yet decoded */
	size_t avail;
	uint64_t in_off;		/* file bytes read into in[] so far */
	bool eof;
	bool unit_end;			/* a member ended: another may follow */
	bool full;			/* the last step filled out[]: step again before reading */
	bool live;			/* s holds a decoder */
	const char *what;
	union {
#ifdef SNAPFS_HAVE_ZLIB
		z_stream gz;
#endif
#ifdef SNAPFS_HAVE_LZMA
		lzma_stream xz;
#endif
#ifdef SNAPFS_HAVE_BZ2
		bz_stream bz;
#endif
	} s;
};
#endif

enum dec_kind { DEC_FRAMES, DEC_ZSTD, DEC_GZIP, DEC_XZ, DEC_BZIP2, DEC_LZ4 };

struct dec {
	enum dec_kind kind;
	int fd;
	char *name;
	uint64_t size;
	struct dec_opts o;
	bool failed;
	bool cut;		/* the failure: the file ends inside a member or frame */
	uint64_t fail_end;	/* frames: where the tar stream goes on past the failed frame */
	struct err e;		/* why the decoder failed */
	uint64_t out;		/* decoded bytes handed out */
	uint64_t unit_out;	/* of them, those before the present member or frame */
	int64_t index_at;
	bool ring_started;
	struct ring ring;
	struct zsf zs;
#ifdef SEQ_CODECS
	struct seq *seq;
#endif
#ifdef SNAPFS_HAVE_LZ4
	LZ4F_dctx *lz4;
#endif
};

static ssize_t failed(struct dec *d)
{
	d->failed = true;
	return -1;
}

static void progress(struct dec *d, uint64_t done)
{
	if (d->o.progress)
		d->o.progress(d->o.ctx, done);
}

/* ---- frames ---- */

static bool claimable(const struct ring *r)
{
	return r->next < r->n && r->next < r->released + r->nslots;
}

static void decode_one(struct ring *r, uint32_t k, struct zseek_dctx *zd)
{
	struct slot *s = &r->slots[k % r->nslots];
	struct err e = { 0 };
	ssize_t len = zd ? zseek_decode(r->z, r->frames[k], zd, s->buf, &e)
			 : err_set(&e, ENOMEM, "out of memory for a decompression context");

	pthread_mutex_lock(&r->mu);
	s->len = len;
	s->e = e;
	s->state = SLOT_DONE;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void *ring_worker(void *arg)
{
	struct ring *r = arg;
	struct zseek_dctx *zd = zseek_dctx_new();

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && r->next < r->n && !claimable(r))
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop || r->next >= r->n)
			break;
		uint32_t k = r->next++;
		r->slots[k % r->nslots].state = SLOT_BUSY;
		pthread_mutex_unlock(&r->mu);
		decode_one(r, k, zd);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	zseek_dctx_free(zd);
	return NULL;
}

/*
 * The data frames of z, in order, from the one that holds byte at of the tar
 * stream. Every other frame after it must be a skippable frame: the first
 * that is not fails the reader when it gets there (ring_next()), so the data
 * before it, and after it, can still be read.
 */
static int list_frames(struct ring *r, uint64_t at, struct err *e)
{
	uint32_t nf = zseek_nframes(r->z);

	if (!(r->frames = malloc(((size_t)nf + 1) * sizeof(*r->frames))))
		return err_set(e, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < nf; i++) {
		struct zseek_frame f;
		unsigned kind;

		zseek_frame(r->z, i, &f);
		if (!f.dsize) {
			struct err why = { 0 };
			if ((r->n || !at) && r->bad == UINT32_MAX &&
			    zseek_skippable_kind(r->z, i, &kind, &why) < 0) {	/* its header */
				r->bad = r->n;
				r->bad_e = why;
				r->bad_doff = f.doff;
			}
		} else if (f.doff + f.dsize > at) {
			if (!r->n)
				r->skip = at - (at > f.doff ? f.doff : at);
			r->frames[r->n++] = i;
		}
	}
	return 0;
}

static int alloc_slots(struct ring *r, int threads, struct err *e)
{
	size_t each = zseek_max_dsize(r->z) ? zseek_max_dsize(r->z) : 1;
	uint32_t want = (uint32_t)threads * 2 + 2;

	r->nslots = (uint32_t)(RING_MAX_BYTES / each);
	if (r->nslots > want)
		r->nslots = want;
	if (r->nslots < 2)
		r->nslots = 2;
	if (!(r->slots = calloc(r->nslots, sizeof(*r->slots))))
		return err_set(e, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < r->nslots; i++)
		if (!(r->slots[i].buf = malloc(each)))
			return err_set(e, ENOMEM, "out of memory for %u frames of %zu bytes",
				       r->nslots, each);
	return 0;
}

static int cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static int ring_start(struct ring *r, const struct zseek *z, uint64_t at, int threads,
		      struct err *e)
{
	r->z = z;
	r->bad = UINT32_MAX;
	if (list_frames(r, at, e) < 0)
		return -1;
	if (threads <= 0)
		threads = cores();
	if ((uint32_t)threads > r->n)
		threads = r->n ? (int)r->n : 1;
	if (alloc_slots(r, threads, e) < 0)
		return -1;
	if (!(r->threads = calloc((size_t)threads, sizeof(*r->threads))))
		return err_set(e, ENOMEM, "out of memory");
	for (; r->nthreads < threads; r->nthreads++)
		if (pthread_create(&r->threads[r->nthreads], NULL, ring_worker, r) != 0)
			return err_set(e, EAGAIN, "cannot start a decompression thread");
	return 0;
}

static void ring_release(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	for (uint32_t i = 0; r->slots && i < r->nslots; i++)
		free(r->slots[i].buf);
	free(r->slots);
	free(r->frames);
	free(r->threads);
}

/* The next frame, in order; the previous one is released. */
static ssize_t ring_next(struct dec *d, const void **buf)
{
	struct ring *r = &d->ring;
	struct zseek_frame f;
	struct slot *s;

	pthread_mutex_lock(&r->mu);
	r->released = r->taken;
	pthread_cond_broadcast(&r->cv);
	if (r->taken == r->bad) {
		pthread_mutex_unlock(&r->mu);
		d->e = r->bad_e;
		d->fail_end = r->bad_doff;
		return failed(d);
	}
	if (r->taken >= r->n) {
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	s = &r->slots[r->taken % r->nslots];
	while (s->state != SLOT_DONE)
		pthread_cond_wait(&r->cv, &r->mu);
	s->state = SLOT_EMPTY;
	pthread_mutex_unlock(&r->mu);
	zseek_frame(r->z, r->frames[r->taken], &f);
	if (s->len < 0) {
		d->e = s->e;
		d->fail_end = f.doff + f.dsize;
		return failed(d);
	}
	r->taken++;
	progress(d, f.coff + f.csize);
	*buf = s->buf;
	if (r->skip) {	/* the first frame, of a decoder that starts inside it */
		size_t skip = r->skip < (uint64_t)s->len ? (size_t)r->skip : (size_t)s->len;
		r->skip = 0;
		*buf = s->buf + skip;
		return s->len - (ssize_t)skip;
	}
	return s->len;
}

/* Damage at byte off of the file; what it is, after kind ("xz", ...) when given. */
static ssize_t damaged_at(struct dec *d, uint64_t off, const char *kind, const char *what)
{
	err_set(&d->e, EIO, "'%s' is damaged: %s%s%s at byte %" PRIu64, d->name, kind ? kind : "",
		kind ? " " : "", what, off);
	return failed(d);
}

/* ---- a zstd stream ---- */

static ssize_t zsf_damaged(struct dec *d, uint64_t off, const char *what)
{
	return damaged_at(d, off, NULL, what);
}

/*
 * Between frames: pass over skippable frames (noting a snapfs index), and
 * find the next zstd frame. Returns 1 at a frame, 0 at the end of the file.
 */
static ssize_t zsf_next_frame(struct dec *d)
{
	struct zsf *z = &d->zs;
	unsigned char hdr[8];

	d->unit_out = d->out;	/* every byte out is of frames whose checks passed */
	for (;;) {
		uint64_t cur = z->in_off + z->in_pos;
		if (cur == d->size)
			return 0;
		if (cur + 8 > d->size || fd_pread_all(d->fd, hdr, 8, cur) < 0) {
			d->cut = cur + 8 > d->size;
			return zsf_damaged(d, cur, "the file ends inside a frame header");
		}
		if (le32_get(hdr) == ZSTD_MAGIC) {
			z->boundary = false;
			z->frame_start = cur;
			return 1;
		}
		if ((le32_get(hdr) & ZSTD_SKIP_MASK) != ZSEEK_SKIPPABLE_MAGIC_BASE)
			return zsf_damaged(d, cur, "not a zstd frame");
		if (cur + 8 + le32_get(hdr + 4) > d->size) {
			d->cut = true;
			return zsf_damaged(d, cur, "the file ends inside a skippable frame");
		}
		if ((le32_get(hdr) & 0xF) == IDX_FRAME_KIND && d->index_at < 0)
			d->index_at = (int64_t)cur;
		z->in_off = cur + 8 + le32_get(hdr + 4);
		z->in_len = z->in_pos = 0;
	}
}

static int zsf_fill(struct dec *d)
{
	struct zsf *z = &d->zs;
	uint64_t left;
	size_t want;

	if (z->in_pos < z->in_len)
		return 0;
	z->in_off += z->in_len;
	z->in_len = z->in_pos = 0;
	left = d->size - z->in_off;
	want = left < STREAM_CHUNK ? (size_t)left : STREAM_CHUNK;
	if (want == 0) {
		d->cut = true;
		return zsf_damaged(d, z->frame_start, d->kind == DEC_LZ4 ?
					"the file ends inside the lz4 frame" :
					"the file ends inside the zstd frame");
	}
	if (fd_pread_all(d->fd, z->in, want, z->in_off) < 0) {
		err_set(&d->e, errno ? errno : EIO, "cannot read '%s': %s", d->name,
			errno ? strerror(errno) : "short file");
		return failed(d);
	}
	z->in_len = want;
	progress(d, z->in_off + want);
	return 0;
}

static ssize_t zsf_next(struct dec *d, const void **buf)
{
	struct zsf *z = &d->zs;

	for (;;) {
		ssize_t r;
		if (z->boundary && (r = zsf_next_frame(d)) <= 0)
			return r;
		if (!z->flushing && zsf_fill(d) < 0)
			return -1;
		ZSTD_inBuffer in = { z->in, z->in_len, z->in_pos };
		ZSTD_outBuffer out = { z->out, z->out_cap, 0 };
		size_t ret = ZSTD_decompressStream(z->dctx, &out, &in);
		z->in_pos = in.pos;
		if (ZSTD_isError(ret))
			return zsf_damaged(d, z->frame_start, ZSTD_getErrorName(ret));
		z->boundary = ret == 0;
		z->flushing = !z->boundary && out.pos == out.size;
		if (out.pos) {
			*buf = z->out;
			return (ssize_t)out.pos;
		}
	}
}

/* The buffers of a stream of frames; lz4's decoder too, for an lz4 file. */
static int zsf_start(struct dec *d, struct err *e)
{
	struct zsf *z = &d->zs;

	z->out_cap = ZSTD_DStreamOutSize();
	z->boundary = true;
	z->in = malloc(STREAM_CHUNK);
	z->out = malloc(z->out_cap);
#ifdef SNAPFS_HAVE_LZ4
	if (d->kind == DEC_LZ4) {
		if (AR(LZ4F_isError)(AR(LZ4F_createDecompressionContext)(&d->lz4, LZ4F_VERSION)))
			d->lz4 = NULL;
		return d->lz4 && z->in && z->out ? 0 : err_set(e, ENOMEM, "out of memory");
	}
#endif
	z->dctx = ZSTD_createDCtx();
	if (!z->dctx || !z->in || !z->out)
		return err_set(e, ENOMEM, "out of memory");
	return 0;
}

/* ---- lz4 ---- */

#ifdef SNAPFS_HAVE_LZ4
/*
 * An lz4 file, frame by frame: liblz4 checks each block's checksum before it
 * hands the block out, where the frame carries them, and the frame's content
 * checksum at its end (lz4's default); skippable frames it passes over.
 */
static ssize_t lz4_next(struct dec *d, const void **buf)
{
	struct zsf *z = &d->zs;

	for (;;) {
		if (z->boundary) {
			uint64_t cur = z->in_off + z->in_pos;
			d->unit_out = d->out;	/* every byte out is of frames whose checks passed */
			if (cur == d->size)
				return 0;
			z->frame_start = cur;
			z->boundary = false;
		}
		if (!z->flushing && zsf_fill(d) < 0)
			return -1;
		size_t in_len = z->in_len - z->in_pos, out_len = z->out_cap;
		size_t ret = AR(LZ4F_decompress)(d->lz4, z->out, &out_len, z->in + z->in_pos,
						 &in_len, NULL);
		z->in_pos += in_len;
		if (AR(LZ4F_isError)(ret))
			return damaged_at(d, z->frame_start, "lz4", AR(LZ4F_getErrorName)(ret));
		z->boundary = ret == 0;
		z->flushing = !z->boundary && out_len == z->out_cap;
		if (out_len) {
			*buf = z->out;
			return (ssize_t)out_len;
		}
	}
}
#endif

/* ---- gzip, xz and bzip2: member by member, read in order ---- */

#ifdef SEQ_CODECS
/*
 * Decode one step from q->next into q->out: the bytes made, or -1 with *why
 * (and *code ENOMEM when the decoder ran out of memory: not damage).
 */
static ssize_t seq_step(struct dec *d, const char **why, int *code)
{
	struct seq *q = d->seq;
	size_t made = 0;

	switch (d->kind) {
#ifdef SNAPFS_HAVE_ZLIB
	case DEC_GZIP: {
		z_stream *s = &q->s.gz;
		s->next_in = (Bytef *)q->next;
		s->avail_in = (uInt)q->avail;
		s->next_out = q->out;
		s->avail_out = sizeof(q->out);
		int rc = inflate(s, Z_NO_FLUSH);
		q->next = s->next_in;
		q->avail = s->avail_in;
		made = sizeof(q->out) - s->avail_out;
		q->unit_end = rc == Z_STREAM_END;
		if (rc == Z_MEM_ERROR)
			*code = ENOMEM;
		if (rc != Z_STREAM_END && rc != Z_OK && rc != Z_BUF_ERROR)
			*why = s->msg ? s->msg : "error";
		break;
	}
#endif
#ifdef SNAPFS_HAVE_LZMA
	case DEC_XZ: {
		lzma_stream *s = &q->s.xz;
		s->next_in = q->next;
		s->avail_in = q->avail;
		s->next_out = q->out;
		s->avail_out = sizeof(q->out);
		lzma_ret rc = AR(lzma_code)(s, LZMA_RUN);
		q->next = s->next_in;
		q->avail = s->avail_in;
		made = sizeof(q->out) - s->avail_out;
		q->unit_end = rc == LZMA_STREAM_END;
		if (rc == LZMA_MEM_ERROR || rc == LZMA_MEMLIMIT_ERROR)
			*code = ENOMEM;
		if (rc == LZMA_DATA_ERROR)
			*why = "data is corrupt, or fails its check";
		else if (rc == LZMA_FORMAT_ERROR)
			*why = "stream header is not xz's";
		else if (rc == LZMA_MEM_ERROR || rc == LZMA_MEMLIMIT_ERROR)
			*why = "decoder is out of memory";
		else if (rc != LZMA_OK && rc != LZMA_STREAM_END && rc != LZMA_BUF_ERROR)
			*why = "stream uses options this liblzma lacks, or is corrupt";
		break;
	}
#endif
#ifdef SNAPFS_HAVE_BZ2
	case DEC_BZIP2: {
		bz_stream *s = &q->s.bz;
		s->next_in = (char *)q->next;
		s->avail_in = (unsigned)q->avail;
		s->next_out = (char *)q->out;
		s->avail_out = sizeof(q->out);
		int rc = AR(BZ2_bzDecompress)(s);
		q->next = (const unsigned char *)s->next_in;
		q->avail = s->avail_in;
		made = sizeof(q->out) - s->avail_out;
		q->unit_end = rc == BZ_STREAM_END;
		if (rc == BZ_DATA_ERROR)
			*why = "data is corrupt, or fails its CRC";
		else if (rc == BZ_DATA_ERROR_MAGIC)
			*why = "stream header is not bzip2's";
		else if (rc != BZ_OK && rc != BZ_STREAM_END)
			*why = "decoder is out of memory";
		if (rc == BZ_MEM_ERROR)
			*code = ENOMEM;
		break;
	}
#endif
	default:
		*why = "no decoder";
	}
	return *why ? -1 : (ssize_t)made;
}

/* (Re)start the decoder for a member. 0, or -1 when out of memory. */
static int seq_init(struct dec *d)
{
	struct seq *q = d->seq;
	bool ok = false;

	switch (d->kind) {
#ifdef SNAPFS_HAVE_ZLIB
	case DEC_GZIP:	/* 16 + window bits: gzip only, with its header and CRC-32 trailer */
		ok = (q->live ? inflateReset(&q->s.gz) : inflateInit2(&q->s.gz, 16 + MAX_WBITS)) == Z_OK;
		q->live |= ok;
		break;
#endif
#ifdef SNAPFS_HAVE_LZMA
	case DEC_XZ:	/* one stream, its check verified: concatenated ones are members here */
		ok = AR(lzma_stream_decoder)(&q->s.xz, UINT64_MAX, 0) == LZMA_OK;
		q->live = true;	/* lzma_end() frees what even a failed start kept */
		break;
#endif
#ifdef SNAPFS_HAVE_BZ2
	case DEC_BZIP2:
		if (q->live)
			AR(BZ2_bzDecompressEnd)(&q->s.bz);
		q->live = ok = AR(BZ2_bzDecompressInit)(&q->s.bz, 0, 0) == BZ_OK;
		break;
#endif
	default:
		break;
	}
	return ok ? 0 : -1;
}

static void seq_end(struct dec *d)
{
	struct seq *q = d->seq;

	if (!q || !q->live)
		return;
	switch (d->kind) {
#ifdef SNAPFS_HAVE_ZLIB
	case DEC_GZIP:
		inflateEnd(&q->s.gz);
		break;
#endif
#ifdef SNAPFS_HAVE_LZMA
	case DEC_XZ:
		AR(lzma_end)(&q->s.xz);
		break;
#endif
#ifdef SNAPFS_HAVE_BZ2
	case DEC_BZIP2:
		AR(BZ2_bzDecompressEnd)(&q->s.bz);
		break;
#endif
	default:
		break;
	}
	q->live = false;
}

static int seq_fill(struct dec *d)
{
	struct seq *q = d->seq;
	ssize_t n;

	if (q->avail || q->eof)
		return 0;
	do
		n = read(d->fd, q->in, sizeof(q->in));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		err_set(&d->e, errno, "cannot read '%s': %s", d->name, strerror(errno));
		return (int)failed(d);
	}
	q->eof = n == 0;
	q->next = q->in;
	q->avail = (size_t)n;
	q->in_off += (uint64_t)n;
	progress(d, q->in_off);
	return 0;
}

/* The file offset of the next byte to decode. */
static uint64_t seq_at(const struct seq *q)
{
	return q->in_off - q->avail;
}

static ssize_t seq_damaged(struct dec *d, const char *what)
{
	return damaged_at(d, seq_at(d->seq), d->seq->what, what);
}

static ssize_t seq_no_memory(struct dec *d)
{
	err_set(&d->e, ENOMEM, "cannot decode '%s': out of memory; free some and read it again",
		d->name);
	return failed(d);
}

/*
 * After a member: 1 when another one follows, 0 at the end. As gzip -d,
 * bzip2 -d, xz and libarchive take them: zero bytes (tape padding) only at
 * the end, or for xz in fours (its stream padding) also between streams;
 * anything else there is damage after the members before it.
 */
static ssize_t seq_next_member(struct dec *d)
{
	static const char *const magic[] = { [DEC_GZIP] = "\x1f\x8b", [DEC_XZ] = "\xfd" "7zXZ",
					     [DEC_BZIP2] = "BZh" };
	struct seq *q = d->seq;
	uint64_t zeros = 0, at;
	unsigned char m[6];
	size_t len = strlen(magic[d->kind]);

	d->unit_out = d->out;	/* the member that ended passed its checks */
	for (;;) {
		if (seq_fill(d) < 0)
			return -1;
		if (!q->avail || *q->next != 0)
			break;
		q->next++;
		q->avail--;
		zeros++;
	}
	at = seq_at(q);
	if (d->kind == DEC_XZ && zeros % 4)
		return damaged_at(d, at - zeros, q->what,
				  "stream padding that is not a multiple of 4 bytes");
	if (!q->avail)
		return 0;
	if (zeros && d->kind != DEC_XZ)
		return damaged_at(d, at - zeros, q->what, "zero bytes between members");
	if (fd_pread_all(d->fd, m, len, at) < 0 || memcmp(m, magic[d->kind], len) != 0)
		return damaged_at(d, at, q->what,
				  "data follows the last member but begins no member");
	q->unit_end = false;
	q->full = false;
	return seq_init(d) == 0 ? 1 : seq_no_memory(d);
}

static ssize_t seq_next(struct dec *d, const void **buf)
{
	struct seq *q = d->seq;

	for (;;) {
		const char *why = NULL;
		ssize_t r;
		if (q->unit_end && (r = seq_next_member(d)) <= 0)
			return r;
		if (!q->full && seq_fill(d) < 0)
			return -1;
		if (q->eof && !q->avail && !q->full) {
			d->cut = true;
			return seq_damaged(d, "data ends early");
		}
		int code = EIO;
		if ((r = seq_step(d, &why, &code)) < 0)
			return code == ENOMEM ? seq_no_memory(d) : seq_damaged(d, why);
		/* out[] filled: the decoder may hold more, with no input needed */
		q->full = !q->unit_end && (size_t)r == sizeof(q->out);
		if (r > 0) {
			*buf = q->out;
			return r;
		}
	}
}

static int seq_start(struct dec *d, struct err *e)
{
	static const char *const what[] = { [DEC_GZIP] = "gzip", [DEC_XZ] = "xz",
					     [DEC_BZIP2] = "bzip2" };

	if (!(d->seq = calloc(1, sizeof(*d->seq))))
		return err_set(e, ENOMEM, "out of memory");
	d->seq->what = what[d->kind];
	if (seq_init(d) < 0)
		return err_set(e, ENOMEM, "out of memory");
	return lseek(d->fd, 0, SEEK_SET) < 0 ? err_set(e, errno, "cannot read '%s': %s", d->name,
						       strerror(errno)) : 0;
}
#endif

/* ---- the decoder ---- */

static ssize_t dec_step(struct dec *d, const void **buf)
{
	switch (d->kind) {
	case DEC_FRAMES:
		return ring_next(d, buf);
	case DEC_ZSTD:
		return zsf_next(d, buf);
	case DEC_GZIP:
	case DEC_XZ:
	case DEC_BZIP2:
#ifdef SEQ_CODECS
		return seq_next(d, buf);
#endif
		break;
	case DEC_LZ4:
#ifdef SNAPFS_HAVE_LZ4
		return lz4_next(d, buf);
#endif
		break;
	}
	return 0;
}

static ssize_t dec_next(struct dec *d, const void **buf)
{
	ssize_t len = d->failed ? -1 : dec_step(d, buf);

	if (len > 0)
		d->out += (uint64_t)len;
	return len;
}

/* Through arlib's pointers: the daemon scans with this and does not link libarchive. */
static la_ssize_t dec_read(struct archive *a, void *ctx, const void **buf)
{
	struct dec *d = ctx;
	ssize_t len = dec_next(d, buf);

	if (len < 0)
		AR(archive_set_error)(a, d->e.code ? d->e.code : EIO, "%s", d->e.msg);
	return len;
}

static struct dec *dec_new(int fd, const char *name, uint64_t size, const struct dec_opts *o,
			   enum dec_kind kind)
{
	struct dec *d = calloc(1, sizeof(*d));

	if (!d || !(d->name = strdup(name))) {
		free(d);
		return NULL;
	}
	d->kind = kind;
	d->fd = fd;
	d->size = size;
	d->index_at = -1;
	if (o)
		d->o = *o;
	return d;
}

int dec_open_frames(int fd, const char *name, const struct zseek *z, const struct dec_opts *o,
		    struct dec **out, struct err *e)
{
	return dec_open_frames_at(fd, name, z, o, 0, out, e);
}

int dec_open_frames_at(int fd, const char *name, const struct zseek *z, const struct dec_opts *o,
		       uint64_t at, struct dec **out, struct err *e)
{
	struct dec *d = dec_new(fd, name, 0, o, DEC_FRAMES);

	if (!d)
		return err_set(e, ENOMEM, "out of memory");
	pthread_mutex_init(&d->ring.mu, NULL);
	pthread_cond_init(&d->ring.cv, NULL);
	d->ring_started = true;
	d->out = d->unit_out = at;
	if (ring_start(&d->ring, z, at, d->o.threads, e) < 0) {
		dec_close(d);
		return -1;
	}
	*out = d;
	return 0;
}

int dec_open_stream(int fd, const char *name, uint64_t size, const struct dec_opts *o,
		    struct dec **out, struct err *e)
{
	unsigned char m[10] = { 0 };
	size_t have = size < sizeof(m) ? (size_t)size : sizeof(m);
	enum dec_kind kind;
	struct dec *d;
	int rc;

	*out = NULL;
	if (have < 4 || fd_pread_all(fd, m, have, 0) < 0)
		return 0;	/* too short for any of them, or unreadable: libarchive says so */
	if (le32_get(m) == ZSTD_MAGIC || (le32_get(m) & ZSTD_SKIP_MASK) == ZSEEK_SKIPPABLE_MAGIC_BASE)
		kind = DEC_ZSTD;
#ifdef SNAPFS_HAVE_ZLIB
	else if (m[0] == 0x1f && m[1] == 0x8b)
		kind = DEC_GZIP;
#endif
#ifdef SNAPFS_HAVE_LZMA
	else if (have >= 6 && memcmp(m, "\xFD" "7zXZ\0", 6) == 0 && arlib_load(NULL) == 0 && arlib.xz)
		kind = DEC_XZ;
#endif
#ifdef SNAPFS_HAVE_BZ2
	/* "BZh1".."BZh9", then a block's magic or the end of the stream (a tar may begin "BZh9") */
	else if (have == 10 && memcmp(m, "BZh", 3) == 0 && m[3] >= '1' && m[3] <= '9' &&
		 (memcmp(m + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
		  memcmp(m + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0) &&
		 arlib_load(NULL) == 0 && arlib.bz2)
		kind = DEC_BZIP2;
#endif
#ifdef SNAPFS_HAVE_LZ4
	else if (le32_get(m) == LZ4F_MAGICNUMBER && arlib_load(NULL) == 0 && arlib.lz4)
		kind = DEC_LZ4;
#endif
	else
		return 0;
	if (!(d = dec_new(fd, name, size, o, kind)))
		return err_set(e, ENOMEM, "out of memory");
#ifdef SEQ_CODECS
	rc = kind == DEC_ZSTD || kind == DEC_LZ4 ? zsf_start(d, e) : seq_start(d, e);
#else
	rc = zsf_start(d, e);
#endif
	if (rc < 0) {
		dec_close(d);
		return -1;
	}
	*out = d;
	return 0;
}

int dec_attach(struct dec *d, struct archive *a)
{
	if (arlib_load(NULL) < 0)	/* loaded already: a came from it */
		return ARCHIVE_FATAL;
	return AR(archive_read_open)(a, d, NULL, dec_read, NULL);
}

const struct err *dec_error(const struct dec *d)
{
	return d && d->failed ? &d->e : NULL;
}

uint64_t dec_failed_end(const struct dec *d)
{
	return d && d->failed ? d->fail_end : 0;
}

int dec_finish(struct dec *d, struct err *e)
{
	const void *buf;
	ssize_t len;

	while ((len = dec_next(d, &buf)) > 0)
		;
	if (len < 0) {
		*e = d->e;
		return -1;
	}
	return 0;
}

bool dec_is_gzip(const struct dec *d)
{
	return d->kind == DEC_GZIP;
}

uint64_t dec_sound(const struct dec *d)
{
	return d->cut || d->kind == DEC_FRAMES ? d->out : d->unit_out;
}

int64_t dec_index_at(const struct dec *d)
{
	return d ? d->index_at : -1;
}

void dec_close(struct dec *d)
{
	if (!d)
		return;
	if (d->ring_started) {
		ring_release(&d->ring);
		pthread_cond_destroy(&d->ring.cv);
		pthread_mutex_destroy(&d->ring.mu);
	}
	ZSTD_freeDCtx(d->zs.dctx);
#ifdef SNAPFS_HAVE_LZ4
	if (d->lz4)
		AR(LZ4F_freeDecompressionContext)(d->lz4);
#endif
	free(d->zs.in);
	free(d->zs.out);
#ifdef SEQ_CODECS
	seq_end(d);
	free(d->seq);
#endif
	free(d->name);
	free(d);
}

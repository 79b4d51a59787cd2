#include "gzseek.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#define WIN 32768u		/* deflate's window */
#define IN_SIZE 65536u
#define CHUNK0 65536u		/* first size of a checked chunk of output */
#ifndef CHUNKS
#define CHUNKS 65536u		/* chunk CRCs held at most: 256 KiB, 4 GiB of 64 KiB chunks */
#endif

struct point {
	uint64_t out;		/* offset in the decompressed stream */
	uint64_t in;		/* compressed bytes consumed (file offset of the next one) */
	uint64_t mout;		/* member output before out */
	uint32_t crc;		/* member CRC-32 before out */
	uint32_t ccrc;		/* CRC-32 of out's chunk before out */
	uint32_t wlen;		/* window bytes: min(mout, WIN) */
	uint8_t bits;		/* unused high bits of the byte at in - 1 */
	uint8_t byte;		/* that byte */
	unsigned char *win;
};

enum state {
	S_NONE,			/* no positioned decoder */
	S_DEFLATE,		/* inside a member's deflate data */
	S_TRAILER,		/* at a member's trailer */
	S_END,			/* past the last member */
};

struct gzs {
	int fd;
	char *path;
	z_stream zs;
	bool zinit;
	enum state st;

	uint64_t out;		/* decompressed offset of the decoder */
	uint64_t hist;		/* oldest offset whose byte win may hold */
	uint64_t mout;		/* output of the present member */
	uint32_t crc;
	uint32_t ccrc;		/* of the present chunk so far */

	unsigned char *in;	/* IN_SIZE bytes; with ring and zs, NULL or ended after gzs_trim() */
	uint64_t in_off;	/* file offset of in[0] */
	unsigned char *ring;	/* the last output: byte at offset o is ring[o % rsize] */
	uint64_t rsize;		/* twice a chunk */

	struct point *pts;
	uint32_t npts;
	uint64_t span;

	/* CRC-32 of each chunk of output the first time it was decoded */
	uint32_t *crcs;
	uint32_t ncrcs;
	uint64_t chunk;

	uint32_t starts, restarts;
	uint64_t inflated;
};

struct gzs *gzs_new(int fd, const char *path)
{
	struct gzs *g = calloc(1, sizeof(*g));

	/* the input buffer, the ring and the inflate state are made by the first restart() */
	if (!g || !(g->path = strdup(path)) ||
	    !(g->pts = calloc(GZS_POINTS, sizeof(*g->pts))) ||
	    !(g->crcs = calloc(CHUNKS, sizeof(*g->crcs)))) {
		gzs_free(g);
		return NULL;
	}
	g->fd = fd;
	g->span = GZS_SPAN;
	g->chunk = CHUNK0;
	g->rsize = 2 * CHUNK0;
	return g;
}

void gzs_free(struct gzs *g)
{
	if (!g)
		return;
	gzs_trim(g);
	free(g->pts);
	free(g->crcs);
	free(g->path);
	free(g);
}

void gzs_trim(struct gzs *g)
{
	for (uint32_t i = 0; i < g->npts; i++)
		free(g->pts[i].win);
	g->npts = 0;
	g->span = GZS_SPAN;
	g->st = S_NONE;
	if (g->zinit)
		inflateEnd(&g->zs);
	g->zinit = false;
	free(g->ring);
	g->ring = NULL;
	free(g->in);
	g->in = NULL;
}

void gzs_stats(const struct gzs *g, struct gzs_stats *s)
{
	s->starts = g->starts;
	s->restarts = g->restarts;
	s->inflated = g->inflated;
	s->points = g->npts;
	s->span = g->span;
}

/* File offset of the next compressed byte. */
static uint64_t in_pos(const struct gzs *g)
{
	return g->in_off + (uint64_t)(g->zs.next_in - g->in);
}

static int damaged(struct gzs *g, const char *why, struct err *e)
{
	g->st = S_NONE;
	return err_set(e, EIO, "'%s' is damaged: a member's data at byte %" PRIu64 ": %s; run "
			       "'snapkeep verify' on it", g->path, in_pos(g), why);
}

/* Refill the input when it is used up: 0 (avail_in is 0 at the end of the file), or -1. */
static int fill(struct gzs *g, struct err *e)
{
	ssize_t n;

	if (g->zs.avail_in)
		return 0;
	g->in_off = in_pos(g);
	g->zs.next_in = g->in;
	do
		n = pread(g->fd, g->in, IN_SIZE, (off_t)g->in_off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		g->st = S_NONE;
		return err_set(e, errno, "cannot read '%s': %s", g->path, strerror(errno));
	}
	g->zs.avail_in = (uInt)n;
	return 0;
}

/* The next compressed byte; -1 at the end of the file, -2 on a read error. */
static int get_byte(struct gzs *g, struct err *e)
{
	if (fill(g, e) < 0)
		return -2;
	if (!g->zs.avail_in)
		return -1;
	g->zs.avail_in--;
	return *g->zs.next_in++;
}

static int skip_bytes(struct gzs *g, unsigned n, struct err *e)
{
	while (n--) {
		int c = get_byte(g, e);
		if (c < 0)
			return c == -2 ? -1 : damaged(g, "a gzip header ends early", e);
	}
	return 0;
}

static int skip_string(struct gzs *g, struct err *e)
{
	int c;

	while ((c = get_byte(g, e)) > 0)
		;
	return c == 0 ? 0 : c == -2 ? -1 : damaged(g, "a gzip header ends early", e);
}

/* Read a member's header, its first two bytes already taken; start inflating its data. */
static int member_header(struct gzs *g, struct err *e)
{
	int flg, lo, hi;

	if (get_byte(g, e) != 8)
		return damaged(g, "not a deflate gzip member", e);
	if ((flg = get_byte(g, e)) < 0 || (flg & 0xe0))
		return damaged(g, "a gzip header is invalid", e);
	if (skip_bytes(g, 6, e) < 0)	/* mtime, xfl, os */
		return -1;
	if (flg & 4) {
		if ((lo = get_byte(g, e)) < 0 || (hi = get_byte(g, e)) < 0)
			return damaged(g, "a gzip header ends early", e);
		if (skip_bytes(g, (unsigned)(lo | hi << 8), e) < 0)
			return -1;
	}
	if ((flg & 8 && skip_string(g, e) < 0) || (flg & 16 && skip_string(g, e) < 0) ||
	    (flg & 2 && skip_bytes(g, 2, e) < 0))
		return -1;
	if (inflateReset(&g->zs) != Z_OK)
		return damaged(g, "inflate cannot restart", e);
	g->mout = 0;
	g->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	g->st = S_DEFLATE;
	return 0;
}

/* Check the trailer of the member just ended; go on to the next member, or to the end. */
static int member_end(struct gzs *g, struct err *e)
{
	uint32_t crc = 0, len = 0;
	int c;

	for (int k = 0; k < 8; k++) {
		if ((c = get_byte(g, e)) < 0)
			return c == -2 ? -1 : damaged(g, "a gzip trailer ends early", e);
		if (k < 4)
			crc |= (uint32_t)c << (8 * k);
		else
			len |= (uint32_t)c << (8 * (k - 4));
	}
	if (crc != g->crc)
		return damaged(g, "gzip CRC-32 mismatch", e);
	if (len != (uint32_t)g->mout)
		return damaged(g, "gzip length mismatch", e);
	/* another member, or the end (trailing bytes that are not gzip end it too) */
	if ((c = get_byte(g, e)) == -2)
		return -1;
	if (c != 0x1f || get_byte(g, e) != 0x8b) {
		g->st = S_END;
		return 0;
	}
	return member_header(g, e);
}

/*
 * The table is full: keep every other checkpoint, the first included, and
 * double the spacing. By index, not by distance: deflate blocks may lie
 * farther apart than twice the spacing (megabytes of zeros), and the table
 * must shrink all the same.
 */
static void thin(struct gzs *g)
{
	uint32_t k = 0;

	g->span *= 2;
	for (uint32_t i = 0; i < g->npts; i++) {
		if (i % 2 == 0)
			g->pts[k++] = g->pts[i];
		else
			free(g->pts[i].win);
	}
	g->npts = k;
}

/* Record a checkpoint where the decoder stands, at a block boundary with bits unused. */
static void record(struct gzs *g, unsigned bits)
{
	struct point *p;
	uint32_t wlen = g->mout < WIN ? (uint32_t)g->mout : WIN;

	if (g->npts && g->out < g->pts[g->npts - 1].out + g->span)
		return;
	if (bits && g->zs.next_in == g->in)
		return;		/* the byte is gone with the last buffer: the next boundary will do */
	if (g->npts == GZS_POINTS) {
		thin(g);
		if (g->out < g->pts[g->npts - 1].out + g->span)
			return;
	}
	p = &g->pts[g->npts];
	memset(p, 0, sizeof(*p));
	if (wlen && !(p->win = malloc(wlen)))
		return;		/* no memory: no checkpoint, reads just inflate more */
	p->out = g->out;
	p->in = in_pos(g);
	p->mout = g->mout;
	p->crc = g->crc;
	p->ccrc = g->ccrc;
	p->wlen = wlen;
	p->bits = (uint8_t)bits;
	p->byte = bits ? g->zs.next_in[-1] : 0;
	for (uint32_t k = 0; k < wlen; k++)	/* the window's bytes, oldest first */
		p->win[k] = g->ring[(g->out - wlen + k) % g->rsize];
	g->npts++;
}

/* Position the decoder at checkpoint i, or at the start of the file when there is none. */
static int restart(struct gzs *g, uint32_t i, struct err *e)
{
	struct point *p = g->npts ? &g->pts[i] : NULL;

	if ((!g->in && !(g->in = malloc(IN_SIZE))) || (!g->ring && !(g->ring = malloc(g->rsize))))
		return err_set(e, ENOMEM, "out of memory");
	if (!g->zinit) {
		if (inflateInit2(&g->zs, -MAX_WBITS) != Z_OK)
			return err_set(e, ENOMEM, "out of memory");
		g->zinit = true;
	}
	g->zs.next_in = g->in;
	g->zs.avail_in = 0;
	if (!p)
		g->starts++;
	else
		g->restarts++;
	if (!p) {
		g->in_off = 0;
		g->out = g->hist = 0;
		g->ccrc = 0;
		if (get_byte(g, e) != 0x1f || get_byte(g, e) != 0x8b)
			return damaged(g, "not a gzip file", e);
		if (member_header(g, e) < 0)
			return -1;
		record(g, 0);
		return 0;
	}
	g->in_off = p->in;
	g->out = p->out;
	g->mout = p->mout;
	g->crc = p->crc;
	g->ccrc = p->ccrc;
	g->hist = p->out - p->wlen;
	for (uint32_t k = 0; k < p->wlen; k++)
		g->ring[(g->hist + k) % g->rsize] = p->win[k];
	if (inflateReset(&g->zs) != Z_OK ||
	    (p->bits && inflatePrime(&g->zs, p->bits, p->byte >> (8 - p->bits)) != Z_OK) ||
	    (p->wlen && inflateSetDictionary(&g->zs, p->win, p->wlen) != Z_OK))
		return damaged(g, "inflate cannot restart", e);
	g->st = S_DEFLATE;
	return 0;
}

/*
 * The chunk CRCs are full: chunks twice as long, each CRC combined with its
 * neighbour's; the partial CRCs of the checkpoints' chunks follow.
 */
static void widen_chunks(struct gzs *g)
{
	uint64_t from = g->out > g->rsize ? g->out - g->rsize : 0;
	unsigned char *ring = malloc(2 * g->rsize);

	if (!ring)
		return;		/* no memory: later chunks go unchecked */
	if (from < g->hist)
		from = g->hist;
	g->hist = from;		/* the bigger ring holds nothing older */
	for (uint64_t o = from; o < g->out; o++)
		ring[o % (2 * g->rsize)] = g->ring[o % g->rsize];
	free(g->ring);
	g->ring = ring;
	g->rsize *= 2;
	for (uint32_t i = 0; i < g->npts; i++) {
		struct point *p = &g->pts[i];
		uint64_t c = p->out / g->chunk;
		if (c & 1)
			p->ccrc = (uint32_t)crc32_combine(g->crcs[c - 1], p->ccrc,
							  (z_off_t)(p->out % g->chunk));
	}
	for (uint32_t i = 0; i < g->ncrcs / 2; i++)
		g->crcs[i] = (uint32_t)crc32_combine(g->crcs[2 * i], g->crcs[2 * i + 1],
						     (z_off_t)g->chunk);
	g->ncrcs /= 2;
	g->chunk *= 2;
}

/*
 * The decoder has just ended chunk c: the first time, keep its CRC-32; later,
 * check it, so bytes decoded again from a checkpoint are the bytes first decoded.
 */
static int chunk_end(struct gzs *g, uint64_t c, struct err *e)
{
	if (c < g->ncrcs) {
		if (g->crcs[c] != g->ccrc)
			return damaged(g, "the data differ from their first decode", e);
	} else if (c == g->ncrcs) {
		if (g->ncrcs < CHUNKS) {
			g->crcs[g->ncrcs++] = g->ccrc;
		} else {
			widen_chunks(g);	/* c was even: now the first half of a chunk */
			if (g->ncrcs < CHUNKS)
				return 0;
		}
	}
	g->ccrc = 0;
	return 0;
}

/* Decode one step forward: at most to the end of the window's ring, a chunk's or a block's. */
static int step(struct gzs *g, struct err *e)
{
	size_t at = (size_t)(g->out % g->rsize), room = (size_t)(g->rsize - at), made;
	uint64_t to_chunk = g->chunk - g->out % g->chunk;
	uint32_t c;
	int r;

	if (g->st == S_TRAILER)
		return member_end(g, e);
	if (g->st == S_END)
		return damaged(g, "the archive ends early", e);
	if (fill(g, e) < 0)
		return -1;
	if (!g->zs.avail_in)
		return damaged(g, "the archive ends early", e);
	if (room > to_chunk)
		room = (size_t)to_chunk;
	g->zs.next_out = g->ring + at;
	g->zs.avail_out = (uInt)room;
	r = inflate(&g->zs, Z_BLOCK);
	made = room - g->zs.avail_out;
	if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
		return damaged(g, r == Z_DATA_ERROR && g->zs.msg ? g->zs.msg
				  : r == Z_MEM_ERROR ? "out of memory" : "inflate failed", e);
	c = (uint32_t)crc32(0L, g->ring + at, (uInt)made);
	g->crc = (uint32_t)crc32_combine(g->crc, c, (z_off_t)made);
	g->ccrc = (uint32_t)crc32_combine(g->ccrc, c, (z_off_t)made);
	g->out += made;
	g->mout += made;
	g->inflated += made;
	if (made == to_chunk && chunk_end(g, g->out / g->chunk - 1, e) < 0)
		return -1;
	if (r == Z_STREAM_END)
		g->st = S_TRAILER;
	else if ((g->zs.data_type & 128) && !(g->zs.data_type & 64))
		record(g, (unsigned)g->zs.data_type & 7);
	return 0;
}

/* The last checkpoint at or before pos (0 when there is none). */
static uint32_t point_before(const struct gzs *g, uint64_t pos)
{
	uint32_t lo = 0, hi = g->npts;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->pts[mid].out <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Whether the ring holds the byte at pos. */
static bool held(const struct gzs *g, uint64_t pos)
{
	uint64_t low = g->out > g->rsize ? g->out - g->rsize : 0;

	return g->st != S_NONE && pos < g->out && pos >= (g->hist > low ? g->hist : low);
}

/* Whether reaching pos starts again from a checkpoint rather than decoding on. */
static bool must_restart(const struct gzs *g, uint64_t pos)
{
	return g->st == S_NONE || pos < g->out ||
	       (g->npts && g->pts[point_before(g, pos)].out > g->out);
}

uint64_t gzs_from(const struct gzs *g, uint64_t pos)
{
	if (held(g, pos))
		return pos;
	if (must_restart(g, pos))
		return g->npts ? g->pts[point_before(g, pos)].out : 0;
	return g->out;
}

int gzs_read(struct gzs *g, uint64_t pos, void *buf, size_t len, struct err *e)
{
	unsigned char *dst = buf;
	uint64_t end = pos + len, last;

	if (!len)
		return 0;
	while (len) {
		if (held(g, pos)) {
			/* in the window: copy what it holds */
			size_t n = g->out - pos < len ? (size_t)(g->out - pos) : len;
			for (size_t k = 0; k < n;) {
				size_t at = (size_t)((pos + k) % g->rsize);
				size_t run = (size_t)(g->rsize - at);
				if (run > n - k)
					run = n - k;
				memcpy(dst + k, g->ring + at, run);
				k += run;
			}
			dst += n;
			pos += n;
			len -= n;
			continue;
		}
		if (must_restart(g, pos)) {
			if (restart(g, point_before(g, pos), e) < 0)
				return -1;
			continue;
		}
		if (step(g, e) < 0)
			return -1;
	}
	/* bytes decoded before are returned only once their chunk checked */
	if ((last = (end - 1) / g->chunk) < g->ncrcs)
		while (g->out < (last + 1) * g->chunk && last < g->ncrcs)
			if (step(g, e) < 0)
				return -1;
	return 0;
}

/*
 * gzseek: random reads in the decompressed stream of a gzip file (one or more
 * concatenated gzip members), with checkpoints recorded as the decoder passes.
 *
 * A checkpoint is a deflate block boundary: the compressed offset (and the
 * bits of the last byte still unused), the decompressed offset, the member's
 * CRC-32 and length so far, and the last 32 KiB of that member's output (the
 * window later blocks may refer to). Inflate restarts there with
 * inflatePrime() and inflateSetDictionary(). Checkpoints are recorded only
 * when the decoder first passes a place, at block boundaries at least `span`
 * bytes of output apart (the first at the first member's data); span starts at
 * GZS_SPAN and doubles, dropping every other checkpoint, when GZS_POINTS are
 * held. So a read inflates at most about span bytes (plus a chunk), and one
 * file's checkpoints hold at most GZS_POINTS * 32 KiB = 4 MiB of windows.
 *
 * One inflate state stays positioned after the last read, with a ring of its
 * last output (at least 32 KiB, twice a chunk): reading forward, or a little
 * back, never restarts.
 *
 * Checks. Each member's CRC-32 and length are checked when the decoder passes
 * its trailer, and zlib's errors are damage. Besides, the output is cut into
 * chunks (64 KiB, doubling when 65536 CRCs are held: 256 KiB of them) whose
 * CRC-32 is kept the first time the decoder passes them; decoding a chunk
 * again checks it, and a read returns only once the chunk of its last byte
 * is checked. So a file damaged after it was first read gives EIO, not wrong
 * bytes, even where zlib sees nothing (a stored block). Damage present at the
 * first decode that zlib cannot see shows only at the member's trailer
 * (single-member gzip: at the end of the file); 'snapkeep verify' reads to it.
 * Errors are EIO naming the file and the compressed byte.
 *
 * Memory per file: 4 MiB of checkpoint windows at most, 256 KiB of chunk
 * CRCs, the ring (128 KiB until the file decodes to more than 4 GiB), 64 KiB
 * of input and zlib's inflate state (about 40 KiB with its own window).
 *
 *	gzs_new() -> gzs_read()... -> gzs_free()
 * Not thread-safe: the caller serialises (foreign.c holds its mutex).
 */
#ifndef SNAPFS_GZSEEK_H
#define SNAPFS_GZSEEK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifndef GZS_SPAN		/* tests shrink these to reach the thinning */
#define GZS_SPAN (1u << 20)	/* first spacing of checkpoints, in output bytes */
#endif
#ifndef GZS_POINTS
#define GZS_POINTS 128		/* checkpoints held at most per file */
#endif

struct gzs;

struct gzs_stats {
	uint32_t starts;	/* decodes from the start with no checkpoint (the first one) */
	uint32_t restarts;	/* decodes from a checkpoint (the one at the start too) */
	uint64_t inflated;	/* output bytes produced by inflate */
	uint32_t points;	/* checkpoints held */
	uint64_t span;		/* their present spacing */
};

/* Read the gzip file open as fd (kept open by the caller; read with pread). NULL: no memory. */
struct gzs *gzs_new(int fd, const char *path);
void gzs_free(struct gzs *g);

/*
 * Read exactly len bytes at pos of the decompressed stream. 0, or -1 with EIO
 * when the file is damaged or ends before pos + len.
 */
int gzs_read(struct gzs *g, uint64_t pos, void *buf, size_t len, struct err *e);

/*
 * Where a read at pos would start decoding: pos itself when the ring holds it,
 * else the decoder's place or a checkpoint's. The read passes the bytes from
 * there to pos.
 */
uint64_t gzs_from(const struct gzs *g, uint64_t pos);

void gzs_stats(const struct gzs *g, struct gzs_stats *s);

/*
 * Give back what positioning the decoder holds (its checkpoints, ring, input
 * buffer and inflate state): only the chunk CRCs stay, a few bytes per 64 KiB
 * decoded, so the next read decodes from the start of the file and still finds
 * bytes that changed since they were first decoded. Stats go on counting.
 */
void gzs_trim(struct gzs *g);

#endif

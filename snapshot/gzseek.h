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
 * bytes of output apart (and at each member's start); span starts at
 * GZS_SPAN and doubles, dropping every other checkpoint, when GZS_POINTS are
 * held. So a read inflates at most about span bytes before its data, and one
 * file's checkpoints hold at most GZS_POINTS * 32 KiB = 4 MiB of windows.
 *
 * One inflate state stays positioned after the last read, with its last
 * 32 KiB of output: reading forward (or a little back) never restarts.
 *
 * Each member's CRC-32 and length are checked when the decoder passes its
 * trailer; zlib's errors and a failed check are EIO naming the file and the
 * compressed byte. Damage in a deflate stream that zlib cannot see is caught
 * only at the member's trailer: bytes read before it are returned as decoded.
 *
 *	gzs_new() -> gzs_read()... -> gzs_free()
 * Not thread-safe: the caller serialises (foreign.c holds its mutex).
 */
#ifndef SNAPFS_GZSEEK_H
#define SNAPFS_GZSEEK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define GZS_SPAN (1u << 20)	/* first spacing of checkpoints, in output bytes */
#define GZS_POINTS 128		/* checkpoints held at most per file */

struct gzs;

struct gzs_stats {
	uint32_t starts;	/* decodes from the start of the file */
	uint32_t restarts;	/* decodes from a later checkpoint */
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

void gzs_stats(const struct gzs *g, struct gzs_stats *s);

#endif

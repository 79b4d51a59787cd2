/*
 * fcache: decompressed frames of native archives, shared by all threads.
 *
 * A bounded cache keyed by (index serial, frame number), split into shards
 * with a lock each, so threads reading different frames rarely meet and no
 * lock is global. The bound counts all the memory mapped for frames: cached,
 * pinned after their eviction, being decoded, or kept (a 32nd of the bound) as
 * the buffers of evicted frames for reuse; headers and size classes included.
 * A frame handed out is pinned until put and never freed before. Once the
 * cache is full, a new frame takes the buffer of the least recently used frame
 * no one holds (spares of other sizes are unmapped); it passes the bound only
 * when every mapped frame is pinned, and comes back under it at the next miss
 * after they are put. Decoding takes one of at most max(2, CPUs) decompression
 * contexts. fcache_frames() gives the idx_frames hooks that make idx_pread()
 * read through the cache.
 *
 *	fcache_new() -> { idx_pread() via fcache_frames() }... -> fcache_free()
 * All functions but fcache_new() and fcache_free() are thread-safe.
 */
#ifndef SNAPFS_FCACHE_H
#define SNAPFS_FCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"

struct fcache;

/* A cache of at most max_bytes of decoded frames (at least one frame is always kept). */
struct fcache *fcache_new(size_t max_bytes);
void fcache_free(struct fcache *c);

/* Hooks for idx_reader_set_frames(); valid while c lives. */
const struct idx_frames *fcache_frames(struct fcache *c);

/* True the first time it is asked of a decoded frame (pin from the hooks' get). */
bool fcache_claim(struct fcache *c, void *pin);
/* The hooks' put, for a pin handed on to another thread. */
void fcache_unpin(struct fcache *c, void *pin);
/* What a pin holds: frame bytes (*len of them) of the index with serial *serial (idx_serial()). */
const unsigned char *fcache_pinned(const void *pin, uint32_t *len, uint64_t *serial);

struct fcache_stats {
	uint64_t hits, misses, bytes;	/* bytes: the frames cached */
	uint64_t mapped;	/* all frames mapped: cached, pinned, spare (the bound's measure) */
};
void fcache_stats(struct fcache *c, struct fcache_stats *out);

#endif

/*
 * fcache: decompressed frames of native archives, shared by all threads.
 *
 * A bounded cache keyed by (index serial, frame number), split into shards
 * with a lock each, so threads reading different frames rarely meet and no
 * lock is global. The bound counts the memory mapped for frames (headers and
 * size classes included), a 32nd of it kept as the buffers of evicted frames
 * for reuse. A frame handed out is pinned until put; pinned frames are never
 * freed, so memory can pass the bound by one frame per reading thread, and by
 * one frame per shard when the bound is smaller than 16 frames. fcache_frames()
 * gives the idx_frames hooks that make idx_pread() read through the cache.
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

struct fcache_stats {
	uint64_t hits, misses, bytes;
};
void fcache_stats(struct fcache *c, struct fcache_stats *out);

#endif

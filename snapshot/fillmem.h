/*
 * fillmem: memory for buffers written in full as soon as they are made (an
 * index as it loads, a decoded frame). It is mapped and its pages are made in
 * one call (MADV_POPULATE_WRITE, Linux 5.14) instead of a page fault each. In
 * the VMs the benchmarks ran on each fault is an exit to the host, and the
 * call is about three times as fast; elsewhere the two cost about the same.
 * On an older kernel the call fails and the pages come by faults as before.
 * Pages made in advance are committed at once: only sizes the caller has
 * checked (bytes that exist in a file, a body no bigger than its frame can
 * hold) should ask for them. Thread-safe.
 */
#ifndef SNAPFS_FILLMEM_H
#define SNAPFS_FILLMEM_H

#include <stdbool.h>
#include <stddef.h>

/* len bytes (a multiple of the page size) mapped, the first fill of them made; NULL if not. */
void *fill_map(size_t len, size_t fill);

/*
 * n bytes aligned as malloc's, given back with fill_free() only. A block of
 * 64 KiB or more is mapped: with fill its pages are made at once, without them
 * they come as they are written. Smaller ones are malloc's. fill_free(NULL)
 * does nothing.
 */
void *fill_alloc(size_t n, bool fill);
void fill_free(void *p);

#endif

/*
 * fillmem: memory for buffers written in full as soon as they are made (an
 * index as it loads, a decoded frame). It is mapped and its pages are made in
 * one call (MADV_POPULATE_WRITE, Linux 5.14) instead of a page fault each. In
 * the VMs the benchmarks ran on each fault is an exit to the host, and the
 * call is about three times as fast; elsewhere it costs no more. On an older
 * kernel the call fails and the pages come by faults as before. Thread-safe.
 */
#ifndef SNAPFS_FILLMEM_H
#define SNAPFS_FILLMEM_H

#include <stddef.h>

/* len bytes (a multiple of the page size) mapped, the first fill of them made; NULL if not. */
void *fill_map(size_t len, size_t fill);

/*
 * n bytes to be written whole, aligned as malloc's; small ones come from
 * malloc. Give them back with fill_free() only. fill_free(NULL) does nothing.
 */
void *fill_alloc(size_t n);
void fill_free(void *p);

#endif

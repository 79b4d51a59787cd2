#include "fillmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

/*
 * Under AddressSanitizer every block is malloc's own, with no header, so that
 * it checks the bounds on both sides.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FILL_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FILL_PLAIN 1
#endif
#endif

/* Below this, malloc's own arenas serve: their pages are mostly made already. */
#define FILL_MIN (64u * 1024)

/*
 * Each block starts with a header holding the length of its mapping, or 0 for
 * one from malloc; the header keeps the caller's bytes aligned as malloc's.
 */
#define FILL_HDR 16u

void *fill_map(size_t len, size_t fill)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	if (fill)
		(void)madvise(m, fill < len ? fill : len, MADV_POPULATE_WRITE);
	return m;
}

#ifdef FILL_PLAIN

void *fill_alloc(size_t n, bool fill)
{
	(void)fill;
	return malloc(n ? n : 1);
}

void fill_free(void *p)
{
	free(p);
}

#else

void *fill_alloc(size_t n, bool fill)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len;
	unsigned char *b;

	if (n > SIZE_MAX - FILL_HDR - page)
		return NULL;
	if (n < FILL_MIN) {
		if (!(b = malloc(n + FILL_HDR)))
			return NULL;
		*(size_t *)(void *)b = 0;
		return b + FILL_HDR;
	}
	len = (n + FILL_HDR + page - 1) / page * page;
	if (!(b = fill_map(len, fill ? len : 0)))
		return NULL;
	*(size_t *)(void *)b = len;
	return b + FILL_HDR;
}

void fill_free(void *p)
{
	unsigned char *b;
	size_t len;

	if (!p)
		return;
	b = (unsigned char *)p - FILL_HDR;
	len = *(size_t *)(void *)b;
	if (len)
		munmap(b, len);
	else
		free(b);
}

#endif

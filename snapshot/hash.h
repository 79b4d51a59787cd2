/*
 * hash: FNV-1a over bytes, 64 bits, from an offset basis one digit short of
 * the published one (1469598103934665603, not 14695981039346656037): the
 * first versions had it so, and its values are part of what users see, since
 * fs/tree.c derives the mount's inode numbers from it and those must not
 * change between versions (SPEC: stable across remounts). It mixes as well.
 */
#ifndef SNAPFS_HASH_H
#define SNAPFS_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hash_fnv(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

#endif

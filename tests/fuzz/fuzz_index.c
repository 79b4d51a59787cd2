/*
 * fuzz_index: libFuzzer target for the index body of a native archive
 * (snapshot/index.c load_body), the bytes a damaged or hostile archive's index
 * frame decompresses to. Runs tests/fuzz/run.sh.
 *
 * Whatever the bytes, idx_open_blob() either fails with a message or gives an
 * index every accessor can walk without reading out of bounds: every entry,
 * its name, link and owners, xattrs, sparse map, path and lookup back by name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "index.h"

static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		sink += c[i];
}

static void walk(struct idx *x)
{
	char path[4096];
	struct err e;
	uint32_t n = idx_count(x);

	for (uint32_t i = 0; i < n; i++) {
		struct idx_entry ent;

		idx_get(x, i, &ent);
		touch(ent.name, ent.name_len);
		if (ent.link)
			touch(ent.link, ent.link_len);
		if (ent.uname)
			touch(ent.uname, ent.uname_len);
		if (ent.gname)
			touch(ent.gname, ent.gname_len);
		for (uint32_t k = 0; k < ent.nxattrs; k++) {
			struct idx_xattr a;
			idx_xattr(x, &ent, k, &a);
			touch(a.name, a.name_len);
			touch(a.value, a.value_len);
		}
		for (uint32_t k = 0; k < ent.nsparse; k++) {
			struct idx_sparse s;
			idx_sparse(x, &ent, k, &s);
			sink += (unsigned)(s.off + s.len);
		}
		if (ent.first_child != IDX_NONE && ent.nchildren && ent.first_child >= n)
			abort();	/* a child range past the entries got through the checks */
		if (i != IDX_ROOT && idx_lookup(x, ent.parent, ent.name, ent.name_len) != i)
			abort();	/* its directory finds another entry by its name, or none */
		if (idx_path(x, i, path, sizeof(path), &e) == 0)
			sink += idx_lookup_path(x, path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct idx *x;
	struct err e;

	if (idx_open_blob(data, size, "fuzz", &x, &e) == 0) {
		walk(x);
		idx_close(x);
	}
	return 0;
}

/*
 * fuzz_archive: libFuzzer target for whole archives as the daemon opens them
 * (idx_open_fd: the seek table, the index frame, or libarchive's scan of a
 * foreign archive), then every regular file read through, as `cat` would:
 * once by idx_pread() with the reader's own decoder, and once as the daemon
 * reads, through the frame cache (fs/fcache.c) by idx_pread_pieces() where it
 * applies. Runs tests/fuzz/run.sh.
 *
 * Whatever the bytes: an error with a message, never a crash, a leak or a read
 * out of bounds; a read either fails or returns bytes within the file, and
 * where both ways succeed they return the same bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcache.h"
#include "fuzz.h"
#include "index.h"

#define READ_BUDGET (4u << 20)	/* bytes read per input at most: keep runs fast */
#define READ_SIZE (64u * 1024)
#define PIECES 8		/* frames one read may span through the cache */

static char spill[] = "/tmp/fuzz-spill-XXXXXX";	/* foreign archives' decoded members */

static void spill_gone(void)
{
	rmdir(spill);	/* the index unlinks what it spills */
}

/* Bytes [off, off + want) of entry i read through the cache must be buf's got (= want) bytes. */
static void same_through_cache(struct idx *x, uint32_t i, uint64_t off, size_t want,
			       struct idx_reader *rc, const char *buf, ssize_t got)
{
	const void *base[PIECES];
	size_t len[PIECES], total = 0;
	void *pin[PIECES];
	struct err e;
	int n = idx_pread_pieces(x, i, want, off, rc, base, len, pin, PIECES, &e);

	if (n < 0)
		return;	/* not a plain file of a native archive, or damaged: EIO */
	for (int k = 0; k < n; k++) {
		if (len[k] > want - total || memcmp(base[k], buf + total, len[k]) != 0)
			abort();	/* other bytes than idx_pread()'s, or more */
		total += len[k];
	}
	idx_unpin(rc, pin, n);
	if (total != (size_t)got)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[READ_SIZE];
	static struct fcache *cache;	/* shared by all inputs, as by all archives in the daemon */
	static int ready;
	struct idx_opts o = { 0 };
	struct idx *x;
	struct err e;
	int fd;

	if (!ready) {
		if (!mkdtemp(spill) || !(cache = fcache_new(8u << 20)))
			abort();
		atexit(spill_gone);
		ready = 1;
	}
	o.spill_dir = spill;
	o.spill_max = 8u << 20;
	o.salvage = true;	/* as the daemon opens archives: what lies before damage is read */
	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	if (idx_open_fd(fd, "fuzz.tar.zst", &o, &x, &e) < 0)
		return 0;	/* the index took fd and closed it */

	struct idx_reader *r = idx_reader_new(), *rc = idx_reader_new();
	uint64_t budget = READ_BUDGET;

	if (rc)
		idx_reader_set_frames(rc, fcache_frames(cache));
	for (uint32_t i = 0; r && rc && i < idx_count(x) && budget; i++) {
		struct idx_entry ent;

		idx_get(x, i, &ent);
		if (ent.target != i)	/* a hard link reads, and stats, as its target */
			idx_get(x, ent.target, &ent);
		if (!S_ISREG(ent.mode))
			continue;
		for (uint64_t off = 0; off < ent.size && budget;) {
			size_t want = sizeof(buf) < budget ? sizeof(buf) : (size_t)budget;
			ssize_t got = idx_pread(x, i, buf, want, off, r, &e);
			if (got <= 0)
				break;
			if ((size_t)got > want || off + (uint64_t)got > ent.size)
				abort();	/* more bytes than asked for, or past the end */
			same_through_cache(x, i, off, (size_t)got, rc, buf, got);
			off += (uint64_t)got;
			budget -= (uint64_t)got;
		}
	}
	idx_reader_free(r);
	idx_reader_free(rc);
	idx_close(x);
	return 0;
}

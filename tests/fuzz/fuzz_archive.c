/*
 * fuzz_archive: libFuzzer target for whole archives as the daemon opens them
 * (idx_open_fd: the seek table, the index frame, or libarchive's scan of a
 * foreign archive), then every regular file read through, as `cat` would.
 * Runs tests/fuzz/run.sh.
 *
 * Whatever the bytes: an error with a message, never a crash, a leak or a read
 * out of bounds; a read either fails (EIO) or returns bytes within the file.
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

#include "fuzz.h"
#include "index.h"

#define READ_BUDGET (4u << 20)	/* bytes read per input at most: keep runs fast */

static char spill[] = "/tmp/fuzz-spill-XXXXXX";	/* foreign archives' decoded members */

static void spill_gone(void)
{
	rmdir(spill);	/* the index unlinks what it spills */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[64 * 1024];
	static int ready;
	struct idx_opts o = { 0 };
	struct idx *x;
	struct err e;
	int fd;

	if (!ready) {
		if (!mkdtemp(spill))
			abort();
		atexit(spill_gone);
		ready = 1;
	}
	o.spill_dir = spill;
	o.spill_max = 8u << 20;
	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	if (idx_open_fd(fd, "fuzz.tar.zst", &o, &x, &e) < 0)
		return 0;	/* the index took fd and closed it */

	struct idx_reader *r = idx_reader_new();
	uint64_t budget = READ_BUDGET;

	for (uint32_t i = 0; r && i < idx_count(x) && budget; i++) {
		struct idx_entry ent;

		idx_get(x, i, &ent);
		if (!S_ISREG(ent.mode))
			continue;
		for (uint64_t off = 0; off < ent.size && budget;) {
			size_t want = sizeof(buf) < budget ? sizeof(buf) : (size_t)budget;
			ssize_t got = idx_pread(x, i, buf, want, off, r, &e);
			if (got <= 0)
				break;
			if ((size_t)got > want || off + (uint64_t)got > ent.size)
				abort();	/* more bytes than asked for, or past the end */
			off += (uint64_t)got;
			budget -= (uint64_t)got;
		}
	}
	idx_reader_free(r);
	idx_close(x);
	return 0;
}

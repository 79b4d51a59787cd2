/*
 * foreign: reading the members of archives that have no seek table (tar.gz,
 * tar.xz, zip, cpio, 7z, iso ... anything libarchive reads), by member number.
 *
 * One libarchive reader stays positioned where the last read left it, so
 * reading members in archive order decodes the archive once. A member that is
 * read is decoded whole into a spill file (an unlinked temporary file, bounded
 * by spill_max bytes per archive), so random reads in it cost no further
 * decoding; members larger than a quarter of the bound are read by streaming
 * forward instead, restarting only for a read behind the reader.
 *
 *	frn_new() -> frn_pread()... -> frn_free()
 * frn_pread() is thread-safe: one archive serves one reader at a time.
 */
#ifndef SNAPFS_FOREIGN_H
#define SNAPFS_FOREIGN_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define FRN_DEFAULT_SPILL_MAX (256ull << 20)

struct frn_opts {
	const char *spill_dir;	/* NULL: $TMPDIR, else /var/tmp */
	uint64_t spill_max;	/* 0: FRN_DEFAULT_SPILL_MAX */
};

struct frn;

/*
 * Start reading the archive open as fd (the caller keeps it open while f
 * lives; f moves its offset); path is for messages. Reading an open
 * descriptor keeps an archive readable after it was deleted.
 */
int frn_new(int fd, const char *path, const struct frn_opts *o, struct frn **out, struct err *e);
void frn_free(struct frn *f);

/*
 * Read up to len bytes at off of member seq (0-based, in archive order), whose
 * size is size. Returns the bytes read, or -1: EIO naming the archive and the
 * offset when it is damaged or ends early.
 */
ssize_t frn_pread(struct frn *f, uint32_t seq, uint64_t size, void *buf, size_t len,
		  uint64_t off, struct err *e);

/* How often the decoder started from the beginning of the archive. */
uint32_t frn_starts(struct frn *f);

#endif

/*
 * foreign: reading the members of archives that have no seek table (tar.gz,
 * tar.xz, zip, cpio, 7z, iso ... anything libarchive reads), by member number.
 *
 * One libarchive reader stays positioned where the last read left it, so
 * reading members in archive order decodes the archive once. It reads gzip,
 * xz, bzip2, zstd and lz4 files through decode.h, as the scan that built the
 * index did, so both see one stream: checks fail a read, and reads stop
 * where the scan found the stream broken. A member that is
 * read is decoded whole into a spill file (an unlinked temporary file, bounded
 * by spill_max bytes per archive), so random reads in it cost no further
 * decoding; members larger than a quarter of the bound are read by streaming
 * forward instead, restarting only for a read behind the reader, and so is a
 * member the spill file cannot take (a full disk, a spill_dir gone).
 *
 * Once reads come out of archive order (a read of a member before the last
 * one read, as `cp -a` and `find | xargs cat` read a tar whose directories
 * were stored in readdir order), the small members a read decodes on its way
 * to the one asked for are spilled too, in three quarters of the bound at
 * most (the rest is kept for the member a read asks for); when those are full
 * of what earlier reads spilled, the first member a read spills starts the
 * spill file over. Reading every file in any order then decodes about what
 * reading them in archive order does, instead of going back to the start (or
 * a checkpoint, or seeking over every member before the file's) for each
 * file, as long as the small files fit. An archive that seeks over members
 * (a zip, a cpio, an iso) spills them once its reader started over
 * FRN_SEEK_STARTS times for a member behind it, and FRN_SEEK_PASS bytes of them
 * a read at most, so that a few reads out of order only seek; a bare tar
 * spills none: it reads its plain members in place.
 *
 * A tar in a gzip file (gzip_tar; built with zlib) reads its plain members
 * -- regular files stored whole, not sparse -- straight from the decoded tar
 * stream at their data offsets, through gzseek's checkpoints: a random read
 * in a big member inflates at most about a checkpoint spacing (gzseek.h),
 * and one positioned inflate state serves reads in archive order. Small
 * plain members are still spilled, from that same decoder. A tar with no
 * filter (bare_tar) reads its plain members straight from the file. Sparse
 * members, and every member of other archives, go through libarchive as above.
 *
 *	frn_new() -> frn_pread()... -> frn_free()
 * frn_pread() is thread-safe: one archive serves one reader at a time.
 */
#ifndef SNAPFS_FOREIGN_H
#define SNAPFS_FOREIGN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define FRN_DEFAULT_SPILL_MAX (256ull << 20)
#define FRN_SEEK_STARTS 3	/* see above */
#define FRN_SEEK_PASS (8ull << 20)

struct frn_member;

struct frn_opts {
	const char *spill_dir;	/* NULL: $TMPDIR, else /var/tmp */
	uint64_t spill_max;	/* 0: FRN_DEFAULT_SPILL_MAX */
	bool gzip_tar;		/* a tar format over one gzip filter: plain members are contiguous */
	bool bare_tar;		/* a tar format with no filter: plain members lie at data_off in fd */
	/*
	 * The archive's files with data, in archive order: file(ctx, k, out)
	 * for k < nfiles gives the k-th. Reads spill those they pass (above);
	 * none are spilled in passing without them (nfiles 0).
	 */
	uint32_t nfiles;
	void (*file)(void *ctx, uint32_t k, struct frn_member *out);
	void *ctx;
};

struct frn;

/*
 * Start reading the archive open as fd (the caller keeps it open while f
 * lives; f moves its offset); path is for messages. Reading an open
 * descriptor keeps an archive readable after it was deleted.
 */
int frn_new(int fd, const char *path, const struct frn_opts *o, struct frn **out, struct err *e);
void frn_free(struct frn *f);

/* A member to read: its place in archive order (0-based), size and data offset. */
struct frn_member {
	uint32_t seq;
	uint64_t size;
	uint64_t data_off;	/* in the decoded tar stream (idx_entry.data_off) */
	bool plain;		/* a regular file stored whole (not sparse) at data_off */
};

/*
 * Read up to len bytes at off of member m. Returns the bytes read, or -1: EIO
 * naming the archive and the offset when it is damaged or ends early.
 */
ssize_t frn_pread(struct frn *f, const struct frn_member *m, void *buf, size_t len, uint64_t off,
		  struct err *e);

/*
 * How often a decoder started from the beginning of the archive: libarchive's
 * each time, gzseek's the first time (later it restarts from a checkpoint).
 */
uint32_t frn_starts(struct frn *f);

/*
 * How many foreign archives keep their decoding state (a positioned reader,
 * gzip checkpoints, a spill file) once idle for idle_ms: past max_live, the
 * least recently read idle one gives it up at the next read of another, and
 * starts decoding again at its own next read. Process-wide; 0: no bound.
 */
#define FRN_DEFAULT_LIVE 4
#define FRN_DEFAULT_IDLE_MS 1000
void frn_limit(unsigned max_live, unsigned idle_ms);
/* Foreign archives holding decoding state now. */
unsigned frn_live(void);

/* Bytes gzseek inflated for this archive (0 without it). */
uint64_t frn_inflated(struct frn *f);

#endif

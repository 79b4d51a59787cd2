/*
 * verify: read every byte of an archive and check it (SPEC, "snapkeep verify").
 *
 * A native archive (docs/FORMAT.md) is checked layer by layer: the seek table
 * (its frames add up to the file), every data frame (decompressed whole, its
 * XXH64 content checksum and size checked by zseek_decode()), the skippable
 * frames, the index (it loads, and its checksum holds), and then the tar stream
 * the frames make: libarchive parses it, an index is rebuilt from its headers
 * with the same builder the writer uses, and the two must agree entry by entry
 * (path, type, mode, owners, size, mtime, link target, xattrs, sparse map, and
 * the data offset in the tar stream). Frames are decompressed by a pool of
 * threads, in order, while one thread parses the tar stream.
 *
 * Any other archive in a format a store holds (tar, cpio, zip, 7z, iso; SPEC)
 * is decoded in full, data included, so the checksums of its compression or
 * format are checked where they exist: zstd, gzip, xz, bzip2 and lz4 through
 * decode.h (libarchive 3.6 ignores gzip's CRC-32 and lz4's checksums), zip
 * and 7z by libarchive; plain tar has only its header checksums. A zstd file that holds a
 * snapfs index frame but no valid seek table fails: it is a native archive cut
 * short or damaged at its end, even though it still reads as a tar.zst.
 *
 * Then every required path must be in the archive.
 *
 *	vfy_archive()	one call per archive
 *
 * Thread-safe: calls share nothing, and each starts and joins its own threads.
 */
#ifndef SNAPFS_VERIFY_H
#define SNAPFS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct vfy_progress {
	uint64_t done;		/* bytes of the archive file checked so far */
	uint64_t total;		/* the file's size */
};

struct vfy_opts {
	/*
	 * Paths that must exist in the archive, relative as stored ("config/a.yaml";
	 * a leading "./" or "/" and a trailing "/" are ignored). Borrowed for the call.
	 */
	const char *const *require;
	size_t nrequire;
	int threads;		/* decompression threads for native archives; 0 = one per core */
	/* Called now and then from the calling thread; may be NULL. */
	void (*progress)(void *ctx, const struct vfy_progress *p);
	void *ctx;
};

struct vfy_result {
	bool native;		/* checked as a native archive, index and all */
	uint64_t members;	/* tar members (entries of a foreign archive) */
	uint64_t size;		/* bytes of the file */
};

/*
 * Verify the archive at path. Returns 0 when every check passed (r, which may
 * be NULL, is filled then), or -1 with e saying what failed first, with the
 * archive's name and the byte offset or member path:
 *   EIO     damaged or truncated data, a frame or checksum that does not match,
 *           an index that disagrees with the tar stream
 *   ENOENT  a required path is not in the archive (or the file does not exist)
 *   EINVAL  a required path that climbs out with ".."
 *   ENOTSUP the file is not an archive libarchive reads
 *   errno of open() or read(); ENOMEM
 */
int vfy_archive(const char *path, const struct vfy_opts *o, struct vfy_result *r, struct err *e);

#endif

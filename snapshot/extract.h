/*
 * extract: restore an archive's members into a directory (SPEC, "snapkeep restore").
 *
 * Any archive libarchive reads: a native one is read as the ordinary tar.zst
 * it is, so restore needs neither the index nor FUSE. Members are written by
 * libarchive's disk writer with modes, nanosecond times, symlinks, hard links,
 * xattrs and sparse files (holes stay holes), and with owners when the process
 * runs as root.
 *
 * Nothing is written outside the directory, whatever the archive holds. A
 * member is refused, with a warning naming it, when its name is absolute or
 * climbs out with "..", when it would be written through a symlink (an
 * archive can hold `link -> /etc` and then `link/passwd`), or when it is a
 * hard link whose target is absolute, climbs out, or lies behind a symlink.
 * These checks are made here, relative to the directory; libarchive's
 * ARCHIVE_EXTRACT_SECURE_* flags repeat them at write time (in 3.6.2 they
 * refuse all of the above too, hard-link targets included). A hard link that
 * carries data must name a file: libarchive writes through it.
 *
 * The checks and the writes go by path, so they hold against the archive, not
 * against another user changing the directory meanwhile. Restoring as root,
 * directories the archive gives to other users stay root's until every member
 * is written, and get their owners last, deepest first, by descriptors opened
 * with no symlink followed. The directory itself keeps its own owner and mode
 * if it existed; if the restore made it, it gets the archive's "./" last. A
 * directory that already belongs to another user and is no member is not
 * guarded.
 *
 *	ext_restore()	one call per archive
 *
 * Not thread-safe: libarchive's disk writer resolves names against the
 * working directory, so ext_restore() changes to the directory (by
 * descriptor, with fchdir(), so a rename of the path during the call cannot
 * redirect it) and changes back before it returns. Call it where no other
 * thread depends on the working directory.
 */
#ifndef SNAPFS_EXTRACT_H
#define SNAPFS_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ext_opts {
	/*
	 * The members to restore, as stored ("config", "queue/msg-1.yaml"); a
	 * directory selects everything below it. NULL or none: the whole archive.
	 * Borrowed for the call.
	 */
	const char *const *paths;
	size_t npaths;
	/* A warning: a member refused or not fully restored, a path not found. */
	void (*warn)(void *ctx, const char *msg);
	void *ctx;
};

struct ext_stats {
	uint64_t restored;	/* members written */
	uint64_t refused;	/* members refused: they would land outside the directory */
	uint64_t warnings;	/* every warning, refusals included */
};

/*
 * Restore the archive at path into dir, which is created (mode 0700, parents
 * too) when missing; existing files of the same names are replaced. On
 * success st says what happened: a nonzero st->warnings means some members
 * were refused or not fully restored (each went to o->warn), or a requested
 * path is not in the archive. Returns -1 with e when the restore could not go
 * on: the archive cannot be opened or is damaged (EIO, naming the member and
 * offset), dir cannot be made, or a write fails (ENOSPC, ...); what was
 * written until then stays.
 *
 * A native archive's damaged frame costs only the members in it: the damage
 * and each member lost go to o->warn ("'NAME' not restored: ...", hard links
 * to them too; a directory is made from the index: owner, mode, time),
 * the index says where the next whole member starts, and the restore goes on
 * from there; it returns -1 (EIO, with the count) only at the end, and 0 with
 * a warning when no member asked for was lost.
 */
int ext_restore(const char *path, const char *dir, const struct ext_opts *o, struct ext_stats *st,
		struct err *e);

#endif

/*
 * writer: the archive writer behind `snapkeep take`.
 *
 * Walks the given paths below a source directory, writes them as a pax tar
 * stream (libarchive), cuts that stream into zstd frames compressed on all
 * cores (zseek), and ends it with the index (index) and the seek table.
 * Frames end at member boundaries once they hold group_size bytes; a member
 * with at least frame_size bytes of data starts a new frame at its data, and
 * its data is cut every frame_size bytes, so a read of a big file touches one
 * frame (docs/FORMAT.md, "Framing").
 *
 * wr_write() writes to a file descriptor the caller made (the store's
 * temporary file) and neither syncs nor renames it. It is not thread-safe;
 * it starts and joins its own compression threads.
 */
#ifndef SNAPFS_WRITER_H
#define SNAPFS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Measured on the example-shaped 1.6 GiB tree (docs/BENCHMARKS.md): big files
 * compress within 0.6% of one zstd stream at any frame size from 64 KiB to
 * 4 MiB, while a random read costs about 0.4 us per KiB of frame, so big files
 * get 128 KiB frames (squashfs's block size). Small members lose more to cuts:
 * grouped by 1 MiB they are 3% over one stream, by 128 KiB 9%.
 */
#define WR_DEFAULT_FRAME_SIZE (128u * 1024)
#define WR_DEFAULT_GROUP_SIZE (1024u * 1024)

struct wr_progress {
	uint64_t files;		/* members written */
	uint64_t bytes;		/* bytes of file data read */
	uint64_t written;	/* compressed bytes written */
};

struct wr_opts {
	const char *source;		/* paths are relative to it; NULL = "." */
	const char *const *paths;	/* as given to tar -C source: stored as written */
	size_t npaths;
	const char *const *optional;	/* paths that may be missing */
	size_t noptional;
	const char *const *exclude;	/* "dir/" matches directories only; globs as fnmatch */
	size_t nexclude;
	/*
	 * A directory never stored, nor anything in it: the store the archive
	 * goes to, should it lie inside a path (else each snapshot would hold the
	 * one being written and every one before it). NULL: none.
	 */
	const char *skip_dir;
	int level;			/* zstd level */
	int threads;			/* 0 = one per core */
	size_t frame_size;		/* 0 = WR_DEFAULT_FRAME_SIZE */
	size_t group_size;		/* 0 = WR_DEFAULT_GROUP_SIZE */
	int64_t time;			/* the snapshot's time: stamps implied directories */
	/* A warning: a file vanished, changed or could not be read. msg names it. */
	void (*warn)(void *ctx, const char *msg);
	/* Called now and then with the running totals. */
	void (*progress)(void *ctx, const struct wr_progress *p);
	void *ctx;
};

struct wr_stats {
	uint64_t members;
	uint64_t tar_size;	/* decompressed */
	uint64_t size;		/* compressed, the file's size */
	uint64_t warnings;
};

/*
 * Check that every path that is not optional exists, before anything is
 * written: ENOENT naming the first missing one.
 */
int wr_check_paths(const struct wr_opts *o, struct err *e);

/*
 * Write the archive to fd (name is for messages). On success fills *st; a
 * nonzero st->warnings means some files were skipped or changed while read
 * (each went to o->warn). On failure fd holds garbage the caller must discard.
 */
int wr_write(int fd, const char *name, const struct wr_opts *o, struct wr_stats *st,
	     struct err *e);

/* True when rel (a path relative to the source, no leading "./") is excluded. */
int wr_excluded(const struct wr_opts *o, const char *rel, int is_dir);

#endif

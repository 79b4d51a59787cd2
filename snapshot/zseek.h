/*
 * zseek: zstd's seekable format (docs/FORMAT.md, "Frames" and "Seek table").
 *
 * A seekable file is a run of independent zstd frames, each of bounded
 * decompressed size, optionally followed by skippable frames, and ends with
 * one skippable frame holding the seek table: the compressed and decompressed
 * size of every frame before it. Any ordinary zstd decoder reads the whole as
 * one stream; a reader with the table decompresses only the frames it needs.
 * zseek knows nothing of what the bytes mean (no tar, no index).
 *
 * Writing, in this order:
 *	zseek_writer_new() -> { zseek_write() | zseek_cut() }... ->
 *	zseek_write_skippable()... -> zseek_finish() -> zseek_writer_free()
 * Frames are compressed by a pool of threads, in parallel, and written to the
 * file descriptor in order. One thread calls the writer functions.
 *
 * Reading:
 *	zseek_open() -> zseek_find() / zseek_frame() -> zseek_decode() -> zseek_close()
 * A loaded table is immutable: every reading function is thread-safe given a
 * struct zseek_dctx per thread.
 */
#ifndef SNAPFS_ZSEEK_H
#define SNAPFS_ZSEEK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define ZSEEK_SKIPPABLE_MAGIC_BASE 0x184D2A50u	/* low 4 bits: the skippable frame's kind */
#define ZSEEK_TABLE_MAGIC 0x184D2A5Eu		/* skippable frame holding the seek table */
#define ZSEEK_FOOTER_MAGIC 0x8F92EAB1u		/* the last 4 bytes of a seekable file */
#define ZSEEK_FOOTER_SIZE 9u
#define ZSEEK_ENTRY_SIZE 8u			/* compressed u32, decompressed u32 */
#define ZSEEK_MAX_FRAME_SIZE (1u << 30)		/* zstd's seekable reference limit */
#define ZSEEK_MAX_FRAMES 0x8000000u

struct zseek_writer;

/*
 * Start writing a seekable stream to fd (the caller keeps fd; name is for
 * messages). max_frame bounds each frame's decompressed size: zseek_write()
 * cuts a frame when it reaches it. level is zstd's; threads 0 means one per core.
 */
int zseek_writer_new(int fd, const char *name, int level, int threads, size_t max_frame,
		     struct zseek_writer **out, struct err *e);

/* Append bytes to the current frame. */
int zseek_write(struct zseek_writer *w, const void *buf, size_t len, struct err *e);

/* End the current frame here (nothing if it is empty). */
int zseek_cut(struct zseek_writer *w, struct err *e);

/* Bytes written so far, decompressed: the offset the next zseek_write() lands at. */
uint64_t zseek_pos(const struct zseek_writer *w);

/* Decompressed bytes in the current, unfinished frame. */
size_t zseek_pending(const struct zseek_writer *w);

/*
 * End the last frame and append a skippable frame of the given kind (0-15,
 * not 0xE) holding buf. It takes a seek-table entry with decompressed size 0.
 */
int zseek_write_skippable(struct zseek_writer *w, unsigned kind, const void *buf, size_t len,
			  struct err *e);

/* End the last frame and write the seek table. The data is not synced: the caller does that. */
int zseek_finish(struct zseek_writer *w, struct err *e);

/* Compressed bytes written to fd so far (complete frames only). */
uint64_t zseek_written(const struct zseek_writer *w);

/* Stop the threads and free; a writer not finished leaves fd with partial content. */
void zseek_writer_free(struct zseek_writer *w);

struct zseek;

struct zseek_frame {
	uint64_t coff;		/* offset of the frame in the file */
	uint64_t doff;		/* offset of its first byte in the decompressed stream */
	uint32_t csize;
	uint32_t dsize;		/* 0 for a skippable frame */
};

/*
 * Load the seek table from the end of fd, whose size is file_size; name is kept
 * for messages. Checks the footer, the table's own frame and that the frames
 * add up to the file. Fails with EIO ("not a seekable zstd file") when there is no
 * table, or with EIO naming the offset when it is damaged. The caller keeps fd;
 * it must stay open while the table is used.
 */
int zseek_open(int fd, const char *name, uint64_t file_size, struct zseek **out, struct err *e);
void zseek_close(struct zseek *z);

uint32_t zseek_nframes(const struct zseek *z);
/* The decompressed size of the whole stream. */
uint64_t zseek_size(const struct zseek *z);
/* The largest decompressed frame size: enough for any zseek_decode() buffer. */
uint32_t zseek_max_dsize(const struct zseek *z);
void zseek_frame(const struct zseek *z, uint32_t i, struct zseek_frame *f);

/* The index of the data frame holding decompressed offset doff, or UINT32_MAX past the end. */
uint32_t zseek_find(const struct zseek *z, uint64_t doff);

/*
 * A frame that fits in a piece is read and decoded in one go; a bigger one is
 * read through a window of a piece and decoded block by block, straight into
 * the caller's buffer: a context holds one piece, not a whole compressed frame.
 * A piece holds zstd's largest block (128 KiB) with room to spare, so a 128 KiB
 * frame that does not compress is still read whole.
 */
#define ZSEEK_PIECE (132u * 1024)

/* A decompression context: one per thread. */
struct zseek_dctx;
struct zseek_dctx *zseek_dctx_new(void);
void zseek_dctx_free(struct zseek_dctx *d);

/*
 * Decompress frame i whole into dst (room for its dsize) and check it: its
 * zstd content checksum and its size. Returns dsize, or -1 with EIO naming the
 * file and the frame's offset. Thread-safe. While frames are decoded front to
 * back, the compressed bytes more than 8 MiB behind are dropped from the page
 * cache (zseek.c, drop_behind()); frames decoded out of order drop nothing.
 */
ssize_t zseek_decode(const struct zseek *z, uint32_t i, struct zseek_dctx *d, void *dst,
		     struct err *e);

/*
 * Start reading frame i's compressed bytes into the page cache without
 * waiting, when the frame is too big for one read of zseek_decode(): for a
 * caller about to wait for a context, or decoding frames out of order.
 */
void zseek_prefetch(const struct zseek *z, uint32_t i);

/* Learn skippable frame i's kind (its magic's low 4 bits) from its 8-byte header alone. */
int zseek_skippable_kind(const struct zseek *z, uint32_t i, unsigned *kind, struct err *e);

/*
 * Read skippable frame i's content into a new buffer (*out, freed by the
 * caller with fill_free()) when its kind is kind; a frame of another kind is
 * an EIO error, and its content is not read.
 */
ssize_t zseek_read_skippable(const struct zseek *z, uint32_t i, unsigned kind, void **out,
			     struct err *e);

#endif

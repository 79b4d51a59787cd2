/*
 * decode: checked decompression in front of libarchive, for reading a whole
 * archive in order (verify, restore, and the scan that indexes a foreign one).
 *
 * libarchive decompresses by itself, but 3.6 ignores gzip's CRC-32 and lz4's
 * checksums, hands out xz and bzip2 data before checking it and then calls a
 * failed check a truncation, and reads one zstd frame after another on one
 * core. A decoder here decompresses instead and hands libarchive the plain
 * stream through archive_read_open():
 *
 *   frames  a seekable zstd file (a native archive): a pool of threads
 *           decompresses the frames listed in the seek table, in order, ahead
 *           of the reader; each frame's XXH64 and size are checked
 *           (zseek_decode()), and every frame that is not data must be a
 *           skippable frame.
 *   zstd    any other zstd file, frame by frame on one thread, checksums
 *           checked where the frames carry them; skippable frames are passed
 *           over, and a snapfs index frame among them is noted (a native
 *           archive whose seek table is gone).
 *   gzip    zlib, member by member, each member's CRC-32 and length checked;
 *   xz      liblzma, stream by stream, each block's check verified;
 *   bzip2   libbz2, stream by stream, each block's CRC and the stream's checked;
 *           for these three, zero bytes after the last member (tape padding)
 *           are allowed.
 *   lz4     liblz4's frame decoder, frame by frame: block checksums and each
 *           frame's content checksum checked where the frames carry them
 *           (lz4's default: the content's).
 * liblzma, libbz2 and liblz4 are reached through libarchive, which links them
 * (arlib.h): without their headers at build time, or when libarchive lacks
 * one, libarchive reads that kind alone.
 *
 * Calling sequence:
 *	dec_open_frames() or dec_open_stream() -> dec_attach() ->
 *	archive_read_next_header()... -> dec_finish() -> dec_close()
 * dec_finish() decodes whatever libarchive did not read (the tar stream ends
 * before the last frame or member does), so every checksum is checked.
 *
 * A decoder belongs to one thread; the frame pool's threads are its own.
 */
#ifndef SNAPFS_DECODE_H
#define SNAPFS_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct archive;
struct zseek;
struct dec;

struct dec_opts {
	int threads;		/* frame decoders; 0 = one per core */
	/* Called from the reading thread with the bytes of the file decoded so far; may be NULL. */
	void (*progress)(void *ctx, uint64_t done);
	void *ctx;
};

/*
 * A decoder for the frames of z (loaded from fd; the caller keeps both open
 * until dec_close()). Fails with ENOMEM, EAGAIN (no thread), or EIO when a
 * frame that holds no data is not a skippable frame.
 */
int dec_open_frames(int fd, const char *name, const struct zseek *z, const struct dec_opts *o,
		    struct dec **out, struct err *e);

/*
 * A decoder for fd (size bytes) chosen by its first bytes: zstd, gzip, xz,
 * bzip2 or lz4. *out is NULL, and 0 returned, when it is none of them (let
 * libarchive read the file); gzip, too, when snapfs was built without zlib,
 * and the others as the top of this file says. The caller keeps fd open.
 */
int dec_open_stream(int fd, const char *name, uint64_t size, const struct dec_opts *o,
		    struct dec **out, struct err *e);

/*
 * The same from byte at of the tar stream on: the frames before the one that
 * holds it are not read, nor handed out the bytes of that one before it.
 */
int dec_open_frames_at(int fd, const char *name, const struct zseek *z, const struct dec_opts *o,
		       uint64_t at, struct dec **out, struct err *e);

/* Open archive a over d's output (archive_read_open()); libarchive's result. */
int dec_attach(struct dec *d, struct archive *a);

/*
 * What failed inside the decoder, when libarchive reports an error reading:
 * NULL when the decoder is fine (then the error is libarchive's own). The
 * message names the file and the byte offset in it.
 */
const struct err *dec_error(const struct dec *d);

/*
 * After a frame of a seekable file failed its check (or could not be read):
 * the offset in the tar stream just past that frame, from which the frames
 * that follow can be read (dec_open_frames_at()). 0 for any other failure,
 * and before one.
 */
uint64_t dec_failed_end(const struct dec *d);

/* Decode to the end, checking what libarchive left unread. 0, or -1 with e. */
int dec_finish(struct dec *d, struct err *e);

/*
 * After a failure: how many decoded bytes, from the start, the checks vouch
 * for. A cut file (it ends inside a gzip member, an xz or bzip2 stream, or a
 * zstd or lz4 frame): all handed out, since the output of a cut stream is the start of the whole one's
 * (damage that ends the stream early without failing a check looks the same).
 * Other damage: those before the member or frame that holds it, which handed
 * out bytes before its check failed. The frames of a seekable file are
 * checked before they are handed out: all.
 */
uint64_t dec_sound(const struct dec *d);

/* A gzip file's decoder. */
bool dec_is_gzip(const struct dec *d);

/* The file offset of a snapfs index frame a zstd decoder passed over; -1 when none. */
int64_t dec_index_at(const struct dec *d);

/* Stop the threads and free. Accepts NULL. */
void dec_close(struct dec *d);

#endif

/*
 * index: what an archive holds, and reading it.
 *
 * An index lists every entry of an archive in directory order: entry 0 is the
 * root directory, and the children of each directory are contiguous and sorted
 * by name (bytewise), so lookup is a binary search and readdir a range. Its
 * serialised form is the blob documented in docs/FORMAT.md ("Index"): native
 * archives carry it in a skippable frame before the seek table; for foreign
 * archives one libarchive scan builds the same blob in memory.
 *
 * Building (the writer, and the foreign scan):
 *	idx_builder_new() -> idx_builder_add()... -> idx_builder_finish() -> idx_builder_free()
 *
 * Reading:
 *	idx_open() -> idx_lookup() / idx_child() / idx_get() / idx_pread() -> idx_close()
 * An open index is immutable: lookups are thread-safe; idx_pread() is
 * thread-safe given one struct idx_reader per thread.
 */
#ifndef SNAPFS_INDEX_H
#define SNAPFS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct archive_entry;

#define IDX_NONE UINT32_MAX
#define IDX_ROOT 0u

/* The skippable frame kind of a native archive's index (magic 0x184D2A55). */
#define IDX_FRAME_KIND 0x5u

/* Entry flags. */
#define IDX_F_IMPLICIT 0x1u	/* a directory implied by a path, not stored in the archive */
#define IDX_F_HARDLINK 0x2u	/* a hard link: its data and inode are those of `target` */
#define IDX_F_SPARSE 0x4u	/* stored as a sparse file: only its regions hold data, maybe none */

/* One entry, decoded. Strings are borrowed from the index, not NUL-terminated. */
struct idx_entry {
	uint32_t parent;	/* IDX_ROOT for the root */
	uint32_t first_child, nchildren;	/* directories */
	uint32_t target;	/* the entry holding the data: itself, or a hard link's target */
	uint32_t flags;
	uint32_t mode;		/* st_mode, with the type bits */
	uint32_t uid, gid;
	uint32_t nlink;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;		/* st_size: file size, symlink target length */
	uint64_t rdev;
	uint64_t data_off;	/* offset of the stored data in the decompressed tar stream */
	uint32_t seq;		/* the entry's position among the members; IDX_NONE: not kept */
	uint32_t xattr_first, nxattrs;
	uint32_t sparse_first, nsparse;	/* without IDX_F_SPARSE the data is stored whole */
	const char *name;	/* the last path component; "" for the root */
	uint32_t name_len;
	const char *link;	/* a symlink's target */
	uint32_t link_len;
	const char *uname, *gname;
	uint32_t uname_len, gname_len;
};

struct idx_xattr {
	const char *name;	/* e.g. "user.comment" */
	uint32_t name_len;
	const void *value;
	uint32_t value_len;
};

/* A stored data region of a sparse file: bytes [off, off+len) of the file. */
struct idx_sparse {
	uint64_t off, len;
};

/* Building. */
struct idx_builder;

/* time stamps the implied directories. NULL with e filled on failure. */
struct idx_builder *idx_builder_new(int64_t time, struct err *e);
void idx_builder_free(struct idx_builder *b);
/*
 * Build as the writer of index version `version` did (idxfmt.h), so that
 * verify can compare an archive's stored index with one built from its tar
 * stream. New builders build IDX_VERSION.
 */
void idx_builder_compat(struct idx_builder *b, uint32_t version);
/*
 * The builder indexes a foreign archive, for reading: hard links to no file
 * it holds are left out (idx_refused()), as tar -x makes nothing for them. A
 * native archive's index, and verify's rebuild of it, keep them as files.
 */
void idx_builder_foreign(struct idx_builder *b);

/*
 * Add the member described by entry (as libarchive wrote or read it), whose data
 * starts at data_off in the decompressed tar stream. Paths are normalised as
 * tar extracts them: "./" and leading "/" dropped. A member whose path leaves
 * the root ("..") is skipped with EINVAL and a message; a later member with the
 * same path replaces the earlier one, as it does when tar extracts.
 */
int idx_builder_add(struct idx_builder *b, struct archive_entry *entry, uint64_t data_off,
		    struct err *e);

/*
 * Normalise a member path into buf as tar extracts it: no leading "/" or "./",
 * no empty or "." components. Returns the length; -1 when the path climbs with
 * "..", -2 when it does not fit in size bytes.
 */
ssize_t idx_normalise(const char *path, char *buf, size_t size);

/*
 * Whether enc is the extended attribute name name as libarchive 3.6.2 writes
 * it into a SCHILY.xattr record: every byte outside '!'..'~', and '%' and
 * '=', as "%XX". Readers give the name back so ("user.a%20b" for "user.a b");
 * the index keeps the name as it was.
 */
bool idx_xattr_name_encoded(const char *name, size_t len, const char *enc, size_t enc_len);

/*
 * The member idx_builder_add() just added holds stored bytes in the archive.
 * A file that is not sparse but holds fewer bytes than its size (a GNU sparse
 * member whose map lists no region, or one libarchive cannot map) is not read
 * as stored bytes at its data offset: it is marked sparse, with one region of
 * all of it (where its bytes are is unknown; none is said to be a hole).
 * -1 (ENOMEM) if that cannot be noted.
 */
int idx_builder_stored(struct idx_builder *b, uint64_t stored, struct err *e);

/* Members added so far (not counting implied directories). */
uint32_t idx_builder_members(const struct idx_builder *b);
/* Why a member of a foreign archive is left out of its index. */
enum idx_refusal {
	IDX_REFUSED_CLIMBS,	/* its path climbs out with '..' (bsdtar refuses it) */
	IDX_REFUSED_NO_TARGET,	/* a hard link to no file in the archive (tar -x makes nothing) */
	IDX_REFUSALS
};

/*
 * Members left out for why; *first is the first one's path, or NULL. Those
 * left out as links to nothing are known once idx_builder_finish() ran.
 */
uint32_t idx_builder_refused(const struct idx_builder *b, enum idx_refusal why,
			     const char **first);

/* Serialise: *out gets a new blob of *len bytes (free() it). */
int idx_builder_finish(struct idx_builder *b, void **out, size_t *len, struct err *e);

/*
 * Wrap a blob from idx_builder_finish() into the content of a native archive's
 * index frame (docs/FORMAT.md): the header, then the blob as one checksummed
 * zstd frame. *out is new (free() it).
 */
int idx_pack_frame(const void *blob, size_t len, uint64_t tar_size, void **out, size_t *out_len,
		   struct err *e);

/* Reading. */
struct idx;

/*
 * Open the archive at path: a native archive by its trailer (reading nothing
 * else), anything else libarchive reads by one scan. EIO with the file and the
 * byte offset when the trailer is damaged; ENOTSUP (EOPNOTSUPP) when it is not an
 * archive at all. The index keeps its own descriptor (O_CLOEXEC).
 */
int idx_open(const char *path, struct idx **out, struct err *e);

/* Options for opening an archive; idx_open() and a NULL o use the defaults (all zero). */
struct idx_opts {
	/* foreign archives: where their members are decoded to, and how much (see foreign.h) */
	const char *spill_dir;
	uint64_t spill_max;
	/*
	 * Native archives only: the members' positions are not kept (idx_entry.seq
	 * reads IDX_NONE), 4 bytes an entry less; the daemon reads by offset.
	 * Foreign archives are read by position, so they keep it regardless.
	 */
	bool no_seq;
	/*
	 * Foreign archives (and native ones whose seek table is lost) that are
	 * damaged or cut after some members: index the members read before the
	 * damage instead of failing; idx_damage() then says where it is. Reading
	 * a member the damage reaches fails with EIO. The daemon salvages;
	 * snapkeep reports the archive as damaged instead.
	 */
	bool salvage;
};
int idx_open_with(const char *path, const struct idx_opts *o, struct idx **out, struct err *e);
/* The same from an open descriptor, which the index takes (closed on failure too); name for messages. */
int idx_open_fd(int fd, const char *name, const struct idx_opts *o, struct idx **out,
		struct err *e);

/* Open a blob made by idx_builder_finish(), with no archive behind it (tests, scans). */
int idx_open_blob(const void *blob, size_t len, const char *name, struct idx **out,
		  struct err *e);
void idx_close(struct idx *x);

bool idx_is_native(const struct idx *x);
const char *idx_name(const struct idx *x);
/* The archive's descriptor, owned by the index (-1 for a blob). */
int idx_fd(const struct idx *x);
/* Entries, the root and implied directories included. */
uint32_t idx_count(const struct idx *x);
/* Members of the archive: what `snapkeep list` counts. */
uint32_t idx_members(const struct idx *x);
/*
 * Members of a foreign archive left out of the index for why: paths that climb
 * out of it with '..' (bsdtar refuses them), hard links to files the archive
 * does not hold (tar and bsdtar extract nothing for them). *first is the first
 * one's path. They still count among the members.
 */
uint32_t idx_refused(const struct idx *x, enum idx_refusal why, const char **first);
/*
 * The damage an archive was opened past, as a message; NULL when whole. With
 * idx_opts.salvage, what a cut or damaged archive lost; and a native archive
 * whose index header is damaged, read by a scan of its (whole) tar stream.
 */
const char *idx_damage(const struct idx *x);
/* The size of the decompressed tar stream, for a native archive. */
uint64_t idx_tar_size(const struct idx *x);
/* A native archive's index version (idxfmt.h); 0 for a foreign one. */
uint32_t idx_version(const struct idx *x);

/* Decode entry i (< idx_count()) into *out: its parent by a binary search among the directories. */
void idx_get(const struct idx *x, uint32_t i, struct idx_entry *out);

/* The child of directory dir called name, or IDX_NONE. */
uint32_t idx_lookup(const struct idx *x, uint32_t dir, const char *name, size_t len);
/* The entry at a slash-separated path ("" is the root), or IDX_NONE. */
uint32_t idx_lookup_path(const struct idx *x, const char *path);

/* Extended attribute k (< nxattrs) of entry i. Borrowed from the index. */
void idx_xattr(const struct idx *x, const struct idx_entry *ent, uint32_t k,
	       struct idx_xattr *out);
void idx_sparse(const struct idx *x, const struct idx_entry *ent, uint32_t k,
		struct idx_sparse *out);
/* The bytes of file ent that its archive stores: its size, or the sum of its regions' lengths. */
uint64_t idx_stored_bytes(const struct idx *x, const struct idx_entry *ent);

/* The path of entry i, written to buf (NUL-terminated); -1 with ENAMETOOLONG if it does not fit. */
int idx_path(const struct idx *x, uint32_t i, char *buf, size_t size, struct err *e);

/*
 * Reading file data. An idx_reader holds one thread's decompression state and
 * the last frame it decoded.
 */
struct idx_reader;
struct idx_reader *idx_reader_new(void);
void idx_reader_free(struct idx_reader *r);

/*
 * Where a reader gets decoded frames of native archives, instead of decoding
 * them itself: a cache shared by threads (the daemon's fcache). get() returns
 * frame f of x decoded, *len bytes, pinned until put(pin); NULL with e filled on
 * failure. Both are called from the reading thread and must be thread-safe.
 */
struct idx_frames {
	const unsigned char *(*get)(void *ctx, struct idx *x, uint32_t f, uint32_t *len,
				    void **pin, struct err *e);
	void (*put)(void *ctx, void *pin);
	void *ctx;
};
void idx_reader_set_frames(struct idx_reader *r, const struct idx_frames *src);

/* The frame of a native archive holding byte doff of its tar stream: where it starts, its size. */
bool idx_frame_at(const struct idx *x, uint64_t doff, uint64_t *fdoff, uint32_t *flen);

/*
 * The bytes [off, off+len) of entry i as they lie in the frame source's frames,
 * without copying: piece k is base[k] with size[k] bytes, held by pin[k] until
 * idx_unpin(). Returns the number of pieces (0 for none: off at or past the
 * end), or -1 with e set. ENOTSUP, nothing pinned, unless the reader has a
 * frame source, the archive is native, the entry is not sparse and len fits in
 * max pieces: then use idx_pread().
 */
int idx_pread_pieces(struct idx *x, uint32_t i, size_t len, uint64_t off, struct idx_reader *r,
		     const void **base, size_t *size, void **pin, int max, struct err *e);
void idx_unpin(struct idx_reader *r, void **pin, int n);

/*
 * How often a foreign archive's decoder started from the beginning (0 for
 * native): libarchive's, and a tar.gz's gzip decoder the first time; its
 * restarts from checkpoints (gzseek.h), each a span at most, do not count.
 */
uint32_t idx_decoder_starts(const struct idx *x);
/* Bytes a foreign tar.gz's checkpointed gzip decoder inflated (0 without one). */
uint64_t idx_decoder_inflated(const struct idx *x);

/* For a frame cache: a number no other index in this process has. */
uint64_t idx_serial(const struct idx *x);
/* The decompressed size of frame f of a native archive. */
uint32_t idx_frame_size(const struct idx *x, uint32_t f);
/* Decode frame f of a native archive into dst (idx_frame_size() bytes); see zseek_decode(). */
struct zseek_dctx;
ssize_t idx_frame_decode(const struct idx *x, uint32_t f, struct zseek_dctx *d, void *dst,
			 struct err *e);
/* Start reading frame f's bytes from the archive without waiting (zseek_prefetch()). */
void idx_frame_prefetch(const struct idx *x, uint32_t f);

/*
 * Read up to len bytes of regular file i from byte off: holes read as zeros.
 * Returns the number of bytes read (0 at or past the end), or -1: EIO naming
 * the archive and the offset when its data is damaged.
 */
ssize_t idx_pread(struct idx *x, uint32_t i, void *buf, size_t len, uint64_t off,
		  struct idx_reader *r, struct err *e);

#endif

/*
 * idxfmt: the byte layout of the snapfs index (docs/FORMAT.md, "Index").
 * Private to index.c and its tests. All integers little-endian.
 *
 * The index frame is a zstd skippable frame of kind IDX_FRAME_KIND, placed
 * right before the seek table. Its content is a fixed header followed by one
 * zstd frame (content checksum on) that decompresses to the body.
 */
#ifndef SNAPFS_IDXFMT_H
#define SNAPFS_IDXFMT_H

#include "index.h"

#define IDX_MAGIC "SNAPFSIX"		/* 8 bytes, no NUL */
/*
 * 2: a hard link may name a symlink, FIFO or device (1: a regular file only;
 * 1's writer made such links plain entries); ACLs are system.posix_acl_*
 * xattrs, and an access ACL's mask the mode's group bits (1: neither).
 * A reader reads every version from IDX_VERSION_OLDEST on.
 */
#define IDX_VERSION 2u
#define IDX_VERSION_OLDEST 1u

/* Frame header */
#define IDX_HDR_MAGIC 0		/* 8 bytes IDX_MAGIC */
#define IDX_HDR_VERSION 8	/* u32 */
#define IDX_HDR_FLAGS 12	/* u32, 0; a reader rejects bits it does not know */
#define IDX_HDR_TAR_SIZE 16	/* u64: bytes of the decompressed tar stream */
#define IDX_HDR_BODY_SIZE 24	/* u64: bytes of the decompressed body */
#define IDX_HDR_SIZE 32

/* Body header */
#define IDX_BODY_ENTRIES 0	/* u32 */
#define IDX_BODY_MEMBERS 4	/* u32: members of the tar stream */
#define IDX_BODY_XATTRS 8	/* u32 */
#define IDX_BODY_SPARSE 12	/* u32 */
#define IDX_BODY_STRINGS 16	/* u32: bytes of the string area */
#define IDX_BODY_HDR_SIZE 20
/* then entries[ENTRIES], xattrs[XATTRS], sparse[SPARSE], strings[STRINGS] */

/* Entry */
#define IDX_E_DATA_OFF 0	/* u64 */
#define IDX_E_SIZE 8		/* u64 */
#define IDX_E_MTIME 16		/* i64 seconds */
#define IDX_E_RDEV 24		/* u64 */
#define IDX_E_NSEC 32		/* u32 */
#define IDX_E_MODE 36		/* u32 */
#define IDX_E_UID 40		/* u32 */
#define IDX_E_GID 44		/* u32 */
#define IDX_E_PARENT 48		/* u32 */
#define IDX_E_FIRST_CHILD 52	/* u32 */
#define IDX_E_NCHILDREN 56	/* u32 */
#define IDX_E_NLINK 60		/* u32 */
#define IDX_E_TARGET 64		/* u32 */
#define IDX_E_FLAGS 68		/* u32 */
#define IDX_E_SEQ 72		/* u32 */
#define IDX_E_NAME 76		/* u32 offset, u32 length into strings */
#define IDX_E_LINK 84		/* u32 offset, u32 length */
#define IDX_E_UNAME 92		/* u32 offset, u32 length */
#define IDX_E_GNAME 100		/* u32 offset, u32 length */
#define IDX_E_XATTRS 108	/* u32 first, u32 count */
#define IDX_E_SPARSE 116	/* u32 first, u32 count */
#define IDX_E_SIZEOF 124

/* Extended attribute: name and value in strings */
#define IDX_X_NAME 0		/* u32 offset, u32 length */
#define IDX_X_VALUE 8		/* u32 offset, u32 length */
#define IDX_X_SIZEOF 16

/* Sparse region: data stored for file bytes [off, off+len), in order */
#define IDX_S_OFF 0		/* u64 */
#define IDX_S_LEN 8		/* u64 */
#define IDX_S_SIZEOF 16

#endif

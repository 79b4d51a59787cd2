/*
 * tree: the mounted view of a store (SPEC, "The mount"), by inode number.
 *
 * The store's directories are directories; every archive in one is a
 * directory named by the timestamp in its file name, with `latest` a symlink
 * to the newest. Inode numbers are derived, not counted, so they are stable
 * across mounts of the same store:
 *	- 1 is the store's root;
 *	- a store directory or a `latest` link: bit 63 set, a hash of its path;
 *	- entry k of an archive: (archive id << 32) | (k + 1), where the archive id
 *	  is a 31-bit hash of the archive's path in the store, and a hard link has
 *	  its target's number. Entry 0 is the snapshot directory itself. When two
 *	  paths' hashes collide, the older archive keeps it and the newer takes the
 *	  next free id, as a fresh mount would give them, so a new snapshot moves
 *	  no one's numbers. Numbers move at the next mount only when the older was
 *	  pruned meanwhile (the newer's), or copied in while the newer was mounted
 *	  (both).
 * An archive's index is opened on first use inside it, and at most max_open
 * are kept open (least recently used closed first). Files are read by inode
 * number, with no open handle (the kernel need not ask to open them): the
 * caller reports the kernel's lookup counts (tree_ref/tree_forget), and an
 * archive stays readable after a prune while the kernel still knows an inode
 * inside it, as it does while a file in it is open (the snapshot's own
 * directory alone, a shell's working directory, does not keep it: names looked
 * up there after the prune are not found).
 *
 *	tree_new() -> { tree_lookup/getattr/readdir/open/read... | tree_rescan() } -> tree_free()
 * Every function is thread-safe. tree_rescan() calls the invalidation hooks
 * after releasing its locks, so they may talk to the kernel.
 */
#ifndef SNAPFS_TREE_H
#define SNAPFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"
#include "index.h"

#define TREE_ROOT_INO 1u

struct tree_opts {
	const char *store;		/* the store directory */
	struct idx_opts idx;		/* for foreign archives */
	unsigned max_open;		/* indexes kept open; 0 = 256 */
	/* The kernel must forget name in directory parent / what it cached of ino. */
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
	void (*inval_inode)(void *ctx, uint64_t ino);
	/*
	 * ... only ino's attributes: touches no page, so it may be called while a
	 * request is served (a snapshot's stored root learnt at its first entry).
	 */
	void (*inval_attr)(void *ctx, uint64_t ino);
	/* A damaged archive, reported once per archive file. */
	void (*damaged)(void *ctx, const char *msg);
	void *ctx;
};

struct tree;

/* Scan the store's directories (not the archives in them). */
int tree_new(const struct tree_opts *o, struct tree **out, struct err *e);
void tree_free(struct tree *t);

/* Seconds the kernel may cache what ino says: long inside archives, short above. */
double tree_timeout(uint64_t ino);

/*
 * The child name of directory parent: its attributes (st_ino set) and how long
 * the kernel may keep them. The answer is counted as given to the kernel
 * (tree_forget() it if the reply fails). ENOENT if none.
 */
int tree_lookup(struct tree *t, uint64_t parent, const char *name, struct stat *st,
		double *timeout, struct err *e);
int tree_getattr(struct tree *t, uint64_t ino, struct stat *st, struct err *e);

/* True when ino is a snapshot's own directory. */
bool tree_ino_is_snaproot(uint64_t ino);
/*
 * The attributes a snapshot's own directory stored in its archive (a take of
 * "."), opening its index first if open and need be: 1 with st filled; 0 when
 * ino is no such directory, the archive stored none, or they are not known.
 */
int tree_root_stat(struct tree *t, uint64_t ino, bool open, struct stat *st);

/* A symlink's target into buf (NUL-terminated). */
int tree_readlink(struct tree *t, uint64_t ino, char *buf, size_t size, struct err *e);

/*
 * List directory ino from position pos (0 = the start, "." and ".." included).
 * fn gets each entry, how long the kernel may keep it and the position after
 * it, and returns nonzero when it did not take it (and to stop). With count
 * (READDIRPLUS), every entry fn took but "." and ".." is counted as given to
 * the kernel, as by tree_lookup().
 */
typedef int (*tree_dirent_fn)(void *ctx, const char *name, const struct stat *st,
			      double timeout, off_t next);
int tree_readdir(struct tree *t, uint64_t ino, off_t pos, bool count, tree_dirent_fn fn,
		 void *ctx, struct err *e);

/* Extended attributes of ino. A value or the name list goes to buf; returns its size. */
ssize_t tree_getxattr(struct tree *t, uint64_t ino, const char *name, void *buf, size_t size,
		      struct err *e);
/*
 * The list leaves out trusted.* names unless trusted: as on a local file system,
 * only a caller with CAP_SYS_ADMIN sees them (and only it may read them).
 */
ssize_t tree_listxattr(struct tree *t, uint64_t ino, void *buf, size_t size, bool trusted,
		       struct err *e);

/* Whether ino is a regular file that can be read (EISDIR, EINVAL if not). */
int tree_open(struct tree *t, uint64_t ino, struct err *e);
ssize_t tree_read(struct tree *t, uint64_t ino, void *buf, size_t len, off_t off,
		  struct idx_reader *r, struct err *e);
/*
 * The same without a copy, as pieces of pinned frames (idx_pread_pieces(),
 * idx_unpin()): ENOTSUP when the file is not read that way (sparse, foreign,
 * or more than max pieces), and tree_read() then serves it.
 */
int tree_read_pieces(struct tree *t, uint64_t ino, size_t len, off_t off, struct idx_reader *r,
		     const void **base, size_t *size, void **pin, int max, struct err *e);
/*
 * The small files of ino's directory (a hard link's: its target's) whose bytes
 * lie wholly in the frame holding byte off of file ino (ino itself aside), at
 * most max, in the index's order (that of their bytes in archives snapkeep
 * writes): each file's inode number, its size, and where its bytes start
 * counted from byte off of ino. Native archives only;
 * 0 when there are none, and when ino's index is no longer the one with serial
 * (idx_serial(), that of the frame read): the number may have come to mean
 * another archive's file since.
 */
struct tree_sib {
	uint64_t ino;
	int64_t delta;
	uint32_t size;
};
int tree_siblings(struct tree *t, uint64_t ino, off_t off, uint64_t serial, struct tree_sib *v,
		  int max);

/* lseek's SEEK_DATA / SEEK_HOLE (whence) in file ino; ENXIO past the data. */
off_t tree_lseek(struct tree *t, uint64_t ino, off_t off, int whence, struct err *e);

/* The kernel forgot ino n times (FORGET), or never got the reply that counted it. */
void tree_forget(struct tree *t, uint64_t ino, uint64_t n);

/*
 * Look at the store again: archives that came or went, directories made or
 * removed. Without force, a directory whose mtime has not changed is not
 * listed again (a file renamed into place or removed changes it).
 */
void tree_rescan(struct tree *t, bool force);

/*
 * From now on tell the kernel nothing (a walk of invalidations in progress
 * stops): its requests may go unanswered while the daemon stops, and a
 * notification can wait on one of them.
 */
void tree_stop(struct tree *t);

#endif

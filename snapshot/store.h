/*
 * store: a store directory of archives (SPEC, "The store").
 *
 * A snapshot is one file <name>-<YYYYMMDD_HHMMSS>.<ext>, the time in local
 * time. Nothing else is needed to read a store. An archive is written as a
 * hidden temporary file in its directory and renamed into place once it is
 * complete and synced, so no partial archive ever has a real name.
 *
 * Writing, under the store lock:
 *	store_lock() -> store_create() -> write to tmp.fd -> store_commit() or
 *	store_abort() -> store_unlock()
 * Functions are thread-safe; a struct store_tmp belongs to one thread.
 */
#ifndef SNAPFS_STORE_H
#define SNAPFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_NATIVE_EXT ".tar.zst"
#define STORE_LOCK_FILE ".snapkeep.lock"

/* What a file name says. */
struct store_name {
	size_t name_len;	/* the <name> part, before "-<time>"; 0 without a time */
	size_t ext_len;		/* the archive extension, ".tar.gz"; 0: not an archive */
	bool native;		/* ".tar.zst" */
	bool has_time;
	int year, month, day, hour, min, sec;
};

/*
 * Parse file (a name, no directory). Returns false for files that are not
 * archives, and for hidden files (temporary files are hidden).
 */
bool store_parse_name(const char *file, struct store_name *out);

/*
 * The Unix time of a parsed local time (TZ applies), as mktime() takes it: a
 * time in a gap (clocks put forward) moves on by the gap. A time that comes
 * twice (clocks put back: the autumn change, or a zone's new offset) names two
 * instants: the later is taken unless written (the archive's mtime: a take
 * names its archive when it starts, and writes it after) is more than a minute
 * before it, else the earlier; with written <= 0 (not known), the later.
 */
int64_t store_name_time(const struct store_name *n, int64_t written);

struct store_entry {
	char *file;		/* the file name */
	struct store_name parsed;
	int64_t time;		/* Unix time; 0 when !parsed.has_time */
	uint64_t size;
};

/*
 * The archives in directory dir (not below it), oldest first; archives without
 * a time come last, by name. *out is new: free it with store_list_free().
 * A missing directory is an empty list.
 */
int store_list(const char *dir, struct store_entry **out, size_t *n, struct err *e);
void store_list_free(struct store_entry *v, size_t n);

/*
 * Take the store's lock (STORE_LOCK_FILE in dir, created 0600), waiting up
 * to wait_ms for another holder. Returns a descriptor for store_unlock(), or
 * -1: EWOULDBLOCK when another snapkeep still holds it.
 */
int store_lock(const char *dir, int wait_ms, struct err *e);
void store_unlock(int fd);

/* Create dir and missing parents with mode 0700 (a store, a restore directory). */
int store_mkdir(const char *dir, struct err *e);

/* Remove hidden temporary files left by takes that died. Call it under the lock. */
int store_clean_temps(const char *dir, struct err *e);

struct store_tmp {
	int fd;			/* write the archive here */
	int dirfd;
	char *tmp;		/* hidden temporary name in dir */
	char *final;		/* the archive's name */
	char *dir;
};

/*
 * Start the archive <name>-<time>.tar.zst in dir (created 0700 if missing).
 * When an archive of that name exists, the time moves on a second until the
 * name is free; *time gets the time used. The temporary file is 0600.
 */
int store_create(const char *dir, const char *name, int64_t *time, struct store_tmp *t,
		 struct err *e);

/*
 * Sync the file, rename it into place without replacing anything, sync the
 * directory. Returns 0; -1 when nothing is in place; 1 (with e filled) when
 * the archive is in place but the directory could not be synced.
 */
int store_commit(struct store_tmp *t, struct err *e);

/* Remove the temporary file (if not committed) and release what store_create() filled. */
void store_abort(struct store_tmp *t);

/* The path of the committed archive (dir/final), valid until store_abort(). */
const char *store_tmp_path(struct store_tmp *t, char *buf, size_t size);

/* Delete the archive file in dir; refuses names store_parse_name() does not accept. */
int store_delete(const char *dir, const char *file, struct err *e);

/* Format a local time as YYYYMMDD_HHMMSS into buf (16 bytes). */
void store_format_time(int64_t time, char buf[16]);

#endif

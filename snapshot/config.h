/*
 * config: the YAML configuration file (SPEC, "The config file") as plain structs.
 *
 * Calling sequence: cfg_load() -> read the struct -> cfg_free().
 * Every error names FILE:LINE:COLUMN (1-based, as editors count) and what to do:
 * an unknown key, a wrong type, a missing required key, a bad value.
 * Not thread-safe while loading; the loaded struct is immutable and may be shared.
 */
#ifndef SNAPFS_CONFIG_H
#define SNAPFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "retention.h"

struct cfg_strv {
	char **v;
	size_t n;
};

struct cfg_set {
	char *name;			/* the key under sets: */
	struct cfg_strv paths;		/* required, non-empty */
	struct cfg_strv optional;	/* each must also be in paths */
	struct cfg_strv exclude;
	struct cfg_strv require;
	bool has_keep;			/* no keep: nothing is ever pruned */
	struct keep_policy keep;
};

struct cfg {
	char *file;			/* the path it was loaded from */
	char *store;			/* required; absolute (see cfg_load()) */
	char *source;			/* optional, absolute; NULL = the current directory */
	int level;			/* zstd level, default 3: 1..19, or -7..-1 (fast) */
	int threads;			/* 0 = all cores (default) */
	struct cfg_set *sets;		/* in file order; at least one */
	size_t nsets;
};

/*
 * Load and check file. On success *out owns a new struct; free it with cfg_free(). On error
 * *out is untouched and e says why:
 *   EINVAL  the content: e->msg is "FILE:LINE:COLUMN: problem; what to do" (FILE as given,
 *           no "snapkeep: " prefix); YAML syntax errors, an empty file, a document that is
 *           not a mapping, a second document, unknown/duplicate/missing keys, wrong types
 *           and bad values all take this form
 *   errno   of open() or read(), e.g. ENOENT, EACCES, EISDIR: "cannot open 'FILE': ..."
 *   EFBIG   a file over 1 MiB; ENOMEM
 *
 * A relative store or source is taken relative to the directory of file, not the current
 * directory, so that a cron job finds the store from any cwd; the stored path is absolute
 * (the current directory is read once, when file itself is relative). It need not exist.
 * Paths in paths, optional and require are relative to source and may not contain '..'.
 * Set names match [A-Za-z0-9_.-]+ and start with neither '.' nor '-'.
 */
int cfg_load(const char *file, struct cfg **out, struct err *e);

/* Free c and everything it owns. Accepts NULL. */
void cfg_free(struct cfg *c);

/* The set called name, or NULL. Borrowed: valid until cfg_free(). */
const struct cfg_set *cfg_find_set(const struct cfg *c, const char *name);

#endif

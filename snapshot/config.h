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
	char *store;			/* required */
	char *source;			/* optional; NULL = the current directory */
	int level;			/* zstd level, default 3 */
	int threads;			/* 0 = all cores (default) */
	struct cfg_set *sets;		/* in file order; at least one */
	size_t nsets;
};

/* Load and check file. On success *out owns a new struct; free it with cfg_free(). */
int cfg_load(const char *file, struct cfg **out, struct err *e);
void cfg_free(struct cfg *c);

/* The set called name, or NULL. Borrowed: valid until cfg_free(). */
const struct cfg_set *cfg_find_set(const struct cfg *c, const char *name);

#endif

/*
 * ops: the FUSE low-level callbacks. Each gets its node from tree, asks it,
 * and replies; writes of every kind fail with EROFS.
 *
 * The daemon's state is reached through fuse_req_userdata(): a struct ops
 * made by the caller, which must outlive the session.
 */
#ifndef SNAPFS_OPS_H
#define SNAPFS_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

#include "fcache.h"
#include "tree.h"

struct ops_reader;

struct ops {
	struct tree *tree;
	struct fcache *cache;
	const char *store;		/* for statfs */
	bool no_open, no_opendir;	/* the kernel opens without asking (from init) */
	pthread_mutex_t mu;		/* the pool of readers */
	struct ops_reader **pool;
	size_t npool, cappool;
};

/* Initialise o's own fields (tree, cache and store are the caller's). */
void ops_init(struct ops *o);
void ops_release(struct ops *o);

const struct fuse_lowlevel_ops *ops_table(void);

#endif

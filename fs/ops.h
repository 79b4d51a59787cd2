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
#include <stdatomic.h>
#include <stdbool.h>

#include "fcache.h"
#include "tree.h"

struct ops_reader;
struct ops_push;

struct ops {
	struct tree *tree;
	struct fcache *cache;
	const char *store;		/* for statfs */
	bool no_open, no_opendir;	/* the kernel opens without asking (from init) */
	bool readdirplus_auto;		/* -o readdirplus=auto: the kernel's choice */
	/*
	 * The mount's read-ahead (sysfs file, KiB), set on the first request: the
	 * kernel lowers it to what INIT offered when INIT is answered, and the
	 * 128 KiB it offers is all libfuse can ask for. Larger requests let big
	 * files decompress side by side. Root only; "" leaves it.
	 */
	char ra_path[128];
	unsigned long long ra_kib;
	atomic_bool ra_done;
	/*
	 * Pushing to the kernel's page cache the small files of its directory that
	 * share a frame with a file just read (fuse_lowlevel_notify_store; tree.h,
	 * tree_siblings), from a thread of its own, so that reading a directory of
	 * small files costs one round trip per frame instead of one per file. Jobs
	 * beyond a bound are dropped.
	 */
	struct fuse_session *se;
	pthread_t pusher;
	atomic_bool pushing;	/* ops_stop() clears it while reads look at it */
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	struct ops_push *jobs, *last;
	unsigned njobs;
	atomic_bool stop;		/* read by the pusher between files */
	pthread_mutex_t mu;		/* the pool of readers */
	struct ops_reader **pool;
	size_t npool, cappool;
};

/* Initialise o's own fields (tree, cache and store are the caller's). */
void ops_init(struct ops *o);
/*
 * Start and stop the pushing thread: after the session is made (and after
 * fuse_daemonize), and after its loop returned but before it is unmounted.
 */
void ops_start(struct ops *o, struct fuse_session *se);
void ops_stop(struct ops *o);
void ops_release(struct ops *o);

const struct fuse_lowlevel_ops *ops_table(void);

#endif

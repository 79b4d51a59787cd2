/*
 * watch: notice archives that come and go in a store, and tell the tree.
 *
 * A thread watches the store and its subdirectories with inotify; after a
 * change (and at least every second, for stores on filesystems that send no
 * events) it calls tree_rescan(), which invalidates what the kernel cached.
 * Changes show within about a tenth of a second with inotify.
 *
 *	watch_start() -> ... -> watch_stop()
 */
#ifndef SNAPFS_WATCH_H
#define SNAPFS_WATCH_H

#include "err.h"
#include "tree.h"

struct watch;

int watch_start(const char *store, struct tree *t, struct watch **out, struct err *e);
/* Stop the thread and free w; accepts NULL. */
void watch_stop(struct watch *w);

#endif

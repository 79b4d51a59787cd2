#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | \
		IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR)
#define PERIOD_MS 1000	/* the longest between two rescans */
#define SETTLE_MS 50	/* after an event, wait this long for the rest of a burst */

struct watch {
	char *store;
	struct tree *tree;
	int ifd, stop_fd;
	pthread_t thread;
};

/* Watch dir and every visible directory below it (adding a watch twice is harmless). */
static void watch_dirs(struct watch *w, const char *dir, int depth)
{
	DIR *d;
	struct dirent *de;

	if (inotify_add_watch(w->ifd, dir, EVENTS) < 0 || depth > 32 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR || (de->d_type == DT_UNKNOWN && stat(path, &st) == 0 &&
					     S_ISDIR(st.st_mode)))
			watch_dirs(w, path, depth + 1);
	}
	closedir(d);
}

/* Read and drop pending events; true if there were any. */
static int drain(int fd)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;

	while (read(fd, buf, sizeof(buf)) > 0)
		any = 1;
	return any;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct pollfd p[2] = { { w->ifd, POLLIN, 0 }, { w->stop_fd, POLLIN, 0 } };

	for (;;) {
		int n = poll(p, 2, PERIOD_MS);
		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (n > 0 && p[0].revents) {
			/* a take renames its file into place; let the burst settle */
			poll(&p[1], 1, SETTLE_MS);
			drain(w->ifd);
		}
		/* events: list everything; a quiet second: only directories whose mtime moved */
		tree_rescan(w->tree, n > 0);
		if (n > 0)
			watch_dirs(w, w->store, 0);
	}
	return NULL;
}

int watch_start(const char *store, struct tree *t, struct watch **out, struct err *e)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w || !(w->store = strdup(store))) {
		free(w);
		return err_set(e, ENOMEM, "out of memory");
	}
	w->tree = t;
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->ifd < 0 || w->stop_fd < 0) {
		int code = errno;
		watch_stop(w);
		return err_set(e, code, "cannot watch '%s': %s", store, strerror(code));
	}
	watch_dirs(w, store, 0);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		w->thread = 0;
		watch_stop(w);
		return err_set(e, EAGAIN, "cannot start the watch thread");
	}
	*out = w;
	return 0;
}

void watch_stop(struct watch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (w->thread) {
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
	}
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	free(w->store);
	free(w);
}

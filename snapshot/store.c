#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Archive extensions libarchive reads, longest first so ".tar.gz" wins over ".gz". */
static const char *const exts[] = {
	".tar.zst", ".tar.zstd", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.lz4", ".tar.lzma",
	".tzst", ".tgz", ".tbz2", ".tbz", ".txz", ".tlz4", ".tar", ".zip", ".cpio", ".7z",
	".iso",
};

#define TIME_LEN 15	/* YYYYMMDD_HHMMSS */

static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static bool parse_time(const char *s, struct store_name *o)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (s[8] != '_')
		return false;
	o->year = digits(s, 4);
	o->month = digits(s + 4, 2);
	o->day = digits(s + 6, 2);
	o->hour = digits(s + 9, 2);
	o->min = digits(s + 11, 2);
	o->sec = digits(s + 13, 2);
	if (o->year < 1970 || o->month < 1 || o->month > 12 || o->day < 1 ||
	    o->day > mdays[o->month - 1])
		return false;
	/* February 29th exists in leap years only; mktime() would make it March 1st */
	if (o->month == 2 && o->day == 29 && !is_leap(o->year))
		return false;
	return o->hour >= 0 && o->hour < 24 && o->min >= 0 && o->min < 60 && o->sec >= 0 &&
	       o->sec < 61;
}

bool store_parse_name(const char *file, struct store_name *o)
{
	size_t len = strlen(file), stem;

	memset(o, 0, sizeof(*o));
	if (file[0] == '.')
		return false;
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t n = strlen(exts[i]);
		if (len > n && strcmp(file + len - n, exts[i]) == 0) {
			o->ext_len = n;
			o->native = i == 0;
			break;
		}
	}
	if (!o->ext_len)
		return false;
	stem = len - o->ext_len;
	if (stem >= TIME_LEN + 2 && file[stem - TIME_LEN - 1] == '-' &&
	    parse_time(file + stem - TIME_LEN, o)) {
		o->has_time = true;
		o->name_len = stem - TIME_LEN - 1;
	}
	return true;
}

/* Whether t in local time is n's time. */
static bool reads_as(const struct store_name *n, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	return localtime_r(&tt, &tm) && tm.tm_year == n->year - 1900 &&
	       tm.tm_mon == n->month - 1 && tm.tm_mday == n->day && tm.tm_hour == n->hour &&
	       tm.tm_min == n->min && tm.tm_sec == n->sec;
}

/* A take whose name is taken moves on a second a clash: its file may be written before it. */
#define NAME_SLACK 60

int64_t store_name_time(const struct store_name *n, int64_t written)
{
	struct tm tm = {
		.tm_year = n->year - 1900, .tm_mon = n->month - 1, .tm_mday = n->day,
		.tm_hour = n->hour, .tm_min = n->min, .tm_sec = n->sec, .tm_isdst = -1,
	}, utc = tm, a, b;	/* utc: the fields as they are, for timegm() */
	time_t t = mktime(&tm), before = t - 3 * 3600, after = t + 3 * 3600;
	int64_t local, one, two;

	/* the same offset 3 hours either side (no change of it moves clocks by more): one reading */
	if (!localtime_r(&before, &a) || !localtime_r(&after, &b) || a.tm_gmtoff == b.tm_gmtoff)
		return (int64_t)t;
	/* near a change, the name read with the offset before it and with the one after */
	local = (int64_t)timegm(&utc);
	one = local - a.tm_gmtoff;
	two = local - b.tm_gmtoff;
	if (!reads_as(n, one) || !reads_as(n, two))
		return (int64_t)t;	/* one reading, or none (a gap: mktime() moves on by it) */
	/*
	 * a time the change repeats: the later reading, unless the file was written before
	 * it; with no file time, the later (not mktime()'s pick: glibc's follows its last call)
	 */
	if (one < two)
		return written <= 0 || two - NAME_SLACK <= written ? two : one;
	return written <= 0 || one - NAME_SLACK <= written ? one : two;
}

void store_format_time(int64_t time, char buf[16])
{
	time_t t = (time_t)time;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, 16, "%Y%m%d_%H%M%S", &tm);
}

static int cmp_entries(const void *a, const void *b)
{
	const struct store_entry *x = a, *y = b;

	if (x->parsed.has_time != y->parsed.has_time)
		return x->parsed.has_time ? -1 : 1;
	if (x->parsed.has_time && x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->file, y->file);
}

static int add_entry(struct store_entry **v, size_t *n, size_t *cap, const char *file,
		     const struct store_name *p, const struct stat *st)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct store_entry *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	struct store_entry *s = &(*v)[*n];
	if (!(s->file = strdup(file)))
		return -1;
	s->parsed = *p;
	s->time = p->has_time ? store_name_time(p, (int64_t)st->st_mtime) : 0;
	s->size = (uint64_t)st->st_size;
	(*n)++;
	return 0;
}

int store_list(const char *dir, struct store_entry **out, size_t *count, struct err *e)
{
	DIR *d = opendir(dir);
	struct store_entry *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d && errno == ENOENT) {
		*out = NULL;
		*count = 0;
		return 0;
	}
	if (!d)
		return err_set(e, errno, "cannot list store '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		struct store_name p;
		struct stat st;
		if (!store_parse_name(de->d_name, &p) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (add_entry(&v, &n, &cap, de->d_name, &p, &st) < 0) {
			closedir(d);
			store_list_free(v, n);
			return err_set(e, ENOMEM, "out of memory listing '%s'", dir);
		}
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_entries);
	*out = v;
	*count = n;
	return 0;
}

void store_list_free(struct store_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].file);
	free(v);
}

int store_mkdir(const char *dir, struct err *e)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0)	/* the loop below starts after the first byte */
		return err_set(e, EINVAL, "the path is empty; name a directory");
	if (len >= sizeof(path))
		return err_set(e, ENAMETOOLONG, "path '%s' is too long", dir);
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return err_set(e, errno, "cannot create directory '%s': %s", path,
				       strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int store_lock(const char *dir, int wait_ms, struct err *e)
{
	char path[PATH_MAX];
	int fd;

	if (store_mkdir(dir, e) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "cannot open lock '%s': %s", path, strerror(errno));
	for (int waited = 0;; waited += 100) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || waited >= wait_ms)
			break;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (errno == EWOULDBLOCK)
		err_set(e, EWOULDBLOCK, "store '%s' is locked by another snapkeep (take or prune); "
					"wait for it to finish", dir);
	else
		err_set(e, errno, "cannot lock '%s': %s", path, strerror(errno));
	close(fd);
	return -1;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

#define TEMP_SUFFIX_LEN 7	/* ".XXXXXX" */

/*
 * A temporary name: "." + final name + ".XXXXXX", the final name a native
 * archive name. Anything else hidden in the store is the user's and stays.
 */
static bool is_temp(const char *file)
{
	size_t len = strlen(file);
	char final[NAME_MAX + 1];
	struct store_name p;

	if (file[0] != '.' || len < 2 + TEMP_SUFFIX_LEN || len - 1 > NAME_MAX ||
	    file[len - TEMP_SUFFIX_LEN] != '.')
		return false;
	for (size_t i = len - TEMP_SUFFIX_LEN + 1; i < len; i++)
		if (!isalnum((unsigned char)file[i]))
			return false;
	memcpy(final, file + 1, len - 1 - TEMP_SUFFIX_LEN);
	final[len - 1 - TEMP_SUFFIX_LEN] = '\0';
	return store_parse_name(final, &p) && p.native;
}

int store_clean_temps(const char *dir, struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : err_set(e, errno, "cannot list '%s': %s", dir,
						     strerror(errno));
	while ((de = readdir(d)))
		if (is_temp(de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

/* 1: no file is named final, 0: one is, -1: cannot tell (errno says why) */
static int name_free(int dirfd, const char *name, int64_t time, char *final, size_t size)
{
	char ts[16];

	store_format_time(time, ts);
	snprintf(final, size, "%s-%s%s", name, ts, STORE_NATIVE_EXT);
	if (faccessat(dirfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	return errno == ENOENT ? 1 : -1;
}

int store_create(const char *dir, const char *name, int64_t *time, struct store_tmp *t,
		 struct err *e)
{
	char final[NAME_MAX + 1], tmp[NAME_MAX + 1];
	int64_t when = *time;
	int is_free;

	memset(t, 0, sizeof(*t));
	t->fd = t->dirfd = -1;
	if (strlen(name) + 1 + TIME_LEN + strlen(STORE_NATIVE_EXT) + 8 > NAME_MAX)
		return err_set(e, ENAMETOOLONG, "snapshot name '%s' is too long", name);
	if (store_mkdir(dir, e) < 0)
		return -1;
	t->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return err_set(e, errno, "cannot open store '%s': %s", dir, strerror(errno));
	while ((is_free = name_free(t->dirfd, name, when, final, sizeof(final))) == 0)
		when++;
	if (is_free < 0) {
		/* EACCES (a directory we may read but not search) would otherwise loop forever */
		err_set(e, errno, "cannot look up '%s' in store '%s': %s", final, dir,
			strerror(errno));
		store_abort(t);
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp), ".%.*s.XXXXXX", NAME_MAX - 8, final) >= (int)sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "snapshot name '%s' is too long", name);
	t->dir = strdup(dir);
	t->final = strdup(final);
	t->tmp = strdup(tmp);
	if (!t->dir || !t->final || !t->tmp) {
		store_abort(t);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (int tries = 0; tries < 100 && t->fd < 0; tries++) {
		static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		uint64_t r = (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 20) ^ (uint64_t)tries * 7919;
		for (size_t i = strlen(t->tmp) - 6; t->tmp[i]; i++, r /= 36)
			t->tmp[i] = set[r % 36];
		t->fd = openat(t->dirfd, t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (t->fd < 0 && errno != EEXIST)
			break;
	}
	if (t->fd < 0) {
		err_set(e, errno, "cannot create a file in store '%s': %s", dir, strerror(errno));
		/* the last name tried is not ours (EEXIST): store_abort() must not remove it */
		free(t->tmp);
		t->tmp = NULL;
		store_abort(t);
		return -1;
	}
	*time = when;
	return 0;
}

int store_commit(struct store_tmp *t, struct err *e)
{
	if (fsync(t->fd) < 0)
		return err_set(e, errno, "cannot sync '%s/%s': %s", t->dir, t->tmp, strerror(errno));
	if (renameat2(t->dirfd, t->tmp, t->dirfd, t->final, RENAME_NOREPLACE) < 0 &&
	    (errno != EINVAL || linkat(t->dirfd, t->tmp, t->dirfd, t->final, 0) < 0 ||
	     unlinkat(t->dirfd, t->tmp, 0) < 0))
		return err_set(e, errno, "cannot rename '%s/%s' into place: %s", t->dir, t->tmp,
			       strerror(errno));
	free(t->tmp);
	t->tmp = NULL;
	if (fsync(t->dirfd) < 0) {
		err_set(e, errno, "'%s/%s' is in place but the store directory could not be "
				  "synced: %s; run 'sync' to be sure it survives a crash", t->dir,
			t->final, strerror(errno));
		return 1;
	}
	return 0;
}

void store_abort(struct store_tmp *t)
{
	if (!t)
		return;
	if (t->tmp && t->dirfd >= 0)
		unlinkat(t->dirfd, t->tmp, 0);
	if (t->fd >= 0)
		close(t->fd);
	if (t->dirfd >= 0)
		close(t->dirfd);
	free(t->tmp);
	free(t->final);
	free(t->dir);
	memset(t, 0, sizeof(*t));
	t->fd = t->dirfd = -1;
}

const char *store_tmp_path(struct store_tmp *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", t->dir, t->final);
	return buf;
}

int store_delete(const char *dir, const char *file, struct err *e)
{
	struct store_name p;
	char path[PATH_MAX];

	if (strchr(file, '/') || !store_parse_name(file, &p))
		return err_set(e, EINVAL, "refusing to delete '%s': not an archive name", file);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (unlink(path) < 0)
		return err_set(e, errno, "cannot delete '%s': %s", path, strerror(errno));
	return 0;
}

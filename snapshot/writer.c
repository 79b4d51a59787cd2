#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "index.h"
#include "zseek.h"

#define READ_CHUNK (1u << 20)

/* A growable path: the stored name and the name on disk grow and shrink together. */
struct pathbuf {
	char *s;
	size_t len, cap;
};

struct wr {
	const struct wr_opts *o;
	const char *name;
	size_t frame_size, group_size;
	struct zseek_writer *z;
	struct archive *a;		/* the pax writer */
	struct archive *disk;		/* metadata: xattrs, sparse maps, owner names */
	struct archive_entry_linkresolver *lr;
	struct idx_builder *b;
	struct pathbuf rel;		/* the stored name */
	struct pathbuf abs;		/* the same file from / */
	unsigned char *buf;
	bool big;			/* writing a big member's data: frames of frame_size */
	struct err cb_err;		/* a failure inside libarchive's write callback */
	bool cb_failed;
	struct wr_progress prog;
	struct timespec last_progress;
	uint64_t warnings;
	int dirfd;			/* the member's directory, and its name there */
	const char *base;
	bool skip;			/* o->skip_dir exists: skip_dev, skip_ino */
	dev_t skip_dev;
	ino_t skip_ino;
};

static const unsigned char zeros[65536];

static int path_push(struct pathbuf *p, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = p->len + n + 2;

	if (need > p->cap) {
		size_t cap = p->cap ? p->cap : 256;
		while (cap < need)
			cap *= 2;
		char *s = realloc(p->s, cap);
		if (!s)
			return -1;
		p->s = s;
		p->cap = cap;
	}
	*saved = p->len;
	if (p->len && p->s[p->len - 1] != '/')
		p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, n + 1);
	p->len += n;
	return 0;
}

static void path_pop(struct pathbuf *p, size_t saved)
{
	p->len = saved;
	p->s[saved] = '\0';
}

__attribute__((format(printf, 2, 3)))
static void warn(struct wr *w, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->warnings++;
	if (w->o->warn)
		w->o->warn(w->o->ctx, msg);
}

static void progress(struct wr *w)
{
	struct timespec now;

	if (!w->o->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec == w->last_progress.tv_sec &&
	    now.tv_nsec - w->last_progress.tv_nsec < 200000000)
		return;
	w->last_progress = now;
	w->prog.written = zseek_written(w->z);
	w->o->progress(w->o->ctx, &w->prog);
}

/* libarchive's write callback: every byte of the tar stream goes to the frames. */
static la_ssize_t on_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct wr *w = ctx;
	const unsigned char *p = buf;
	size_t left = len;

	(void)a;
	while (left > 0) {
		size_t n = left, room = w->frame_size - zseek_pending(w->z);
		if (w->big && n > room)
			n = room;
		if (zseek_write(w->z, p, n, &w->cb_err) < 0 ||
		    (w->big && zseek_pending(w->z) >= w->frame_size && zseek_cut(w->z, &w->cb_err) < 0)) {
			w->cb_failed = true;
			return -1;
		}
		p += n;
		left -= n;
	}
	return (la_ssize_t)len;
}

/* The error of a failed libarchive write call: ours if the callback failed. */
static int archive_failed(struct wr *w, const char *what, struct err *e)
{
	if (w->cb_failed) {
		*e = w->cb_err;
		return -1;
	}
	return err_set(e, EIO, "cannot write %s of '%s': %s", what, w->rel.s,
		       archive_error_string(w->a));
}

int wr_excluded(const struct wr_opts *o, const char *rel, int is_dir)
{
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;

	for (size_t i = 0; i < o->nexclude; i++) {
		char pat[PATH_MAX];
		size_t n = strlen(o->exclude[i]);
		bool dir_only = n > 1 && o->exclude[i][n - 1] == '/';
		if (n >= sizeof(pat) || (dir_only && !is_dir))
			continue;
		memcpy(pat, o->exclude[i], n + 1);
		while (n > 1 && pat[n - 1] == '/')
			pat[--n] = '\0';
		/* a pattern with a slash matches the whole path, else any name, as tar's --exclude */
		if (strchr(pat, '/') ? fnmatch(pat[0] == '/' ? pat + 1 : pat, rel, FNM_PATHNAME) == 0
				     : fnmatch(pat, base, 0) == 0)
			return 1;
	}
	return 0;
}

static bool is_optional(const struct wr_opts *o, const char *path)
{
	for (size_t i = 0; i < o->noptional; i++)
		if (strcmp(o->optional[i], path) == 0)
			return true;
	return false;
}

static int open_source(const struct wr_opts *o, struct err *e)
{
	const char *src = o->source ? o->source : ".";
	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set(e, errno, "cannot open source directory '%s': %s", src,
			       strerror(errno));
	return fd;
}

int wr_check_paths(const struct wr_opts *o, struct err *e)
{
	int src = open_source(o, e);
	struct stat st;

	if (src < 0)
		return -1;
	for (size_t i = 0; i < o->npaths; i++) {
		if (fstatat(src, o->paths[i], &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    (errno == ENOENT && is_optional(o, o->paths[i])))
			continue;
		err_set(e, errno, "cannot archive '%s' in '%s': %s; fix the path or mark it "
				  "optional", o->paths[i], o->source ? o->source : ".", strerror(errno));
		close(src);
		return -1;
	}
	close(src);
	return 0;
}

/*
 * Pass len zero bytes to the pax writer: in a sparse member's holes it skips
 * them but counts them; elsewhere they stand in for bytes that could not be read.
 */
static int write_zeros(struct wr *w, uint64_t len, struct err *e)
{
	while (len > 0) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if (archive_write_data(w->a, zeros, n) < 0)
			return archive_failed(w, "data", e);
		len -= n;
	}
	return 0;
}

/*
 * Feed len bytes of fd from off to the pax writer. What cannot be read (the
 * file shrank, or a read failed) is written as zeros with a warning, so the
 * member keeps the size its header promised. Returns 1 after such a warning.
 */
static int copy_range(struct wr *w, int fd, uint64_t off, uint64_t len, struct err *e)
{
	while (len > 0) {
		size_t want = len < READ_CHUNK ? (size_t)len : READ_CHUNK;
		ssize_t n = pread(fd, w->buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				warn(w, "cannot read '%s' at byte %llu: %s; stored zeros instead",
				     w->rel.s, (unsigned long long)off, strerror(errno));
			else
				warn(w, "'%s' shrank while it was read; stored %llu zero bytes in "
					"place of the missing end", w->rel.s, (unsigned long long)len);
			return write_zeros(w, len, e) < 0 ? -1 : 1;
		}
		if (archive_write_data(w->a, w->buf, (size_t)n) < 0)
			return archive_failed(w, "data", e);
		w->prog.bytes += (uint64_t)n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
		progress(w);
	}
	return 0;
}

/* A sparse file: data regions from the file, holes as counted zeros. */
static int copy_sparse(struct wr *w, int fd, struct archive_entry *entry, struct err *e)
{
	la_int64_t off, len;
	uint64_t pos = 0, size = (uint64_t)archive_entry_size(entry);
	int rc = 0, r;

	archive_entry_sparse_reset(entry);
	while (archive_entry_sparse_next(entry, &off, &len) == ARCHIVE_OK) {
		if (write_zeros(w, (uint64_t)off - pos, e) < 0)
			return -1;
		if ((r = copy_range(w, fd, (uint64_t)off, (uint64_t)len, e)) < 0)
			return -1;
		rc |= r;
		pos = (uint64_t)(off + len);
	}
	if (pos < size && write_zeros(w, size - pos, e) < 0)
		return -1;
	return rc;
}

static bool changed(const struct stat *a, const struct stat *b)
{
	return a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	       a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_ino != b->st_ino;
}

static uint64_t stored_bytes(struct archive_entry *entry)
{
	la_int64_t off, len;
	uint64_t sum = 0;

	if (archive_entry_sparse_reset(entry) == 0)
		return (uint64_t)archive_entry_size(entry);
	while (archive_entry_sparse_next(entry, &off, &len) == ARCHIVE_OK)
		sum += (uint64_t)len;
	return sum;
}

/*
 * Write a regular file's data. A member with at least frame_size bytes starts a
 * frame at its data. Returns the data's offset in the tar stream through *data_off.
 */
static int write_data(struct wr *w, int fd, struct archive_entry *entry, const struct stat *st,
		      uint64_t *data_off, struct err *e)
{
	bool sparse = archive_entry_sparse_count(entry) > 0;
	struct stat after;
	int rc;

	if (stored_bytes(entry) >= w->frame_size) {
		if (zseek_cut(w->z, e) < 0)
			return -1;
		w->big = true;
	}
	/* the pax writer puts a sparse map before the data on the first write */
	if (sparse && archive_write_data(w->a, zeros, 0) < 0)
		return archive_failed(w, "sparse map", e);
	*data_off = zseek_pos(w->z);
	rc = sparse ? copy_sparse(w, fd, entry, e)
		    : copy_range(w, fd, 0, (uint64_t)archive_entry_size(entry), e);
	w->big = false;
	if (rc < 0)
		return -1;
	if (rc == 0 && fstat(fd, &after) == 0 && changed(st, &after))
		warn(w, "'%s' changed while it was read; its copy may be inconsistent", w->rel.s);
	return 0;
}

static void note_warning(struct wr *w, struct archive *a, const char *what)
{
	const char *msg = archive_error_string(a);

	warn(w, "'%s': %s%s%s", w->rel.s, what, msg ? ": " : "", msg ? msg : "");
}

/* End the previous member, and its frame once the frame holds group_size bytes. */
static int start_member(struct wr *w, struct err *e)
{
	if (archive_write_finish_entry(w->a) < 0)
		return archive_failed(w, "padding", e);
	if (zseek_pending(w->z) >= w->group_size && zseek_cut(w->z, e) < 0)
		return -1;
	return 0;
}

/* Write one member: header, data, index entry. fd is open for regular files and directories. */
static int write_member(struct wr *w, int fd, const struct stat *st, struct err *e)
{
	struct archive_entry *entry = archive_entry_new(), *spare = NULL;
	uint64_t data_off;
	int r, rc = -1;

	if (!entry)
		return err_set(e, ENOMEM, "out of memory");
	if (S_ISSOCK(st->st_mode)) {
		/* before the link resolver sees it: a second name must not become a link to it */
		warn(w, "'%s': a socket cannot be stored in a tar archive; skipped", w->rel.s);
		rc = 0;
		goto done;
	}
	archive_entry_copy_pathname(entry, w->rel.s);
	/*
	 * libarchive reads a symlink's target, and the extended attributes of
	 * what it cannot open, by path: one past PATH_MAX is named through its
	 * directory's descriptor instead.
	 */
	char via[64 + NAME_MAX];
	if (w->abs.len >= PATH_MAX && w->base[0] != '/' &&
	    snprintf(via, sizeof(via), "/proc/self/fd/%d/%s", w->dirfd, w->base) < (int)sizeof(via))
		archive_entry_copy_sourcepath(entry, via);
	else
		archive_entry_copy_sourcepath(entry, w->abs.s);
	r = archive_read_disk_entry_from_file(w->disk, entry, fd, st);
	if (r < ARCHIVE_WARN) {
		note_warning(w, w->disk, "cannot read its metadata; skipped");
		rc = 0;
		goto done;
	}
	if (r == ARCHIVE_WARN)
		note_warning(w, w->disk, "some metadata was not read");
	/*
	 * Access, change and creation times cannot be restored usefully and cost
	 * each small member about a tenth of its compressed size in pax records.
	 */
	archive_entry_unset_atime(entry);
	archive_entry_unset_ctime(entry);
	archive_entry_unset_birthtime(entry);
	archive_entry_linkify(w->lr, &entry, &spare);
	if (start_member(w, e) < 0)
		goto done;
	r = archive_write_header(w->a, entry);
	if (r < ARCHIVE_WARN) {
		if (w->cb_failed || r == ARCHIVE_FATAL) {
			archive_failed(w, "the header", e);
			goto done;
		}
		note_warning(w, w->a, "cannot be stored; skipped");
		rc = 0;
		goto done;
	}
	data_off = zseek_pos(w->z);
	if (S_ISREG(st->st_mode) && !archive_entry_hardlink(entry) && archive_entry_size(entry) > 0 &&
	    write_data(w, fd, entry, st, &data_off, e) < 0)
		goto done;
	if (idx_builder_add(w->b, entry, data_off, e) < 0)
		goto done;
	w->prog.files++;
	progress(w);
	rc = 0;
done:
	archive_entry_free(entry);
	archive_entry_free(spare);
	return rc;
}

static int walk(struct wr *w, int dirfd, const char *base, bool top, struct err *e);

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory fd, sorted so archives of the same tree come out the same. */
static char **list_dir(struct wr *w, int fd, size_t *count)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		warn(w, "cannot list '%s': %s; its contents are skipped", w->rel.s, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **v = realloc(names, cap * sizeof(*v));
			if (!v)
				break;
			names = v;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*count = n;
	return names;
}

static int walk_dir(struct wr *w, int fd, struct err *e)
{
	size_t n = 0, rel_saved, abs_saved;
	char **names = list_dir(w, fd, &n);
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			if (path_push(&w->rel, names[i], &rel_saved) < 0 ||
			    path_push(&w->abs, names[i], &abs_saved) < 0) {
				rc = err_set(e, ENOMEM, "out of memory");
			} else {
				rc = walk(w, fd, names[i], false, e);
				path_pop(&w->rel, rel_saved);
				path_pop(&w->abs, abs_saved);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* The stored name without leading "./" segments, as exclude patterns see it. */
static const char *match_name(const char *rel)
{
	while (rel[0] == '.' && (rel[1] == '/' || rel[1] == '\0'))
		rel += rel[1] ? 2 : 1;
	return rel;
}

static int open_member(struct wr *w, int dirfd, const char *base, struct stat *st)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0);
	int fd = openat(dirfd, base, flags | O_NOATIME);

	if (fd < 0 && errno == EPERM)	/* O_NOATIME needs ownership */
		fd = openat(dirfd, base, flags);
	if (fd < 0) {
		warn(w, errno == ENOENT ? "'%s' vanished before it was read; skipped"
					: "cannot open '%s': %s; skipped", w->rel.s, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		warn(w, "cannot stat '%s': %s; skipped", w->rel.s, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int walk(struct wr *w, int dirfd, const char *base, bool top, struct err *e)
{
	const char *name = match_name(w->rel.s);
	struct stat st;
	int fd = -1, rc;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (!(top && errno == ENOENT && is_optional(w->o, base)))
			warn(w, errno == ENOENT ? "'%s' vanished before it was read; skipped"
						: "cannot stat '%s': %s; skipped", w->rel.s,
			     strerror(errno));
		return 0;
	}
	if (*name && wr_excluded(w->o, name, S_ISDIR(st.st_mode)))
		return 0;
	if (w->skip && S_ISDIR(st.st_mode) && st.st_dev == w->skip_dev && st.st_ino == w->skip_ino)
		return 0;	/* the store: as GNU tar leaves out its own archive */
	if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
	    (fd = open_member(w, dirfd, base, &st)) < 0)
		return 0;
	w->dirfd = dirfd;
	w->base = base;
	rc = write_member(w, fd, &st, e);
	if (rc == 0 && S_ISDIR(st.st_mode))
		rc = walk_dir(w, fd, e);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Each top-level path: stored as given, without leading or trailing slashes. */
static int walk_paths(struct wr *w, int src, const char *src_abs, struct err *e)
{
	for (size_t i = 0; i < w->o->npaths; i++) {
		const char *p = w->o->paths[i], *stored = p;
		size_t saved, len;
		while (*stored == '/')
			stored++;
		w->rel.len = w->abs.len = 0;
		if (path_push(&w->rel, *stored ? stored : ".", &saved) < 0 ||
		    path_push(&w->abs, p[0] == '/' ? "/" : src_abs, &saved) < 0 ||
		    (p[0] != '/' && path_push(&w->abs, p, &saved) < 0) ||
		    (p[0] == '/' && path_push(&w->abs, stored, &saved) < 0))
			return err_set(e, ENOMEM, "out of memory");
		len = w->rel.len;
		while (len > 1 && w->rel.s[len - 1] == '/')
			w->rel.s[--len] = '\0';
		w->rel.len = len;
		if (walk(w, src, p, true, e) < 0)
			return -1;
	}
	return 0;
}

static int setup(struct wr *w, int fd, struct err *e)
{
	const struct wr_opts *o = w->o;

	w->frame_size = o->frame_size ? o->frame_size : WR_DEFAULT_FRAME_SIZE;
	w->group_size = o->group_size ? o->group_size : WR_DEFAULT_GROUP_SIZE;
	/* groups of small members may grow past frame_size; big members are cut at it */
	if (zseek_writer_new(fd, w->name, o->level, o->threads,
			     w->group_size > w->frame_size ? w->group_size : w->frame_size, &w->z,
			     e) < 0)
		return -1;
	w->a = archive_write_new();
	w->disk = archive_read_disk_new();
	w->lr = archive_entry_linkresolver_new();
	if (!(w->b = idx_builder_new(o->time, e)))
		return -1;
	w->buf = malloc(READ_CHUNK);
	if (!w->a || !w->disk || !w->lr || !w->buf)
		return err_set(e, ENOMEM, "out of memory");
	/*
	 * Full pax, not restricted: restricted pax drops sub-second mtimes unless
	 * another field forces an extended header (FIELD-NOTES 2e). No blocking:
	 * every byte reaches on_write() at once, so zseek_pos() after a header is
	 * exactly where the member's data starts. Extended attributes only as
	 * SCHILY.xattr, which GNU tar and bsdtar both read; libarchive's own
	 * duplicate makes GNU tar warn on every file.
	 */
	if (archive_write_set_format_pax(w->a) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
	    archive_write_open(w->a, w, NULL, on_write, NULL) != ARCHIVE_OK)
		return err_set(e, EIO, "cannot start the tar stream: %s", archive_error_string(w->a));
	archive_entry_linkresolver_set_strategy(w->lr, archive_format(w->a));
	archive_read_disk_set_standard_lookup(w->disk);
	return 0;
}

static int finish(struct wr *w, struct wr_stats *st, struct err *e)
{
	void *blob = NULL, *frame = NULL;
	size_t len, flen;
	int rc = -1;

	if (archive_write_close(w->a) != ARCHIVE_OK)
		return archive_failed(w, "the end", e);
	if (zseek_cut(w->z, e) < 0)
		return -1;
	st->tar_size = zseek_pos(w->z);
	if (idx_builder_finish(w->b, &blob, &len, e) < 0 ||
	    idx_pack_frame(blob, len, st->tar_size, &frame, &flen, e) < 0 ||
	    zseek_write_skippable(w->z, IDX_FRAME_KIND, frame, flen, e) < 0 ||
	    zseek_finish(w->z, e) < 0)
		goto done;
	st->members = idx_builder_members(w->b);
	st->size = zseek_written(w->z);
	st->warnings = w->warnings;
	rc = 0;
done:
	free(blob);
	free(frame);
	return rc;
}

int wr_write(int fd, const char *name, const struct wr_opts *o, struct wr_stats *st,
	     struct err *e)
{
	struct wr w = { .o = o, .name = name };
	char *src_abs = NULL;
	int src = -1, rc = -1;
	struct stat sk;

	memset(st, 0, sizeof(*st));
	if (o->skip_dir && stat(o->skip_dir, &sk) == 0) {
		w.skip = true;
		w.skip_dev = sk.st_dev;
		w.skip_ino = sk.st_ino;
	}
	if ((src = open_source(o, e)) < 0)
		goto done;
	if (!(src_abs = realpath(o->source ? o->source : ".", NULL))) {
		err_set(e, errno, "cannot resolve '%s': %s", o->source, strerror(errno));
		goto done;
	}
	if (setup(&w, fd, e) < 0 || walk_paths(&w, src, src_abs, e) < 0 || finish(&w, st, e) < 0)
		goto done;
	w.prog.written = zseek_written(w.z);
	if (o->progress)
		o->progress(o->ctx, &w.prog);
	rc = 0;
done:
	if (w.a)
		archive_write_free(w.a);
	archive_read_free(w.disk);
	archive_entry_linkresolver_free(w.lr);
	idx_builder_free(w.b);
	zseek_writer_free(w.z);
	free(w.buf);
	free(w.rel.s);
	free(w.abs.s);
	free(src_abs);
	if (src >= 0)
		close(src);
	return rc;
}

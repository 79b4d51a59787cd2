#include "extract.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "arlib.h"
#include "decode.h"
#include "index.h"
#include "store.h"
#include "zseek.h"

#define READ_BLOCK (256u * 1024)

/*
 * A hard link selected by a partial restore whose target is not selected: the
 * target member is restored under the link's name instead, and later links to
 * the target point there, so the link gets its data without restoring
 * anything that was not asked for.
 */
struct alias {
	char *target;
	char *as;
};

/* A directory member's owner, given to it once every member is written (hold_dir()). */
struct dirmeta {
	char *name;
	size_t seq;			/* its place in the archive: a later one wins */
	uid_t uid;
	gid_t gid;
	mode_t mode;			/* as restored, to check after the owner's change */
	bool from_index;		/* its member was lost: mode and time from the index too */
	struct timespec mtime;
	int fd;				/* opened before libarchive's fixups (not root); else -1 */
};

struct ext {
	const char *path;
	const char *dir;
	const struct ext_opts *o;
	struct ext_stats *st;
	int dirfd;
	int fd;				/* the archive */
	struct zseek *z;		/* its seek table, for a native archive */
	struct dec *dec;		/* the checked decoder in front of r; NULL: r's own */
	struct archive *r;
	struct archive *w;		/* the disk writer, working in dir */
	char **want;			/* o->paths, normalised */
	bool *found;
	struct alias *aliases;
	size_t naliases;
	struct dirmeta *dirs;
	size_t ndirs, capdirs;
	struct idx *ix;			/* a native archive's index, once a name needs it */
	bool ix_tried;
	uint32_t seq;			/* members whose headers were read: the next one's seq */
	uint64_t lost;			/* members not restored: they lie in damaged frames */
	char **lost_names;		/* their names, for the hard links to them */
	size_t nlost_names;
	bool open_failed;		/* the first frame is damaged: past_damage() first */
	bool owners;			/* owners restored: running as root */
	bool made_dir;			/* dir did not exist: this restore made it */
	struct {			/* the archive's "./", for a dir this restore made */
		bool set;
		mode_t mode;
		uid_t uid;
		gid_t gid;
		struct timespec mtime;
		bool has_mtime;
	} root;
	char name[PATH_MAX];		/* the current member's name, normalised */
	char link[PATH_MAX];		/* its hard link target, normalised */
};

__attribute__((format(printf, 2, 3)))
static void warn(struct ext *x, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->st->warnings++;
	if (x->o->warn)
		x->o->warn(x->o->ctx, msg);
}

enum name_kind { NAME_OK, NAME_ABSOLUTE, NAME_DOTDOT, NAME_TOO_LONG };

/*
 * Normalise a stored name as tar extracts it: no "./", no empty or "."
 * components. An absolute name is still normalised (without its "/"), so a
 * partial restore can tell whether it was asked for.
 */
static enum name_kind clean_name(const char *in, char *out, size_t size)
{
	ssize_t n = idx_normalise(in, out, size);

	if (n == -1)
		return NAME_DOTDOT;
	if (n == -2)
		return NAME_TOO_LONG;
	return in[0] == '/' ? NAME_ABSOLUTE : NAME_OK;
}

/* Whether name is asked for; mark records which requested path matched it. */
static bool selected(struct ext *x, const char *name, bool mark)
{
	if (!x->o->npaths)
		return true;
	for (size_t i = 0; i < x->o->npaths; i++) {
		size_t len = strlen(x->want[i]);
		if (len && (strncmp(name, x->want[i], len) != 0 || (name[len] && name[len] != '/')))
			continue;
		if (mark)
			x->found[i] = true;
		return true;
	}
	return false;
}

static struct alias *find_alias(struct ext *x, const char *target)
{
	for (size_t i = 0; i < x->naliases; i++)
		if (strcmp(x->aliases[i].target, target) == 0)
			return &x->aliases[i];
	return NULL;
}

/* Whether name is that of a member lost to damage. */
static bool was_lost(const struct ext *x, const char *name)
{
	for (size_t i = 0; i < x->nlost_names; i++)
		if (strcmp(x->lost_names[i], name) == 0)
			return true;
	return false;
}

/* The first parent directory of name (relative to dirfd) that is a symlink, into buf. */
static bool behind_symlink(int dirfd, const char *name, char *buf, size_t size)
{
	for (const char *s = strchr(name, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - name);
		struct stat st;
		if (len >= size)
			return false;
		memcpy(buf, name, len);
		buf[len] = '\0';
		if (fstatat(dirfd, buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return false;	/* missing: nothing below it exists either */
		if (S_ISLNK(st.st_mode))
			return true;
	}
	return false;
}

static bool refuse(struct ext *x, const char *raw, const char *why, const char *what)
{
	x->st->refused++;
	warn(x, "refusing '%s': %s%s%s", raw, why, what ? what : "", what ? "'" : "");
	return false;
}

/*
 * A hard link's target must lie inside the directory too. Returns false when
 * the member is not to be restored: refused, or the link that took the data
 * of an unselected target (see struct alias).
 */
static bool link_inside(struct ext *x, struct archive_entry *entry, const char *raw,
			const char *hl)
{
	char sym[PATH_MAX];
	struct alias *a;
	struct stat st;

	if (clean_name(hl, x->link, sizeof(x->link)) != NAME_OK)
		return refuse(x, raw, "it is a hard link to a path outside the directory: '", hl);
	if ((a = find_alias(x, x->link))) {
		if (strcmp(a->as, x->name) == 0)
			return false;
		snprintf(x->link, sizeof(x->link), "%s", a->as);
		archive_entry_copy_hardlink(entry, a->as);
	}
	if (behind_symlink(x->dirfd, x->link, sym, sizeof(sym)))
		return refuse(x, raw, "it is a hard link through the symlink '", sym);
	/*
	 * A link that carries data (pax, newc cpio) is written through after it is
	 * made, and given the member's mode, ACL and times by the target's path: to
	 * a symlink (or anything else not a file), those would follow it out.
	 */
	if (archive_entry_size(entry) > 0 &&
	    fstatat(x->dirfd, x->link, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
		return refuse(x, raw, S_ISLNK(st.st_mode)
					      ? "it has data for a hard link to the symlink '"
					      : "it has data for a hard link to a non-file: '",
			      hl);
	return true;
}

/*
 * Whether to restore this member: asked for, and landing inside the
 * directory. Fills x->name (and x->link), renaming an aliased target.
 */
static bool accept(struct ext *x, struct archive_entry *entry)
{
	const char *raw = archive_entry_pathname(entry), *hl = archive_entry_hardlink(entry);
	enum name_kind kind;
	struct alias *a = NULL;
	char sym[PATH_MAX];

	raw = raw ? raw : "";
	kind = clean_name(raw, x->name, sizeof(x->name));
	/*
	 * "./" (as `tar -C DIR .` stores first) is DIR itself. An existing DIR
	 * keeps its own owner and mode, which an archive must not hand to another
	 * user; one this restore made gets them with its time at the end
	 * (finish_dirs()), 0700 and the restoring user's until then.
	 */
	if (kind == NAME_OK && !x->name[0]) {
		if (x->made_dir && archive_entry_filetype(entry) == AE_IFDIR) {
			x->root.set = true;
			x->root.mode = archive_entry_perm(entry) & 07777;
			x->root.uid = (uid_t)archive_write_disk_uid(x->w, archive_entry_uname(entry),
								    archive_entry_uid(entry));
			x->root.gid = (gid_t)archive_write_disk_gid(x->w, archive_entry_gname(entry),
								    archive_entry_gid(entry));
			x->root.mtime = (struct timespec){ archive_entry_mtime(entry),
							   archive_entry_mtime_nsec(entry) };
			x->root.has_mtime = archive_entry_mtime_is_set(entry);
		}
		return false;
	}
	if (kind == NAME_DOTDOT)
		return x->o->npaths ? false : refuse(x, raw, "its name climbs out with '..'", NULL);
	if (kind == NAME_TOO_LONG)
		return refuse(x, raw, "its name is too long", NULL);
	if (!hl)
		a = find_alias(x, x->name);
	if (!selected(x, x->name, true) && !a)
		return false;
	if (kind == NAME_ABSOLUTE)
		return refuse(x, raw, "its name is absolute", NULL);
	if (a) {
		snprintf(x->name, sizeof(x->name), "%s", a->as);
		archive_entry_copy_pathname(entry, a->as);
	}
	if (behind_symlink(x->dirfd, x->name, sym, sizeof(sym)))
		return refuse(x, raw, "it would be written through the symlink '", sym);
	return !hl || link_inside(x, entry, raw, hl);
}

/*
 * Open the directory name (normalised, relative to x->dirfd) one component at
 * a time, following no symlink: whatever was swapped in meanwhile, the
 * descriptor is of a directory below x->dirfd.
 */
static int open_beneath(struct ext *x, const char *name)
{
	char part[NAME_MAX + 1];
	int fd = x->dirfd;

	while (*name) {
		size_t len = strcspn(name, "/");
		int next;
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			next = -1;
		} else {
			memcpy(part, name, len);
			part[len] = '\0';
			next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd != x->dirfd)
			close(fd);
		if (next < 0)
			return -1;
		fd = next;
		name += len + (name[len] == '/');
	}
	return fd == x->dirfd ? dup(fd) : fd;
}

static int write_failed(struct ext *x, const char *what, struct err *e)
{
	int code = archive_errno(x->w);
	const char *msg = archive_error_string(x->w);
	bool full = code == ENOSPC || code == EDQUOT;

	return err_set(e, code > 0 ? code : EIO, "cannot restore '%s' into '%s': %s%s%s%s%s%s",
		       x->name, x->dir, what, msg ? ": " : "", msg ? msg : "", code > 0 ? ": " : "",
		       code > 0 ? strerror(code) : "",
		       full ? "; free space there and restore again" : "");
}

static int damaged(struct ext *x, const char *member, struct err *e)
{
	const char *msg = archive_error_string(x->r);

	if (dec_error(x->dec) && member)
		return err_set(e, EIO, "restoring '%s': %s", member, dec_error(x->dec)->msg);
	if (dec_error(x->dec)) {
		*e = *dec_error(x->dec);
		return -1;
	}
	return err_set(e, EIO, "cannot read '%s'%s%s%s: %s; what came before it is restored",
		       x->path, member ? " at member '" : "", member ? member : "",
		       member ? "'" : "", msg ? msg : "read error");
}

static int copy_data(struct ext *x, struct err *e)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r, w;

	while ((r = archive_read_data_block(x->r, &buf, &len, &off)) == ARCHIVE_OK) {
		w = archive_write_data_block(x->w, buf, len, off);
		/* a failed write(), ENOSPC or EIO, is only a warning to libarchive */
		if (w < ARCHIVE_WARN || (w == ARCHIVE_WARN && archive_errno(x->w) > 0))
			return write_failed(x, "writing data", e);
		/* more data than the member's size: the rest is dropped */
		if (w == ARCHIVE_WARN)
			warn(x, "'%s': %s", x->name, archive_error_string(x->w));
	}
	return r == ARCHIVE_EOF ? 0 : damaged(x, x->name, e);
}

/*
 * A file whose data could not all be written (a full disk, a damaged archive)
 * goes: libarchive lets it go at its full size with its stored time, which
 * would pass for a restored file. Removed through its directory, opened with
 * no symlink followed.
 */
static void drop_partial(struct ext *x, struct err *e)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(x->name, '/'), *base = slash ? slash + 1 : x->name;
	int fd;

	archive_write_finish_entry(x->w);
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - x->name) : 0, x->name);
	if ((fd = open_beneath(x, parent)) < 0)
		return;
	/* a hard link's other names would keep the file: it is left empty under them */
	int f = openat(fd, base, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	bool linked = f >= 0 && fstat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1 &&
		      ftruncate(f, 0) == 0;
	if (f >= 0)
		close(f);
	if (unlinkat(fd, base, 0) == 0) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, "; the incomplete '%s' was removed%s",
			 x->name, linked ? ", and its other names left empty" : "");
	}
	close(fd);
}

/*
 * Restoring as root, a directory is root's until every member is written, and
 * its owner noted for the end. libarchive would give it its owner when it
 * makes it, then write what lies below by path: another user could swap a
 * directory of theirs for a symlink out while the restore writes below it.
 * Modes need no holding: libarchive makes a directory with at most 0775 (less
 * the umask) and gives it its mode at the end. An existing directory that is
 * a member becomes root's too.
 */
/* A new entry of x->dirs for name; NULL when out of memory. */
static struct dirmeta *add_dir(struct ext *x, const char *name)
{
	if (x->ndirs == x->capdirs) {
		size_t cap = x->capdirs ? 2 * x->capdirs : 64;
		struct dirmeta *v = realloc(x->dirs, cap * sizeof(*v));
		if (!v)
			return NULL;
		x->dirs = v;
		x->capdirs = cap;
	}
	struct dirmeta *d = &x->dirs[x->ndirs];
	if (!(d->name = strdup(name)))
		return NULL;
	d->seq = x->ndirs++;
	d->from_index = false;
	d->fd = -1;
	return d;
}

static int hold_dir(struct ext *x, struct archive_entry *entry, struct err *e)
{
	struct dirmeta *d;

	if (!x->owners)
		return 0;
	if (!(d = add_dir(x, x->name)))
		return err_set(e, ENOMEM, "out of memory");
	/* the owner as libarchive would give it: by name where the name is known here */
	d->uid = (uid_t)archive_write_disk_uid(x->w, archive_entry_uname(entry),
					       archive_entry_uid(entry));
	d->gid = (gid_t)archive_write_disk_gid(x->w, archive_entry_gname(entry),
					       archive_entry_gid(entry));
	d->mode = archive_entry_perm(entry) & 07777;
	/* without the names, which libarchive would go by, it is root's */
	archive_entry_set_uname(entry, NULL);
	archive_entry_set_gname(entry, NULL);
	archive_entry_set_uid(entry, geteuid());
	archive_entry_set_gid(entry, getegid());
	return 0;
}

/*
 * A native archive's index, opened once: by plan_links() for a partial
 * restore, else here by a descriptor of its own, since the working directory
 * is dir by now. NULL when there is none or it cannot be read.
 */
static struct idx *native_index(struct ext *x)
{
	if (!x->ix_tried && x->z) {
		char self[64];
		x->ix_tried = true;
		snprintf(self, sizeof(self), "/proc/self/fd/%d", x->fd);
		int fd = open(self, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			idx_open_fd(fd, x->path, NULL, &x->ix, NULL);
	}
	return x->ix;
}

/*
 * libarchive 3.6.2 wrote an extended attribute name with a space, '%', '=' or
 * a byte outside ASCII URL-encoded into the tar stream ("user.a%20b"), and
 * reads it back so. A native archive's index holds the name as it was: the
 * member gets that name back.
 */
static int decode_xattr_names(struct ext *x, struct archive_entry *entry, struct err *e)
{
	const char *name;
	const void *value;
	size_t len, n = 0, k = 0;
	bool encoded = false;
	uint32_t i;
	struct idx_entry ent;

	if (!x->z || archive_entry_xattr_reset(entry) == 0)
		return 0;
	while (archive_entry_xattr_next(entry, &name, &value, &len) == ARCHIVE_OK) {
		encoded |= name && strchr(name, '%');
		n++;
	}
	if (!encoded || !native_index(x) || (i = idx_lookup_path(x->ix, x->name)) == IDX_NONE)
		return 0;
	idx_get(x->ix, i, &ent);
	struct xa {
		char *name;
		void *value;
		size_t len;
	} *v = calloc(n, sizeof(*v));
	if (!v)
		return err_set(e, ENOMEM, "out of memory");
	archive_entry_xattr_reset(entry);
	while (k < n && archive_entry_xattr_next(entry, &name, &value, &len) == ARCHIVE_OK) {
		struct idx_xattr p;
		for (uint32_t j = 0; j < ent.nxattrs; j++) {
			idx_xattr(x->ix, &ent, j, &p);
			if (name &&
			    idx_xattr_name_encoded(p.name, p.name_len, name, strlen(name)) &&
			    p.value_len == len && (!len || memcmp(p.value, value, len) == 0)) {
				v[k].name = strndup(p.name, p.name_len);
				break;
			}
		}
		if (!v[k].name)
			v[k].name = strdup(name ? name : "");
		v[k].value = malloc(len ? len : 1);
		if (v[k].value && len)
			memcpy(v[k].value, value, len);
		v[k].len = len;
		if (!v[k].name || !v[k].value)
			break;
		k++;
	}
	bool ok = k == n;
	if (ok) {
		archive_entry_xattr_clear(entry);
		for (k = 0; k < n; k++)
			archive_entry_xattr_add_entry(entry, v[k].name, v[k].value, v[k].len);
	}
	for (size_t j = 0; j < n; j++) {
		free(v[j].name);
		free(v[j].value);
	}
	free(v);
	return ok ? 0 : err_set(e, ENOMEM, "out of memory");
}

static int restore_member(struct ext *x, struct archive_entry *entry, struct err *e)
{
	int r;

	if (!accept(x, entry))
		return 0;
	if (decode_xattr_names(x, entry, e) < 0)
		return -1;
	if (archive_entry_filetype(entry) == AE_IFDIR && hold_dir(x, entry, e) < 0)
		return -1;
	/* else it would link to whatever has that name in DIR */
	if (archive_entry_hardlink(entry) && was_lost(x, x->link)) {
		x->lost++;
		warn(x, "'%s' not restored: it is a hard link to '%s', which lies in a damaged part of "
			"'%s'", x->name, x->link, x->path);
		return 0;
	}
	r = archive_write_header(x->w, entry);
	if (r == ARCHIVE_FATAL)
		return write_failed(x, "", e);
	if (r < ARCHIVE_WARN) {
		warn(x, "'%s' not restored: %s", x->name, archive_error_string(x->w));
		return 0;
	}
	if (r == ARCHIVE_WARN)
		warn(x, "'%s': %s", x->name, archive_error_string(x->w));
	if (archive_entry_size(entry) > 0 && copy_data(x, e) < 0) {
		drop_partial(x, e);
		return -1;
	}
	r = archive_write_finish_entry(x->w);
	if (r == ARCHIVE_FATAL)
		return write_failed(x, "", e);
	if (r < ARCHIVE_OK)
		warn(x, "'%s' not fully restored: %s", x->name, archive_error_string(x->w));
	x->st->restored++;
	return 0;
}

static int deeper_first(const void *a, const void *b)
{
	const struct dirmeta *p = a, *q = b;
	size_t dp = 0, dq = 0;

	for (const char *c = p->name; *c; c++)
		dp += *c == '/';
	for (const char *c = q->name; *c; c++)
		dq += *c == '/';
	if (dp != dq)
		return dp < dq ? 1 : -1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/*
 * The directories' owners, now that everything is written and libarchive has
 * given them their modes and times (which a change of owner leaves). The
 * deepest first, so that each is reached through directories no other user
 * can change yet, and by descriptor, opened with no symlink followed.
 * Those made from the index (note_lost_dir()) get their mode and time too;
 * lost_only: those alone, for a restore that sets no owners.
 */
static void restore_dirs(struct ext *x, bool lost_only)
{
	if (!x->ndirs)
		return;
	qsort(x->dirs, x->ndirs, sizeof(*x->dirs), deeper_first);
	for (size_t i = 0; i < x->ndirs; i++) {
		const struct dirmeta *d = &x->dirs[i];
		struct stat st;
		if (lost_only && !d->from_index)
			continue;
		int fd = d->fd >= 0 ? d->fd : open_beneath(x, d->name);
		x->dirs[i].fd = -1;
		if (fd < 0) {
			/* a later member of the same name that is no directory took its place */
			if (errno != ENOTDIR && errno != ELOOP)
				warn(x, "'%s': %s not restored: %s", d->name,
				     d->from_index ? "mode, time or owner" : "owner", strerror(errno));
			continue;
		}
		if (d->from_index) {
			struct timespec t[2] = { { 0, UTIME_OMIT }, d->mtime };
			if (x->owners && fchown(fd, d->uid, d->gid) < 0)
				warn(x, "'%s': owner not restored: %s", d->name, strerror(errno));
			if (fchmod(fd, d->mode) < 0)
				warn(x, "'%s': mode not restored: %s", d->name, strerror(errno));
			if (futimens(fd, t) < 0)
				warn(x, "'%s': time not restored: %s", d->name, strerror(errno));
		} else if (fchown(fd, d->uid, d->gid) < 0)
			warn(x, "'%s': owner not restored: %s", d->name, strerror(errno));
		/*
		 * Linux keeps a directory's set-ID bits through a change of owner; a
		 * kernel that took them is given them back, and nothing else: the
		 * group bits are an ACL's mask now, which libarchive has set.
		 */
		else if (fstat(fd, &st) == 0 && (d->mode & 06000 & ~st.st_mode) &&
			 fchmod(fd, (st.st_mode & 07777) | (d->mode & 06000)) < 0)
			warn(x, "'%s': mode not restored: %s", d->name, strerror(errno));
		close(fd);
	}
}

/* The directory this restore made: the archive's "./" owner, mode and time, through dirfd. */
static void restore_root(struct ext *x)
{
	struct timespec t[2];

	if (!x->root.set)
		return;
	if (x->owners && fchown(x->dirfd, x->root.uid, x->root.gid) < 0)
		warn(x, "'%s': owner not restored: %s", x->dir, strerror(errno));
	if (fchmod(x->dirfd, x->root.mode) < 0)
		warn(x, "'%s': mode not restored: %s", x->dir, strerror(errno));
	t[0] = t[1] = x->root.mtime;
	if (x->root.has_mtime && futimens(x->dirfd, t) < 0)
		warn(x, "'%s': time not restored: %s", x->dir, strerror(errno));
}

/* Directories get their modes and times (libarchive), then owners, whatever happened before. */
static void finish_dirs(struct ext *x)
{
	/*
	 * Not as root, the directories made from the index are opened now, while
	 * they are 0700: libarchive's fixups may leave a parent of one without
	 * search permission. They get their modes after the fixups, which go by
	 * path through them and must not meet a mode that lets others in.
	 */
	for (size_t i = 0; !x->owners && i < x->ndirs; i++)
		if (x->dirs[i].from_index)
			x->dirs[i].fd = open_beneath(x, x->dirs[i].name);
	if (archive_write_close(x->w) < ARCHIVE_WARN)
		warn(x, "directory modes or times not restored: %s", archive_error_string(x->w));
	/* owners last, as root: libarchive gives modes and times by path */
	restore_dirs(x, !x->owners);
	restore_root(x);
}

/*
 * Where each member's headers start in the tar stream, by seq: after the data
 * of the one before and its padding to 512 bytes, as a native archive's index
 * tells (its data offset and stored length). UINT64_MAX where that is not
 * known. by_seq: the entry of each member.
 */
static int member_starts(const struct idx *ix, uint32_t n, uint64_t **start, uint32_t **by_seq)
{
	uint64_t *h = malloc(((size_t)n + 1) * sizeof(*h));
	uint32_t *b = malloc(((size_t)n + 1) * sizeof(*b));

	if (!h || !b) {
		free(h);
		free(b);
		return -1;
	}
	for (uint32_t k = 0; k <= n; k++) {
		h[k] = UINT64_MAX;
		b[k] = IDX_NONE;
	}
	h[0] = 0;
	for (uint32_t i = 0; i < idx_count(ix); i++) {
		struct idx_entry ent;
		idx_get(ix, i, &ent);
		if ((ent.flags & IDX_F_IMPLICIT) || ent.seq >= n)
			continue;	/* implied by a path, not a member */
		b[ent.seq] = i;
		uint64_t len = S_ISREG(ent.mode) && !(ent.flags & IDX_F_HARDLINK)
				       ? idx_stored_bytes(ix, &ent) : 0;
		if (len <= UINT64_MAX - 511 && ent.data_off <= UINT64_MAX - 511 - len)
			h[ent.seq + 1] = (ent.data_off + len + 511) & ~(uint64_t)511;
	}
	*start = h;
	*by_seq = b;
	return 0;
}

/*
 * A reader of the tar stream from byte at: its first member's name checked
 * against the index's for that place (want). 1: it matches, and *r, *d and
 * *entry are the reader, its decoder and that member (*h libarchive's
 * ARCHIVE_OK or ARCHIVE_WARN for its header); 0: it does not (at is
 * no member's start after all); -1: a frame there is damaged too, *end is
 * where the stream goes on past it.
 */
static int reader_at(struct ext *x, uint64_t at, const char *want, struct archive **r,
		     struct dec **d, struct archive_entry **entry, int *h, uint64_t *end)
{
	char name[PATH_MAX];
	struct err e;
	int rc = 0;

	*d = NULL;
	if (!(*r = archive_read_new()))
		return 0;
	archive_read_support_format_tar(*r);
	if (dec_open_frames_at(x->fd, x->path, x->z, NULL, at, d, &e) == 0 &&
	    dec_attach(*d, *r) == ARCHIVE_OK) {
		*h = archive_read_next_header(*r, entry);
		if ((*h == ARCHIVE_OK || *h == ARCHIVE_WARN) &&
		    clean_name(archive_entry_pathname(*entry) ? archive_entry_pathname(*entry) : "",
			       name, sizeof(name)) != NAME_DOTDOT &&
		    strcmp(name, want) == 0)
			return 1;
	}
	if (dec_failed_end(*d)) {
		*end = dec_failed_end(*d);
		rc = -1;
	}
	archive_read_free(*r);
	dec_close(*d);
	*r = NULL;
	*d = NULL;
	return rc;
}

/* A name the index keeps (not NUL-terminated), as a string; NULL when it has none. */
static char *idx_str(const char *p, uint32_t len)
{
	return p && len ? strndup(p, len) : NULL;
}

/*
 * A directory whose member was lost to damage, made from the index: made (its
 * missing parents too, as libarchive makes them) or opened, one component at
 * a time following no symlink; held 0700, and root's when restoring as root,
 * until restore_dirs() gives it the owner, mode and time the index keeps.
 * What is restored below it meanwhile is no one else's to reach.
 */
static int hold_lost_dir(struct ext *x, const char *name)
{
	char part[NAME_MAX + 1];
	int fd = dup(x->dirfd);

	while (fd >= 0 && *name) {
		size_t len = strcspn(name, "/");
		bool last = !name[len];
		int next = -1;
		if (len <= NAME_MAX) {
			memcpy(part, name, len);
			part[len] = '\0';
			/* parents as libarchive makes them, at most 0775 */
			if (mkdirat(fd, part, last ? 0700 : 0775) == 0 || errno == EEXIST)
				next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			/* a file or symlink in its place goes, as its member would have replaced it */
			if (next < 0 && last && (errno == ENOTDIR || errno == ELOOP) &&
			    unlinkat(fd, part, 0) == 0 && mkdirat(fd, part, 0700) == 0)
				next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		close(fd);
		fd = next;
		name += len + !last;
	}
	if (fd < 0 || (x->owners && fchown(fd, geteuid(), getegid()) < 0) || fchmod(fd, 0700) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The owner, mode and time of lost directory name, from ent, for restore_dirs(). */
static int note_lost_dir(struct ext *x, const char *name, const struct idx_entry *ent)
{
	char *uname = idx_str(ent->uname, ent->uname_len), *gname = idx_str(ent->gname, ent->gname_len);
	struct dirmeta *d = add_dir(x, name);

	if (d) {
		d->uid = (uid_t)archive_write_disk_uid(x->w, uname, ent->uid);
		d->gid = (gid_t)archive_write_disk_gid(x->w, gname, ent->gid);
		d->mode = ent->mode & 07777;
		d->from_index = true;
		d->mtime = (struct timespec){ ent->mtime_sec, ent->mtime_nsec };
	}
	free(uname);
	free(gname);
	return d ? 0 : -1;
}

static bool alias_as(struct ext *x, const char *name)
{
	for (size_t i = 0; i < x->naliases; i++)
		if (strcmp(x->aliases[i].as, name) == 0)
			return true;
	return false;
}

/* A member lost: named, counted, and noted for the hard links to it. */
static void name_lost(struct ext *x, const char *name)
{
	char **v = realloc(x->lost_names, (x->nlost_names + 1) * sizeof(*v));

	if (v) {
		x->lost_names = v;
		if ((v[x->nlost_names] = strdup(name)))
			x->nlost_names++;
	}
	x->lost++;
	warn(x, "'%s' not restored: it lies in a damaged part of '%s'", name, x->path);
}

/*
 * A member lost to damage: named and counted, if it was asked for, or is the
 * target of a hard link asked for (restored under the link's name). A lost
 * directory is made 0700, so that nothing restored below it is exposed.
 */
static bool lost(struct ext *x, const struct idx *ix, uint32_t i)
{
	char name[PATH_MAX];
	struct idx_entry ent;
	struct alias *a;

	if (i == IDX_NONE || idx_path(ix, i, name, sizeof(name), NULL) < 0)
		return false;
	idx_get(ix, i, &ent);
	if (!name[0]) {
		/* a DIR this restore made gets the owner, mode and time of "./" from the index */
		if (x->made_dir && S_ISDIR(ent.mode)) {
			char *uname = idx_str(ent.uname, ent.uname_len);
			char *gname = idx_str(ent.gname, ent.gname_len);
			x->root.set = true;
			x->root.mode = ent.mode & 07777;
			x->root.uid = (uid_t)archive_write_disk_uid(x->w, uname, ent.uid);
			x->root.gid = (gid_t)archive_write_disk_gid(x->w, gname, ent.gid);
			x->root.mtime = (struct timespec){ ent.mtime_sec, ent.mtime_nsec };
			x->root.has_mtime = true;
			free(uname);
			free(gname);
		}
		return false;
	}
	if (!(ent.flags & IDX_F_HARDLINK) && (a = find_alias(x, name)))
		snprintf(name, sizeof(name), "%s", a->as);
	else if (!selected(x, name, true) || ((ent.flags & IDX_F_HARDLINK) && alias_as(x, name)))
		return false;	/* not asked for, or a link asked for that has its data already */
	if (S_ISDIR(ent.mode)) {
		if (hold_lost_dir(x, name) < 0 || note_lost_dir(x, name, &ent) < 0) {
			x->lost++;
			warn(x, "'%s' not restored: it lies in a damaged part of '%s', and cannot be "
				"made from the index: %s", name, x->path, strerror(errno));
			return true;
		}
		if (!ent.nxattrs)
			return false;	/* whole: nothing of it was only in the damaged part */
		x->lost++;
		warn(x, "'%s' not restored whole: its extended attributes lie in a damaged part of "
			"'%s'; its owner, mode and time are those the index keeps", name, x->path);
		return true;
	}
	name_lost(x, name);
	return true;
}

/*
 * Damage in a frame of a native archive: the frames after it are whole, and
 * the index says where in them the next member starts. The damage (e) goes to
 * the warnings, the members in the damaged part are named, and the reader goes
 * on from there. 1: *entry is the next member's header, read (*h as
 * archive_read_next_header() returned); 0: no member
 * follows the damage; -1: the restore cannot go on (any other failure, no
 * index), e as it was.
 */
static int past_damage(struct ext *x, bool in_member, struct archive_entry **entry, int *h,
		       struct err *e)
{
	uint64_t end = dec_failed_end(x->dec), *start;
	uint32_t *by_seq, n, m, misses = 0;
	char want[PATH_MAX];
	struct archive *r = NULL;
	struct dec *d = NULL;
	struct idx *ix;

	if (!x->z || !end)
		return -1;
	if (!(ix = native_index(x))) {
		size_t len = strlen(e->msg);
		snprintf(e->msg + len, sizeof(e->msg) - len,
			 "; its index cannot be read either: nothing after the damage is restored");
		return -1;
	}
	/* every member takes a 512-byte header at least: an index that says more is not believed */
	n = idx_members(ix);
	if (n > idx_tar_size(ix) / 512)
		n = (uint32_t)(idx_tar_size(ix) / 512);
	if (member_starts(ix, n, &start, &by_seq) < 0)
		return -1;
	for (m = x->seq; m < n; m++) {
		if (start[m] == UINT64_MAX || start[m] < end || by_seq[m] == IDX_NONE ||
		    idx_path(ix, by_seq[m], want, sizeof(want), NULL) < 0)
			continue;
		int rc = reader_at(x, start[m], want, &r, &d, entry, h, &end);
		if (rc > 0)
			break;
		/* a header where the index puts none: give up before trying every member */
		if (rc == 0 && ++misses == 16) {
			size_t len = strlen(e->msg);
			snprintf(e->msg + len, sizeof(e->msg) - len,
				 "; no whole member found after it: nothing after the damage is restored");
			free(start);
			free(by_seq);
			return -1;
		}
	}
	warn(x, "%s", e->msg);
	/* the member whose data the damage cut, by the name it was being restored under */
	if (in_member)
		name_lost(x, x->name);
	for (uint32_t k = x->seq; k < m; k++)
		lost(x, ix, by_seq[k]);
	free(start);
	free(by_seq);
	archive_read_free(x->r);
	dec_close(x->dec);
	x->r = r;
	x->dec = d;
	x->seq = m;
	return r ? 1 : 0;
}

static int restore_all(struct ext *x, struct err *e)
{
	struct archive_entry *entry;
	bool have = x->open_failed, ended = false;
	int r = x->open_failed ? ARCHIVE_FATAL : ARCHIVE_OK;

	locale_t names = arlib_names_locale(x->fd), before;
	for (;;) {
		if (!have) {
			before = arlib_names_enter(names);
			r = archive_read_next_header(x->r, &entry);
			arlib_names_leave(before);
		}
		have = false;
		if (r == ARCHIVE_EOF)
			break;
		bool in_member = r == ARCHIVE_OK || r == ARCHIVE_WARN;
		if (in_member) {
			x->seq++;
			if (r == ARCHIVE_WARN)
				warn(x, "'%s': %s", archive_entry_pathname(entry),
				     archive_error_string(x->r));
			if (restore_member(x, entry, e) == 0)
				continue;
		} else {
			damaged(x, NULL, e);
		}
		int go = past_damage(x, in_member, &entry, &r, e);
		if (go < 0) {
			finish_dirs(x);
			return -1;
		}
		if (go == 0) {
			ended = true;
			break;
		}
		have = true;
	}
	/*
	 * The last checksums (a gzip trailer, the last frame's) lie past the
	 * tar's end. A seekable file's frames were each checked before any of
	 * their bytes were used: damage past the end took nothing restored.
	 */
	r = !ended && x->dec && dec_finish(x->dec, e) < 0 ? -1 : 0;
	if (r < 0 && dec_failed_end(x->dec)) {
		warn(x, "%s; it lies past the last member, and costs none", e->msg);
		r = 0;
	}
	/* directories get their modes and times now, after everything inside them */
	finish_dirs(x);
	if (r == 0 && x->lost)
		r = err_set(e, EIO, "'%s' is damaged: %" PRIu64 " member%s %s not restored (named "
				    "above); restore %s from another snapshot, "
				    "and move '%s' out of the store",
			    x->path, x->lost, x->lost == 1 ? "" : "s", x->lost == 1 ? "is" : "are",
			    x->lost == 1 ? "it" : "them", x->path);
	return r;
}

/* ---- setting up ---- */

static int add_alias(struct ext *x, const char *target, const char *as)
{
	struct alias *v = realloc(x->aliases, (x->naliases + 1) * sizeof(*v));

	if (!v)
		return -1;
	x->aliases = v;
	v[x->naliases].target = strdup(target);
	v[x->naliases].as = strdup(as);
	if (!v[x->naliases].target || !v[x->naliases].as) {
		free(v[x->naliases].target);
		free(v[x->naliases].as);
		return -1;
	}
	x->naliases++;
	return 0;
}

/*
 * For a partial restore: find selected hard links whose targets are not
 * selected, from the index (a native archive's trailer; one scan of a foreign
 * one). Without an index, such links fail with a warning.
 */
static int plan_links(struct ext *x, struct err *e)
{
	char p[PATH_MAX], t[PATH_MAX];
	struct idx *ix;
	int rc = 0;

	if (!x->o->npaths)
		return 0;
	x->ix_tried = true;	/* kept for decode_xattr_names() */
	if (idx_open(x->path, &x->ix, NULL) < 0)
		return 0;
	ix = x->ix;
	for (uint32_t i = 0; i < idx_count(ix) && rc == 0; i++) {
		struct idx_entry ent;
		idx_get(ix, i, &ent);
		if (!(ent.flags & IDX_F_HARDLINK) || idx_path(ix, i, p, sizeof(p), NULL) < 0 ||
		    idx_path(ix, ent.target, t, sizeof(t), NULL) < 0)
			continue;
		if (selected(x, p, false) && !selected(x, t, false) && !find_alias(x, t))
			rc = add_alias(x, t, p);
	}
	return rc < 0 ? err_set(e, ENOMEM, "out of memory") : 0;
}

static int normalise_wanted(struct ext *x, struct err *e)
{
	size_t n = x->o->npaths;

	x->want = calloc(n + 1, sizeof(*x->want));
	x->found = calloc(n + 1, sizeof(*x->found));
	if (!x->want || !x->found)
		return err_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *p = x->o->paths[i];
		if (!(x->want[i] = malloc(strlen(p) + 2)))
			return err_set(e, ENOMEM, "out of memory");
		if (clean_name(p, x->want[i], strlen(p) + 2) == NAME_DOTDOT)
			return err_set(e, EINVAL, "'%s' climbs out with '..'; name paths as the archive "
						  "stores them, e.g. 'config/app.yaml'", p);
	}
	return 0;
}

/*
 * Read through a checked decoder where there is one: a native archive's
 * frames on all cores, zstd and gzip with every checksum (decode.h).
 */
static int open_reader(struct ext *x, struct err *e)
{
	struct stat st;

	x->fd = open(x->path, O_RDONLY | O_CLOEXEC);
	if (x->fd < 0 || fstat(x->fd, &st) < 0)
		return err_set(e, errno, "cannot open '%s': %s", x->path, strerror(errno));
	if (zseek_open(x->fd, x->path, (uint64_t)st.st_size, &x->z, NULL) == 0) {
		if (dec_open_frames(x->fd, x->path, x->z, NULL, &x->dec, e) < 0)
			return -1;
	} else if (dec_open_stream(x->fd, x->path, (uint64_t)st.st_size, NULL, &x->dec, e) < 0) {
		return -1;
	}
	if ((x->dec ? dec_attach(x->dec, x->r) : archive_read_open_fd(x->r, x->fd, READ_BLOCK)) !=
	    ARCHIVE_OK) {
		/* libarchive reads the first block to learn the format: the frames after it are whole */
		if ((x->open_failed = dec_failed_end(x->dec) > 0))
			return 0;
		return dec_error(x->dec) ? (*e = *dec_error(x->dec), -1)
					 : err_set(e, ENOTSUP, "cannot read '%s': %s", x->path,
						   archive_error_string(x->r));
	}
	return 0;
}

static int open_archive(struct ext *x, struct err *e)
{
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_XATTR |
		    ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SPARSE | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

	if ((x->owners = geteuid() == 0))
		flags |= ARCHIVE_EXTRACT_OWNER;
	if (!(x->r = archive_read_new()) || !(x->w = archive_write_disk_new()))
		return err_set(e, ENOMEM, "out of memory");
	archive_read_support_filter_all(x->r);
	archive_read_support_format_all(x->r);
	archive_write_disk_set_options(x->w, flags);
	archive_write_disk_set_standard_lookup(x->w);
	return open_reader(x, e);
}

/* Restore with the working directory in dir, and back, whatever happens. */
static int restore_in_dir(struct ext *x, struct err *e)
{
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), rc;

	if (cwd < 0)
		return err_set(e, errno, "cannot open the working directory: %s", strerror(errno));
	if (fchdir(x->dirfd) < 0) {
		rc = err_set(e, errno, "cannot enter '%s': %s", x->dir, strerror(errno));
	} else {
		rc = restore_all(x, e);
		if (fchdir(cwd) < 0 && rc == 0)
			rc = err_set(e, errno, "cannot return to the working directory: %s",
				     strerror(errno));
	}
	close(cwd);
	return rc;
}

static void release(struct ext *x)
{
	for (size_t i = 0; x->want && i < x->o->npaths; i++)
		free(x->want[i]);
	free(x->want);
	free(x->found);
	for (size_t i = 0; i < x->naliases; i++) {
		free(x->aliases[i].target);
		free(x->aliases[i].as);
	}
	free(x->aliases);
	for (size_t i = 0; i < x->nlost_names; i++)
		free(x->lost_names[i]);
	free(x->lost_names);
	for (size_t i = 0; i < x->ndirs; i++) {
		free(x->dirs[i].name);
		if (x->dirs[i].fd >= 0)
			close(x->dirs[i].fd);
	}
	free(x->dirs);
	if (x->ix)
		idx_close(x->ix);
	archive_read_free(x->r);
	archive_write_free(x->w);
	dec_close(x->dec);
	zseek_close(x->z);
	if (x->fd >= 0)
		close(x->fd);
	if (x->dirfd >= 0)
		close(x->dirfd);
}

int ext_restore(const char *path, const char *dir, const struct ext_opts *o, struct ext_stats *st,
		struct err *e)
{
	struct ext x = { .path = path, .dir = dir, .o = o, .st = st, .dirfd = -1, .fd = -1 };
	int rc = -1;

	struct stat before;

	memset(st, 0, sizeof(*st));
	x.made_dir = stat(dir, &before) < 0 && errno == ENOENT;
	if (normalise_wanted(&x, e) < 0 || store_mkdir(dir, e) < 0)
		goto done;
	x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.dirfd < 0) {
		err_set(e, errno, "cannot open '%s': %s", dir, strerror(errno));
		goto done;
	}
	if (plan_links(&x, e) < 0 || open_archive(&x, e) < 0 || restore_in_dir(&x, e) < 0)
		goto done;
	for (size_t i = 0; i < o->npaths; i++)
		if (!x.found[i])
			warn(&x, "'%s' is not in '%s'", o->paths[i], path);
	rc = 0;
done:
	release(&x);
	return rc;
}

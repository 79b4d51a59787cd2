#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "arlib.h"
#include "bytes.h"
#include "decode.h"
#include "fdio.h"
#include "index.h"
#include "zseek.h"

#define FOREIGN_BLOCK (256u * 1024)

/* One archive being checked. */
struct vfy {
	const char *path;
	const struct vfy_opts *o;
	int fd;
	uint64_t size;
	struct dec *dec;		/* the decoder in front of libarchive; NULL: its own */
	struct idx_builder *b;		/* rebuilt from the tar headers */
	uint64_t members;
	bool native;
};

static void on_progress(void *ctx, uint64_t done)
{
	struct vfy *v = ctx;
	struct vfy_progress p = { done, v->size };

	if (v->o->progress)
		v->o->progress(v->o->ctx, &p);
}

static struct dec_opts dec_options(struct vfy *v)
{
	return (struct dec_opts){ .threads = v->o->threads, .progress = on_progress, .ctx = v };
}

/* ---- the tar stream, whatever feeds it ---- */

/*
 * Read a member's data. libarchive reports a bad CRC in zip as ARCHIVE_WARN,
 * so a warning here is damage.
 */
static int read_all_data(struct archive *a)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
		;
	return r == ARCHIVE_EOF ? 0 : -1;
}

/*
 * libarchive's error, or the decoder's when it failed underneath (a frame or
 * checksum, with its file offset): that is the first cause.
 */
static int archive_damaged(struct vfy *v, struct archive *a, const char *member, struct err *e)
{
	const char *msg = archive_error_string(a);
	long long off = (long long)archive_filter_bytes(a, v->dec ? 0 : -1);
	const char *unit = v->dec ? "of the tar stream" : "of the file";
	struct err below;

	/* damage in the compressed data often shows first as a broken tar header */
	if (v->dec && !dec_error(v->dec))
		dec_finish(v->dec, &below);
	if (dec_error(v->dec)) {
		*e = *dec_error(v->dec);
		return -1;
	}
	if (member)
		return err_set(e, EIO, "'%s' is damaged: member '%s' near byte %lld %s: %s", v->path,
			       member, off, unit, msg ? msg : "read error");
	return err_set(e, v->members ? EIO : ENOTSUP, "'%s' %s near byte %lld %s: %s", v->path,
		       v->members ? "is damaged" : "is not an archive snapkeep reads", off, unit,
		       msg ? msg : "read error");
}

/*
 * Read every header into the builder, with each member's data offset in the
 * tar stream; read the data too when it is not checked otherwise.
 */
static int scan(struct vfy *v, struct archive *a, bool read_data, struct err *e)
{
	struct archive_entry *entry;
	int r;

	locale_t names = arlib_names_locale(v->fd), before;
	while ((before = arlib_names_enter(names), r = archive_read_next_header(a, &entry),
		arlib_names_leave(before), r == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		struct err skip;
		if (idx_builder_add(v->b, entry, (uint64_t)archive_filter_bytes(a, 0), &skip) < 0 &&
		    skip.code != EINVAL) {
			*e = skip;
			return -1;
		}
		v->members++;
		r = read_data ? read_all_data(a) : archive_read_data_skip(a);
		if (r < 0)
			return archive_damaged(v, a, archive_entry_pathname(entry), e);
	}
	if (r != ARCHIVE_EOF)
		return archive_damaged(v, a, NULL, e);
	return 0;
}

/* The rebuilt index, opened for lookups; *out is new. */
static int built_index(struct vfy *v, struct idx **out, struct err *e)
{
	void *blob;
	size_t len;
	int rc;

	if (idx_builder_finish(v->b, &blob, &len, e) < 0)
		return -1;
	rc = idx_open_blob(blob, len, v->path, out, e);
	free(blob);
	return rc;
}

/* ---- the stored index against the rebuilt one ---- */

static bool same_str(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/*
 * Whether y's entry b has x's attribute p, value and all: under the same name,
 * or under the name as libarchive wrote it into the tar stream
 * (idx_xattr_name_encoded()), whose other attributes may then sort before or
 * after it. One name may be both ("user.a%20b" is "user.a b" encoded): the
 * value tells them apart.
 */
static bool has_xattr(const struct idx *y, const struct idx_entry *b, const struct idx_xattr *p)
{
	struct idx_xattr q;

	for (uint32_t j = 0; j < b->nxattrs; j++) {
		idx_xattr(y, b, j, &q);
		if ((same_str(p->name, p->name_len, q.name, q.name_len) ||
		     idx_xattr_name_encoded(p->name, p->name_len, q.name, q.name_len)) &&
		    same_str(p->value, p->value_len, q.value, q.value_len))
			return true;
	}
	return false;
}

static const char *diff_lists(const struct idx *x, const struct idx_entry *a, const struct idx *y,
			      const struct idx_entry *b)
{
	if (a->nxattrs != b->nxattrs)
		return "extended attributes";
	for (uint32_t k = 0; k < a->nxattrs; k++) {
		struct idx_xattr p;
		idx_xattr(x, a, k, &p);
		if (!has_xattr(y, b, &p))
			return "extended attributes";
	}
	if (a->nsparse != b->nsparse)
		return "sparse map";
	for (uint32_t k = 0; k < a->nsparse; k++) {
		struct idx_sparse p, q;
		idx_sparse(x, a, k, &p);
		idx_sparse(y, b, k, &q);
		if (p.off != q.off || p.len != q.len)
			return "sparse map";
	}
	return NULL;
}

/* The first field in which two entries differ, or NULL. */
static const char *diff_entry(const struct idx *x, const struct idx_entry *a, const struct idx *y,
			      const struct idx_entry *b)
{
	/*
	 * A hard link's type is its target's. libarchive's tar reader gives a hard
	 * link member no type bits, the writer's entry has S_IFREG: compare the rest.
	 */
	uint32_t type_mask = (a->flags & IDX_F_HARDLINK) ? 0 : S_IFMT;

	if (!same_str(a->name, a->name_len, b->name, b->name_len) || a->parent != b->parent)
		return "path";
	if ((a->mode & type_mask) != (b->mode & type_mask) || a->flags != b->flags)
		return "type";
	if ((a->mode & (type_mask | 07777)) != (b->mode & (type_mask | 07777)))
		return "mode";
	if (a->uid != b->uid || a->gid != b->gid ||
	    !same_str(a->uname, a->uname_len, b->uname, b->uname_len) ||
	    !same_str(a->gname, a->gname_len, b->gname, b->gname_len))
		return "owner";
	if (a->size != b->size)
		return "size";
	/* implied directories carry the archive's time, which the tar stream does not hold */
	if (!(a->flags & IDX_F_IMPLICIT) &&
	    (a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec))
		return "mtime";
	if (!same_str(a->link, a->link_len, b->link, b->link_len) || a->target != b->target)
		return "link target";
	if (a->rdev != b->rdev)
		return "device number";
	if (a->data_off != b->data_off || a->seq != b->seq)
		return "data offset";
	if (a->first_child != b->first_child || a->nchildren != b->nchildren || a->nlink != b->nlink)
		return "directory structure";
	return diff_lists(x, a, y, b);
}

static int index_differs(struct vfy *v, const struct idx *x, uint32_t i, const char *what,
			 const struct idx_entry *stored, const struct idx_entry *tar, struct err *e)
{
	char path[1024];

	if (idx_path(x, i, path, sizeof(path), NULL) < 0)
		snprintf(path, sizeof(path), "entry %u", i);
	if (strcmp(what, "data offset") == 0)
		return err_set(e, EIO, "'%s' is damaged: the index puts the data of '%s' at byte %"
				       PRIu64 " of the tar stream, the tar stream at byte %" PRIu64,
			       v->path, path, stored->data_off, tar->data_off);
	return err_set(e, EIO, "'%s' is damaged: the index and the tar stream disagree on the %s "
			       "of '%s'", v->path, what, path);
}

static int compare_index(struct vfy *v, const struct idx *stored, const struct idx *built,
			 struct err *e)
{
	uint32_t n = idx_count(stored), m = idx_count(built);

	for (uint32_t i = 0; i < n && i < m; i++) {
		struct idx_entry a, b;
		const char *what;
		idx_get(stored, i, &a);
		idx_get(built, i, &b);
		if ((what = diff_entry(stored, &a, built, &b)))
			return index_differs(v, stored, i, what, &a, &b, e);
	}
	if (n != m || idx_members(stored) != idx_members(built))
		return err_set(e, EIO, "'%s' is damaged: the index lists %u members, the tar stream "
				       "holds %u", v->path, idx_members(stored), idx_members(built));
	return 0;
}

/* ---- required paths ---- */

static int check_required(struct vfy *v, const struct idx *x, struct err *e)
{
	for (size_t i = 0; i < v->o->nrequire; i++) {
		const char *want = v->o->require[i];
		char norm[4096];
		if (idx_normalise(want, norm, sizeof(norm)) < 0)
			return err_set(e, EINVAL, "required path '%s' is not a path inside an archive; "
						  "give it relative, without '..'", want);
		if (idx_lookup_path(x, norm) == IDX_NONE)
			return err_set(e, ENOENT, "required path '%s' is missing from '%s'", want,
				       v->path);
	}
	return 0;
}

/* ---- native archives ---- */

static bool has_seek_footer(const struct vfy *v)
{
	unsigned char foot[4];

	return v->size >= ZSEEK_FOOTER_SIZE + 8 && fd_pread_all(v->fd, foot, 4, v->size - 4) == 0 &&
	       le32_get(foot) == ZSEEK_FOOTER_MAGIC;
}

/* True when the last frame before the seek table is a snapfs index frame. */
static bool has_index_frame(const struct zseek *z)
{
	uint32_t n = zseek_nframes(z);
	unsigned kind;

	return n > 0 && zseek_skippable_kind(z, n - 1, &kind, NULL) == 0 &&
	       kind == IDX_FRAME_KIND;
}

static int open_stored_index(struct vfy *v, const struct zseek *z, struct idx **out,
			     struct err *e)
{
	struct zseek_frame f;
	struct idx *x;
	size_t len;

	zseek_frame(z, zseek_nframes(z) - 1, &f);
	if (idx_open(v->path, &x, e) < 0) {
		len = strlen(e->msg);
		if (e->code == EIO)
			snprintf(e->msg + len, sizeof(e->msg) - len,
				 " (the index frame at byte %" PRIu64 ")", f.coff);
		return -1;
	}
	if (!idx_is_native(x)) {
		/* idx_open() reads an archive whose index does not load as a foreign one */
		idx_close(x);
		return err_set(e, EIO, "'%s' is damaged: the snapfs index frame at byte %" PRIu64
				       " does not load", v->path, f.coff);
	}
	*out = x;
	return 0;
}

/* Parse the tar stream the frames make, then decode what it did not need. */
static int parse_frames(struct vfy *v, struct err *e)
{
	struct archive *a = archive_read_new();
	int rc;

	if (!a)
		return err_set(e, ENOMEM, "out of memory");
	archive_read_support_format_tar(a);
	if (dec_attach(v->dec, a) != ARCHIVE_OK)
		rc = archive_damaged(v, a, NULL, e);
	else
		rc = scan(v, a, false, e);
	archive_read_free(a);
	return rc < 0 ? -1 : dec_finish(v->dec, e);
}

static int verify_native(struct vfy *v, const struct zseek *z, struct err *e)
{
	struct dec_opts d = dec_options(v);
	struct idx *stored = NULL, *built = NULL;
	int rc = -1;

	if (open_stored_index(v, z, &stored, e) < 0)
		return -1;
	v->native = true;
	idx_builder_compat(v->b, idx_version(stored));	/* an older snapkeep's archive */
	if (dec_open_frames(v->fd, v->path, z, &d, &v->dec, e) == 0 && parse_frames(v, e) == 0 &&
	    built_index(v, &built, e) == 0 && compare_index(v, stored, built, e) == 0)
		rc = check_required(v, stored, e);
	/* the decoder's threads read through z, which the caller closes next */
	dec_close(v->dec);
	v->dec = NULL;
	idx_close(built);
	idx_close(stored);
	return rc;
}

/* ---- foreign archives ---- */

static int open_foreign(struct vfy *v, struct archive *a, struct err *e)
{
	struct dec_opts d = dec_options(v);

	/* the formats a store holds (SPEC); not mtree or raw, which take any text */
	archive_read_support_format_tar(a);
	archive_read_support_format_cpio(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_7zip(a);
	archive_read_support_format_iso9660(a);
	archive_read_support_filter_all(a);
	if (dec_open_stream(v->fd, v->path, v->size, &d, &v->dec, e) < 0)
		return -1;
	if ((v->dec ? dec_attach(v->dec, a) : archive_read_open_fd(a, v->fd, FOREIGN_BLOCK)) !=
	    ARCHIVE_OK)
		return archive_damaged(v, a, NULL, e);
	return 0;
}

/* A zstd file that holds a snapfs index but no seek table was a native archive. */
static int lost_seek_table(struct vfy *v, struct err *e)
{
	return err_set(e, EIO, "'%s' is damaged: it holds a snapfs index at byte %" PRId64 " but "
			       "no valid seek table at its end (cut short, or its last bytes "
			       "changed)", v->path, dec_index_at(v->dec));
}

static int verify_foreign(struct vfy *v, struct err *e)
{
	struct archive *a = archive_read_new();
	struct idx *built = NULL;
	int rc = -1;

	if (!a)
		return err_set(e, ENOMEM, "out of memory");
	if (open_foreign(v, a, e) == 0 && scan(v, a, true, e) == 0 &&
	    (!v->dec || dec_finish(v->dec, e) == 0))
		rc = 0;
	if (rc == 0 && dec_index_at(v->dec) >= 0)
		rc = lost_seek_table(v, e);
	if (rc == 0 && v->members == 0)
		rc = err_set(e, ENOTSUP, "'%s' holds no members: not an archive snapkeep reads",
			     v->path);
	if (rc == 0) {
		on_progress(v, v->size);
		rc = built_index(v, &built, e) < 0 ? -1 : check_required(v, built, e);
	}
	archive_read_free(a);
	idx_close(built);
	return rc;
}

/* ---- the entry point ---- */

static int verify_open(struct vfy *v, struct err *e)
{
	struct zseek *z = NULL;
	int rc;

	if (!has_seek_footer(v))
		return verify_foreign(v, e);
	if (zseek_open(v->fd, v->path, v->size, &z, e) < 0)
		return -1;
	/* a seekable zstd file from another tool has no snapfs index: read it as foreign */
	rc = has_index_frame(z) ? verify_native(v, z, e) : verify_foreign(v, e);
	zseek_close(z);
	return rc;
}

/*
 * Messages from the readers below suggest running verify; here that is what
 * is running, so drop the suggestion and keep the rest of the advice.
 */
static void drop_self_advice(struct err *e)
{
	static const char advice[] = "run 'snapkeep verify' on it";
	char *p = strstr(e->msg, advice);

	if (!p)
		return;
	if (strncmp(p + strlen(advice), ", or ", 5) == 0)
		memmove(p, p + strlen(advice) + 5, strlen(p + strlen(advice) + 5) + 1);
	else if (p >= e->msg + 2 && p[-2] == ';')	/* what follows it stays */
		memmove(p - 2, p + strlen(advice), strlen(p + strlen(advice)) + 1);
}

int vfy_archive(const char *path, const struct vfy_opts *o, struct vfy_result *r, struct err *e)
{
	struct vfy v = { .path = path, .o = o, .fd = -1 };
	struct stat st;
	int rc = -1;

	memset(&st, 0, sizeof(st));
	v.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (v.fd < 0 || fstat(v.fd, &st) < 0) {
		err_set(e, errno, "cannot open '%s': %s", path, strerror(errno));
		if (v.fd >= 0)
			close(v.fd);
		return -1;
	}
	v.size = (uint64_t)st.st_size;
	if (S_ISDIR(st.st_mode))
		err_set(e, EISDIR, "'%s' is a directory, not an archive", path);
	else if ((v.b = idx_builder_new(0, e)))
		rc = verify_open(&v, e);
	if (rc == 0 && r) {
		r->native = v.native;
		r->members = v.members;
		r->size = v.size;
	}
	if (rc < 0)
		drop_self_advice(e);
	dec_close(v.dec);
	idx_builder_free(v.b);
	close(v.fd);
	return rc;
}

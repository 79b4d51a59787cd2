#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY	/* ZSTD_createDStream_advanced(): its buffers from fillmem */
#include <zstd.h>

#include "arlib.h"
#include "bytes.h"
#include "decode.h"
#include "fdio.h"
#include "fillmem.h"
#include "foreign.h"
#include "hash.h"
#include "idxfmt.h"
#include "zseek.h"

/*
 * Building. Nodes live in one array, found by path through an open-addressing
 * hash; children hang off their parent as a singly linked list until
 * idx_builder_finish() orders them. Strings are copied into each node.
 */
struct bxattr {
	char *name;
	void *value;
	size_t len;
};

struct bnode {
	char *path;		/* normalised, "" for the root */
	const char *name;	/* the last component, inside path */
	uint32_t parent, first_kid, next_sib;
	uint32_t flags, mode, uid, gid, seq;
	int64_t mtime;
	uint32_t nsec;
	uint64_t size, rdev, data_off;
	char *uname, *gname, *link;	/* link: symlink target, or hard link path */
	struct bxattr *xattrs;
	size_t nxattrs;
	struct idx_sparse *sparse;
	size_t nsparse;
	uint32_t out;		/* index in the blob, assigned by finish */
	uint32_t nlink;
	bool linked;		/* a hard link member named this file (holding its data) */
};

struct idx_builder {
	struct bnode *nodes;
	uint32_t n, cap;
	uint32_t *hash;		/* node index + 1; 0 = empty */
	size_t hcap;
	uint32_t members;
	uint32_t last;		/* the node the last member added filled; IDX_NONE if none */
	uint32_t refused[IDX_REFUSALS];	/* members left out, by why */
	char *refused_first[IDX_REFUSALS];
	int64_t time;
	uint32_t version;	/* the index version whose writer this builds as (idx_builder_compat()) */
	bool foreign;		/* idx_builder_foreign() */
};

static uint32_t find_node(const struct idx_builder *b, const char *path, size_t len)
{
	for (size_t h = hash_fnv(path, len) & (b->hcap - 1);; h = (h + 1) & (b->hcap - 1)) {
		uint32_t v = b->hash[h];
		if (v == 0)
			return IDX_NONE;
		if (strlen(b->nodes[v - 1].path) == len && memcmp(b->nodes[v - 1].path, path, len) == 0)
			return v - 1;
	}
}

static int grow_hash(struct idx_builder *b)
{
	size_t cap = b->hcap ? b->hcap * 2 : 1024;
	uint32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -1;
	for (uint32_t i = 0; i < b->n; i++) {
		size_t k = hash_fnv(b->nodes[i].path, strlen(b->nodes[i].path)) & (cap - 1);
		while (h[k])
			k = (k + 1) & (cap - 1);
		h[k] = i + 1;
	}
	free(b->hash);
	b->hash = h;
	b->hcap = cap;
	return 0;
}

/* A new node for path under parent, an implied directory until filled in. */
static uint32_t new_node(struct idx_builder *b, const char *path, size_t len, uint32_t parent)
{
	struct bnode *nd;

	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 256;
		struct bnode *v = realloc(b->nodes, cap * sizeof(*v));
		if (!v)
			return IDX_NONE;
		b->nodes = v;
		b->cap = cap;
	}
	if ((size_t)(b->n + 1) * 2 > b->hcap && grow_hash(b) < 0)
		return IDX_NONE;
	nd = &b->nodes[b->n];
	memset(nd, 0, sizeof(*nd));
	if (!(nd->path = strndup(path, len)))
		return IDX_NONE;
	nd->name = strrchr(nd->path, '/') ? strrchr(nd->path, '/') + 1 : nd->path;
	nd->parent = parent;
	nd->first_kid = nd->next_sib = IDX_NONE;
	nd->flags = IDX_F_IMPLICIT;
	nd->mode = S_IFDIR | 0755;
	nd->mtime = b->time;
	if (parent != IDX_NONE) {
		nd->next_sib = b->nodes[parent].first_kid;
		b->nodes[parent].first_kid = b->n;
	}
	size_t k = hash_fnv(nd->path, len) & (b->hcap - 1);
	while (b->hash[k])
		k = (k + 1) & (b->hcap - 1);
	b->hash[k] = b->n + 1;
	return b->n++;
}

struct idx_builder *idx_builder_new(int64_t time, struct err *e)
{
	struct idx_builder *b;

	/* Entries come from libarchive and are read through it (arlib.h). */
	if (arlib_load(e) < 0)
		return NULL;
	if (!(b = calloc(1, sizeof(*b)))) {
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	b->time = time;
	b->version = IDX_VERSION;
	b->last = IDX_NONE;
	if (new_node(b, "", 0, IDX_NONE) == IDX_NONE) {
		idx_builder_free(b);
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	return b;
}

static void clear_node(struct bnode *nd)
{
	for (size_t i = 0; i < nd->nxattrs; i++) {
		free(nd->xattrs[i].name);
		free(nd->xattrs[i].value);
	}
	free(nd->xattrs);
	free(nd->sparse);
	free(nd->uname);
	free(nd->gname);
	free(nd->link);
	nd->xattrs = NULL;
	nd->sparse = NULL;
	nd->uname = nd->gname = nd->link = NULL;
	nd->nxattrs = nd->nsparse = 0;
}

void idx_builder_free(struct idx_builder *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->n; i++) {
		clear_node(&b->nodes[i]);
		free(b->nodes[i].path);
	}
	free(b->nodes);
	free(b->hash);
	for (int k = 0; k < IDX_REFUSALS; k++)
		free(b->refused_first[k]);
	free(b);
}

uint32_t idx_builder_members(const struct idx_builder *b)
{
	return b->members;
}

uint32_t idx_builder_refused(const struct idx_builder *b, enum idx_refusal why,
			     const char **first)
{
	*first = b->refused_first[why];
	return b->refused[why];
}

static void refuse(struct idx_builder *b, enum idx_refusal why, const char *path)
{
	if (b->refused[why]++ == 0)
		b->refused_first[why] = strdup(path);
}

bool idx_xattr_name_encoded(const char *name, size_t len, const char *enc, size_t enc_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 33 && c <= 126 && c != '%' && c != '=') {
			if (j >= enc_len || enc[j++] != (char)c)
				return false;
		} else if (j + 3 > enc_len || enc[j] != '%' || enc[j + 1] != hex[c >> 4] ||
			   enc[j + 2] != hex[c & 15]) {
			return false;
		} else {
			j += 3;
		}
	}
	return j == enc_len;
}

ssize_t idx_normalise(const char *path, char *buf, size_t size)
{
	size_t n = 0;

	while (*path) {
		size_t len = strcspn(path, "/");
		if (len == 2 && path[0] == '.' && path[1] == '.')
			return -1;
		if (len && !(len == 1 && path[0] == '.')) {
			if (n + len + 2 > size)
				return -2;
			if (n)
				buf[n++] = '/';
			memcpy(buf + n, path, len);
			n += len;
		}
		path += len + (path[len] == '/');
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The node for path, creating it and its implied parents. */
static uint32_t node_for(struct idx_builder *b, const char *path, size_t len)
{
	uint32_t i = find_node(b, path, len), parent;
	const char *slash;

	if (i != IDX_NONE)
		return i;
	slash = memrchr(path, '/', len);
	parent = slash ? node_for(b, path, (size_t)(slash - path)) : IDX_ROOT;
	if (parent == IDX_NONE)
		return IDX_NONE;
	if (!S_ISDIR(b->nodes[parent].mode)) {
		/* a later member below a file: tar replaces the file with a directory */
		clear_node(&b->nodes[parent]);
		b->nodes[parent].mode = S_IFDIR | 0755;
		b->nodes[parent].flags = IDX_F_IMPLICIT;
	}
	return new_node(b, path, len, parent);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int cmp_xattr_at(const void *a, const void *b, void *arg)
{
	const struct bxattr *v = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(v[i].name, v[j].name);

	return c ? c : (i > j) - (i < j);
}

/*
 * A name given twice (bsdtar's pax writes both a LIBARCHIVE.xattr and a
 * SCHILY.xattr record) is one attribute with the later value, as extraction
 * leaves it; the others keep their order.
 */
static int unique_xattrs(struct bnode *nd)
{
	size_t n = nd->nxattrs, k = 0, *at = malloc(n * sizeof(*at));

	if (!at)
		return -1;
	for (size_t i = 0; i < n; i++)
		at[i] = i;
	qsort_r(at, n, sizeof(*at), cmp_xattr_at, nd->xattrs);
	for (size_t i = 0; i + 1 < n; i++) {
		struct bxattr *x = &nd->xattrs[at[i]], *later = &nd->xattrs[at[i + 1]];
		if (strcmp(x->name, later->name) != 0)
			continue;
		/* the later takes the earlier's place; the earlier's slot is emptied */
		free(x->value);
		free(later->name);
		x->value = later->value;
		x->len = later->len;
		later->name = NULL;
		later->value = NULL;
		at[i + 1] = at[i];
	}
	free(at);
	for (size_t i = 0; i < n; i++)
		if (nd->xattrs[i].name)
			nd->xattrs[k++] = nd->xattrs[i];
	nd->nxattrs = k;
	return 0;
}

/* The id of user (or group) name on this system: false when it has none. */
static bool name_id(const char *name, bool user, uint32_t *id)
{
	char buf[4096];
	struct passwd pw, *p = NULL;
	struct group gr, *g = NULL;

	if (!name || !*name)
		return false;
	if (user && getpwnam_r(name, &pw, buf, sizeof(buf), &p) == 0 && p)
		*id = (uint32_t)p->pw_uid;
	else if (!user && getgrnam_r(name, &gr, buf, sizeof(buf), &g) == 0 && g)
		*id = (uint32_t)g->gr_gid;
	return p || g;
}

/* A POSIX ACL entry as Linux keeps it in system.posix_acl_* (uapi/linux/posix_acl_xattr.h). */
struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

static int cmp_acl_ent(const void *a, const void *b)
{
	const struct acl_ent *x = a, *y = b;

	return x->tag != y->tag ? (x->tag > y->tag) - (x->tag < y->tag)
				: (x->id > y->id) - (x->id < y->id);
}

/*
 * An ACL libarchive read (tar's SCHILY.acl records, which snapkeep's archives
 * and GNU tar --acls hold) as the xattr Linux shows it by, into x: version 2,
 * then the entries sorted by tag and id, as the kernel wants them. 0 with no
 * ACL of that type, 1 with one, -1 out of memory. *mask: the mask entry's
 * permissions, if there is one.
 */
static int acl_xattr(struct archive_entry *entry, int type, struct bxattr *x, int *mask)
{
	static const struct { int ar; uint16_t tag; } tags[] = {
		{ ARCHIVE_ENTRY_ACL_USER_OBJ, 0x01 }, { ARCHIVE_ENTRY_ACL_USER, 0x02 },
		{ ARCHIVE_ENTRY_ACL_GROUP_OBJ, 0x04 }, { ARCHIVE_ENTRY_ACL_GROUP, 0x08 },
		{ ARCHIVE_ENTRY_ACL_MASK, 0x10 }, { ARCHIVE_ENTRY_ACL_OTHER, 0x20 },
	};
	int n = AR(archive_entry_acl_reset)(entry, type), got, perm, tag, id;
	const char *who;
	struct acl_ent *v;
	size_t k = 0;

	if (n <= 0 || n > 65536)
		return 0;
	if (!(v = calloc((size_t)n, sizeof(*v))))
		return -1;
	while ((size_t)k < (size_t)n &&
	       AR(archive_entry_acl_next)(entry, type, &got, &perm, &tag, &id, &who) == ARCHIVE_OK) {
		size_t t = 0;
		while (t < sizeof(tags) / sizeof(tags[0]) && tags[t].ar != tag)
			t++;
		if (got != type || t == sizeof(tags) / sizeof(tags[0]))
			continue;
		v[k].tag = tags[t].tag;
		v[k].perm = (uint16_t)(perm & 7);	/* libarchive's bits are Linux's: r 4, w 2, x 1 */
		v[k].id = UINT32_MAX;
		if (v[k].tag == 0x02 || v[k].tag == 0x08) {
			/* a named entry by name alone (GNU tar --acls): this system's id, or left out */
			if (id >= 0)
				v[k].id = (uint32_t)id;
			else if (!name_id(who, v[k].tag == 0x02, &v[k].id))
				continue;
		}
		if (v[k].tag == 0x10)
			*mask = v[k].perm;
		k++;
	}
	if (k == 0) {
		free(v);
		return 0;
	}
	qsort(v, k, sizeof(*v), cmp_acl_ent);
	x->len = 4 + 8 * k;
	x->name = strdup(type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? "system.posix_acl_access"
							     : "system.posix_acl_default");
	x->value = malloc(x->len);
	if (!x->name || !x->value) {
		free(v);
		return -1;
	}
	unsigned char *p = x->value;
	le32_put(p, 2);
	for (size_t i = 0; i < k; i++) {
		p[4 + 8 * i] = (unsigned char)v[i].tag;
		p[5 + 8 * i] = (unsigned char)(v[i].tag >> 8);
		p[6 + 8 * i] = (unsigned char)v[i].perm;
		p[7 + 8 * i] = 0;
		le32_put(p + 8 + 8 * i, v[i].id);
	}
	free(v);
	return 1;
}

static int copy_lists(struct bnode *nd, struct archive_entry *entry, bool acls)
{
	const char *name;
	const void *value;
	size_t size;
	la_int64_t off, len;
	int n = AR(archive_entry_xattr_reset)(entry);
	bool has_acl = acls && AR(archive_entry_acl_reset)(entry, ARCHIVE_ENTRY_ACL_TYPE_POSIX1E) > 0;
	size_t cap = (size_t)(n > 0 ? n : 0) + (has_acl ? 2 : 0);

	/* the xattrs, and an access and a default ACL: no allocation for a member with none */
	if (cap && !(nd->xattrs = calloc(cap, sizeof(*nd->xattrs))))
		return -1;
	while (n > 0 && AR(archive_entry_xattr_next)(entry, &name, &value, &size) == ARCHIVE_OK) {
		struct bxattr *x = &nd->xattrs[nd->nxattrs];
		if (nd->nxattrs == (size_t)n)
			break;
		x->name = strdup(name);
		x->value = malloc(size ? size : 1);
		nd->nxattrs++;
		if (!x->name || !x->value)
			return -1;
		memcpy(x->value, value, size);
		x->len = size;
	}
	for (int k = 0; has_acl && k < 2; k++) {
		int mask = -1;
		int r = acl_xattr(entry, k ? ARCHIVE_ENTRY_ACL_TYPE_DEFAULT : ARCHIVE_ENTRY_ACL_TYPE_ACCESS,
				  &nd->xattrs[nd->nxattrs], &mask);
		if (r != 0)
			nd->nxattrs++;	/* freed with the node, even half made */
		if (r < 0)
			return -1;
		/* with an access ACL's mask, the mode's group bits are the mask (libarchive gives group::) */
		if (!k && mask >= 0)
			nd->mode = (nd->mode & ~(uint32_t)070) | (uint32_t)mask << 3;
	}
	if (nd->nxattrs > 1 && unique_xattrs(nd) < 0)
		return -1;
	if (!nd->nxattrs) {
		free(nd->xattrs);
		nd->xattrs = NULL;
	}
	if ((n = AR(archive_entry_sparse_reset)(entry)) > 0) {
		nd->flags |= IDX_F_SPARSE;	/* even if every region is empty: all hole */
		nd->sparse = calloc((size_t)n, sizeof(*nd->sparse));
		if (!nd->sparse)
			return -1;
		while (AR(archive_entry_sparse_next)(entry, &off, &len) == ARCHIVE_OK) {
			if (nd->nsparse == (size_t)n)
				break;
			if (len <= 0)
				continue;
			nd->sparse[nd->nsparse].off = (uint64_t)off;
			nd->sparse[nd->nsparse++].len = (uint64_t)len;
		}
	}
	return 0;
}

static int fill_node(struct idx_builder *b, struct bnode *nd, struct archive_entry *entry,
		     uint64_t data_off)
{
	const char *hl = AR(archive_entry_hardlink)(entry);

	clear_node(nd);
	nd->linked = false;
	nd->flags = hl ? IDX_F_HARDLINK : 0;
	nd->mode = (uint32_t)AR(archive_entry_mode)(entry);
	/* old tar members, and hard links, with no type are files; no hard link is a directory */
	if ((nd->mode & S_IFMT) == 0 || (hl && S_ISDIR(nd->mode) && b->version >= 2))
		nd->mode = S_IFREG | (nd->mode & 07777);
	nd->uid = (uint32_t)AR(archive_entry_uid)(entry);
	nd->gid = (uint32_t)AR(archive_entry_gid)(entry);
	nd->mtime = AR(archive_entry_mtime)(entry);
	nd->nsec = (uint32_t)AR(archive_entry_mtime_nsec)(entry);
	nd->size = S_ISREG(nd->mode) ? (uint64_t)AR(archive_entry_size)(entry) : 0;
	nd->rdev = (uint64_t)AR(archive_entry_rdev)(entry);
	nd->data_off = data_off;
	nd->seq = b->members;
	nd->uname = dup_or_null(AR(archive_entry_uname)(entry));
	nd->gname = dup_or_null(AR(archive_entry_gname)(entry));
	nd->link = dup_or_null(hl ? hl : AR(archive_entry_symlink)(entry));
	/* a hard link to a symlink holds a path, not its text (version 1 took the path's length) */
	if (S_ISLNK(nd->mode) && (!hl || b->version < 2))
		nd->size = nd->link ? strlen(nd->link) : 0;
	return copy_lists(nd, entry, b->version >= 2);
}

/* The node a hard link's path names, or IDX_NONE; -1 (as IDX_NONE - 1) out of memory. */
static uint32_t link_node(const struct idx_builder *b, const char *link)
{
	size_t size = link ? strlen(link) + 2 : 0;
	char *norm = link ? malloc(size) : NULL;
	ssize_t len = norm ? idx_normalise(link, norm, size) : -1;
	uint32_t t = len > 0 ? find_node(b, norm, (size_t)len) : IDX_NONE;

	if (link && !norm)
		t = IDX_NONE - 1;
	free(norm);
	return t;
}

/*
 * A hard link member that carries the data (newc cpio stores it with the last
 * name, tar with the first): it becomes the data holder, and the file that
 * held none becomes a link to it.
 */
static int swap_link(struct idx_builder *b, uint32_t i)
{
	struct bnode *nd = &b->nodes[i];
	char *self;
	uint32_t t = link_node(b, nd->link);	/* out of memory: no swap */

	/* the file that holds the data now: the member named may be a link already */
	for (int hops = 0; hops < 64 && t < IDX_NONE - 1 && (b->nodes[t].flags & IDX_F_HARDLINK);
	     hops++)
		t = link_node(b, b->nodes[t].link);
	/* odc cpio stores the data with every name: the first keeps it, the others link */
	if (t < IDX_NONE - 1 && t != i && S_ISREG(b->nodes[t].mode) && b->nodes[t].size > 0 &&
	    !(b->nodes[t].flags & IDX_F_HARDLINK))
		return 0;
	nd->flags &= ~IDX_F_HARDLINK;
	free(nd->link);
	nd->link = NULL;
	if (t >= IDX_NONE - 1 || t == i || !S_ISREG(b->nodes[t].mode))
		return 0;
	if (!(self = strdup(nd->path)))
		return -1;
	free(b->nodes[t].link);
	b->nodes[t].link = self;
	b->nodes[t].flags |= IDX_F_HARDLINK;
	return 0;
}

/*
 * Node i, a file that hard links named, is about to be replaced by a later
 * member with its path (an archive appended to with tar -r): the links keep
 * the old file, as tar extracts them. The first link takes its content and
 * the others are pointed at that link. A scan of the nodes, made only when a
 * file hard links named is replaced.
 */
static int keep_for_links(struct idx_builder *b, uint32_t i)
{
	struct bnode *old = &b->nodes[i];
	uint32_t first = IDX_NONE;

	if (!old->linked || !S_ISREG(old->mode) || (old->flags & IDX_F_HARDLINK))
		return 0;
	for (uint32_t k = 1; k < b->n; k++) {
		struct bnode *nd = &b->nodes[k];
		uint32_t t;
		if (k == i || !(nd->flags & IDX_F_HARDLINK) || !nd->link)
			continue;
		if ((t = link_node(b, nd->link)) == IDX_NONE - 1)
			return -1;
		if (t != i)
			continue;
		if (first != IDX_NONE) {
			char *p = strdup(b->nodes[first].path);
			if (!p)
				return -1;
			free(nd->link);
			nd->link = p;
			continue;
		}
		first = k;
		clear_node(nd);
		nd->flags = old->flags;
		nd->mode = old->mode;
		nd->uid = old->uid;
		nd->gid = old->gid;
		nd->seq = old->seq;
		nd->mtime = old->mtime;
		nd->nsec = old->nsec;
		nd->size = old->size;
		nd->rdev = old->rdev;
		nd->data_off = old->data_off;
		nd->uname = old->uname;
		nd->gname = old->gname;
		nd->xattrs = old->xattrs;
		nd->nxattrs = old->nxattrs;
		nd->sparse = old->sparse;
		nd->nsparse = old->nsparse;
		nd->linked = true;
		old->uname = old->gname = NULL;
		old->xattrs = NULL;
		old->sparse = NULL;
		old->nxattrs = old->nsparse = 0;
	}
	return 0;
}

/*
 * A hard link member naming its own path, after a member of that path (GNU tar
 * writes one when it is given a file twice, as with `tar czf x.tgz dir dir/sub`):
 * tar and bsdtar extract the earlier member's file and leave it.
 */
static bool self_link(const struct idx_builder *b, struct archive_entry *entry, const char *norm,
		      size_t len)
{
	const char *hl = AR(archive_entry_hardlink)(entry);
	uint32_t i = hl ? find_node(b, norm, len) : IDX_NONE;

	return i != IDX_NONE && link_node(b, hl) == i;
}

int idx_builder_add(struct idx_builder *b, struct archive_entry *entry, uint64_t data_off,
		    struct err *e)
{
	const char *path = AR(archive_entry_pathname)(entry);
	size_t size = path ? strlen(path) + 2 : 2;
	char *norm = malloc(size);
	ssize_t len;
	uint32_t i = IDX_NONE;
	int rc = 0;

	b->last = IDX_NONE;
	if (!norm)
		return err_set(e, ENOMEM, "out of memory for the index");
	len = idx_normalise(path ? path : "", norm, size);
	if (len < 0) {
		/* left out, but it keeps its place: readers count members to find the next ones */
		b->members++;
		refuse(b, IDX_REFUSED_CLIMBS, path);
		rc = err_set(e, EINVAL, "member '%s' climbs out of the archive with '..'", path);
	} else if (len == 0) {
		i = IDX_ROOT;	/* "./" itself: its metadata becomes the root's */
	} else if (self_link(b, entry, norm, (size_t)len)) {
		b->members++;	/* the same file given twice to tar: nothing changes */
		free(norm);
		return 0;
	} else {
		i = node_for(b, norm, (size_t)len);
	}
	if (rc == 0 && i == IDX_NONE)
		rc = err_set(e, ENOMEM, "out of memory for the index");
	if (rc == 0 && (keep_for_links(b, i) < 0 || fill_node(b, &b->nodes[i], entry, data_off) < 0))
		rc = err_set(e, ENOMEM, "out of memory for the index");
	if (rc == 0 && (b->nodes[i].flags & IDX_F_HARDLINK) && b->nodes[i].size > 0 &&
	    swap_link(b, i) < 0)
		rc = err_set(e, ENOMEM, "out of memory for the index");
	if (rc == 0 && (b->nodes[i].flags & IDX_F_HARDLINK)) {
		uint32_t t = link_node(b, b->nodes[i].link);	/* tar names an earlier member */
		if (t == IDX_NONE - 1)
			rc = err_set(e, ENOMEM, "out of memory for the index");
		else if (t != IDX_NONE && t != i)
			b->nodes[t].linked = true;
	}
	if (rc == 0 && i == IDX_ROOT && !S_ISDIR(b->nodes[i].mode))
		b->nodes[i].mode = S_IFDIR | (b->nodes[i].mode & 07777);
	if (rc == 0)
		b->members++;
	b->last = rc == 0 ? i : IDX_NONE;
	free(norm);
	return rc;
}

int idx_builder_stored(struct idx_builder *b, uint64_t stored, struct err *e)
{
	struct bnode *nd = b->last != IDX_NONE ? &b->nodes[b->last] : NULL;

	if (!nd || !S_ISREG(nd->mode) || (nd->flags & (IDX_F_HARDLINK | IDX_F_SPARSE)) ||
	    stored >= nd->size)
		return 0;
	/* where its bytes are is unknown: one region of all of it, so none reads as a hole */
	if (!(nd->sparse = malloc(sizeof(*nd->sparse))))
		return err_set(e, ENOMEM, "out of memory for the index");
	nd->sparse[0] = (struct idx_sparse){ 0, nd->size };
	nd->nsparse = 1;
	nd->flags |= IDX_F_SPARSE;
	return 0;
}

/*
 * Serialising. finish() orders the nodes breadth first with each directory's
 * children sorted, resolves hard links, counts links, then writes the blob.
 */
struct strtab {
	unsigned char *buf;
	size_t len, cap;
	const char *names[16];	/* a few owner names repeat on every entry */
	uint32_t name_off[16];
	size_t nnames;
};

static int str_add(struct strtab *s, const void *p, size_t len, uint32_t *off)
{
	if (s->len + len > UINT32_MAX)
		return -1;
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + len)
			cap *= 2;
		unsigned char *b = realloc(s->buf, cap);
		if (!b)
			return -1;
		s->buf = b;
		s->cap = cap;
	}
	if (len)
		memcpy(s->buf + s->len, p, len);
	*off = (uint32_t)s->len;
	s->len += len;
	return 0;
}

/* Owner names, shared by offset: most archives have one or two. */
static int str_add_owner(struct strtab *s, const char *name, uint32_t *off)
{
	for (size_t i = 0; i < s->nnames; i++)
		if (strcmp(s->names[i], name) == 0) {
			*off = s->name_off[i];
			return 0;
		}
	if (str_add(s, name, strlen(name), off) < 0)
		return -1;
	if (s->nnames < 16) {
		s->names[s->nnames] = name;
		s->name_off[s->nnames++] = *off;
	}
	return 0;
}

static int cmp_node_name(const void *a, const void *b, void *arg)
{
	const struct bnode *nodes = arg;

	return strcmp(nodes[*(const uint32_t *)a].name, nodes[*(const uint32_t *)b].name);
}

/* order[k] = the node written as entry k. Returns the number of entries. */
static uint32_t order_nodes(struct idx_builder *b, uint32_t *order)
{
	uint32_t n = 1, head = 0;

	for (uint32_t i = 0; i < b->n; i++)
		b->nodes[i].out = IDX_NONE;
	order[0] = IDX_ROOT;
	b->nodes[IDX_ROOT].out = 0;
	while (head < n) {
		struct bnode *dir = &b->nodes[order[head++]];
		uint32_t first = n;
		if (!S_ISDIR(dir->mode))
			continue;
		for (uint32_t k = dir->first_kid; k != IDX_NONE; k = b->nodes[k].next_sib)
			order[n++] = k;
		qsort_r(order + first, n - first, sizeof(*order), cmp_node_name, b->nodes);
		for (uint32_t k = first; k < n; k++)
			b->nodes[order[k]].out = k;
	}
	return n;
}

/* The node a hard link finally points at, or IDX_NONE if it names no stored file. */
static uint32_t link_target(struct idx_builder *b, const struct bnode *nd)
{
	for (int hops = 0; hops < 64 && nd->link; hops++) {
		uint32_t t = link_node(b, nd->link);
		if (t >= IDX_NONE - 1 || b->nodes[t].out == IDX_NONE)
			return IDX_NONE;
		/* a file, symlink, FIFO or device: what hard links may name (not a directory) */
		if (!(b->nodes[t].flags & IDX_F_HARDLINK))
			return S_ISDIR(b->nodes[t].mode) ||
			       (b->version < 2 && !S_ISREG(b->nodes[t].mode)) ? IDX_NONE : t;
		nd = &b->nodes[t];
	}
	return IDX_NONE;
}

/*
 * In a foreign archive, hard links to no file it holds (none named so before
 * them, as after `tar --delete` of the file, or a directory): tar and bsdtar
 * extract nothing for them, so they are left out rather than shown as empty
 * files. The number left out; order must then be made again. A native
 * archive's index keeps them as empty files (a take of a hard-linked socket
 * wrote one such link), and so does verify's rebuild (resolve_links()).
 */
static uint32_t drop_dangling(struct idx_builder *b, const uint32_t *order, uint32_t n)
{
	uint32_t dropped = 0, first = IDX_NONE;

	for (uint32_t k = 1; k < n && b->foreign; k++) {
		uint32_t i = order[k];
		struct bnode *nd = &b->nodes[i];
		if (!(nd->flags & IDX_F_HARDLINK) || link_target(b, nd) != IDX_NONE)
			continue;
		uint32_t *p = &b->nodes[nd->parent].first_kid;
		while (*p != i)
			p = &b->nodes[*p].next_sib;
		*p = nd->next_sib;	/* links to it are then links to nothing too */
		if (first == IDX_NONE || nd->seq < b->nodes[first].seq)
			first = i;	/* the first in the archive, not in this order */
		dropped++;
	}
	if (dropped) {
		b->refused[IDX_REFUSED_NO_TARGET] += dropped;
		if (!b->refused_first[IDX_REFUSED_NO_TARGET])
			b->refused_first[IDX_REFUSED_NO_TARGET] = strdup(b->nodes[first].path);
	}
	return dropped;
}

/* target[k] for entry k; counts links into nlink. */
static void resolve_links(struct idx_builder *b, const uint32_t *order, uint32_t n, uint32_t *target)
{
	for (uint32_t k = 0; k < n; k++) {
		struct bnode *nd = &b->nodes[order[k]];
		nd->nlink = S_ISDIR(nd->mode) ? 2 : 1;
		target[k] = k;
	}
	for (uint32_t k = 1; k < n; k++) {
		struct bnode *nd = &b->nodes[order[k]];
		if (S_ISDIR(nd->mode))
			b->nodes[nd->parent].nlink++;
		if (!(nd->flags & IDX_F_HARDLINK))
			continue;
		uint32_t t = link_target(b, nd);
		if (t == IDX_NONE) {
			/* a link to nothing stored, in version 1: an empty file */
			nd->flags &= ~IDX_F_HARDLINK;
			nd->mode = S_IFREG | (nd->mode & 07777);
			continue;
		}
		target[k] = b->nodes[t].out;
		b->nodes[t].nlink++;
	}
	for (uint32_t k = 0; k < n; k++)
		if (target[k] != k)
			b->nodes[order[k]].nlink = b->nodes[order[target[k]]].nlink;
}

struct blob_sizes {
	size_t nxattrs, nsparse;
};

static int put_entry(unsigned char *p, const struct bnode *nd, const struct idx_builder *b,
		     uint32_t target, struct strtab *s, struct blob_sizes *c)
{
	uint32_t off = 0, first_child = 0, nkids = 0;

	if (S_ISDIR(nd->mode))
		for (uint32_t k = nd->first_kid; k != IDX_NONE; k = b->nodes[k].next_sib)
			if (b->nodes[k].out != IDX_NONE) {
				nkids++;
				if (!first_child || b->nodes[k].out < first_child)
					first_child = b->nodes[k].out;
			}
	le64_put(p + IDX_E_DATA_OFF, nd->data_off);
	le64_put(p + IDX_E_SIZE, nd->size);
	le64_put(p + IDX_E_MTIME, (uint64_t)nd->mtime);
	le64_put(p + IDX_E_RDEV, nd->rdev);
	le32_put(p + IDX_E_NSEC, nd->nsec);
	le32_put(p + IDX_E_MODE, nd->mode);
	le32_put(p + IDX_E_UID, nd->uid);
	le32_put(p + IDX_E_GID, nd->gid);
	le32_put(p + IDX_E_PARENT, nd->parent == IDX_NONE ? 0 : b->nodes[nd->parent].out);
	le32_put(p + IDX_E_FIRST_CHILD, first_child);
	le32_put(p + IDX_E_NCHILDREN, nkids);
	le32_put(p + IDX_E_NLINK, nd->nlink);
	le32_put(p + IDX_E_TARGET, target);
	le32_put(p + IDX_E_FLAGS, nd->flags);
	le32_put(p + IDX_E_SEQ, nd->seq);
	if (str_add(s, nd->name, strlen(nd->name), &off) < 0)
		return -1;
	le32_put(p + IDX_E_NAME, off);
	le32_put(p + IDX_E_NAME + 4, (uint32_t)strlen(nd->name));
	if (nd->link && str_add(s, nd->link, strlen(nd->link), &off) < 0)
		return -1;
	le32_put(p + IDX_E_LINK, nd->link ? off : 0);
	le32_put(p + IDX_E_LINK + 4, nd->link ? (uint32_t)strlen(nd->link) : 0);
	if (nd->uname && str_add_owner(s, nd->uname, &off) < 0)
		return -1;
	le32_put(p + IDX_E_UNAME, nd->uname ? off : 0);
	le32_put(p + IDX_E_UNAME + 4, nd->uname ? (uint32_t)strlen(nd->uname) : 0);
	if (nd->gname && str_add_owner(s, nd->gname, &off) < 0)
		return -1;
	le32_put(p + IDX_E_GNAME, nd->gname ? off : 0);
	le32_put(p + IDX_E_GNAME + 4, nd->gname ? (uint32_t)strlen(nd->gname) : 0);
	le32_put(p + IDX_E_XATTRS, (uint32_t)c->nxattrs);
	le32_put(p + IDX_E_XATTRS + 4, (uint32_t)nd->nxattrs);
	le32_put(p + IDX_E_SPARSE, (uint32_t)c->nsparse);
	le32_put(p + IDX_E_SPARSE + 4, (uint32_t)nd->nsparse);
	c->nxattrs += nd->nxattrs;
	c->nsparse += nd->nsparse;
	return 0;
}

static int put_lists(unsigned char *xp, unsigned char *sp, const struct bnode *nd,
		     struct strtab *s)
{
	uint32_t off;

	for (size_t i = 0; i < nd->nxattrs; i++, xp += IDX_X_SIZEOF) {
		const struct bxattr *x = &nd->xattrs[i];
		if (str_add(s, x->name, strlen(x->name), &off) < 0)
			return -1;
		le32_put(xp + IDX_X_NAME, off);
		le32_put(xp + IDX_X_NAME + 4, (uint32_t)strlen(x->name));
		if (str_add(s, x->value, x->len, &off) < 0)
			return -1;
		le32_put(xp + IDX_X_VALUE, off);
		le32_put(xp + IDX_X_VALUE + 4, (uint32_t)x->len);
	}
	for (size_t i = 0; i < nd->nsparse; i++, sp += IDX_S_SIZEOF) {
		le64_put(sp + IDX_S_OFF, nd->sparse[i].off);
		le64_put(sp + IDX_S_LEN, nd->sparse[i].len);
	}
	return 0;
}

static int serialise(struct idx_builder *b, const uint32_t *order, const uint32_t *target,
		     uint32_t n, void **out, size_t *len)
{
	struct blob_sizes total = { 0, 0 }, c = { 0, 0 };
	struct strtab s = { 0 };
	unsigned char *blob, *ents, *xs, *sp;
	size_t size;

	for (uint32_t k = 0; k < n; k++) {
		total.nxattrs += b->nodes[order[k]].nxattrs;
		total.nsparse += b->nodes[order[k]].nsparse;
	}
	size = IDX_BODY_HDR_SIZE + (size_t)n * IDX_E_SIZEOF + total.nxattrs * IDX_X_SIZEOF +
	       total.nsparse * IDX_S_SIZEOF;
	blob = calloc(1, size);
	if (!blob)
		return -1;
	ents = blob + IDX_BODY_HDR_SIZE;
	xs = ents + (size_t)n * IDX_E_SIZEOF;
	sp = xs + total.nxattrs * IDX_X_SIZEOF;
	for (uint32_t k = 0; k < n; k++) {
		const struct bnode *nd = &b->nodes[order[k]];
		if (put_lists(xs + c.nxattrs * IDX_X_SIZEOF, sp + c.nsparse * IDX_S_SIZEOF, nd, &s) < 0 ||
		    put_entry(ents + (size_t)k * IDX_E_SIZEOF, nd, b, target[k], &s, &c) < 0) {
			free(s.buf);
			free(blob);
			return -1;
		}
	}
	le32_put(blob + IDX_BODY_ENTRIES, n);
	le32_put(blob + IDX_BODY_MEMBERS, b->members);
	le32_put(blob + IDX_BODY_XATTRS, (uint32_t)total.nxattrs);
	le32_put(blob + IDX_BODY_SPARSE, (uint32_t)total.nsparse);
	le32_put(blob + IDX_BODY_STRINGS, (uint32_t)s.len);
	unsigned char *all = realloc(blob, size + s.len);
	if (!all) {
		free(s.buf);
		free(blob);
		return -1;
	}
	if (s.len)
		memcpy(all + size, s.buf, s.len);
	free(s.buf);
	*out = all;
	*len = size + s.len;
	return 0;
}

int idx_builder_finish(struct idx_builder *b, void **out, size_t *len, struct err *e)
{
	uint32_t *order = malloc((size_t)b->n * sizeof(*order));
	uint32_t *target = malloc((size_t)b->n * sizeof(*target));
	uint32_t n;
	int rc = 0;

	if (!order || !target) {
		rc = err_set(e, ENOMEM, "out of memory for the index");
		goto done;
	}
	n = order_nodes(b, order);
	while (drop_dangling(b, order, n))	/* a hard link is no directory: one round */
		n = order_nodes(b, order);
	resolve_links(b, order, n, target);
	if (serialise(b, order, target, n, out, len) < 0)
		rc = err_set(e, ENOMEM, "out of memory for the index (or over 4 GiB of names)");
done:
	free(order);
	free(target);
	return rc;
}

int idx_pack_frame(const void *body, size_t len, uint64_t tar_size, void **out, size_t *out_len,
		   struct err *e)
{
	size_t cap = IDX_HDR_SIZE + ZSTD_compressBound(len);
	unsigned char *p = malloc(cap);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t r;

	if (!p || !cctx) {
		free(p);
		ZSTD_freeCCtx(cctx);
		return err_set(e, ENOMEM, "out of memory for the index");
	}
	memcpy(p + IDX_HDR_MAGIC, IDX_MAGIC, 8);
	le32_put(p + IDX_HDR_VERSION, IDX_VERSION);
	le32_put(p + IDX_HDR_FLAGS, 0);
	le64_put(p + IDX_HDR_TAR_SIZE, tar_size);
	le64_put(p + IDX_HDR_BODY_SIZE, len);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	/*
	 * A reader decompresses the index as a stream through a window this big: 128 KiB,
	 * not the 2 MiB level 3 picks. Records repeat close by, so it compresses better too
	 * (308 against 321 KB for 20,430 entries).
	 */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 17);
	r = ZSTD_compress2(cctx, p + IDX_HDR_SIZE, cap - IDX_HDR_SIZE, body, len);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(r)) {
		free(p);
		return err_set(e, EIO, "cannot compress the index: %s", ZSTD_getErrorName(r));
	}
	*out = p;
	*out_len = IDX_HDR_SIZE + r;
	return 0;
}

/*
 * Reading. The body is transcoded once, as it is read (or decompressed), into
 * a compact form of 32 bytes an entry: what every entry has (data offset,
 * size, time, name, mode, owner as an index into a table of the distinct
 * owners). What few entries have (directories, links, devices, extended
 * attributes, sparse maps, anything too wide) goes to a record of its own,
 * found by binary search. The string area is kept as it is. Every offset and
 * count is checked once, at open, so accessors need no bounds checks.
 *
 * Two stored fields are not kept per entry. The parent follows from the
 * directories' child ranges, which tile the entries after the root (struct
 * crange, checked at load). The position in the archive goes to an array of
 * its own, which only foreign archives need to read data and which the daemon
 * does without for native ones (idx_opts.no_seq).
 *
 * Size and mode share a word, and so do the time's seconds and nanoseconds:
 * 48 bits of size is 256 TiB, 34 bits of seconds (signed, stored with a bias)
 * span the years 1697 to 2242, and nanoseconds below 10^9 need 30 bits. A
 * stored index may hold wider values (the format has 64 and 32 bits and sets
 * no range): an entry with one gets an extension record, and its size and time
 * go whole to a struct cwide that the record points to. Only the cent_
 * accessors and the transcoding below know the packing.
 */
#define CENT_SIZE_BITS 48
#define CENT_SIZE_MAX ((UINT64_C(1) << CENT_SIZE_BITS) - 1)
#define CENT_NSEC_BITS 30
#define CENT_NSEC_MAX ((UINT32_C(1) << CENT_NSEC_BITS) - 1)
#define CENT_SEC_BITS 34
#define CENT_SEC_BIAS (INT64_C(1) << (CENT_SEC_BITS - 1))	/* stored: seconds + bias */
#define CENT_OWNER_MAX 0x7FFFu	/* owner numbers share 16 bits with the ext flag */

struct cent {
	uint64_t data_off;
	uint64_t size_mode;	/* size in the low CENT_SIZE_BITS, mode above */
	uint64_t mtime;		/* seconds + CENT_SEC_BIAS above, nanoseconds in the low bits */
	uint32_t name_off;
	uint16_t name_len;
	uint16_t owner_ext;	/* owner << 1 | 1 if the entry has a struct cext (cent_ext) */
};

_Static_assert(sizeof(struct cent) == 32, "struct cent is 32 bytes: the index's memory per entry");
_Static_assert(CENT_SIZE_BITS + 16 == 64 && CENT_SEC_BITS + CENT_NSEC_BITS == 64,
	       "the packed fields fill their words");

/* The entry has a struct cext, which holds its mode, name_len and owner. */
static inline bool cent_ext(const struct cent *c)
{
	return c->owner_ext & 1;
}

static inline uint32_t cent_owner(const struct cent *c)
{
	return c->owner_ext >> 1;
}

/* Size and time: for every entry, unless its struct cext points to a struct cwide. */
static inline uint64_t cent_size(const struct cent *c)
{
	return c->size_mode & CENT_SIZE_MAX;
}

/* Mode holds only for an entry without a struct cext. */
static inline uint32_t cent_mode(const struct cent *c)
{
	return (uint32_t)(c->size_mode >> CENT_SIZE_BITS);
}

static inline int64_t cent_sec(const struct cent *c)
{
	return (int64_t)(c->mtime >> CENT_NSEC_BITS) - CENT_SEC_BIAS;
}

static inline uint32_t cent_nsec(const struct cent *c)
{
	return (uint32_t)(c->mtime & CENT_NSEC_MAX);
}

struct cext {
	uint32_t id;
	uint32_t mode, name_len, owner;
	uint32_t first_child, nchildren, nlink, target, flags;
	uint32_t link_off, link_len;
	uint32_t xattr_first, nxattrs, sparse_first, nsparse;
	uint32_t wide;		/* 0, or 1 + the index in x->wide of the entry's size and time */
	uint64_t rdev;
};

/*
 * ext_of() searches these records, and the bigger they are the more the search
 * misses the cache: at 88 bytes, idx_get() of an entry with one was 13% slower
 * and idx_lookup() 7% (200,000 entries, 16,000 records).
 */
_Static_assert(sizeof(struct cext) == 72, "struct cext stays 72 bytes");

/*
 * Size and time too wide for a struct cent. Only files of 256 TiB or more,
 * times before 1697 or after 2242, or odd values in a stored index need one:
 * kept apart, they make no struct cext bigger.
 */
struct cwide {
	uint64_t size;
	int64_t mtime_sec;
	uint32_t nsec;
};

/*
 * The children of a directory: entries [first, next range's first), or up to
 * the last entry for the last range. One for each directory with children, in
 * the order of the directories, which breadth-first order makes the order of
 * their children too (docs/FORMAT.md, "Entries"). Loading checks that the
 * ranges tile [1, n) exactly and that each entry's stored parent is the
 * directory whose range holds it, so parent_of() gives back the stored parent.
 */
struct crange {
	uint32_t first;
	uint32_t dir;
};

/*
 * parent_of() searches only the ranges between the ones holding the first
 * entries of i's block of entries and of the next block, found in a table of
 * hints (4 bytes a block of 64 entries). Searching all the ranges made idx_get()
 * take 36 ns instead of 11 with the parent stored; with the hints it takes 14
 * (200,000 entries, 20,000 directories).
 */
#define CRANGE_BLOCK_SHIFT 6

struct cowner {
	uint32_t uid, gid;
	uint32_t uname_off, uname_len, gname_off, gname_len;
};

struct idx {
	char *name;
	int fd;			/* -1 for a blob with no archive */
	uint32_t n, nxattrs, nsparse, members;
	uint32_t refused[IDX_REFUSALS];	/* a foreign archive's members left out (idx_refused()) */
	char *refused_first[IDX_REFUSALS];
	char *damage;		/* idx_damage() */
	struct cent *ce;	/* n */
	uint32_t *seq;		/* n; NULL when not kept (idx_opts.no_seq) */
	bool no_seq;		/* asked for: applies to a native archive */
	struct cext *ext;	/* sorted by id */
	uint32_t next, capext;
	struct crange *ranges;	/* sorted by first and by dir */
	uint32_t nranges, capranges;
	uint32_t *hint;		/* for each block and one past: the range holding its first entry */
	uint32_t covered;	/* while loading: the ranges so far hold entries [1, covered) */
	uint32_t cur;		/* while loading: the range holding the last entry read */
	struct cwide *wide;
	uint32_t nwide, capwide;
	struct cowner *owners;
	uint32_t nowners, capowners;
	uint32_t *ohash;	/* owner + 1 by hash; 0 = empty */
	uint32_t ohcap;
	unsigned char *xattrs, *sparse;	/* as stored */
	char *strings;
	uint32_t nstrings;
	bool loading;		/* a body was found: a failure is damage, not a foreign archive */
	bool marked;		/* the last frame began as a snapfs index does */
	uint32_t version;	/* a native index's (idx_version()) */
	uint64_t tar_size;
	uint64_t serial;	/* identifies this index in a reader's frame cache */
	struct zseek *z;	/* native archives */
	struct frn *frn;	/* foreign archives */
	uint32_t *files;	/* foreign: the files with data, in archive order (frn_opts) */
	uint32_t nfiles;
	bool gzip_tar;		/* foreign: a tar over one gzip filter (foreign.h) */
	bool bare_tar;		/* foreign: a tar with no filter (foreign.h) */
	uint64_t sound_end;	/* foreign: data past this offset of the decoded stream is not read */
};

static atomic_uint_fast64_t idx_serials;

static int damaged(const struct idx *x, const char *what, uint32_t i, struct err *e)
{
	return err_set(e, EIO, "'%s' is damaged: index %s (entry %u); run 'snapkeep verify' on it",
		       x->name, what, i);
}

static int no_memory(const struct idx *x, struct err *e)
{
	return err_set(e, ENOMEM, "out of memory for the index of '%s'", x->name);
}

/* The body, read front to back: from a blob in memory, or decompressed as it goes. */
struct bsrc {
	const unsigned char *mem;
	size_t left;		/* body bytes not yet read */
	ZSTD_DStream *ds;	/* NULL: from mem */
	ZSTD_inBuffer in;
	bool ended;		/* the frame is complete, its checksum checked */
	bool fill;		/* the body's size is plausible: its tables' pages are made at once */
	const char *why;	/* the decoder's complaint */
};

static int bsrc_read(struct bsrc *s, void *dst, size_t n)
{
	ZSTD_outBuffer out = { dst, n, 0 };

	if (n > s->left)
		return -1;
	s->left -= n;
	if (!s->ds) {
		memcpy(dst, s->mem, n);
		s->mem += n;
		return 0;
	}
	while (out.pos < n) {
		size_t before = out.pos, used = s->in.pos;
		size_t r = ZSTD_decompressStream(s->ds, &out, &s->in);
		if (ZSTD_isError(r))
			s->why = ZSTD_getErrorName(r);
		if (ZSTD_isError(r) || (r == 0 && out.pos < n) ||
		    (out.pos == before && s->in.pos == used))
			return -1;
		s->ended = r == 0;
	}
	return 0;
}

/* The frame ends where the body does, and its checksum holds. */
static bool bsrc_done(struct bsrc *s)
{
	unsigned char more;
	ZSTD_outBuffer out = { &more, 1, 0 };

	if (s->left)
		return false;
	if (!s->ds)
		return true;
	while (!s->ended) {
		size_t used = s->in.pos, r = ZSTD_decompressStream(s->ds, &out, &s->in);
		if (ZSTD_isError(r))
			s->why = ZSTD_getErrorName(r);
		if (ZSTD_isError(r) || out.pos)
			return false;
		if (r == 0)
			break;
		if (s->in.pos == used)
			return false;
	}
	if (s->in.pos != s->in.size)
		s->why = "bytes after the index's frame";
	return s->in.pos == s->in.size;
}

static bool str_ok(const struct idx *x, const unsigned char *p)
{
	uint64_t off = le32_get(p), len = le32_get(p + 4);

	return off + len <= x->nstrings;
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 27;
	h *= 0x94D049BB133111EBull;
	return h ^ (h >> 31);
}

/*
 * Owners are hashed with a key of this process's, so that an archive cannot be
 * made whose owners all collide (opening it would take minutes of probing).
 */
static uint64_t owner_key(void)
{
	static atomic_uint_fast64_t key;
	uint64_t k = atomic_load_explicit(&key, memory_order_relaxed);

	if (k == 0) {
		if (getrandom(&k, sizeof(k), GRND_NONBLOCK) != sizeof(k)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			k = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts ^
				  (uint64_t)getpid() << 32);
		}
		k |= 1;
		atomic_store_explicit(&key, k, memory_order_relaxed);
	}
	return k;
}

static uint32_t owner_hash(const struct cowner *o)
{
	uint64_t h = mix64(owner_key() ^ ((uint64_t)o->uid << 32 | o->gid));

	h = mix64(h ^ ((uint64_t)o->uname_off << 32 | o->gname_off));
	h = mix64(h ^ ((uint64_t)o->uname_len << 32 | o->gname_len));
	return (uint32_t)(h >> 32);
}

static bool owner_eq(const struct cowner *a, const struct cowner *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->uname_off == b->uname_off &&
	       a->uname_len == b->uname_len && a->gname_off == b->gname_off &&
	       a->gname_len == b->gname_len;
}

/* The number of owner o in the table, added if new; UINT32_MAX when out of memory. */
static uint32_t owner_of(struct idx *x, const struct cowner *o)
{
	uint32_t h;

	if (x->nowners * 2 >= x->ohcap) {
		uint32_t cap = x->ohcap ? x->ohcap * 2 : 64;
		uint32_t *t = calloc(cap, sizeof(*t));
		if (!t)
			return UINT32_MAX;
		for (uint32_t k = 0; k < x->nowners; k++) {
			for (h = owner_hash(&x->owners[k]) & (cap - 1); t[h]; h = (h + 1) & (cap - 1))
				;
			t[h] = k + 1;
		}
		free(x->ohash);
		x->ohash = t;
		x->ohcap = cap;
	}
	for (h = owner_hash(o) & (x->ohcap - 1); x->ohash[h]; h = (h + 1) & (x->ohcap - 1))
		if (owner_eq(&x->owners[x->ohash[h] - 1], o))
			return x->ohash[h] - 1;
	if (x->nowners == x->capowners) {
		uint32_t cap = x->capowners ? x->capowners * 2 : 16;
		struct cowner *v = realloc(x->owners, cap * sizeof(*v));
		if (!v)
			return UINT32_MAX;
		x->owners = v;
		x->capowners = cap;
	}
	x->owners[x->nowners] = *o;
	x->ohash[h] = ++x->nowners;
	return x->nowners - 1;
}

/* Room in v, of *cap elements of size bytes, for element n: v, or a bigger copy; NULL if none. */
static void *grow(void *v, uint32_t *cap, uint32_t n, size_t size)
{
	uint32_t want = *cap ? *cap * 2 : 64;

	if (n < *cap)
		return v;
	if (!(v = realloc(v, (size_t)want * size)))
		return NULL;
	*cap = want;
	return v;
}

/* Size and time of stored entry p into c, or into x->wide (t then says where) if too wide. */
static int put_size_time(struct idx *x, struct cent *c, struct cext *t, const unsigned char *p)
{
	struct cwide w = { .size = le64_get(p + IDX_E_SIZE),
			   .mtime_sec = (int64_t)le64_get(p + IDX_E_MTIME),
			   .nsec = le32_get(p + IDX_E_NSEC) };
	struct cwide *v;

	if (w.size <= CENT_SIZE_MAX && w.nsec <= CENT_NSEC_MAX && w.mtime_sec >= -CENT_SEC_BIAS &&
	    w.mtime_sec < CENT_SEC_BIAS) {
		c->size_mode = w.size;
		c->mtime = (uint64_t)(w.mtime_sec + CENT_SEC_BIAS) << CENT_NSEC_BITS | w.nsec;
		return 0;
	}
	c->size_mode = c->mtime = 0;
	if (!(v = grow(x->wide, &x->capwide, x->nwide, sizeof(*v))))
		return -1;
	x->wide = v;
	x->wide[x->nwide++] = w;
	t->wide = x->nwide;
	return 0;
}

/* Entry t needs no struct cext: no rare attribute, no value too wide. */
static bool fits_cent(const struct cext *t)
{
	return t->mode <= UINT16_MAX && t->name_len <= UINT16_MAX && t->owner <= CENT_OWNER_MAX &&
	       !t->wide && !t->first_child && !t->nchildren && t->nlink == 1 &&
	       t->target == t->id && !t->flags && !t->link_len && !t->nxattrs && !t->nsparse &&
	       !t->rdev;
}

/* The directory whose child range holds entry i (the root for the root); once loaded. */
static uint32_t parent_of(const struct idx *x, uint32_t i)
{
	uint32_t b = i >> CRANGE_BLOCK_SHIFT, lo, hi;

	if (i == IDX_ROOT)
		return IDX_ROOT;
	lo = x->hint[b];
	hi = x->hint[b + 1] + 1;
	/* the last range that starts at or before i: the ranges tile [1, n), so it holds i */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (x->ranges[mid].first <= i)
			lo = mid;
		else
			hi = mid;
	}
	return x->ranges[lo].dir;
}

/* The hints of parent_of(), once all the ranges are in. */
static int put_hints(struct idx *x, struct err *e)
{
	uint32_t nb = ((x->n - 1) >> CRANGE_BLOCK_SHIFT) + 2, r = 0;

	if (!(x->hint = malloc((size_t)nb * sizeof(*x->hint))))
		return no_memory(x, e);
	for (uint32_t b = 0; b < nb; b++) {
		uint64_t start = (uint64_t)b << CRANGE_BLOCK_SHIFT;	/* past n for the last */
		while (r + 1 < x->nranges && x->ranges[r + 1].first <= start)
			r++;
		x->hint[b] = r;
	}
	return 0;
}

/*
 * Check entry i's place in the tree, then add its range if it is a directory
 * with children. The ranges must follow one another from entry 1 with no gap
 * and no overlap, so each starts where the ones before it end: after its own
 * directory, so that no later directory's range can hold i. Then i must lie
 * in a range already, and in its stored parent's, which is thus before it. An
 * entry in no range would be an orphan, which the builder never writes: it
 * writes only what its breadth-first walk reaches from the root, each entry
 * in its parent's range.
 */
static int put_family(struct idx *x, uint32_t i, uint32_t parent, const struct cext *t,
		      struct err *e)
{
	struct crange *v;

	if (i == IDX_ROOT && (!S_ISDIR(t->mode) || parent != IDX_ROOT))
		return damaged(x, "root is not a directory whose parent is itself", i, e);
	if (i != IDX_ROOT && i >= x->covered)
		return damaged(x, "entry in no directory (an orphan)", i, e);
	/* entries come in order, so the range holding them only moves on */
	while (x->cur + 1 < x->nranges && x->ranges[x->cur + 1].first <= i)
		x->cur++;
	if (i != IDX_ROOT && x->ranges[x->cur].dir != parent)
		return damaged(x, "entry outside its parent's children", i, e);
	if (!t->nchildren)
		return 0;
	if (!S_ISDIR(t->mode) || (uint64_t)t->first_child + t->nchildren > x->n)
		return damaged(x, "children out of range", i, e);
	if (t->first_child < x->covered)
		return damaged(x, "child ranges overlap or are out of order", i, e);
	if (t->first_child > x->covered)
		return damaged(x, "entry in no directory (an orphan)", x->covered, e);
	if (!(v = grow(x->ranges, &x->capranges, x->nranges, sizeof(*v))))
		return no_memory(x, e);
	x->ranges = v;
	x->ranges[x->nranges++] = (struct crange){ t->first_child, i };
	x->covered = t->first_child + t->nchildren;
	return 0;
}

/* Transcode stored entry i (IDX_E_SIZEOF bytes at p) into x->ce[i], and x->ext if it needs one. */
static int put_cent(struct idx *x, uint32_t i, const unsigned char *p, struct err *e)
{
	struct cent *c = &x->ce[i];
	struct cext t = { 0 }, *v;
	struct cowner o;
	uint32_t owner;

	if (!str_ok(x, p + IDX_E_NAME) || !str_ok(x, p + IDX_E_LINK) ||
	    !str_ok(x, p + IDX_E_UNAME) || !str_ok(x, p + IDX_E_GNAME))
		return damaged(x, "string range", i, e);
	o.uid = le32_get(p + IDX_E_UID);
	o.gid = le32_get(p + IDX_E_GID);
	o.uname_off = le32_get(p + IDX_E_UNAME);
	o.uname_len = le32_get(p + IDX_E_UNAME + 4);
	o.gname_off = le32_get(p + IDX_E_GNAME);
	o.gname_len = le32_get(p + IDX_E_GNAME + 4);
	if ((owner = owner_of(x, &o)) == UINT32_MAX)
		return no_memory(x, e);
	c->data_off = le64_get(p + IDX_E_DATA_OFF);
	c->name_off = le32_get(p + IDX_E_NAME);
	if (x->seq)
		x->seq[i] = le32_get(p + IDX_E_SEQ);
	t.id = i;
	t.mode = le32_get(p + IDX_E_MODE);
	t.name_len = le32_get(p + IDX_E_NAME + 4);
	t.owner = owner;
	t.first_child = le32_get(p + IDX_E_FIRST_CHILD);
	t.nchildren = le32_get(p + IDX_E_NCHILDREN);
	t.nlink = le32_get(p + IDX_E_NLINK);
	t.target = le32_get(p + IDX_E_TARGET);
	t.flags = le32_get(p + IDX_E_FLAGS);
	t.link_len = le32_get(p + IDX_E_LINK + 4);
	t.link_off = t.link_len ? le32_get(p + IDX_E_LINK) : 0;
	t.nxattrs = le32_get(p + IDX_E_XATTRS + 4);
	t.xattr_first = t.nxattrs ? le32_get(p + IDX_E_XATTRS) : 0;
	t.nsparse = le32_get(p + IDX_E_SPARSE + 4);
	t.sparse_first = t.nsparse ? le32_get(p + IDX_E_SPARSE) : 0;
	t.rdev = le64_get(p + IDX_E_RDEV);
	if ((uint64_t)t.xattr_first + t.nxattrs > x->nxattrs ||
	    (uint64_t)t.sparse_first + t.nsparse > x->nsparse)
		return damaged(x, "attribute range", i, e);
	if (put_family(x, i, le32_get(p + IDX_E_PARENT), &t, e) < 0)
		return -1;
	if (put_size_time(x, c, &t, p) < 0)
		return no_memory(x, e);
	if (fits_cent(&t)) {
		c->size_mode |= (uint64_t)t.mode << CENT_SIZE_BITS;
		c->name_len = (uint16_t)t.name_len;
		c->owner_ext = (uint16_t)(t.owner << 1);
		return 0;
	}
	c->name_len = 0;
	c->owner_ext = 1;
	if (!(v = grow(x->ext, &x->capext, x->next, sizeof(*v))))
		return no_memory(x, e);
	x->ext = v;
	x->ext[x->next++] = t;
	return 0;
}

static const struct cext *ext_of(const struct idx *x, uint32_t i)
{
	uint32_t lo = 0, hi = x->next;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (x->ext[mid].id <= i)
			lo = mid;
		else
			hi = mid;
	}
	return &x->ext[lo];	/* there: entries with ext set have a record */
}

static uint32_t mode_of(const struct idx *x, uint32_t i)
{
	return cent_ext(&x->ce[i]) ? ext_of(x, i)->mode : cent_mode(&x->ce[i]);
}

static int name_cmp(const struct idx *x, uint32_t i, const char *name, size_t len);

/*
 * Whether a file's bytes, as its entry places them, run past its archive's tar
 * stream (a native archive's tar_size; else past 2^64, wrapping around), or
 * its sparse regions leave the file, overlap or go backwards: a read would
 * return other bytes than the file's.
 */
static bool data_outside(const struct idx *x, const struct idx_entry *d)
{
	uint64_t stored = d->size, end = 0, bound = x->tar_size ? x->tar_size : UINT64_MAX;

	if (d->flags & IDX_F_SPARSE) {
		stored = 0;
		for (uint32_t k = 0; k < d->nsparse; k++) {
			struct idx_sparse s;
			idx_sparse(x, d, k, &s);
			if (s.off < end || s.len > d->size || s.off > d->size - s.len ||
			    s.len > bound - stored)
				return true;
			end = s.off + s.len;
			stored += s.len;
		}
	}
	return stored > bound || d->data_off > bound - stored;
}

/*
 * What the stored form guaranteed and the compact one relies on, for what
 * put_family() could not check as it went: a target may come later; the
 * root's name is empty, every other name is one path component and sorts
 * after its previous sibling's, as idx_lookup()'s binary search needs.
 */
static int check_entry(const struct idx *x, uint32_t i, struct err *e)
{
	struct idx_entry d;

	idx_get(x, i, &d);
	if (d.target >= x->n || (d.target != i && S_ISDIR(mode_of(x, d.target))))
		return damaged(x, "hard link target", i, e);
	if (d.target == i && S_ISREG(d.mode) && data_outside(x, &d))
		return damaged(x, "file data outside the archive", i, e);
	if (i == IDX_ROOT)
		return d.name_len ? damaged(x, "root with a name", i, e) : 0;
	/* empty, "." and ".." are the prefixes of ".." */
	if ((d.name_len <= 2 && memcmp(d.name, "..", d.name_len) == 0) ||
	    memchr(d.name, '/', d.name_len) || memchr(d.name, '\0', d.name_len))
		return damaged(x, "name that is empty, '.' or '..', or holds '/' or NUL", i, e);
	if (i - 1 != IDX_ROOT && parent_of(x, i - 1) == d.parent &&
	    name_cmp(x, i - 1, d.name, d.name_len) >= 0)
		return damaged(x, "names out of order, or twice in one directory", i, e);
	return 0;
}

#define CENT_BATCH 64u	/* stored entries read at a time */

/* The body could not be read up to entry i: the decoder says why, else it is short. */
static int unreadable(const struct idx *x, const struct bsrc *s, uint32_t i, struct err *e)
{
	if (s->why)
		return err_set(e, EIO, "'%s' is damaged: its index does not decompress (%s); run "
				       "'snapkeep verify' on it", x->name, s->why);
	return damaged(x, "ends early", i, e);
}

/* Read a body of len bytes (docs/FORMAT.md, "Body") from s into x, checking all of it. */
static int load_body(struct idx *x, struct bsrc *s, uint64_t len, struct err *e)
{
	unsigned char hdr[IDX_BODY_HDR_SIZE], batch[CENT_BATCH * IDX_E_SIZEOF];
	uint64_t need;

	s->left = len;
	if (len < IDX_BODY_HDR_SIZE)
		return damaged(x, "too short", 0, e);
	if (bsrc_read(s, hdr, sizeof(hdr)) < 0)
		return unreadable(x, s, 0, e);
	x->n = le32_get(hdr + IDX_BODY_ENTRIES);
	x->members = le32_get(hdr + IDX_BODY_MEMBERS);
	x->nxattrs = le32_get(hdr + IDX_BODY_XATTRS);
	x->nsparse = le32_get(hdr + IDX_BODY_SPARSE);
	x->nstrings = le32_get(hdr + IDX_BODY_STRINGS);
	need = IDX_BODY_HDR_SIZE + (uint64_t)x->n * IDX_E_SIZEOF +
	       (uint64_t)x->nxattrs * IDX_X_SIZEOF + (uint64_t)x->nsparse * IDX_S_SIZEOF + x->nstrings;
	if (x->n == 0 || need != len)
		return damaged(x, "sizes do not add up", 0, e);
	x->covered = 1;		/* the root is in no range */
	/* a whole body writes each of them whole: their pages are made in one call */
	if (!(x->ce = fill_alloc((size_t)x->n * sizeof(*x->ce), s->fill)) ||
	    (!(x->z && x->no_seq) &&
	     !(x->seq = fill_alloc((size_t)x->n * sizeof(*x->seq), s->fill))) ||
	    !(x->xattrs = fill_alloc((size_t)x->nxattrs * IDX_X_SIZEOF + 1, s->fill)) ||
	    !(x->sparse = fill_alloc((size_t)x->nsparse * IDX_S_SIZEOF + 1, s->fill)) ||
	    !(x->strings = fill_alloc((size_t)x->nstrings + 1, s->fill)))
		return no_memory(x, e);
	for (uint32_t i = 0; i < x->n; i += CENT_BATCH) {
		uint32_t k = x->n - i < CENT_BATCH ? x->n - i : CENT_BATCH;
		if (bsrc_read(s, batch, (size_t)k * IDX_E_SIZEOF) < 0)
			return unreadable(x, s, i, e);
		for (uint32_t j = 0; j < k; j++)
			if (put_cent(x, i + j, batch + (size_t)j * IDX_E_SIZEOF, e) < 0)
				return -1;
	}
	if (bsrc_read(s, x->xattrs, (size_t)x->nxattrs * IDX_X_SIZEOF) < 0 ||
	    bsrc_read(s, x->sparse, (size_t)x->nsparse * IDX_S_SIZEOF) < 0 ||
	    bsrc_read(s, x->strings, x->nstrings) < 0 || !bsrc_done(s))
		return unreadable(x, s, x->n, e);
	for (uint32_t i = 0; i < x->nxattrs; i++) {
		const unsigned char *p = x->xattrs + (size_t)i * IDX_X_SIZEOF;
		if (!str_ok(x, p + IDX_X_NAME) || !str_ok(x, p + IDX_X_VALUE))
			return damaged(x, "xattr string range", i, e);
	}
	if (put_hints(x, e) < 0)
		return -1;
	for (uint32_t i = 0; i < x->n; i++)
		if (check_entry(x, i, e) < 0)
			return -1;
	/* the tables were grown by doubling: give back what the archive did not need */
	if (x->next && x->next < x->capext) {
		struct cext *v = realloc(x->ext, (size_t)x->next * sizeof(*v));
		x->ext = v ? v : x->ext;
	}
	if (x->nwide && x->nwide < x->capwide) {
		struct cwide *v = realloc(x->wide, (size_t)x->nwide * sizeof(*v));
		x->wide = v ? v : x->wide;
	}
	if (x->nranges && x->nranges < x->capranges) {
		struct crange *v = realloc(x->ranges, (size_t)x->nranges * sizeof(*v));
		x->ranges = v ? v : x->ranges;
	}
	free(x->ohash);
	x->ohash = NULL;
	return 0;
}

static struct idx *idx_alloc(const char *name)
{
	struct idx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->fd = -1;
	x->sound_end = UINT64_MAX;
	x->serial = atomic_fetch_add(&idx_serials, 1) + 1;
	if (!(x->name = strdup(name))) {
		free(x);
		return NULL;
	}
	return x;
}

static int load_blob(struct idx *x, const void *blob, size_t len, struct err *e)
{
	struct bsrc s = { .mem = blob, .fill = true };	/* the body is all here */

	return load_body(x, &s, len, e);
}

/* foreign.h's file(): file k of x's files in archive order, as a member to read. */
static void foreign_file(void *ctx, uint32_t k, struct frn_member *out)
{
	const struct idx *x = ctx;
	struct idx_entry t;

	idx_get(x, x->files[k], &t);
	*out = (struct frn_member){ t.seq, t.size, t.data_off, !(t.flags & IDX_F_SPARSE) };
}

static int by_seq(const void *a, const void *b)
{
	uint64_t p = *(const uint64_t *)a, q = *(const uint64_t *)b;

	return p < q ? -1 : p > q;
}

/* List a foreign archive's files with data (not the other names of hard links) by seq. */
static int list_files(struct idx *x, struct err *e)
{
	uint64_t *v = malloc((size_t)(x->n ? x->n : 1) * sizeof(*v));
	uint32_t n = 0;

	if (!v)
		return no_memory(x, e);
	for (uint32_t i = 0; i < x->n; i++) {
		struct idx_entry t;
		idx_get(x, i, &t);
		if (S_ISREG(t.mode) && t.target == i && t.size && t.seq != IDX_NONE)
			v[n++] = (uint64_t)t.seq << 32 | i;
	}
	qsort(v, n, sizeof(*v), by_seq);
	if (!(x->files = malloc((size_t)(n ? n : 1) * sizeof(*x->files)))) {
		free(v);
		return no_memory(x, e);
	}
	for (uint32_t k = 0; k < n; k++)
		x->files[k] = (uint32_t)v[k];
	x->nfiles = n;
	free(v);
	return 0;
}

int idx_open_blob(const void *blob, size_t len, const char *name, struct idx **out,
		  struct err *e)
{
	struct idx *x = idx_alloc(name);

	if (!x)
		return err_set(e, ENOMEM, "out of memory");
	if (load_blob(x, blob, len, e) < 0) {
		idx_close(x);
		return -1;
	}
	*out = x;
	return 0;
}

/* Free the tables a body filled, whole or in part, and zero their counts. */
static void drop_tables(struct idx *x)
{
	fill_free(x->ce);
	fill_free(x->seq);
	free(x->ext);
	free(x->ranges);
	free(x->hint);
	free(x->wide);
	free(x->owners);
	free(x->ohash);
	fill_free(x->xattrs);
	fill_free(x->sparse);
	fill_free(x->strings);
	x->ce = NULL;
	x->seq = x->hint = x->ohash = NULL;
	x->ext = NULL;
	x->ranges = NULL;
	x->wide = NULL;
	x->owners = NULL;
	x->xattrs = x->sparse = NULL;
	x->strings = NULL;
	x->n = x->nxattrs = x->nsparse = x->members = x->nstrings = 0;
	x->next = x->capext = x->nranges = x->capranges = x->covered = x->cur = 0;
	x->nwide = x->capwide = x->nowners = x->capowners = x->ohcap = 0;
	x->loading = false;
}

void idx_close(struct idx *x)
{
	if (!x)
		return;
	zseek_close(x->z);
	frn_free(x->frn);
	free(x->files);
	if (x->fd >= 0)
		close(x->fd);
	drop_tables(x);
	for (int k = 0; k < IDX_REFUSALS; k++)
		free(x->refused_first[k]);
	free(x->damage);
	free(x->name);
	free(x);
}

/*
 * Real index frames compress about 8 to 1. A body declared bigger than this
 * many times its frame is not trusted until it is decoded: its tables' pages
 * come as they are written, so a small frame that lies about its size commits
 * no memory for it.
 */
#define IDX_FILL_RATIO 32

/*
 * The index decoder's context and buffers, made at once for a plausible body
 * up to this size: an index's window is 128 KiB (idx_pack_frame()).
 */
#define IDX_FILL_DECODER (1u << 20)

static void *fill_zalloc(void *opaque, size_t n)
{
	const struct bsrc *s = opaque;

	return fill_alloc(n, s->fill && n <= IDX_FILL_DECODER);
}

static void fill_zfree(void *opaque, void *p)
{
	(void)opaque;
	fill_free(p);
}

/* Decompress the index frame's body into x, as it streams. */
static int unpack_frame(struct idx *x, const unsigned char *p, size_t len, struct err *e)
{
	struct bsrc s = { 0 };
	uint64_t body;
	int rc;

	if (len < IDX_HDR_SIZE || memcmp(p + IDX_HDR_MAGIC, IDX_MAGIC, 8) != 0)
		return err_set(e, EIO, "'%s' is damaged: no snapfs index before the seek table; "
				       "run 'snapkeep verify' on it", x->name);
	x->version = le32_get(p + IDX_HDR_VERSION);
	if (x->version < IDX_VERSION_OLDEST || x->version > IDX_VERSION ||
	    le32_get(p + IDX_HDR_FLAGS) != 0)
		return err_set(e, ENOTSUP, "'%s' has index version %u; this snapfs reads versions "
					   "%u to %u: upgrade snapfs", x->name,
			       le32_get(p + IDX_HDR_VERSION), IDX_VERSION_OLDEST, IDX_VERSION);
	x->marked = true;
	body = le64_get(p + IDX_HDR_BODY_SIZE);
	x->tar_size = le64_get(p + IDX_HDR_TAR_SIZE);
	/*
	 * Refuse absurd sizes: a body decompresses to at most 1024 times its frame
	 * (zeroed tables compress about that well), plus 64 KiB.
	 */
	if (body > (uint64_t)(len - IDX_HDR_SIZE) * 1024 + 65536 || body > SIZE_MAX / 2 ||
	    ZSTD_getFrameContentSize(p + IDX_HDR_SIZE, len - IDX_HDR_SIZE) != body)
		return err_set(e, EIO, "'%s' is damaged: index size is wrong", x->name);
	x->loading = true;
	s.fill = body <= (uint64_t)(len - IDX_HDR_SIZE) * IDX_FILL_RATIO + 65536;
	if (!(s.ds = ZSTD_createDStream_advanced((ZSTD_customMem){ fill_zalloc, fill_zfree, &s })))
		return no_memory(x, e);
	s.in = (ZSTD_inBuffer){ p + IDX_HDR_SIZE, len - IDX_HDR_SIZE, 0 };
	rc = load_body(x, &s, body, e);
	ZSTD_freeDStream(s.ds);
	return rc;
}

static int open_native(struct idx *x, uint64_t size, struct err *e)
{
	uint32_t n;
	void *frame = NULL;
	ssize_t len;
	int rc;

	if (zseek_open(x->fd, x->name, size, &x->z, e) < 0)
		return -1;
	n = zseek_nframes(x->z);
	if (n == 0)
		return err_set(e, EIO, "'%s' is damaged: no frames", x->name);
	/* EIO on a frame of another kind: idx_open_fd() scans such a file as a foreign one */
	len = zseek_read_skippable(x->z, n - 1, IDX_FRAME_KIND, &frame, e);
	if (len < 0)
		return -1;
	rc = unpack_frame(x, frame, (size_t)len, e);
	fill_free(frame);
	if (rc == 0 && x->tar_size != zseek_size(x->z))
		rc = err_set(e, EIO, "'%s' is damaged: index and seek table disagree on the size",
			     x->name);
	return rc;
}

static bool has_seek_footer(int fd, uint64_t size)
{
	unsigned char foot[4];

	return size >= ZSEEK_FOOTER_SIZE + 8 && fd_pread_all(fd, foot, 4, size - 4) == 0 &&
	       le32_get(foot) == ZSEEK_FOOTER_MAGIC;
}

/* *e = *src, where the caller wants it (e may be NULL). */
static void put_err(struct err *e, const struct err *src)
{
	if (e)
		*e = *src;
}

/*
 * Scan a foreign archive once with libarchive and build its index in memory.
 * A gzip, xz, bzip2, zstd or lz4 file is decompressed by decode.c, which
 * checks what libarchive would not (decode.h); a scan that stops early still
 * decodes to the end, so that every check is made before a byte is read.
 */
static int scan_foreign(struct idx *x, uint64_t size, int64_t mtime, bool salvage, struct err *e)
{
	struct idx_builder *b = idx_builder_new(mtime, e);	/* loads libarchive */
	struct archive *a = NULL;
	struct archive_entry *entry;
	struct dec *d = NULL;
	void *blob = NULL;
	size_t len = 0;
	int r, rc = -1;

	if (!b)
		return -1;
	idx_builder_foreign(b);
	if (!(a = AR(archive_read_new)())) {
		err_set(e, ENOMEM, "out of memory");
		goto done;
	}
	AR(archive_read_support_filter_all)(a);
	AR(archive_read_support_format_all)(a);
	if (lseek(x->fd, 0, SEEK_SET) < 0 || dec_open_stream(x->fd, x->name, size, NULL, &d, e) < 0)
		goto done;
	if ((d ? dec_attach(d, a) : AR(archive_read_open_fd)(a, x->fd, 65536)) != ARCHIVE_OK) {
		if (d && dec_error(d))
			put_err(e, dec_error(d));	/* damaged in its first block */
		else
			err_set(e, ENOTSUP, "'%s' is not an archive snapfs reads: %s", x->name,
				AR(archive_error_string)(a));
		goto done;
	}
	locale_t names = arlib_names_locale(x->fd), before;
	while ((before = arlib_names_enter(names), r = AR(archive_read_next_header)(a, &entry),
		arlib_names_leave(before), r == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		struct err skip;
		uint64_t at = (uint64_t)AR(archive_filter_bytes)(a, 0);
		/* libarchive takes any text for an mtree manifest, which holds no file's bytes */
		if ((AR(archive_format)(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_MTREE) {
			err_set(e, ENOTSUP, "'%s' is not an archive snapfs reads: it reads as an mtree "
					    "manifest, which holds no file data", x->name);
			goto done;
		}
		if (idx_builder_add(b, entry, at, &skip) < 0 && skip.code != EINVAL) {
			put_err(e, &skip);
			goto done;
		}
		AR(archive_read_data_skip)(a);
		/* a tar member's data runs to the next header: less than its size is not plain */
		if ((AR(archive_format)(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR &&
		    idx_builder_stored(b, (uint64_t)AR(archive_filter_bytes)(a, 0) - at, e) < 0)
			goto done;
	}
	struct err checked;
	const struct err *bad = NULL;
	if (d && dec_finish(d, &checked) < 0) {
		if (checked.code != EIO) {
			put_err(e, &checked);	/* a read error or no memory, not damage */
			goto done;
		}
		/*
		 * Damage past the whole archive's end (bytes after the last member
		 * or frame, which gzip -d and tar ignore), with every byte the
		 * archive used vouched for: no damage to its members.
		 */
		if (r != ARCHIVE_EOF ||
		    dec_sound(d) < (uint64_t)AR(archive_filter_bytes)(a, 0))
			bad = dec_error(d);
	}
	if (r != ARCHIVE_EOF || bad) {
		const char *why = AR(archive_error_string)(a);
		struct err lost = { 0 };
		if (bad)
			err_set(&lost, EIO, "%s; run 'snapkeep verify' on it, or restore it from a copy "
					    "of the store", bad->msg);
		else
			err_set(&lost, EIO, "'%s' is damaged at byte %lld%s: %s; run 'snapkeep verify' "
					    "on it, or restore it from a copy of the store", x->name,
				(long long)AR(archive_filter_bytes)(a, -1),
				d ? " of its decompressed stream" : "", why ? why : "it ends early");
		if (!idx_builder_members(b)) {
			if (bad)
				put_err(e, &lost);
			else
				err_set(e, ENOTSUP, "'%s' is not an archive snapfs reads: %s", x->name,
					why ? why : "no member could be read");
			goto done;
		}
		if (!salvage) {
			put_err(e, &lost);
			goto done;
		}
		/* the members before the damage stay readable, as far as the checks vouch */
		if (!(x->damage = strdup(lost.msg))) {
			err_set(e, ENOMEM, "out of memory");
			goto done;
		}
		if (bad)
			x->sound_end = dec_sound(d);
		else if (!d && AR(archive_filter_count)(a) > 1)
			/*
			 * libarchive's own decoders (lzip, compress ...) hand out data
			 * before the check of its block or frame, and call a failed check
			 * a truncation: nothing is vouched for.
			 */
			x->sound_end = 0;
	}
	/*
	 * A tar (of any flavour) in a gzip file, or in no filter: each member that
	 * is not sparse lies whole at its data offset in the decoded stream, so
	 * foreign.c may read it there through gzip checkpoints, or in the file.
	 */
	x->gzip_tar = d && dec_is_gzip(d) && AR(archive_filter_count)(a) == 1 &&
		      (AR(archive_format)(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR;
	x->bare_tar = !d && AR(archive_filter_count)(a) == 1 &&
		      AR(archive_filter_code)(a, 0) == ARCHIVE_FILTER_NONE &&
		      (AR(archive_format)(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR;
	if (idx_builder_finish(b, &blob, &len, e) < 0)
		goto done;
	x->loading = true;
	rc = load_blob(x, blob, len, e);
	if (rc == 0) {
		const char *first;
		for (int k = 0; k < IDX_REFUSALS; k++) {
			x->refused[k] = idx_builder_refused(b, k, &first);
			x->refused_first[k] = first ? strdup(first) : NULL;
		}
	}
done:
	free(blob);
	if (a)
		AR(archive_read_free)(a);
	dec_close(d);
	idx_builder_free(b);
	return rc;
}

int idx_open(const char *path, struct idx **out, struct err *e)
{
	return idx_open_with(path, NULL, out, e);
}

int idx_open_with(const char *path, const struct idx_opts *o, struct idx **out, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(e, errno, "cannot open '%s': %s", path, strerror(errno));
	return idx_open_fd(fd, path, o, out, e);
}

int idx_open_fd(int fd, const char *name, const struct idx_opts *o, struct idx **out,
		struct err *e)
{
	struct idx *x = idx_alloc(name);
	struct stat st;
	int rc;

	if (!x) {
		close(fd);
		return err_set(e, ENOMEM, "out of memory");
	}
	x->fd = fd;
	x->no_seq = o && o->no_seq;
	if (fstat(x->fd, &st) < 0) {
		rc = err_set(e, errno, "cannot open '%s': %s", name, strerror(errno));
	} else if (has_seek_footer(x->fd, (uint64_t)st.st_size)) {
		rc = open_native(x, (uint64_t)st.st_size, e);
		if (rc < 0 && e && e->code == EIO && x->z && (!x->loading || (o && o->salvage))) {
			/*
			 * A seekable zstd file from another tool, or a snapfs index whose
			 * header is damaged: either way the tar stream is whole, so scan it.
			 * So too, salvaging, past a damaged body: the frames of the tar
			 * stream carry checksums of their own.
			 */
			char why[sizeof(e->msg)];
			drop_tables(x);
			zseek_close(x->z);
			x->z = NULL;
			x->tar_size = 0;	/* a damaged header's, if it was read */
			x->version = 0;
			snprintf(why, sizeof(why), "%s", e->msg);
			rc = scan_foreign(x, (uint64_t)st.st_size, st.st_mtime, o && o->salvage, e);
			if (rc == 0 && x->marked && !x->damage &&
			    asprintf(&x->damage, "%s; its files are read by scanning the tar stream "
						 "instead: run 'snapkeep verify' on it", why) < 0) {
				x->damage = NULL;
				rc = err_set(e, ENOMEM, "out of memory");
			}
		}
	} else {
		rc = scan_foreign(x, (uint64_t)st.st_size, st.st_mtime, o && o->salvage, e);
	}
	if (rc == 0 && !x->z) {
		struct frn_opts fo = { o ? o->spill_dir : NULL, o ? o->spill_max : 0, x->gzip_tar,
				       x->bare_tar, 0, foreign_file, x };
		rc = list_files(x, e);
		fo.nfiles = x->nfiles;
		if (rc == 0)
			rc = frn_new(x->fd, name, &fo, &x->frn, e);
	}
	if (rc < 0) {
		idx_close(x);
		return -1;
	}
	*out = x;
	return 0;
}

int idx_fd(const struct idx *x)
{
	return x->fd;
}

bool idx_is_native(const struct idx *x)
{
	return x->z != NULL;
}

const char *idx_name(const struct idx *x)
{
	return x->name;
}

uint32_t idx_count(const struct idx *x)
{
	return x->n;
}

uint32_t idx_version(const struct idx *x)
{
	return x->version;
}

void idx_builder_compat(struct idx_builder *b, uint32_t version)
{
	b->version = version;
}

void idx_builder_foreign(struct idx_builder *b)
{
	b->foreign = true;
}

const char *idx_damage(const struct idx *x)
{
	return x->damage;
}

uint32_t idx_refused(const struct idx *x, enum idx_refusal why, const char **first)
{
	*first = x->refused_first[why] ? x->refused_first[why] : "";
	return x->refused[why];
}

uint32_t idx_members(const struct idx *x)
{
	return x->members;
}

uint64_t idx_tar_size(const struct idx *x)
{
	return x->tar_size;
}

void idx_get(const struct idx *x, uint32_t i, struct idx_entry *o)
{
	const struct cent *c = &x->ce[i];
	const struct cowner *w;

	o->data_off = c->data_off;
	o->size = cent_size(c);
	o->mtime_sec = cent_sec(c);
	o->mtime_nsec = cent_nsec(c);
	o->parent = parent_of(x, i);
	o->seq = x->seq ? x->seq[i] : IDX_NONE;
	o->name = x->strings + c->name_off;
	if (!cent_ext(c)) {
		o->mode = cent_mode(c);
		o->name_len = c->name_len;
		w = &x->owners[cent_owner(c)];
		o->first_child = o->nchildren = 0;
		o->nlink = 1;
		o->target = i;
		o->flags = 0;
		o->link = x->strings;
		o->link_len = 0;
		o->rdev = 0;
		o->xattr_first = o->nxattrs = o->sparse_first = o->nsparse = 0;
	} else {
		const struct cext *t = ext_of(x, i);
		if (t->wide) {
			const struct cwide *v = &x->wide[t->wide - 1];
			o->size = v->size;
			o->mtime_sec = v->mtime_sec;
			o->mtime_nsec = v->nsec;
		}
		o->mode = t->mode;
		o->name_len = t->name_len;
		w = &x->owners[t->owner];
		o->first_child = t->first_child;
		o->nchildren = t->nchildren;
		o->nlink = t->nlink;
		o->target = t->target;
		o->flags = t->flags;
		o->link = x->strings + t->link_off;
		o->link_len = t->link_len;
		o->rdev = t->rdev;
		o->xattr_first = t->xattr_first;
		o->nxattrs = t->nxattrs;
		o->sparse_first = t->sparse_first;
		o->nsparse = t->nsparse;
	}
	o->uid = w->uid;
	o->gid = w->gid;
	o->uname = x->strings + w->uname_off;
	o->uname_len = w->uname_len;
	o->gname = x->strings + w->gname_off;
	o->gname_len = w->gname_len;
}

static const char *name_of(const struct idx *x, uint32_t i, uint32_t *len)
{
	const struct cent *c = &x->ce[i];

	*len = cent_ext(c) ? ext_of(x, i)->name_len : c->name_len;
	return x->strings + c->name_off;
}

static int name_cmp(const struct idx *x, uint32_t i, const char *name, size_t len)
{
	uint32_t nlen;
	const char *s = name_of(x, i, &nlen);
	int c = memcmp(s, name, nlen < len ? nlen : len);

	if (c)
		return c;
	return nlen < len ? -1 : nlen > len;
}

uint32_t idx_lookup(const struct idx *x, uint32_t dir, const char *name, size_t len)
{
	const struct cext *t;
	uint32_t lo, hi;

	if (!cent_ext(&x->ce[dir]))
		return IDX_NONE;	/* no children */
	t = ext_of(x, dir);
	lo = t->first_child;
	hi = lo + t->nchildren;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(x, mid, name, len);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return IDX_NONE;
}

uint32_t idx_lookup_path(const struct idx *x, const char *path)
{
	uint32_t i = IDX_ROOT;

	while (*path && i != IDX_NONE) {
		const char *end = strchrnul(path, '/');
		if (end > path && !(end - path == 1 && *path == '.'))
			i = idx_lookup(x, i, path, (size_t)(end - path));
		path = *end ? end + 1 : end;
	}
	return i;
}

static const char *str_at(const struct idx *x, const unsigned char *p, uint32_t *len)
{
	*len = le32_get(p + 4);
	return x->strings + le32_get(p);
}

void idx_xattr(const struct idx *x, const struct idx_entry *ent, uint32_t k,
	       struct idx_xattr *out)
{
	const unsigned char *p = x->xattrs + (size_t)(ent->xattr_first + k) * IDX_X_SIZEOF;

	out->name = str_at(x, p + IDX_X_NAME, &out->name_len);
	out->value = str_at(x, p + IDX_X_VALUE, &out->value_len);
}

void idx_sparse(const struct idx *x, const struct idx_entry *ent, uint32_t k,
		struct idx_sparse *out)
{
	const unsigned char *p = x->sparse + (size_t)(ent->sparse_first + k) * IDX_S_SIZEOF;

	out->off = le64_get(p + IDX_S_OFF);
	out->len = le64_get(p + IDX_S_LEN);
}

uint64_t idx_stored_bytes(const struct idx *x, const struct idx_entry *ent)
{
	uint64_t sum = 0;

	if (!(ent->flags & IDX_F_SPARSE))
		return ent->size;
	for (uint32_t k = 0; k < ent->nsparse; k++) {
		struct idx_sparse sp;
		idx_sparse(x, ent, k, &sp);
		sum += sp.len;	/* no wrap: check_entry() bounded the sum */
	}
	return sum;
}

int idx_path(const struct idx *x, uint32_t i, char *buf, size_t size, struct err *e)
{
	size_t pos = size;

	if (size == 0)
		return err_set(e, ENAMETOOLONG, "no room for a path");
	buf[--pos] = '\0';
	for (uint32_t parent; i != IDX_ROOT; i = parent) {
		uint32_t len;
		const char *name = name_of(x, i, &len);
		if (len + 1 > pos)
			return err_set(e, ENAMETOOLONG, "a path in '%s' is too long", x->name);
		pos -= len;
		memcpy(buf + pos, name, len);
		parent = parent_of(x, i);
		if (parent != IDX_ROOT)
			buf[--pos] = '/';
	}
	memmove(buf, buf + pos, size - pos);
	return 0;
}

/*
 * Data. A reader keeps the last frame it decoded, so sequential reads of
 * neighbouring bytes decode each frame once.
 */
struct idx_reader {
	const struct idx_frames *src;	/* NULL: decode here, keeping the last frame */
	struct zseek_dctx *dctx;
	unsigned char *frame;
	size_t cap;
	uint64_t serial;	/* of the index whose frame is cached; 0 = none */
	uint32_t fno;
	uint64_t fdoff;
	uint32_t flen;
};

struct idx_reader *idx_reader_new(void)
{
	/* the decompression context comes on first use: with a frame source it never does */
	return calloc(1, sizeof(struct idx_reader));
}

void idx_reader_set_frames(struct idx_reader *r, const struct idx_frames *src)
{
	r->src = src;
}

uint32_t idx_decoder_starts(const struct idx *x)
{
	return x->frn ? frn_starts(x->frn) : 0;
}

uint64_t idx_decoder_inflated(const struct idx *x)
{
	return x->frn ? frn_inflated(x->frn) : 0;
}

uint64_t idx_serial(const struct idx *x)
{
	return x->serial;
}

uint32_t idx_frame_size(const struct idx *x, uint32_t f)
{
	struct zseek_frame fr;

	zseek_frame(x->z, f, &fr);
	return fr.dsize;
}

ssize_t idx_frame_decode(const struct idx *x, uint32_t f, struct zseek_dctx *d, void *dst,
			 struct err *e)
{
	return zseek_decode(x->z, f, d, dst, e);
}

void idx_frame_prefetch(const struct idx *x, uint32_t f)
{
	zseek_prefetch(x->z, f);
}

void idx_reader_free(struct idx_reader *r)
{
	if (!r)
		return;
	zseek_dctx_free(r->dctx);
	free(r->frame);
	free(r);
}

/* Copy len bytes of the tar stream from doff, through the reader's frame source. */
static int read_via_source(struct idx *x, struct idx_reader *r, unsigned char *buf, size_t len,
			   uint64_t doff, struct err *e)
{
	while (len > 0) {
		uint32_t f = zseek_find(x->z, doff), flen;
		struct zseek_frame fr;
		void *pin;
		const unsigned char *data;

		if (f == UINT32_MAX)
			return err_set(e, EIO, "'%s' is damaged: data of an entry lies past "
					       "the end of the archive", x->name);
		zseek_frame(x->z, f, &fr);
		if (!(data = r->src->get(r->src->ctx, x, f, &flen, &pin, e)))
			return -1;
		size_t at = (size_t)(doff - fr.doff), n = flen - at;
		if (n > len)
			n = len;
		memcpy(buf, data + at, n);
		r->src->put(r->src->ctx, pin);
		buf += n;
		len -= n;
		doff += n;
	}
	return 0;
}

/* Copy len bytes of the tar stream from doff. */
static int read_stream(struct idx *x, struct idx_reader *r, unsigned char *buf, size_t len,
		       uint64_t doff, struct err *e)
{
	if (r->src)
		return read_via_source(x, r, buf, len, doff, e);
	while (len > 0) {
		if (r->serial != x->serial || doff < r->fdoff || doff >= r->fdoff + r->flen) {
			uint32_t f = zseek_find(x->z, doff);
			struct zseek_frame fr;
			if (f == UINT32_MAX)
				return err_set(e, EIO, "'%s' is damaged: data of an entry lies past "
						       "the end of the archive", x->name);
			zseek_frame(x->z, f, &fr);
			if (fr.dsize > r->cap) {
				unsigned char *b = realloc(r->frame, fr.dsize);
				if (!b)
					return err_set(e, ENOMEM, "out of memory for a frame");
				r->frame = b;
				r->cap = fr.dsize;
			}
			r->serial = 0;
			if (!r->dctx && !(r->dctx = zseek_dctx_new()))
				return err_set(e, ENOMEM, "out of memory for a decoder");
			if (zseek_decode(x->z, f, r->dctx, r->frame, e) < 0)
				return -1;
			r->serial = x->serial;
			r->fno = f;
			r->fdoff = fr.doff;
			r->flen = fr.dsize;
		}
		size_t at = (size_t)(doff - r->fdoff), n = r->flen - at;
		if (n > len)
			n = len;
		memcpy(buf, r->frame + at, n);
		buf += n;
		len -= n;
		doff += n;
	}
	return 0;
}

bool idx_frame_at(const struct idx *x, uint64_t doff, uint64_t *fdoff, uint32_t *flen)
{
	struct zseek_frame fr;
	uint32_t f;

	if (!x->z || (f = zseek_find(x->z, doff)) == UINT32_MAX)
		return false;
	zseek_frame(x->z, f, &fr);
	*fdoff = fr.doff;
	*flen = fr.dsize;
	return true;
}

int idx_pread_pieces(struct idx *x, uint32_t i, size_t len, uint64_t off, struct idx_reader *r,
		     const void **base, size_t *size, void **pin, int max, struct err *e)
{
	struct idx_entry t;
	uint64_t doff;
	int n = 0;

	idx_get(x, i, &t);
	if (t.target != i)
		idx_get(x, t.target, &t);
	if (!r->src || !x->z || !S_ISREG(t.mode) || (t.flags & IDX_F_SPARSE))
		return err_set(e, ENOTSUP, "'%s': not a plain file of a native archive", x->name);
	if (off >= t.size)
		return 0;
	if (len > t.size - off)
		len = (size_t)(t.size - off);
	for (doff = t.data_off + off; len > 0; n++) {
		uint32_t f = zseek_find(x->z, doff), flen;
		struct zseek_frame fr;
		const unsigned char *data;

		if (n == max) {
			idx_unpin(r, pin, n);
			return err_set(e, ENOTSUP, "'%s': a read over more than %d frames", x->name,
				       max);
		}
		if (f == UINT32_MAX) {
			idx_unpin(r, pin, n);
			return err_set(e, EIO, "'%s' is damaged: data of an entry lies past the end "
					       "of the archive", x->name);
		}
		zseek_frame(x->z, f, &fr);
		if (!(data = r->src->get(r->src->ctx, x, f, &flen, &pin[n], e))) {
			idx_unpin(r, pin, n);
			return -1;
		}
		size_t at = (size_t)(doff - fr.doff), k = flen - at;
		if (k > len)
			k = len;
		base[n] = data + at;
		size[n] = k;
		len -= k;
		doff += k;
	}
	return n;
}

void idx_unpin(struct idx_reader *r, void **pin, int n)
{
	for (int k = 0; k < n; k++)
		r->src->put(r->src->ctx, pin[k]);
}

/* Map file bytes [off, off+len) of a sparse entry onto stored regions; holes are zeros. */
static int read_sparse(struct idx *x, const struct idx_entry *t, struct idx_reader *r,
		       unsigned char *buf, size_t len, uint64_t off, struct err *e)
{
	uint64_t stored = 0;

	memset(buf, 0, len);
	for (uint32_t k = 0; k < t->nsparse && len > 0; k++) {
		struct idx_sparse s;
		idx_sparse(x, t, k, &s);
		if (s.off + s.len > off && s.off < off + len) {
			uint64_t from = s.off > off ? s.off : off;
			uint64_t to = s.off + s.len < off + len ? s.off + s.len : off + len;
			if (read_stream(x, r, buf + (from - off), (size_t)(to - from),
					t->data_off + stored + (from - s.off), e) < 0)
				return -1;
		}
		stored += s.len;
	}
	return 0;
}

/*
 * Whether the checks of a damaged foreign archive vouched for file t's data (an
 * undamaged one's always are). A sparse member's stored bytes follow its map
 * (GNU 1.0: up to 21 digits a number, in 512-byte blocks).
 */
static bool vouched(const struct idx *x, const struct idx_entry *t)
{
	uint64_t span;

	if (x->sound_end == UINT64_MAX)
		return true;
	span = t->flags & IDX_F_SPARSE
		       ? idx_stored_bytes(x, t) + ((uint64_t)t->nsparse * 2 + 1) * 21 + 1024
		       : t->size;
	return t->data_off <= x->sound_end && span <= x->sound_end - t->data_off;
}

ssize_t idx_pread(struct idx *x, uint32_t i, void *buf, size_t len, uint64_t off,
		  struct idx_reader *r, struct err *e)
{
	struct idx_entry t;

	idx_get(x, i, &t);
	if (t.target != i)
		idx_get(x, t.target, &t);
	if (!S_ISREG(t.mode))
		return err_set(e, EISDIR, "'%s': not a regular file", x->name);
	if (off >= t.size)
		return 0;
	if (len > t.size - off)
		len = (size_t)(t.size - off);
	if (!x->z && !x->frn)
		return err_set(e, ENOTSUP, "'%s': an index with no archive has no data", x->name);
	if (!x->z) {
		struct frn_member m = { t.seq, t.size, t.data_off, !(t.flags & IDX_F_SPARSE) };
		if (!vouched(x, &t))
			return err_set(e, EIO, "%s", x->damage ? x->damage : "damaged");
		return frn_pread(x->frn, &m, buf, len, off, e);
	}
	int rc = t.flags & IDX_F_SPARSE ? read_sparse(x, &t, r, buf, len, off, e)
					: read_stream(x, r, buf, len, t.data_off + off, e);
	if (rc < 0)
		return -1;
	return (ssize_t)len;
}

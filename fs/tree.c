#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "store.h"

#define STORE_BIT (1ull << 63)
#define LATEST_BIT (1ull << 62)
#define HASH_MASK (LATEST_BIT - 1)
#define AID_MAX 0x7FFFFFFFu
#define LATEST "latest"

/* An open index, shared by the snapshot and its readers. */
struct aref {
	struct idx *x;
	atomic_int refs;
};

/* Files up to this size are pushed to the kernel with their frame (tree_siblings). */
#define SIB_MAX_SIZE (256u << 10)

/* An archive in a store directory. */
struct snap {
	char *path;		/* the file */
	char *file;		/* its name */
	char *name;		/* the directory it appears as */
	uint32_t aid;
	int64_t time;
	uint64_t parent;	/* the store directory's inode */
	struct stat st;		/* the file's, when listed: a changed file is a new snapshot */
	atomic_int refs;	/* the aid table's, and each user's */
	atomic_bool gone;	/* no longer in the store (set under the tree's write lock) */
	pthread_mutex_t mu;	/* all below */
	bool removed;		/* decided to leave the aid table: never counted again */
	struct aref *ar;
	bool opening;		/* a thread opens the index, without mu: the others wait */
	pthread_cond_t opened;
	bool failed;
	bool foreign;		/* its index is a scan: costly to open again */
	uint64_t used;
	uint64_t krefs;		/* the kernel's lookup counts of its inodes, summed */
	uint64_t inner;		/* the part of krefs for entries inside (not its directory) */
	int keepfd;		/* the archive, kept open while inner > 0 once read */
	time_t reinval_at;	/* gone but known: when to invalidate its names again */
	int reinval_gap;	/* seconds, doubling (under the tree's write lock) */
	atomic_bool reported;	/* a damaged frame was logged */
	atomic_bool refusals;	/* its members left out were logged */
	/*
	 * The archive's own root entry, when it stored one (a take of "."): what
	 * its directory shows once its index was open. Before, the directory is
	 * shown from the file alone (snaproot_stat()), so the kernel is told to
	 * forget those attributes (root_inval, sent by tree_rescan()).
	 */
	struct stat root_st;
	atomic_bool root_known;	/* root_st holds; set once, with a release */
	atomic_bool root_learnt;	/* an index was open: root_known is final */
	atomic_bool root_xattrs;	/* the stored root has xattrs */
	atomic_bool root_inval;
};

enum kind { K_DIR, K_SNAP, K_LATEST };

struct child {
	char *name;
	enum kind kind;
	struct dir *dir;
	struct snap *snap;
	uint64_t serial;	/* its place in listings, kept while its name stays */
};

/* A store directory. */
struct dir {
	char *rel;		/* "" for the store itself */
	uint64_t ino;
	struct stat st;
	struct child *kids;	/* sorted by name */
	size_t nkids;
	/*
	 * Listings go by serial, and a child's offset in them is its serial + 3, so
	 * a listing read in several requests while archives come and go skips and
	 * repeats none of the others: order holds the kids' indexes by serial (NULL
	 * when it could not be made: then by name, offsets by index).
	 */
	size_t *order;
	uint64_t next_serial;	/* the serial of the next new name */
	char *latest;		/* the newest snapshot's name, or NULL */
	uint64_t latest_ino;
	int64_t latest_time;
	bool seen;		/* marks directories found by a rescan */
};

struct tree {
	struct tree_opts o;
	char *store;
	/*
	 * The directories change only in a rescan, and one rescan runs at a time:
	 * it reads the store, and the directories, before it takes the lock, so a
	 * slow or hung store holds up no request (only the next rescan).
	 */
	pthread_mutex_t rescan;
	pthread_rwlock_t lock;		/* dirs, their children, the aid table */
	struct dir **dirs;
	size_t ndirs, capdirs;
	struct snap **aids;		/* open addressing on aid */
	size_t capaids, naids;
	struct snap **fresh;		/* found by this rescan, numbered at its end */
	size_t nfresh, capfresh;
	pthread_mutex_t lru;		/* loaded indexes */
	struct snap **loaded;
	size_t nloaded;
	atomic_uint_fast64_t clock;
	atomic_uint nkeep;		/* kept descriptors (struct snap's keepfd) */
	atomic_bool quit;		/* tree_stop(): no more talking to the kernel */
	atomic_bool root_invals;	/* some snapshot's root_inval is set */
};

/* Kept descriptors at most: past it a prune may cut short reads of files then open. */
#define KEEP_MAX(t) ((t)->o.max_open * 4 > 1024 ? (t)->o.max_open * 4 : 1024)

static uint64_t hash64(const char *s, size_t len)
{
	uint64_t h = hash_fnv(s, len);

	return h ^ (h >> 31);
}

static uint64_t dir_ino(const char *rel)
{
	uint64_t h = hash64(rel, strlen(rel)) & HASH_MASK;

	return *rel ? STORE_BIT | (h ? h : 2) : TREE_ROOT_INO;
}

static uint64_t latest_ino(const char *rel, const char *target)
{
	uint64_t h = hash64(rel, strlen(rel)) ^ hash64(target, strlen(target)) * 31;

	return STORE_BIT | LATEST_BIT | (h & HASH_MASK);
}

static uint64_t entry_ino(uint32_t aid, uint32_t entry)
{
	return (uint64_t)aid << 32 | ((uint64_t)entry + 1);
}

double tree_timeout(uint64_t ino)
{
	/* archive contents never change; the store's listing changes and is invalidated */
	return ino & STORE_BIT || ino == TREE_ROOT_INO ? 1.0 : 86400.0;
}

static void aref_put(struct aref *a)
{
	if (a && atomic_fetch_sub(&a->refs, 1) == 1) {
		idx_close(a->x);
		free(a);
	}
}

static void snap_put(struct snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	aref_put(s->ar);
	if (s->keepfd >= 0)
		close(s->keepfd);	/* the count was given back when it was dropped */
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->opened);
	free(s->path);
	free(s->file);
	free(s->name);
	free(s);
}

static struct snap *snap_new(const char *dirpath, const char *file, const struct stat *st,
			     int64_t time)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	atomic_init(&s->gone, false);
	s->keepfd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->opened, NULL);
	s->st = *st;
	s->time = time;
	s->file = strdup(file);
	if (asprintf(&s->path, "%s/%s", dirpath, file) < 0)
		s->path = NULL;
	if (!s->file || !s->path) {
		snap_put(s);
		return NULL;
	}
	return s;
}

/* The aid table: open addressing, aid as the key, probing from the path's hash. */
static struct snap *aid_find(const struct tree *t, uint32_t aid)
{
	if (!t->capaids)
		return NULL;
	for (size_t k = aid & (t->capaids - 1);; k = (k + 1) & (t->capaids - 1)) {
		struct snap *s = t->aids[k];
		if (!s)
			return NULL;
		if (s->aid == aid)
			return s;
	}
}

static int aid_grow(struct tree *t)
{
	size_t cap = t->capaids ? t->capaids * 2 : 1024;
	struct snap **v = calloc(cap, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i < t->capaids; i++) {
		struct snap *s = t->aids[i];
		if (!s)
			continue;
		size_t k = s->aid & (cap - 1);
		while (v[k])
			k = (k + 1) & (cap - 1);
		v[k] = s;
	}
	free(t->aids);
	t->aids = v;
	t->capaids = cap;
	return 0;
}

/* Give s an archive id from the hash of rel, the next free one on a collision. */
static void aid_add(struct tree *t, struct snap *s, const char *rel)
{
	uint32_t aid = (uint32_t)(hash64(rel, strlen(rel)) & AID_MAX);

	for (aid = aid ? aid : 1; aid_find(t, aid); aid = aid % AID_MAX + 1)
		;
	s->aid = aid;
	size_t k = aid & (t->capaids - 1);
	while (t->aids[k])
		k = (k + 1) & (t->capaids - 1);
	t->aids[k] = s;
	t->naids++;
}

/* Room for one more snapshot to number at the end of this rescan. */
static int fresh_reserve(struct tree *t)
{
	if (t->nfresh == t->capfresh) {
		size_t cap = t->capfresh ? t->capfresh * 2 : 64;
		struct snap **v = realloc(t->fresh, cap * sizeof(*v));
		if (!v)
			return -1;
		t->fresh = v;
		t->capfresh = cap;
	}
	return (t->naids + t->nfresh + 1) * 2 > t->capaids ? aid_grow(t) : 0;
}

/* The older first (the time its name gives, else its mtime), then by path. */
static int cmp_age(const void *a, const void *b)
{
	const struct snap *x = *(struct snap *const *)a, *y = *(struct snap *const *)b;
	int64_t tx = x->time ? x->time : x->st.st_mtim.tv_sec;
	int64_t ty = y->time ? y->time : y->st.st_mtim.tv_sec;

	return tx != ty ? (tx > ty) - (tx < ty) : strcmp(x->path, y->path);
}

/*
 * Number the snapshots this rescan found, the oldest first: on a collision the
 * older keeps the hash of its path, as a fresh mount gives it (tree.h).
 */
static void number_fresh(struct tree *t)
{
	size_t skip = strlen(t->store) + 1;	/* a snapshot's path is the store's, "/", rel */

	if (t->nfresh > 1)
		qsort(t->fresh, t->nfresh, sizeof(*t->fresh), cmp_age);
	for (size_t i = 0; i < t->nfresh; i++)
		aid_add(t, t->fresh[i], t->fresh[i]->path + skip);
	t->nfresh = 0;
}

/* Remove s from the aid table, keeping the probe chains whole. */
static void aid_remove(struct tree *t, struct snap *s)
{
	size_t k = s->aid & (t->capaids - 1);

	while (t->aids[k] != s)
		k = (k + 1) & (t->capaids - 1);
	t->aids[k] = NULL;
	t->naids--;
	for (k = (k + 1) & (t->capaids - 1); t->aids[k]; k = (k + 1) & (t->capaids - 1)) {
		struct snap *m = t->aids[k];
		t->aids[k] = NULL;
		size_t j = m->aid & (t->capaids - 1);
		while (t->aids[j])
			j = (j + 1) & (t->capaids - 1);
		t->aids[j] = m;
	}
}

/* Invalidations found during a rescan, sent once the lock is released. */
struct inval {
	uint64_t parent;	/* 0: inode only */
	uint64_t ino;
	char *name;
	struct snap *deep;	/* every name inside this pruned snapshot (a reference) */
};

struct invals {
	struct inval *v;
	size_t n, cap;
};

static void inval_add(struct invals *iv, uint64_t parent, const char *name, uint64_t ino)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 16;
		struct inval *v = realloc(iv->v, cap * sizeof(*v));
		if (!v)
			return;	/* the kernel then learns of it when its short timeout ends */
		iv->v = v;
		iv->cap = cap;
	}
	iv->v[iv->n].parent = parent;
	iv->v[iv->n].ino = ino;
	iv->v[iv->n].deep = NULL;
	iv->v[iv->n++].name = name ? strdup(name) : NULL;
}

static void inval_add_deep(struct invals *iv, struct snap *s)
{
	size_t n = iv->n;

	inval_add(iv, 0, NULL, 0);
	if (iv->n > n) {
		atomic_fetch_add(&s->refs, 1);
		iv->v[n].deep = s;
	}
}

static struct aref *snap_index(struct tree *t, struct snap *s, struct err *e);

/*
 * A pruned snapshot the kernel still holds inodes of (a file open, a shell
 * inside): invalidating its name dropped only what was unused. Every name in
 * it is invalidated too, so that what is in use dies with its last user and
 * the kernel forgets it (tree_forget then lets the archive go). Names the
 * kernel does not hold cost one failed lookup each.
 */
static void inval_snap(struct tree *t, struct snap *s)
{
	struct err e = { 0 };
	struct aref *a = snap_index(t, s, &e);
	char name[NAME_MAX + 1];

	if (!a)
		return;
	for (uint32_t i = 0; i < idx_count(a->x) && !atomic_load(&t->quit); i++) {
		struct idx_entry d, c;
		idx_get(a->x, i, &d);
		if (!S_ISDIR(d.mode) || d.target != i)
			continue;
		for (uint32_t k = 0; k < d.nchildren && !atomic_load(&t->quit); k++) {
			idx_get(a->x, d.first_child + k, &c);
			snprintf(name, sizeof(name), "%.*s", (int)c.name_len, c.name);
			t->o.inval_entry(t->o.ctx, entry_ino(s->aid, i), name);
		}
	}
	aref_put(a);
}

static void inval_send(struct tree *t, struct invals *iv)
{
	for (size_t i = 0; i < iv->n; i++) {
		if (atomic_load(&t->quit))
			;	/* stopping: the kernel may not be answered any more */
		else if (iv->v[i].deep && t->o.inval_entry)
			inval_snap(t, iv->v[i].deep);
		else if (iv->v[i].name && t->o.inval_entry)
			t->o.inval_entry(t->o.ctx, iv->v[i].parent, iv->v[i].name);
		else if (!iv->v[i].name && !iv->v[i].deep && t->o.inval_inode)
			t->o.inval_inode(t->o.ctx, iv->v[i].ino);
		free(iv->v[i].name);
		snap_put(iv->v[i].deep);
	}
	free(iv->v);
}

static struct dir *find_dir_rel(const struct tree *t, const char *rel)
{
	for (size_t i = 0; i < t->ndirs; i++)
		if (strcmp(t->dirs[i]->rel, rel) == 0)
			return t->dirs[i];
	return NULL;
}

static struct dir *add_dir(struct tree *t, const char *rel)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (!d || !(d->rel = strdup(rel)))
		goto fail;
	if (t->ndirs == t->capdirs) {
		size_t cap = t->capdirs ? t->capdirs * 2 : 16;
		struct dir **v = realloc(t->dirs, cap * sizeof(*v));
		if (!v)
			goto fail;
		t->dirs = v;
		t->capdirs = cap;
	}
	d->ino = dir_ino(rel);
	t->dirs[t->ndirs++] = d;
	return d;
fail:
	if (d)
		free(d->rel);
	free(d);
	return NULL;
}

static int cmp_child(const void *a, const void *b)
{
	return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name);
}

static void free_kids(struct child *kids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(kids[i].name);
	free(kids);
}

static int cmp_serial(const void *a, const void *b, void *kids)
{
	uint64_t x = ((const struct child *)kids)[*(const size_t *)a].serial;
	uint64_t y = ((const struct child *)kids)[*(const size_t *)b].serial;

	return (x > y) - (x < y);
}

/*
 * Number a new listing l of d (sorted by name) from d's: a name d lists keeps
 * its serial, a new one takes the next (in name order). *order gets the new
 * kids' indexes by serial, or NULL.
 */
static void number_kids(struct dir *d, struct child *kids, size_t n, size_t **order)
{
	for (size_t i = 0; i < n; i++) {
		struct child key = { .name = kids[i].name };
		const struct child *o = d->nkids ? bsearch(&key, d->kids, d->nkids, sizeof(key),
							   cmp_child) : NULL;
		kids[i].serial = o ? o->serial : d->next_serial++;
	}
	if (!(*order = malloc((n ? n : 1) * sizeof(**order))))
		return;
	for (size_t i = 0; i < n; i++)
		(*order)[i] = i;
	qsort_r(*order, n, sizeof(**order), cmp_serial, kids);
}

static void unload(struct tree *t, struct snap *s);

static time_t monotonic_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Pruned snapshots the kernel still holds: names it looked up inside them (a
 * shell that listed one) stay cached, unused, and keep them. Their names are
 * invalidated again, every 1, 2, 4 ... 64 s, until the kernel lets go.
 */
static void reinval_gone(struct tree *t, struct invals *iv)
{
	time_t now = monotonic_sec();

	for (size_t i = 0; i < t->capaids; i++) {
		struct snap *s = t->aids[i];
		if (!s || !atomic_load(&s->gone) || s->reinval_gap == 0 || now < s->reinval_at)
			continue;
		pthread_mutex_lock(&s->mu);
		bool cheap = s->ar || !s->foreign;	/* no rescan of a foreign archive for this */
		pthread_mutex_unlock(&s->mu);
		if (cheap)
			inval_add_deep(iv, s);
		s->reinval_gap = s->reinval_gap < 64 ? s->reinval_gap * 2 : 64;
		s->reinval_at = now + s->reinval_gap;
	}
}

/* Out of the aid table, its index closed: under the write lock, once s->removed is set. */
static void release_snap(struct tree *t, struct snap *s)
{
	unload(t, s);
	aid_remove(t, s);
	snap_put(s);	/* the table's; the descriptor closes with the last user */
}

/*
 * A snapshot that left the store: unlisted now. While the kernel still knows
 * inodes in it (an open file, a shell inside), it stays in the aid table and
 * readable; it goes, and the file's space with it, when the kernel forgets the
 * last of them (tree_forget).
 */
static void drop_snap(struct tree *t, struct snap *s, struct invals *iv)
{
	bool unused;

	atomic_store(&s->gone, true);
	pthread_mutex_lock(&s->mu);
	unused = s->krefs == 0 && !s->removed;
	s->removed |= unused;
	pthread_mutex_unlock(&s->mu);
	if (unused) {
		release_snap(t, s);
	} else {
		inval_add_deep(iv, s);
		s->reinval_gap = 1;
		s->reinval_at = monotonic_sec() + 1;
	}
}

static bool name_taken(const struct child *kids, size_t n, const char *name)
{
	if (strcmp(name, LATEST) == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcmp(kids[i].name, name) == 0)
			return true;
	return false;
}

/* base, or the first of base_2, base_3, ... not taken: for the later in file-name order. */
static char *unique_name(const struct child *kids, size_t n, const char *base)
{
	char *name = NULL;

	if (!name_taken(kids, n, base))
		return strdup(base);
	for (int k = 2; !name; k++) {
		if (asprintf(&name, "%s_%d", base, k) < 0)
			return NULL;
		if (name_taken(kids, n, name)) {
			free(name);
			name = NULL;
		}
	}
	return name;
}

/* The name an archive appears as: its time, or its file name without the extension. */
static char *display_name(const struct child *kids, size_t n, const char *file,
			  const struct store_name *p)
{
	char base[NAME_MAX + 1];

	if (p->has_time)
		snprintf(base, sizeof(base), "%04d%02d%02d_%02d%02d%02d", p->year, p->month, p->day,
			 p->hour, p->min, p->sec);
	else
		snprintf(base, sizeof(base), "%.*s", (int)(strlen(file) - p->ext_len), file);
	return unique_name(kids, n, base);
}

/* The snapshot of file in the old listing, if the file is still the same. */
static struct snap *old_snap(const struct dir *d, const char *file, const struct stat *st)
{
	for (size_t i = 0; i < d->nkids; i++) {
		struct snap *s = d->kids[i].snap;
		if (d->kids[i].kind == K_SNAP && strcmp(s->file, file) == 0 &&
		    s->st.st_ino == st->st_ino && s->st.st_size == st->st_size &&
		    s->st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
		    s->st.st_mtim.tv_nsec == st->st_mtim.tv_nsec)
			return s;
	}
	return NULL;
}

struct listing {
	struct child *kids;
	size_t n, cap;
};

static struct child *push_child(struct listing *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct child *v = realloc(l->kids, cap * sizeof(*v));
		if (!v)
			return NULL;
		l->kids = v;
		l->cap = cap;
	}
	memset(&l->kids[l->n], 0, sizeof(l->kids[0]));
	return &l->kids[l->n++];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The visible names in directory path, sorted: archives come in file-name
 * order. A directory that is gone has none; one that cannot be read now (out
 * of descriptors or memory) sets *failed, and its old listing stands.
 */
static char **read_names(const char *path, size_t *count, bool *failed)
{
	DIR *dp = opendir(path);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*count = 0;
	*failed = !dp && errno != ENOENT && errno != ENOTDIR;
	if (!dp)
		return NULL;
	while (!*failed) {
		errno = 0;
		if (!(de = readdir(dp))) {
			*failed = errno != 0;	/* an error, not the end */
			break;
		}
		if (de->d_name[0] == '.')
			continue;	/* hidden: temporary files, the lock */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				*failed = true;
				break;
			}
			v = nv;
		}
		if (!(v[n] = strdup(de->d_name)))
			*failed = true;
		else
			n++;
	}
	closedir(dp);
	if (*failed) {
		free_names(v, n);
		return NULL;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*count = n;
	return v;
}

/*
 * What a rescan found in one store directory, read before the tree is locked:
 * its attributes, and its names with theirs unless it is unchanged (the same
 * mtime as when it was listed) or could not be read now.
 */
struct found {
	char *rel;
	char *path;		/* in the file system: the store's path, then rel */
	struct stat st;
	bool have_st;		/* st holds (else the directory is gone) */
	bool unchanged;		/* only its subdirectories were looked at */
	bool failed;		/* out of descriptors or memory: its old listing stands */
	char **names;		/* sorted; an st_mode of 0 in sts: gone meanwhile */
	struct stat *sts;
	size_t n;
};

struct view {
	struct found *v;
	size_t n, cap;
};

static const struct found *view_find(const struct view *vw, const char *rel)
{
	for (size_t i = 0; i < vw->n; i++)
		if (strcmp(vw->v[i].rel, rel) == 0)
			return &vw->v[i];
	return NULL;
}

static void view_free(struct view *vw)
{
	for (size_t i = 0; i < vw->n; i++) {
		free(vw->v[i].rel);
		free(vw->v[i].path);
		free_names(vw->v[i].names, vw->v[i].n);
		free(vw->v[i].sts);
	}
	free(vw->v);
}

/* Whether st is the directory rel or one of its parents: a symlink in the store that loops (loop -> ..). */
static bool climbs_back(const struct view *vw, const char *rel_of, const struct stat *st)
{
	char rel[PATH_MAX], *slash;

	snprintf(rel, sizeof(rel), "%s", rel_of);
	for (;;) {
		const struct found *a = view_find(vw, rel);
		if (a && a->have_st && a->st.st_dev == st->st_dev && a->st.st_ino == st->st_ino)
			return true;
		if (!*rel)
			return false;
		if ((slash = strrchr(rel, '/')))
			*slash = '\0';
		else
			*rel = '\0';
	}
}

/* The store path of name in the store directory rel ("" for the store itself). */
static char *child_rel(const char *rel, const char *name)
{
	char *out;

	return asprintf(&out, "%s%s%s", rel, *rel ? "/" : "", name) < 0 ? NULL : out;
}

static void add_subdir(struct tree *t, struct listing *l, const struct dir *d, const char *name,
		       const struct stat *st)
{
	char *rel = child_rel(d->rel, name);
	struct dir *sub = rel ? find_dir_rel(t, rel) : NULL;
	struct child *c;

	if (rel && !sub)
		sub = add_dir(t, rel);
	free(rel);
	if (!sub || !(c = push_child(l)))
		return;
	/* "latest" is the link's: a directory of that name shows as latest_2, as an archive would */
	if (!(c->name = unique_name(l->kids, l->n - 1, name))) {
		l->n--;
		return;
	}
	sub->seen = true;
	sub->st = *st;
	c->kind = K_DIR;
	c->dir = sub;
}

static void add_archive(struct tree *t, struct listing *l, struct dir *d, const char *path,
			const char *file, const struct stat *st, const struct store_name *p)
{
	struct snap *s = old_snap(d, file, st);
	char *name = display_name(l->kids, l->n, file, p);
	struct child *c;

	if (!s && name)	/* the file's time tells a name in the repeated autumn hour */
		s = snap_new(path, file, st, p->has_time ? store_name_time(p, st->st_mtime) : 0);
	if (!name || !s) {
		free(name);
		return;
	}
	if (!s->aid && fresh_reserve(t) < 0) {
		snap_put(s);
		free(name);
		return;
	}
	free(s->name);
	s->name = name;
	s->parent = d->ino;
	if ((c = push_child(l)) && (c->name = strdup(name))) {
		c->kind = K_SNAP;
		c->snap = s;
		if (!s->aid)
			t->fresh[t->nfresh++] = s;	/* the table's reference, from number_fresh() */
	} else {
		if (c)
			l->n--;
		if (!s->aid)
			snap_put(s);	/* else, not listed, diff_listing() drops it */
		return;
	}
	/* latest: the newest time; on a tie the later in file-name order */
	if (p->has_time && (!d->latest || s->time >= d->latest_time)) {
		d->latest = s->name;
		d->latest_time = s->time;
	}
}

/* Compare the old listing with the new: what went, and what the kernel must forget. */
static void diff_listing(struct tree *t, struct dir *d, struct listing *l, const char *old_latest,
			 struct invals *iv)
{
	bool changed = d->nkids != l->n;

	for (size_t i = 0; i < d->nkids; i++) {
		struct child *o = &d->kids[i];
		struct child key = { .name = o->name };
		struct child *n = l->n ? bsearch(&key, l->kids, l->n, sizeof(key), cmp_child) : NULL;
		bool same = n && n->kind == o->kind && n->snap == o->snap && n->dir == o->dir;
		if (o->kind == K_LATEST)
			same = old_latest && d->latest && strcmp(old_latest, d->latest) == 0;
		if (same)
			continue;
		changed = true;
		inval_add(iv, d->ino, o->name, 0);
		if (o->kind == K_SNAP) {
			bool kept = false;
			for (size_t k = 0; k < l->n && !kept; k++)
				kept = l->kids[k].snap == o->snap;
			if (!kept)
				drop_snap(t, o->snap, iv);
		}
	}
	if (changed)
		inval_add(iv, 0, NULL, d->ino);
}

static void scan_dir(struct tree *t, struct dir *d, bool force, struct invals *iv,
		     const struct view *vw);

static void scan_subdirs(struct tree *t, struct dir *d, bool force, struct invals *iv,
			 const struct view *vw)
{
	for (size_t i = 0; i < d->nkids; i++)
		if (d->kids[i].kind == K_DIR) {
			d->kids[i].dir->seen = true;
			scan_dir(t, d->kids[i].dir, force, iv, vw);
		}
}

static char *store_path(const struct tree *t, const char *rel)
{
	char *path;

	return asprintf(&path, "%s%s%s", t->store, *rel ? "/" : "", rel) < 0 ? NULL : path;
}

/*
 * Read the store directory rel, and those below it, into vw, as scan_dir()
 * will want them: an unchanged directory (same mtime) holds the same names,
 * so only its subdirectories are looked at. No lock: the directories are read
 * by the one thread that may change them.
 */
static void look(const struct tree *t, const char *rel, bool force, struct view *vw)
{
	const struct dir *d = find_dir_rel(t, rel);
	struct found f = { .rel = strdup(rel), .path = store_path(t, rel) };
	const char *path = f.path;

	if (vw->n == vw->cap) {
		size_t cap = vw->cap ? vw->cap * 2 : 8;
		struct found *v = realloc(vw->v, cap * sizeof(*v));
		if (v) {
			vw->v = v;
			vw->cap = cap;
		}
	}
	if (!f.rel || !path || vw->n == vw->cap) {
		free(f.rel);
		free(f.path);
		return;	/* not found: scan_dir() keeps what it had */
	}
	f.have_st = stat(path, &f.st) == 0;
	f.unchanged = f.have_st && !force && d && d->kids &&
		      f.st.st_mtim.tv_sec == d->st.st_mtim.tv_sec &&
		      f.st.st_mtim.tv_nsec == d->st.st_mtim.tv_nsec;
	if (!f.unchanged)
		f.names = read_names(path, &f.n, &f.failed);
	/*
	 * every name's attributes: a name gone meanwhile, or that cannot be
	 * followed, is skipped; any other failure keeps the old listing
	 */
	f.sts = f.n ? calloc(f.n, sizeof(*f.sts)) : NULL;
	f.failed |= f.n && !f.sts;
	for (size_t i = 0; i < f.n && !f.failed; i++) {
		char *full = NULL;
		if (asprintf(&full, "%s/%s", path, f.names[i]) < 0)
			f.failed = true;
		else if (stat(full, &f.sts[i]) < 0)	/* gone, or a link going round: st_mode stays 0 */
			f.failed = errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
				   errno != ENAMETOOLONG && errno != EACCES;
		free(full);
	}
	vw->v[vw->n++] = f;
	if (f.unchanged || f.failed) {
		for (size_t i = 0; d && i < d->nkids; i++)
			if (d->kids[i].kind == K_DIR)
				look(t, d->kids[i].dir->rel, force, vw);
		return;
	}
	for (size_t i = 0; i < f.n; i++) {	/* f's arrays stay put as vw grows */
		char *sub;
		if (!S_ISDIR(f.sts[i].st_mode) || climbs_back(vw, rel, &f.sts[i]) ||
		    !(sub = child_rel(rel, f.names[i])))
			continue;
		look(t, sub, force, vw);
		free(sub);
	}
}

static void scan_dir(struct tree *t, struct dir *d, bool force, struct invals *iv,
		     const struct view *vw)
{
	const struct found *f = view_find(vw, d->rel);
	struct listing l = { 0 };
	char *old_latest;
	size_t *order;

	if (f && f->have_st)
		d->st = f->st;
	if (f && f->unchanged) {
		scan_subdirs(t, d, force, iv, vw);
		return;
	}
	if (!f || f->failed) {
		d->st.st_mtim.tv_sec = d->st.st_mtim.tv_nsec = 0;	/* list it again next time */
		scan_subdirs(t, d, force, iv, vw);
		return;
	}
	old_latest = d->latest ? strdup(d->latest) : NULL;
	d->latest = NULL;
	/*
	 * Directories first, one named "latest" last among them: the others keep
	 * their names, and archives avoid them all.
	 */
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < f->n; i++) {
			const struct stat *st = &f->sts[i];
			struct store_name p;
			if (pass < 2 && S_ISDIR(st->st_mode) &&
			    (strcmp(f->names[i], LATEST) == 0) == (pass == 1) &&
			    !climbs_back(vw, d->rel, st))
				add_subdir(t, &l, d, f->names[i], st);
			else if (pass == 2 && S_ISREG(st->st_mode) && st->st_size > 0 &&
				 store_parse_name(f->names[i], &p))	/* empty: no archive */
				add_archive(t, &l, d, f->path, f->names[i], st, &p);
		}
	if (d->latest) {
		struct child *c = push_child(&l);
		if (c && (c->name = strdup(LATEST))) {
			c->kind = K_LATEST;
			d->latest_ino = latest_ino(d->rel, d->latest);
		} else if (c) {
			l.n--;
		}
	}
	if (l.n)
		qsort(l.kids, l.n, sizeof(*l.kids), cmp_child);
	diff_listing(t, d, &l, old_latest, iv);
	number_kids(d, l.kids, l.n, &order);
	free_kids(d->kids, d->nkids);
	free(d->order);
	d->kids = l.kids;
	d->nkids = l.n;
	d->order = order;
	free(old_latest);
	scan_subdirs(t, d, force, iv, vw);
}

static void free_dir(struct tree *t, struct dir *d, struct invals *iv)
{
	for (size_t i = 0; i < d->nkids; i++)
		if (d->kids[i].kind == K_SNAP)
			drop_snap(t, d->kids[i].snap, iv);
	free_kids(d->kids, d->nkids);
	free(d->order);
	free(d->rel);
	free(d);
}

/* Apply what look() found; memory only, under the write lock. */
static void rescan_locked(struct tree *t, bool force, struct invals *iv, const struct view *vw)
{
	struct dir *root = t->dirs[0];
	size_t k = 1;

	for (size_t i = 0; i < t->ndirs; i++)
		t->dirs[i]->seen = false;
	root->seen = true;
	scan_dir(t, root, force, iv, vw);
	/* directories that went: forget them with what they held */
	for (size_t i = 1; i < t->ndirs; i++) {
		if (t->dirs[i]->seen)
			t->dirs[k++] = t->dirs[i];
		else
			free_dir(t, t->dirs[i], iv);
	}
	t->ndirs = k;
	number_fresh(t);
}

void tree_stop(struct tree *t)
{
	atomic_store(&t->quit, true);
}

/* The snapshots whose stored root became known since the kernel was given their directory. */
static void root_invals(struct tree *t, struct invals *iv)
{
	if (!atomic_exchange(&t->root_invals, false))
		return;
	for (size_t i = 0; i < t->ndirs; i++)
		for (size_t k = 0; k < t->dirs[i]->nkids; k++) {
			struct child *c = &t->dirs[i]->kids[k];
			if (c->kind == K_SNAP && atomic_exchange(&c->snap->root_inval, false))
				inval_add(iv, 0, NULL, entry_ino(c->snap->aid, IDX_ROOT));
		}
}

void tree_rescan(struct tree *t, bool force)
{
	struct invals iv = { 0 };
	struct view vw = { 0 };

	pthread_mutex_lock(&t->rescan);
	look(t, "", force, &vw);
	pthread_rwlock_wrlock(&t->lock);
	rescan_locked(t, force, &iv, &vw);
	reinval_gone(t, &iv);
	root_invals(t, &iv);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&t->rescan);
	view_free(&vw);
	inval_send(t, &iv);
}

int tree_new(const struct tree_opts *o, struct tree **out, struct err *e)
{
	struct tree *t = calloc(1, sizeof(*t));
	struct invals iv = { 0 };
	struct view vw = { 0 };
	struct stat st;

	if (!t)
		return err_set(e, ENOMEM, "out of memory");
	t->o = *o;
	if (!t->o.max_open)
		t->o.max_open = 256;
	pthread_mutex_init(&t->rescan, NULL);
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->lru, NULL);
	int code = stat(o->store, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (code) {
		err_set(e, code, "cannot use '%s' as a store: %s", o->store, strerror(code));
		tree_free(t);
		return -1;
	}
	t->loaded = calloc(t->o.max_open, sizeof(*t->loaded));
	if (!(t->store = strdup(o->store)) || !t->loaded || !add_dir(t, "")) {
		tree_free(t);
		return err_set(e, ENOMEM, "out of memory");
	}
	look(t, "", true, &vw);
	rescan_locked(t, true, &iv, &vw);
	view_free(&vw);
	for (size_t i = 0; i < iv.n; i++) {	/* nothing was cached yet */
		free(iv.v[i].name);
		snap_put(iv.v[i].deep);
	}
	free(iv.v);
	*out = t;
	return 0;
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ndirs; i++) {
		for (size_t k = 0; k < t->dirs[i]->nkids; k++)
			if (t->dirs[i]->kids[k].kind == K_SNAP)
				atomic_store(&t->dirs[i]->kids[k].snap->gone, true);
		free_kids(t->dirs[i]->kids, t->dirs[i]->nkids);
		free(t->dirs[i]->order);
		free(t->dirs[i]->rel);
		free(t->dirs[i]);
	}
	for (size_t i = 0; i < t->nloaded; i++)
		snap_put(t->loaded[i]);		/* the open list's references */
	for (size_t i = 0; i < t->capaids; i++)
		if (t->aids[i])
			snap_put(t->aids[i]);	/* the table's; the last closes the index */
	free(t->aids);
	free(t->fresh);
	free(t->dirs);
	free(t->loaded);
	free(t->store);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->lru);
	pthread_mutex_destroy(&t->rescan);
	free(t);
}

/*
 * Opening indexes. The index is opened with no lock held (snap_index()); it
 * is put on the list of open indexes after, under t->lru, which takes the
 * snapshot's own lock inside it (never the other way round): not if the
 * snapshot left, or was closed, meanwhile. An evicted one is closed under its
 * own lock only.
 */
static void note_loaded(struct tree *t, struct snap *s, const struct aref *a)
{
	struct snap *victim = NULL;
	bool keep;

	pthread_mutex_lock(&t->lru);
	pthread_mutex_lock(&s->mu);
	keep = !s->removed && s->ar == a;
	pthread_mutex_unlock(&s->mu);
	if (!keep) {
		pthread_mutex_unlock(&t->lru);
		return;
	}
	if (t->nloaded < t->o.max_open) {
		t->loaded[t->nloaded++] = s;
	} else {
		size_t v = 0;
		for (size_t i = 1; i < t->nloaded; i++)
			if (t->loaded[i]->used < t->loaded[v]->used)
				v = i;
		victim = t->loaded[v];
		t->loaded[v] = s;
	}
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&t->lru);
	if (!victim)
		return;
	pthread_mutex_lock(&victim->mu);
	struct aref *va = victim->ar;
	victim->ar = NULL;
	pthread_mutex_unlock(&victim->mu);
	aref_put(va);	/* files open in it keep their own reference */
	snap_put(victim);
}

/* Close the snapshot's index (users keep theirs) and take it off the open list. */
static void unload(struct tree *t, struct snap *s)
{
	bool listed = false;
	struct aref *a;

	pthread_mutex_lock(&t->lru);
	for (size_t i = 0; i < t->nloaded && !listed; i++)
		if (t->loaded[i] == s) {
			t->loaded[i] = t->loaded[--t->nloaded];
			listed = true;
		}
	pthread_mutex_unlock(&t->lru);
	pthread_mutex_lock(&s->mu);
	a = s->ar;
	s->ar = NULL;
	pthread_mutex_unlock(&s->mu);
	aref_put(a);
	if (listed)
		snap_put(s);
}

/*
 * A new descriptor of fd's file with an offset of its own (the foreign decoder
 * seeks), through /proc, which also reaches a deleted file. Not dup(): a
 * shared offset would mix two decoders' reads.
 */
static int reopen_fd(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Keep a descriptor of s's archive, from its open index, within KEEP_MAX; under s->mu. */
static void keep_fd(struct tree *t, struct snap *s, const struct idx *x)
{
	if (s->keepfd >= 0)
		return;
	if (atomic_fetch_add(&t->nkeep, 1) >= KEEP_MAX(t) ||
	    (s->keepfd = reopen_fd(idx_fd(x))) < 0) {
		s->keepfd = -1;
		atomic_fetch_sub(&t->nkeep, 1);
	}
}

static void drop_fd(struct tree *t, struct snap *s)
{
	if (s->keepfd >= 0) {
		close(s->keepfd);
		s->keepfd = -1;
		atomic_fetch_sub(&t->nkeep, 1);
	}
}

/* Open s's index, from fd (the kept descriptor reopened: the file may be gone) or its path. */
static int open_index(struct tree *t, const struct snap *s, int fd, struct idx **x, struct err *e)
{
	struct idx_opts io = t->o.idx;

	io.no_seq = true;	/* native archives are read by offset */
	io.salvage = true;	/* a cut or damaged archive shows what lies before the damage */
	return fd >= 0 ? idx_open_fd(fd, s->path, &io, x, e) : idx_open_with(s->path, &io, x, e);
}

static void learn_root(struct tree *t, struct snap *s, const struct idx *x);

/* The members a foreign archive's index left out: logged once a snapshot. */
static void log_refusals(struct tree *t, struct snap *s, const struct idx *x)
{
	const char *first, *first_link;
	uint32_t n = idx_refused(x, IDX_REFUSED_CLIMBS, &first);
	uint32_t links = idx_refused(x, IDX_REFUSED_NO_TARGET, &first_link);
	char msg[PATH_MAX + 256];

	if ((!n && !links) || !t->o.damaged || atomic_exchange(&s->refusals, true))
		return;
	if (n) {
		snprintf(msg, sizeof(msg), "'%s': %u member%s not shown, since %s path%s climb%s "
			 "out of the archive with '..' (the first: '%s'); tar -x strips or "
			 "refuses such names too", s->path, n, n == 1 ? " is" : "s are",
			 n == 1 ? "its" : "their", n == 1 ? "" : "s", n == 1 ? "s" : "", first);
		t->o.damaged(t->o.ctx, msg);
	}
	if (links) {
		snprintf(msg, sizeof(msg), "'%s': %u hard link%s not shown, since %s name%s no "
			 "file in the archive (the first: '%s'); tar -x and bsdtar -x make nothing "
			 "for %s either", s->path, links, links == 1 ? " is" : "s are",
			 links == 1 ? "it" : "they", links == 1 ? "s" : "", first_link,
			 links == 1 ? "it" : "them");
		t->o.damaged(t->o.ctx, msg);
	}
}

/*
 * The snapshot's index, opened on first use; a new reference for the caller.
 * Opening reads the archive (a foreign one is scanned whole) from a store
 * that may be slow: s->mu is not held meanwhile, so that listing the store,
 * which counts every snapshot it shows, never waits for it. Users of s
 * itself wait for the one thread that opens it.
 */
static struct aref *snap_index(struct tree *t, struct snap *s, struct err *e)
{
	struct aref *a = NULL;
	bool fresh = false;
	struct idx *x = NULL;
	int fd = -1, rc;

	pthread_mutex_lock(&s->mu);
	s->used = atomic_fetch_add(&t->clock, 1);
	while (s->opening && !s->ar)
		pthread_cond_wait(&s->opened, &s->mu);
	if (s->ar) {
		a = s->ar;
		atomic_fetch_add(&a->refs, 1);
		pthread_mutex_unlock(&s->mu);
		return a;
	}
	if (atomic_load(&s->gone) && s->keepfd < 0) {
		pthread_mutex_unlock(&s->mu);
		err_set(e, ENOENT, "'%s' was removed from the store", s->path);
		return NULL;
	}
	if (s->failed) {
		pthread_mutex_unlock(&s->mu);
		err_set(e, EIO, "'%s' cannot be read (logged when first found)", s->path);
		return NULL;
	}
	rc = s->keepfd >= 0 && (fd = reopen_fd(s->keepfd)) < 0
		     ? err_set(e, errno, "cannot reopen '%s': %s", s->path, strerror(errno))
		     : 0;
	s->opening = true;
	pthread_mutex_unlock(&s->mu);
	if (rc == 0)
		rc = open_index(t, s, fd, &x, e);
	if (rc == 0 && !(a = malloc(sizeof(*a)))) {
		idx_close(x);
		rc = err_set(e, ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&s->mu);
	s->opening = false;
	pthread_cond_broadcast(&s->opened);
	if (rc < 0) {
		/* out of descriptors or memory is not damage: the next use tries again */
		if (e->code != EMFILE && e->code != ENFILE && e->code != ENOMEM) {
			s->failed = true;
			if (t->o.damaged)
				t->o.damaged(t->o.ctx, e->msg);
			e->code = EIO;
		}
	} else if (s->removed) {
		a->x = x;	/* it left meanwhile: this request's alone */
		atomic_init(&a->refs, 1);
	} else {
		a->x = x;
		atomic_init(&a->refs, 2);	/* the snapshot's and the caller's */
		if (s->inner > 0)
			keep_fd(t, s, x);
		learn_root(t, s, x);
		s->foreign = !idx_is_native(x);
		s->ar = a;
		fresh = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (fresh) {
		const char *lost = idx_damage(a->x);
		/*
		 * The kernel forgets the directory's first attributes now, before this
		 * request is answered: a path another user walks through names already
		 * cached must meet the stored mode (the rescan sends it again).
		 */
		if (atomic_load(&s->root_inval) && t->o.inval_attr && !atomic_load(&t->quit))
			t->o.inval_attr(t->o.ctx, entry_ino(s->aid, IDX_ROOT));
		/* logged once, as a damaged read would be; reads the damage reaches (if any) give EIO */
		if (lost && t->o.damaged && !atomic_exchange(&s->reported, true))
			t->o.damaged(t->o.ctx, lost);
		log_refusals(t, s, a->x);
		note_loaded(t, s, a);
	}
	return a;
}

/* What an inode is. A snapshot and an index come with references: release with node_put(). */
struct node {
	enum { N_DIR, N_LATEST, N_SNAPROOT, N_ENTRY } kind;
	struct dir *dir;	/* N_DIR, N_LATEST: valid under the read lock */
	struct snap *snap;
	struct aref *ar;	/* N_ENTRY */
	uint32_t entry;
};

static void node_put(struct node *n)
{
	aref_put(n->ar);
	snap_put(n->snap);
}

/*
 * Resolve ino under the read lock, held by the caller. A store directory or a
 * link is valid while the lock is held; a snapshot comes with a reference, and
 * its index is opened by node_index() after the lock is released, since
 * opening a foreign archive may take long.
 */
static int resolve(struct tree *t, uint64_t ino, struct node *n, struct err *e)
{
	memset(n, 0, sizeof(*n));
	if (ino == TREE_ROOT_INO || (ino & STORE_BIT)) {
		for (size_t i = 0; i < t->ndirs; i++) {
			struct dir *d = t->dirs[i];
			if (d->ino == ino || (d->latest && d->latest_ino == ino)) {
				n->kind = d->ino == ino ? N_DIR : N_LATEST;
				n->dir = d;
				return 0;
			}
		}
		return err_set(e, ENOENT, "no such node");
	}
	n->snap = aid_find(t, (uint32_t)(ino >> 32));
	if (!n->snap || (ino & 0xFFFFFFFFu) == 0)
		return err_set(e, ENOENT, "no such snapshot");
	atomic_fetch_add(&n->snap->refs, 1);
	n->entry = (uint32_t)(ino & 0xFFFFFFFFu) - 1;
	n->kind = n->entry == IDX_ROOT ? N_SNAPROOT : N_ENTRY;
	return 0;
}

/* Open the index of a resolved snapshot node; without the tree lock. */
static int node_index(struct tree *t, struct node *n, struct err *e)
{
	if (!n->ar && !(n->ar = snap_index(t, n->snap, e)))
		return -1;
	if (n->entry >= idx_count(n->ar->x))
		return err_set(e, ENOENT, "no such entry");
	return 0;
}

/* Resolve a node inside a snapshot, index open; the lock is not held on return. */
static int get_entry(struct tree *t, uint64_t ino, struct node *n, struct err *e)
{
	int rc;

	pthread_rwlock_rdlock(&t->lock);
	rc = resolve(t, ino, n, e);
	pthread_rwlock_unlock(&t->lock);
	if (rc == 0 && !n->snap)
		rc = err_set(e, EINVAL, "not inside a snapshot");
	if (rc == 0)
		rc = node_index(t, n, e);
	if (rc < 0)
		node_put(n);
	return rc;
}

bool tree_ino_is_snaproot(uint64_t ino)
{
	return ino != TREE_ROOT_INO && !(ino & STORE_BIT) && (ino & 0xFFFFFFFFu) == IDX_ROOT + 1;
}

/*
 * A snapshot's own directory ino into n (node_put() it), its stored root
 * learnt first if open allows opening the index; -1 if it is gone.
 */
static int snaproot(struct tree *t, uint64_t ino, bool open, struct node *n)
{
	struct err e = { 0 };
	int rc;

	pthread_rwlock_rdlock(&t->lock);
	rc = resolve(t, ino, n, &e);
	pthread_rwlock_unlock(&t->lock);
	if (rc < 0)
		return -1;
	if (open && !atomic_load(&n->snap->root_learnt))
		(void)node_index(t, n, &e);	/* learns the root, if it was stored */
	return 0;
}

int tree_root_stat(struct tree *t, uint64_t ino, bool open, struct stat *st)
{
	struct node n;
	int rc;

	if (!tree_ino_is_snaproot(ino) || snaproot(t, ino, open, &n) < 0)
		return 0;
	rc = atomic_load_explicit(&n.snap->root_known, memory_order_acquire);
	if (rc)
		*st = n.snap->root_st;
	node_put(&n);
	return rc;
}

static void set_time(struct stat *st, int64_t sec, long nsec)
{
	st->st_mtim.tv_sec = (time_t)sec;
	st->st_mtim.tv_nsec = nsec;
	st->st_atim = st->st_ctim = st->st_mtim;
}

static void dir_stat(const struct dir *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = d->ino;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	for (size_t i = 0; i < d->nkids; i++)
		st->st_nlink += d->kids[i].kind != K_LATEST;
	st->st_uid = d->st.st_uid;
	st->st_gid = d->st.st_gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	set_time(st, d->st.st_mtim.tv_sec, d->st.st_mtim.tv_nsec);
}

static void latest_stat(const struct dir *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = d->latest_ino;
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_uid = d->st.st_uid;
	st->st_gid = d->st.st_gid;
	st->st_size = (off_t)strlen(d->latest);
	set_time(st, d->latest_time, 0);
}

/*
 * A snapshot's own directory: what the archive stored for its root, once its
 * index was open; before (and when it stored none), from the file alone, so
 * that listing a store opens no archive: readable by all, owned by the
 * archive's owner, timed by the snapshot. The kernel may act on the first
 * before the index opens, so ops.c checks the stored mode itself at the first
 * lookups and listings inside (tree_root_stat()).
 */
static void snaproot_stat(const struct snap *s, struct stat *st)
{
	if (atomic_load_explicit(&s->root_known, memory_order_acquire)) {
		*st = s->root_st;
		return;
	}
	memset(st, 0, sizeof(*st));
	st->st_ino = entry_ino(s->aid, IDX_ROOT);
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = s->st.st_uid;
	st->st_gid = s->st.st_gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	if (s->time)
		set_time(st, s->time, 0);
	else
		set_time(st, s->st.st_mtim.tv_sec, s->st.st_mtim.tv_nsec);
}

/* Entry i (ent) as stored, in snapshot aid. */
static void stored_stat(const struct idx *x, uint32_t aid, uint32_t i, const struct idx_entry *e,
			struct stat *st)
{
	struct idx_entry ent = *e;

	memset(st, 0, sizeof(*st));
	st->st_ino = entry_ino(aid, i);
	st->st_mode = ent.mode;
	/* the kernel drops a LOOKUP reply of another type without a FORGET: never send one */
	if (!S_ISREG(ent.mode) && !S_ISDIR(ent.mode) && !S_ISLNK(ent.mode) &&
	    !S_ISCHR(ent.mode) && !S_ISBLK(ent.mode) && !S_ISFIFO(ent.mode) &&
	    !S_ISSOCK(ent.mode))
		st->st_mode = S_IFREG | (ent.mode & 07777);
	st->st_nlink = ent.nlink;
	st->st_uid = ent.uid;
	st->st_gid = ent.gid;
	st->st_rdev = (dev_t)ent.rdev;
	st->st_size = S_ISDIR(ent.mode) ? 4096 : (off_t)ent.size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((idx_stored_bytes(x, &ent) + 511) / 512);
	set_time(st, ent.mtime_sec, ent.mtime_nsec);
}

/* Entry i of the snapshot s; a hard link reports its target, inode number included. */
static void entry_stat(const struct idx *x, const struct snap *s, uint32_t i, struct stat *st)
{
	struct idx_entry ent;

	idx_get(x, i, &ent);
	if (ent.target != i) {
		i = ent.target;
		idx_get(x, i, &ent);
	}
	if (i == IDX_ROOT)
		snaproot_stat(s, st);
	else
		stored_stat(x, s->aid, i, &ent, st);
}

/*
 * Index x of s was just opened: keep its root's stored attributes, and have
 * the kernel forget the ones it was given from the file alone if they differ.
 * Under s->mu.
 */
static void learn_root(struct tree *t, struct snap *s, const struct idx *x)
{
	struct idx_entry ent;
	struct stat was;

	if (atomic_load(&s->root_known))
		return;
	idx_get(x, IDX_ROOT, &ent);
	snaproot_stat(s, &was);
	if (ent.flags & IDX_F_IMPLICIT) {
		/* none stored: shown from the file still, with the links its subdirectories make */
		s->root_st = was;
		s->root_st.st_nlink = ent.nlink;
	} else {
		stored_stat(x, s->aid, IDX_ROOT, &ent, &s->root_st);
		atomic_store(&s->root_xattrs, ent.nxattrs > 0);
	}
	if (was.st_mode != s->root_st.st_mode || was.st_uid != s->root_st.st_uid ||
	    was.st_gid != s->root_st.st_gid || was.st_nlink != s->root_st.st_nlink ||
	    was.st_mtim.tv_sec != s->root_st.st_mtim.tv_sec ||
	    was.st_mtim.tv_nsec != s->root_st.st_mtim.tv_nsec) {
		atomic_store(&s->root_inval, true);
		atomic_store(&t->root_invals, true);
	}
	atomic_store_explicit(&s->root_known, true, memory_order_release);
	atomic_store(&s->root_learnt, true);
}

static void child_stat(const struct dir *d, const struct child *c, struct stat *st)
{
	if (c->kind == K_DIR)
		dir_stat(c->dir, st);
	else if (c->kind == K_LATEST)
		latest_stat(d, st);
	else
		snaproot_stat(c->snap, st);
}

int tree_getattr(struct tree *t, uint64_t ino, struct stat *st, struct err *e)
{
	struct node n;

	pthread_rwlock_rdlock(&t->lock);
	if (resolve(t, ino, &n, e) < 0) {
		pthread_rwlock_unlock(&t->lock);
		return -1;
	}
	if (n.kind == N_DIR)
		dir_stat(n.dir, st);
	else if (n.kind == N_LATEST)
		latest_stat(n.dir, st);
	else if (n.kind == N_SNAPROOT)
		snaproot_stat(n.snap, st);
	pthread_rwlock_unlock(&t->lock);
	if (n.kind == N_ENTRY) {
		if (node_index(t, &n, e) < 0) {
			node_put(&n);
			return -1;
		}
		entry_stat(n.ar->x, n.snap, n.entry, st);
	}
	node_put(&n);
	return 0;
}

static bool count_ref(struct tree *t, struct snap *s, uint32_t k);

static int lookup_store(struct tree *t, const struct dir *d, const char *name, struct stat *st,
			struct err *e)
{
	struct child key = { .name = (char *)name };
	const struct child *c =
		d->nkids ? bsearch(&key, d->kids, d->nkids, sizeof(key), cmp_child) : NULL;

	if (!c)
		return err_set(e, ENOENT, "no such snapshot");
	child_stat(d, c, st);
	if (c->kind == K_SNAP && !count_ref(t, c->snap, IDX_ROOT))
		return err_set(e, ENOENT, "no such snapshot");
	return 0;
}

/* How long the kernel may keep a name in s: not at all once s was pruned. */
static double entry_timeout(const struct snap *s, uint64_t ino)
{
	return atomic_load(&s->gone) ? 0.0 : tree_timeout(ino);
}

int tree_lookup(struct tree *t, uint64_t parent, const char *name, struct stat *st,
		double *timeout, struct err *e)
{
	struct node n;
	uint32_t i;
	int rc;

	pthread_rwlock_rdlock(&t->lock);
	rc = resolve(t, parent, &n, e);
	if (rc == 0 && n.kind == N_DIR)
		rc = lookup_store(t, n.dir, name, st, e) < 0 ? -1 : 1;
	pthread_rwlock_unlock(&t->lock);
	if (rc != 0) {
		*timeout = tree_timeout(st->st_ino);
		return rc < 0 ? -1 : 0;
	}
	if (n.kind == N_LATEST) {
		node_put(&n);
		return err_set(e, ENOTDIR, "not a directory");
	}
	if (node_index(t, &n, e) < 0) {
		node_put(&n);
		return -1;
	}
	i = idx_lookup(n.ar->x, n.entry, name, strlen(name));
	if (i == IDX_NONE) {
		rc = err_set(e, ENOENT, "no such file");
	} else {
		entry_stat(n.ar->x, n.snap, i, st);
		if (!count_ref(t, n.snap, (uint32_t)(st->st_ino & 0xFFFFFFFFu) - 1))
			rc = err_set(e, ENOENT, "the snapshot was removed");
		*timeout = entry_timeout(n.snap, st->st_ino);
	}
	node_put(&n);
	return rc;
}

int tree_readlink(struct tree *t, uint64_t ino, char *buf, size_t size, struct err *e)
{
	struct node n;
	struct idx_entry ent;
	int rc = 0;

	pthread_rwlock_rdlock(&t->lock);
	if (resolve(t, ino, &n, e) < 0) {
		pthread_rwlock_unlock(&t->lock);
		return -1;
	}
	if (n.kind == N_LATEST)
		snprintf(buf, size, "%s", n.dir->latest);
	pthread_rwlock_unlock(&t->lock);
	if (n.kind == N_LATEST)
		return 0;
	if (n.kind != N_ENTRY || node_index(t, &n, e) < 0) {
		node_put(&n);
		return n.kind != N_ENTRY ? err_set(e, EINVAL, "not a symlink") : -1;
	}
	idx_get(n.ar->x, n.entry, &ent);
	if (ent.target != n.entry)	/* a hard link to a symlink: the symlink's text */
		idx_get(n.ar->x, ent.target, &ent);
	if (!S_ISLNK(ent.mode) || ent.link_len >= size)
		rc = err_set(e, S_ISLNK(ent.mode) ? ENAMETOOLONG : EINVAL, "not a symlink");
	else
		snprintf(buf, size, "%.*s", (int)ent.link_len, ent.link);
	node_put(&n);
	return rc;
}

/* The offset after the j-th child listed (d->order). */
static off_t kid_off(const struct dir *d, size_t j)
{
	return d->order ? (off_t)d->kids[d->order[j]].serial + 3 : (off_t)j + 3;
}

/* Under the read lock: a listed snapshot cannot leave meanwhile, so counting cannot fail. */
static int readdir_store(struct tree *t, const struct dir *d, uint64_t parent, off_t pos,
			 bool count, tree_dirent_fn fn, void *ctx)
{
	struct stat st;
	size_t lo = 0, hi = d->nkids;

	for (; pos < 2; pos++) {
		memset(&st, 0, sizeof(st));
		st.st_ino = pos == 0 ? d->ino : parent;
		st.st_mode = S_IFDIR | 0755;
		if (fn(ctx, pos == 0 ? "." : "..", &st, tree_timeout(st.st_ino), pos + 1))
			return 0;
	}
	while (lo < hi) {	/* the first child not yet listed: offsets grow along the order */
		size_t mid = lo + (hi - lo) / 2;
		if (kid_off(d, mid) <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t j = lo; j < d->nkids; j++) {
		const struct child *c = &d->kids[d->order ? d->order[j] : j];
		child_stat(d, c, &st);
		if (fn(ctx, c->name, &st, tree_timeout(st.st_ino), kid_off(d, j)))
			break;
		if (count && c->kind == K_SNAP)
			count_ref(t, c->snap, IDX_ROOT);
	}
	return 0;
}

/* The inode of a store directory's parent: the store's root for the top level. */
static uint64_t parent_ino(const struct tree *t, const struct dir *d)
{
	const char *slash = strrchr(d->rel, '/');
	char rel[PATH_MAX];

	if (!*d->rel || !slash)
		return TREE_ROOT_INO;
	snprintf(rel, sizeof(rel), "%.*s", (int)(slash - d->rel), d->rel);
	const struct dir *p = find_dir_rel(t, rel);
	return p ? p->ino : TREE_ROOT_INO;
}

/*
 * Counted before it is handed over (the snapshot may be leaving: then the
 * listing ends), and given back when it did not fit.
 */
static void readdir_archive(struct tree *t, const struct node *n, off_t pos, bool count,
			    tree_dirent_fn fn, void *ctx)
{
	const struct idx *x = n->ar->x;
	struct idx_entry d, c;
	struct stat st;
	char name[NAME_MAX + 1];

	idx_get(x, n->entry, &d);
	for (; pos < (off_t)d.nchildren + 2; pos++) {
		if (pos < 2) {
			memset(&st, 0, sizeof(st));
			st.st_mode = S_IFDIR | 0755;
			st.st_ino = pos == 0 ? entry_ino(n->snap->aid, n->entry)
			      : n->entry == IDX_ROOT ? n->snap->parent
						       : entry_ino(n->snap->aid, d.parent);
			if (fn(ctx, pos == 0 ? "." : "..", &st, tree_timeout(st.st_ino), pos + 1))
				return;
			continue;
		}
		uint32_t k = d.first_child + (uint32_t)(pos - 2);
		idx_get(x, k, &c);
		snprintf(name, sizeof(name), "%.*s", (int)c.name_len, c.name);
		entry_stat(x, n->snap, k, &st);
		if (count && !count_ref(t, n->snap, (uint32_t)(st.st_ino & 0xFFFFFFFFu) - 1))
			return;
		if (fn(ctx, name, &st, entry_timeout(n->snap, st.st_ino), pos + 1)) {
			if (count)
				tree_forget(t, st.st_ino, 1);
			return;
		}
	}
}

int tree_readdir(struct tree *t, uint64_t ino, off_t pos, bool count, tree_dirent_fn fn,
		 void *ctx, struct err *e)
{
	struct node n;
	struct idx_entry ent;

	pthread_rwlock_rdlock(&t->lock);
	if (resolve(t, ino, &n, e) < 0) {
		pthread_rwlock_unlock(&t->lock);
		return -1;
	}
	if (n.kind == N_DIR || n.kind == N_LATEST) {
		int rc = n.kind == N_DIR ? readdir_store(t, n.dir, parent_ino(t, n.dir), pos, count,
							 fn, ctx)
					 : err_set(e, ENOTDIR, "not a directory");
		pthread_rwlock_unlock(&t->lock);
		return rc;
	}
	pthread_rwlock_unlock(&t->lock);
	if (node_index(t, &n, e) < 0) {
		node_put(&n);
		return -1;
	}
	idx_get(n.ar->x, n.entry, &ent);
	if (!S_ISDIR(ent.mode)) {
		node_put(&n);
		return err_set(e, ENOTDIR, "not a directory");
	}
	readdir_archive(t, &n, pos, count, fn, ctx);
	node_put(&n);
	return 0;
}

/* The entry that holds a node's metadata: its hard link target. */
static void target_of(const struct node *n, struct idx_entry *ent)
{
	idx_get(n->ar->x, n->entry, ent);
	if (ent->target != n->entry)
		idx_get(n->ar->x, ent->target, ent);
}

/*
 * Whether ino's xattrs are to be read: all but a snapshot's own directory's
 * unless its stored root has some. open: the index may be opened to learn it.
 * `ls -l` of a store must open no archive, and it asks every entry for its
 * list (coreutils 9.6 on) or for security.selinux and system.* names (ACLs):
 * those, and the list, show once the snapshot is entered; a user.* or other
 * name asked for by name opens the index at once.
 */
static bool root_xattrs(struct tree *t, uint64_t ino, bool open)
{
	struct node n;
	bool has;

	if (!tree_ino_is_snaproot(ino))
		return true;
	if (snaproot(t, ino, open, &n) < 0)
		return false;
	has = atomic_load(&n.snap->root_xattrs);
	node_put(&n);
	return has;
}

/* The names `ls -l` asks of every entry it lists. */
static bool ls_probe(const char *name)
{
	return strcmp(name, "security.selinux") == 0 || strncmp(name, "system.", 7) == 0;
}

ssize_t tree_getxattr(struct tree *t, uint64_t ino, const char *name, void *buf, size_t size,
		      struct err *e)
{
	struct node n;
	struct idx_entry ent;
	struct idx_xattr xa;
	ssize_t rc;

	if (ino == TREE_ROOT_INO || (ino & STORE_BIT) || !root_xattrs(t, ino, !ls_probe(name)))
		return err_set(e, ENODATA, "no such attribute");
	if (get_entry(t, ino, &n, e) < 0)
		return -1;
	target_of(&n, &ent);
	rc = err_set(e, ENODATA, "no such attribute");
	for (uint32_t k = 0; k < ent.nxattrs; k++) {
		idx_xattr(n.ar->x, &ent, k, &xa);
		if (xa.name_len != strlen(name) || memcmp(xa.name, name, xa.name_len) != 0)
			continue;
		if (size && xa.value_len > size)
			rc = err_set(e, ERANGE, "buffer too small");
		else
			rc = (ssize_t)xa.value_len;
		if (size && xa.value_len <= size)
			memcpy(buf, xa.value, xa.value_len);
		break;
	}
	node_put(&n);
	return rc;
}

ssize_t tree_listxattr(struct tree *t, uint64_t ino, void *buf, size_t size, bool trusted,
		       struct err *e)
{
	struct node n;
	struct idx_entry ent;
	struct idx_xattr xa;
	size_t need = 0;

	if (ino == TREE_ROOT_INO || (ino & STORE_BIT) || !root_xattrs(t, ino, false))
		return 0;
	if (get_entry(t, ino, &n, e) < 0)
		return -1;
	target_of(&n, &ent);
	for (uint32_t k = 0; k < ent.nxattrs; k++) {
		idx_xattr(n.ar->x, &ent, k, &xa);
		if (!trusted && xa.name_len >= 8 && memcmp(xa.name, "trusted.", 8) == 0)
			continue;
		if (size && need + xa.name_len + 1 <= size) {
			memcpy((char *)buf + need, xa.name, xa.name_len);
			((char *)buf)[need + xa.name_len] = '\0';
		}
		need += xa.name_len + 1;
	}
	node_put(&n);
	if (size && need > size)
		return err_set(e, ERANGE, "buffer too small");
	return (ssize_t)need;
}

/* A regular file's node: its hard link target's entry, index open. */
static int get_file(struct tree *t, uint64_t ino, struct node *n, struct idx_entry *ent,
		    struct err *e)
{
	if (get_entry(t, ino, n, e) < 0)
		return -1;
	idx_get(n->ar->x, n->entry, ent);
	if (!S_ISREG(ent->mode) && !(ent->flags & IDX_F_HARDLINK)) {
		node_put(n);
		return err_set(e, S_ISDIR(ent->mode) ? EISDIR : EINVAL, "not a regular file");
	}
	if (ent->target != n->entry) {
		n->entry = ent->target;
		idx_get(n->ar->x, n->entry, ent);
		if (!S_ISREG(ent->mode)) {	/* a hard link to a symlink, FIFO or device */
			node_put(n);
			return err_set(e, EINVAL, "not a regular file");
		}
	}
	return 0;
}

/* A read that met damage (e, EIO): logged once per archive, not on every read. */
static void report_damage(struct tree *t, struct snap *s, const struct err *e)
{
	if (e && e->code == EIO && !atomic_exchange(&s->reported, true) && t->o.damaged)
		t->o.damaged(t->o.ctx, e->msg);
}

int tree_open(struct tree *t, uint64_t ino, struct err *e)
{
	struct node n;
	struct idx_entry ent;

	if (get_file(t, ino, &n, &ent, e) < 0)
		return -1;
	node_put(&n);
	return 0;
}

ssize_t tree_read(struct tree *t, uint64_t ino, void *buf, size_t len, off_t off,
		  struct idx_reader *r, struct err *e)
{
	struct node n;
	struct idx_entry ent;
	ssize_t got;

	if (get_file(t, ino, &n, &ent, e) < 0)
		return -1;
	got = idx_pread(n.ar->x, n.entry, buf, len, (uint64_t)off, r, e);
	report_damage(t, n.snap, got < 0 ? e : NULL);
	node_put(&n);
	return got;
}

int tree_read_pieces(struct tree *t, uint64_t ino, size_t len, off_t off, struct idx_reader *r,
		     const void **base, size_t *size, void **pin, int max, struct err *e)
{
	struct node n;
	struct idx_entry ent;
	int got;

	if (get_file(t, ino, &n, &ent, e) < 0)
		return -1;
	got = idx_pread_pieces(n.ar->x, n.entry, len, (uint64_t)off, r, base, size, pin, max, e);
	report_damage(t, n.snap, got < 0 ? e : NULL);
	/* the pinned frames belong to the frame cache: they outlive the index */
	node_put(&n);
	return got;
}

/* Entries looked at each way from the file read: what the pusher lists at most (ops.c). */
#define SIB_SCAN 4096u

/* A file whose bytes are its own in the archive, placed by its data offset. */
static bool has_data(const struct idx_entry *s, uint32_t i)
{
	return S_ISREG(s->mode) && s->target == i;
}

/* A file pushed with its frame: small, plain, its own data, stored whole. */
static bool pushable(const struct idx_entry *s, uint32_t i)
{
	return has_data(s, i) && !(s->flags & IDX_F_SPARSE) && s->size > 0 &&
	       s->size <= SIB_MAX_SIZE;
}

/*
 * snapkeep writes and indexes each directory's entries sorted by name, so a
 * directory's files lie in the archive in the index's order, and the files of
 * a frame are the read file's neighbours in its directory: the scan goes back
 * to the first file whose bytes start before the frame and forward to the
 * first that starts past it, SIB_SCAN entries at most each way. A frame's
 * files of other directories are not listed. Where the order differs (paths
 * given to snapkeep out of order) fewer files are listed; a file is listed
 * only if its bytes lie whole in the frame.
 */
int tree_siblings(struct tree *t, uint64_t ino, off_t off, uint64_t serial, struct tree_sib *v,
		  int max)
{
	struct node n;
	struct idx_entry ent, dir, s;
	uint64_t at, fdoff;
	uint32_t flen, first, end, j, start;
	int k = 0;
	struct err e = { 0 };

	if (max <= 0 || get_file(t, ino, &n, &ent, &e) < 0)
		return 0;
	const struct idx *x = n.ar->x;
	at = ent.data_off + (uint64_t)off;
	if (!idx_is_native(x) || idx_serial(x) != serial || !idx_frame_at(x, at, &fdoff, &flen)) {
		node_put(&n);
		return 0;
	}
	idx_get(x, ent.parent, &dir);
	first = dir.first_child;
	end = first + dir.nchildren;
	for (start = j = n.entry; j > first && n.entry - j < SIB_SCAN;) {
		idx_get(x, --j, &s);
		if (!has_data(&s, j))
			continue;
		if (s.data_off < fdoff)
			break;
		if (s.data_off < fdoff + flen)
			start = j;
	}
	for (j = start; j < end && (j <= n.entry || j - n.entry <= SIB_SCAN) && k < max; j++) {
		idx_get(x, j, &s);
		if (j == n.entry || !has_data(&s, j))
			continue;
		if (s.data_off >= fdoff + flen)
			break;
		if (!pushable(&s, j) || s.data_off < fdoff || s.data_off + s.size > fdoff + flen)
			continue;
		v[k].ino = entry_ino(n.snap->aid, j);
		v[k].delta = (int64_t)(s.data_off - at);
		v[k++].size = (uint32_t)s.size;
	}
	node_put(&n);
	return k;
}

/* SEEK_DATA and SEEK_HOLE from the sparse map, so cp and tar skip holes without reading them. */
off_t tree_lseek(struct tree *t, uint64_t ino, off_t off, int whence, struct err *e)
{
	struct node n;
	struct idx_entry ent;
	uint64_t pos = (uint64_t)off;
	off_t r;

	if (get_file(t, ino, &n, &ent, e) < 0)
		return -1;
	if (off < 0 || pos >= ent.size) {
		r = err_set(e, ENXIO, "past the end");
	} else if (!(ent.flags & IDX_F_SPARSE)) {
		r = whence == SEEK_DATA ? off : (off_t)ent.size;
	} else {
		r = -2;
		for (uint32_t k = 0; k < ent.nsparse && r == -2; k++) {
			struct idx_sparse sp;
			idx_sparse(n.ar->x, &ent, k, &sp);
			if (sp.off + sp.len <= pos)
				continue;
			if (whence == SEEK_DATA)
				r = (off_t)(sp.off > pos ? sp.off : pos);
			else if (sp.off > pos)
				r = (off_t)pos;	/* pos lies in a hole */
			else
				pos = sp.off + sp.len;	/* data to here; the next region may go on */
		}
		if (r == -2 && whence == SEEK_DATA)
			r = err_set(e, ENXIO, "no data past this offset");
		else if (r == -2)
			r = (off_t)(pos < ent.size ? pos : ent.size);
	}
	node_put(&n);
	return r;
}

/* The snapshot an inode number lies in, with a reference; NULL for the store's own. */
static struct snap *snap_of(struct tree *t, uint64_t ino)
{
	struct snap *s;

	if (ino == TREE_ROOT_INO || (ino & STORE_BIT))
		return NULL;
	s = aid_find(t, (uint32_t)(ino >> 32));
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

/*
 * The kernel is given entry k of s (a LOOKUP or READDIRPLUS reply): counted
 * before the reply goes, with the snapshot in hand, so that a FORGET always
 * finds it. False when s already left (the caller then answers ENOENT).
 */
static bool count_ref(struct tree *t, struct snap *s, uint32_t k)
{
	bool ok;

	pthread_mutex_lock(&s->mu);
	ok = !s->removed;
	if (ok) {
		s->krefs++;
		if (k != IDX_ROOT && s->inner++ == 0 && s->ar)
			keep_fd(t, s, s->ar->x);
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void tree_forget(struct tree *t, uint64_t ino, uint64_t n)
{
	struct snap *s;
	bool last = false;

	pthread_rwlock_rdlock(&t->lock);
	if ((s = snap_of(t, ino))) {
		pthread_mutex_lock(&s->mu);
		s->krefs -= n < s->krefs ? n : s->krefs;
		if ((uint32_t)(ino & 0xFFFFFFFFu) - 1 != IDX_ROOT) {
			s->inner -= n < s->inner ? n : s->inner;
			if (s->inner == 0)
				drop_fd(t, s);
		}
		last = s->krefs == 0;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_rwlock_unlock(&t->lock);
	if (last && atomic_load(&s->gone)) {
		/* pruned, and now unknown to the kernel: it goes (unless counted again meanwhile) */
		pthread_rwlock_wrlock(&t->lock);
		pthread_mutex_lock(&s->mu);
		last = s->krefs == 0 && !s->removed;
		s->removed |= last;
		pthread_mutex_unlock(&s->mu);
		if (last)
			release_snap(t, s);
		pthread_rwlock_unlock(&t->lock);
	}
	snap_put(s);
}

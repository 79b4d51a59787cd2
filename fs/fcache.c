#include "fcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fillmem.h"
#include "zseek.h"

#define NSHARDS 16u
#define NBUCKETS 256u	/* per shard */
#define FRAME_ROUND 65536u	/* frame buffers come in size classes of this step */

struct frame {
	uint64_t serial;
	uint32_t no, len;
	uint32_t cap;		/* room for data: len rounded up to FRAME_ROUND */
	size_t map;		/* bytes mapped for the frame, header included */
	unsigned refs;
	bool cached;		/* in the hash and the LRU list; else freed at the last put */
	bool claimed;		/* fcache_claim() said yes once */
	struct frame *hnext;
	struct frame *prev, *next;	/* LRU: head is the most recent */
	unsigned char data[];
};

struct shard {
	pthread_mutex_t mu;
	struct frame *buckets[NBUCKETS];
	struct frame *head, *tail;
	size_t bytes;
	uint64_t hits, misses;
};

struct fcache {
	size_t max_bytes;
	size_t max_per_shard;
	atomic_size_t mapped;		/* every frame mapped: cached, pinned, decoding, spare */
	atomic_uint next_victim;	/* the shard make_room() starts at */
	struct shard shards[NSHARDS];
	pthread_mutex_t dmu;		/* the pool of decompression contexts */
	pthread_cond_t dcv;
	struct zseek_dctx **dpool;	/* max_dctx */
	size_t ndpool, ndctx, max_dctx;	/* idle, made, at most */
	/*
	 * Frames are mapped one by one (munmap gives the memory back exactly; malloc
	 * spread them over the threads' arenas, and RSS grew half again above the
	 * bound), and an evicted frame's buffer is kept as a spare for the next
	 * decode of its size class: once the cache is full, a miss reuses the pages
	 * an eviction gave back instead of faulting in new ones. Newest first.
	 */
	pthread_mutex_t fmu;
	struct frame *spare;		/* linked by next */
	size_t spare_bytes, max_spare;
	struct idx_frames hooks;
};

static uint64_t mix(uint64_t serial, uint32_t no)
{
	uint64_t h = serial * 0x9E3779B97F4A7C15ull ^ (no + 0x632BE59BD9B4E019ull);

	return h ^ (h >> 29);
}

static void lru_unlink(struct shard *s, struct frame *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		s->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		s->tail = f->prev;
	f->prev = f->next = NULL;
}

static void lru_push(struct shard *s, struct frame *f)
{
	f->prev = NULL;
	f->next = s->head;
	if (s->head)
		s->head->prev = f;
	s->head = f;
	if (!s->tail)
		s->tail = f;
}

static size_t frame_cap(uint32_t len)
{
	return ((size_t)len + FRAME_ROUND - 1) / FRAME_ROUND * FRAME_ROUND;
}

static void frame_unmap(struct fcache *c, struct frame *f)
{
	atomic_fetch_sub(&c->mapped, f->map);
	munmap(f, f->map);
}

static void frame_release(struct fcache *c, struct frame *f);
static bool evict_one(struct fcache *c, struct shard *s);

/*
 * Make room under the bound: the least recently used frame no one holds, from
 * the shards in turn, becomes a spare (a buffer to reuse) or is unmapped. False
 * when every frame is held.
 */
static bool make_room(struct fcache *c)
{
	unsigned start = atomic_fetch_add(&c->next_victim, 1);

	for (unsigned k = 0; k < NSHARDS; k++) {
		struct shard *s = &c->shards[(start + k) % NSHARDS];
		bool done;
		pthread_mutex_lock(&s->mu);
		done = evict_one(c, s);
		pthread_mutex_unlock(&s->mu);
		if (done)
			return true;
	}
	return false;
}

/* Count map more bytes as mapped if they fit under the bound. */
static bool reserve(struct fcache *c, size_t map)
{
	size_t cur = atomic_load(&c->mapped);

	while (cur + map <= c->max_bytes)
		if (atomic_compare_exchange_weak(&c->mapped, &cur, cur + map))
			return true;
	return false;
}

/* A spare buffer of size class cap; or NULL, and past the bound the other spares are unmapped. */
static struct frame *take_spare(struct fcache *c, size_t cap, size_t map)
{
	struct frame *f = NULL, **p, *drop = NULL;

	pthread_mutex_lock(&c->fmu);
	for (p = &c->spare; *p; p = &(*p)->next)
		if ((*p)->cap == cap) {
			f = *p;
			*p = f->next;
			c->spare_bytes -= f->map;
			break;
		}
	if (!f && atomic_load(&c->mapped) + map > c->max_bytes) {
		drop = c->spare;
		c->spare = NULL;
		c->spare_bytes = 0;
	}
	pthread_mutex_unlock(&c->fmu);
	while (drop) {
		struct frame *next = drop->next;
		frame_unmap(c, drop);
		drop = next;
	}
	return f;
}

#define ROOM_TRIES 64	/* frames made spare for one allocation before passing the bound */

/*
 * A frame buffer with room for len bytes. Everything mapped counts against
 * the bound, so once the cache is full a new frame reuses the buffer of the
 * least recently used one (no page faults, no zeroing); a frame of another
 * size class is unmapped to make room. Only when every frame is pinned does
 * the mapping pass the bound.
 */
static struct frame *frame_alloc(struct fcache *c, uint32_t len)
{
	size_t cap = frame_cap(len), page = (size_t)sysconf(_SC_PAGESIZE);
	size_t map = (sizeof(struct frame) + cap + page - 1) / page * page;
	struct frame *f;
	void *m;

	for (int k = 0;; k++) {
		if ((f = take_spare(c, cap, map)))
			return f;
		if (reserve(c, map))
			break;
		if (k == ROOM_TRIES || !make_room(c)) {
			atomic_fetch_add(&c->mapped, map);	/* every frame is held */
			break;
		}
	}
	/* the decoder writes all of the frame but the rounding's tail: those pages are made at once */
	if (!(m = fill_map(map, sizeof(struct frame) + len))) {
		atomic_fetch_sub(&c->mapped, map);
		return NULL;
	}
	f = m;
	f->cap = (uint32_t)cap;
	f->map = map;
	return f;
}

/*
 * Give a frame's buffer back: kept as a spare while spares fit in max_spare
 * and the bound holds, else unmapped.
 */
static void frame_release(struct fcache *c, struct frame *f)
{
	struct frame *drop = NULL, **p;

	if (atomic_load(&c->mapped) > c->max_bytes) {
		frame_unmap(c, f);
		return;
	}
	pthread_mutex_lock(&c->fmu);
	f->next = c->spare;
	c->spare = f;
	c->spare_bytes += f->map;
	if (c->spare_bytes > c->max_spare) {
		size_t kept = 0;
		for (p = &c->spare; *p && kept + (*p)->map <= c->max_spare; p = &(*p)->next)
			kept += (*p)->map;
		drop = *p;
		*p = NULL;
		c->spare_bytes = kept;
	}
	pthread_mutex_unlock(&c->fmu);
	while (drop) {
		struct frame *next = drop->next;
		frame_unmap(c, drop);
		drop = next;
	}
}

static void hash_remove(struct shard *s, struct frame *f)
{
	struct frame **p = &s->buckets[mix(f->serial, f->no) % NBUCKETS];

	while (*p && *p != f)
		p = &(*p)->hnext;
	if (*p)
		*p = f->hnext;
}

/* Take f out of its shard: released now if no one holds it, else at its put. */
static void uncache(struct fcache *c, struct shard *s, struct frame *f)
{
	hash_remove(s, f);
	lru_unlink(s, f);
	s->bytes -= f->map;
	f->cached = false;
	if (f->refs == 0)
		frame_release(c, f);
}

/* Drop least recently used frames until the shard fits in its share, keeping the newest. */
static void evict(struct fcache *c, struct shard *s)
{
	struct frame *f = s->tail;

	while (f && s->bytes > c->max_per_shard && f != s->head) {
		struct frame *prev = f->prev;
		uncache(c, s, f);
		f = prev;
	}
}

/* Drop the least recently used frame no one holds (dropping a held one frees nothing). */
static bool evict_one(struct fcache *c, struct shard *s)
{
	for (struct frame *f = s->tail; f; f = f->prev)
		if (f->refs == 0) {
			uncache(c, s, f);
			return true;
		}
	return false;
}

static struct frame *find(struct shard *s, uint64_t serial, uint32_t no)
{
	struct frame *f = s->buckets[mix(serial, no) % NBUCKETS];

	while (f && !(f->serial == serial && f->no == no))
		f = f->hnext;
	return f;
}

/*
 * A decompression context, waiting while max_dctx are decoding: decoding is
 * CPU work, so more contexts than CPUs would only hold more memory. But a
 * context is held while its frame is read, too, and a read may wait for a
 * slow or hung disk: a thread that waited DCTX_WAIT_MS makes one of its own,
 * freed when given back, so that readers stuck on one archive do not stop
 * every other.
 */
#define DCTX_WAIT_MS 200

static struct zseek_dctx *dctx_take(struct fcache *c)
{
	struct zseek_dctx *d = NULL;
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += DCTX_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&c->dmu);
	while (!c->ndpool && c->ndctx >= c->max_dctx)
		if (pthread_cond_timedwait(&c->dcv, &c->dmu, &until) == ETIMEDOUT)
			break;
	if (c->ndpool)
		d = c->dpool[--c->ndpool];
	else
		c->ndctx++;
	pthread_mutex_unlock(&c->dmu);
	if (!d && !(d = zseek_dctx_new())) {
		pthread_mutex_lock(&c->dmu);
		c->ndctx--;
		pthread_cond_signal(&c->dcv);
		pthread_mutex_unlock(&c->dmu);
	}
	return d;
}

static void dctx_give(struct fcache *c, struct zseek_dctx *d)
{
	bool extra;

	pthread_mutex_lock(&c->dmu);
	extra = c->ndctx > c->max_dctx;	/* made past the bound: not kept */
	if (extra)
		c->ndctx--;
	else
		c->dpool[c->ndpool++] = d;
	pthread_cond_signal(&c->dcv);
	pthread_mutex_unlock(&c->dmu);
	if (extra)
		zseek_dctx_free(d);
}

/* Decode outside any lock: two threads may decode one frame at once; one copy is kept. */
static struct frame *decode(struct fcache *c, struct idx *x, uint32_t no, struct err *e)
{
	uint32_t len = idx_frame_size(x, no);
	struct zseek_dctx *d;

	idx_frame_prefetch(x, no);	/* the disk works while this waits for a context */
	d = dctx_take(c);
	struct frame *f = d ? frame_alloc(c, len) : NULL;

	if (!f) {
		if (d)
			dctx_give(c, d);
		err_set(e, ENOMEM, "out of memory for a frame of '%s'", idx_name(x));
		return NULL;
	}
	if (idx_frame_decode(x, no, d, f->data, e) < 0) {
		frame_release(c, f);
		dctx_give(c, d);
		return NULL;
	}
	dctx_give(c, d);
	f->serial = idx_serial(x);
	f->no = no;
	f->len = len;
	f->refs = 1;
	f->cached = true;
	f->claimed = false;
	f->prev = f->next = f->hnext = NULL;
	return f;
}

static const unsigned char *get(void *ctx, struct idx *x, uint32_t no, uint32_t *len, void **pin,
				struct err *e)
{
	struct fcache *c = ctx;
	uint64_t serial = idx_serial(x);
	struct shard *s = &c->shards[mix(serial, no) % NSHARDS];
	struct frame *f, *mine;

	pthread_mutex_lock(&s->mu);
	if ((f = find(s, serial, no))) {
		f->refs++;
		s->hits++;
		lru_unlink(s, f);
		lru_push(s, f);
		pthread_mutex_unlock(&s->mu);
		goto done;
	}
	s->misses++;
	pthread_mutex_unlock(&s->mu);
	if (!(mine = decode(c, x, no, e)))
		return NULL;
	pthread_mutex_lock(&s->mu);
	if ((f = find(s, serial, no))) {
		f->refs++;
		frame_release(c, mine);
	} else {
		f = mine;
		struct frame **b = &s->buckets[mix(serial, no) % NBUCKETS];
		f->hnext = *b;
		*b = f;
		lru_push(s, f);
		s->bytes += f->map;
		evict(c, s);
	}
	pthread_mutex_unlock(&s->mu);
done:
	*len = f->len;
	*pin = f;
	return f->data;
}

static void put(void *ctx, void *pin)
{
	struct fcache *c = ctx;
	struct frame *f = pin;
	struct shard *s = &c->shards[mix(f->serial, f->no) % NSHARDS];
	bool gone;

	pthread_mutex_lock(&s->mu);
	gone = --f->refs == 0 && !f->cached;
	pthread_mutex_unlock(&s->mu);
	if (gone)
		frame_release(c, f);
}

struct fcache *fcache_new(size_t max_bytes)
{
	struct fcache *c = calloc(1, sizeof(*c));
	long ncpu;

	if (!c)
		return NULL;
	/*
	 * The bound is of memory mapped, headers and rounding included: spares hold
	 * up to a 32nd of it.
	 */
	c->max_bytes = max_bytes;
	atomic_init(&c->mapped, 0);
	atomic_init(&c->next_victim, 0);
	c->max_spare = max_bytes / 32;
	/* shards may hold twice their share: the bound itself is kept by frame_alloc() */
	c->max_per_shard = (max_bytes - c->max_spare) / NSHARDS * 2;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->max_dctx = ncpu > 2 ? (size_t)ncpu : 2;
	if (!(c->dpool = calloc(c->max_dctx, sizeof(*c->dpool)))) {
		free(c);
		return NULL;
	}
	for (unsigned i = 0; i < NSHARDS; i++)
		pthread_mutex_init(&c->shards[i].mu, NULL);
	pthread_mutex_init(&c->dmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* dctx_take()'s deadline */
	pthread_cond_init(&c->dcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->fmu, NULL);
	c->hooks.get = get;
	c->hooks.put = put;
	c->hooks.ctx = c;
	return c;
}

void fcache_free(struct fcache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct frame *f = c->shards[i].head;
		while (f) {
			struct frame *next = f->next;
			munmap(f, f->map);
			f = next;
		}
		pthread_mutex_destroy(&c->shards[i].mu);
	}
	for (size_t i = 0; i < c->ndpool; i++)
		zseek_dctx_free(c->dpool[i]);
	free(c->dpool);
	pthread_cond_destroy(&c->dcv);
	pthread_mutex_destroy(&c->dmu);
	while (c->spare) {
		struct frame *f = c->spare;
		c->spare = f->next;
		munmap(f, f->map);
	}
	pthread_mutex_destroy(&c->fmu);
	free(c);
}

bool fcache_claim(struct fcache *c, void *pin)
{
	struct frame *f = pin;
	struct shard *s = &c->shards[mix(f->serial, f->no) % NSHARDS];
	bool first;

	pthread_mutex_lock(&s->mu);
	first = !f->claimed;
	f->claimed = true;
	pthread_mutex_unlock(&s->mu);
	return first;
}

void fcache_unpin(struct fcache *c, void *pin)
{
	put(c, pin);
}

const unsigned char *fcache_pinned(const void *pin, uint32_t *len, uint64_t *serial)
{
	const struct frame *f = pin;

	*len = f->len;
	*serial = f->serial;
	return f->data;
}

const struct idx_frames *fcache_frames(struct fcache *c)
{
	return &c->hooks;
}

void fcache_stats(struct fcache *c, struct fcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		out->hits += c->shards[i].hits;
		out->misses += c->shards[i].misses;
		out->bytes += c->shards[i].bytes;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
	out->mapped = atomic_load(&c->mapped);
}

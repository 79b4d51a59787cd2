/*
 * gentree: a deterministic tree shaped like the orchestrator-cc service, for
 * benchmarking `snapkeep take` (docs/BENCHMARKS.md).
 *
 *	gentree DIR [SCALE]
 *
 * At SCALE 1.0 (the default) it writes about 1.6 GiB:
 *	config/			a few YAML files
 *	config/personalities/	a few .txt files
 *	queue/			20,000 YAML messages of 200 B - 4 KiB
 *	status/			400 small JSON and YAML files
 *	logs/			600 MiB of log lines (zstd -3: ~5x)
 *	state/worker-state.db	1 GiB of database-like pages (zstd -3: ~1.9x)
 *	.env
 * SCALE multiplies every count and size (0.05 makes a quick ~80 MiB tree).
 * The same arguments always give the same bytes, names and mtimes: one seeded
 * PRNG (xoshiro256**, seeded by splitmix64), a stream per file, no clock.
 * DIR must not exist yet, or be empty. Depends on nothing but libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEED 0x736e617066736265ull	/* "snapfsbe" */
#define EPOCH 1770163200		/* 2026-02-04T00:00:00Z: every mtime and log time */
#define OUTBUF (1u << 20)

static double scale = 1.0;
static int rootfd;

/* PRNG */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t stream)
{
	uint64_t x = SEED ^ (stream * 0xd1342543de82ef95ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* Uniform in [0, n). */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline uint32_t rng_range(struct rng *r, uint32_t lo, uint32_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

/* Output: one buffered file at a time. */

struct out {
	int fd;
	const char *path;
	size_t len;
	uint64_t total;		/* bytes written, all files */
	uint64_t start;		/* total when this file was opened */
	char buf[OUTBUF];
};

static struct out out;

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("gentree: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void flush(void)
{
	size_t done = 0;

	while (done < out.len) {
		ssize_t n = write(out.fd, out.buf + done, out.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("cannot write '%s': %s", out.path, strerror(errno));
		done += (size_t)n;
	}
	out.total += out.len;
	out.len = 0;
}

static void put(const void *p, size_t n)
{
	while (n > 0) {
		size_t k = OUTBUF - out.len < n ? OUTBUF - out.len : n;
		memcpy(out.buf + out.len, p, k);
		out.len += k;
		p = (const char *)p + k;
		n -= k;
		if (out.len == OUTBUF)
			flush();
	}
}

__attribute__((format(printf, 1, 2)))
static void putf(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (OUTBUF - out.len < 4096)
		flush();
	va_start(ap, fmt);
	n = vsnprintf(out.buf + out.len, OUTBUF - out.len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= OUTBUF - out.len)
		die("line too long in '%s'", out.path);
	out.len += (size_t)n;
}

static void puts_(const char *s)
{
	put(s, strlen(s));
}

static void open_out(const char *path)
{
	out.path = path;
	out.len = 0;
	out.start = out.total;
	out.fd = openat(rootfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out.fd < 0)
		die("cannot create '%s': %s", path, strerror(errno));
}

/* Close the file and give it a fixed mtime, so the tree is the same every run. */
static void close_out(int64_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

	flush();
	if (futimens(out.fd, ts) < 0 || close(out.fd) < 0)
		die("cannot finish '%s': %s", out.path, strerror(errno));
}

/* Bytes in the current file so far. */
static uint64_t out_size(void)
{
	return out.total - out.start + out.len;
}

static void make_dir(const char *path)
{
	if (mkdirat(rootfd, path, 0755) < 0 && errno != EEXIST)
		die("cannot create '%s': %s", path, strerror(errno));
}

static uint64_t scaled(double n)
{
	double v = n * scale;

	return v < 1 ? 1 : (uint64_t)v;
}

/* Text */

static const char *const words[] = {
	"the", "worker", "queue", "task", "shard", "index", "rebuild", "retry", "after",
	"timeout", "cluster", "node", "upstream", "request", "response", "batch", "nightly",
	"report", "summary", "customer", "invoice", "migration", "schema", "table", "column",
	"replica", "primary", "lag", "backoff", "budget", "latency", "throughput", "cache",
	"eviction", "warm", "cold", "snapshot", "restore", "verify", "checksum", "manifest",
	"bucket", "object", "region", "deploy", "rollback", "canary", "feature", "flag",
	"please", "check", "whether", "still", "needed", "before", "running", "again", "and",
	"of", "to", "in", "for", "with", "on", "is", "was", "be", "not", "that", "this", "it",
	"as", "at", "by", "from", "or", "an", "are", "if", "we", "should", "must", "can",
	"escalate", "owner", "on-call", "pager", "incident", "ticket", "priority", "low",
	"high", "urgent", "done", "pending", "blocked", "waiting", "approved", "rejected",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const people[] = {
	"grand_boss", "night_shift", "scheduler", "janitor", "auditor", "api", "cron", "ops",
};
#define NPEOPLE (sizeof(people) / sizeof(people[0]))

static const char *const task_kinds[] = {
	"rebuild index shard", "compact segment", "export report", "send digest to",
	"reindex customer", "verify backup of", "rotate keys for", "recompute totals for",
	"migrate table", "warm cache for", "resize pool", "reconcile ledger",
};
#define NKINDS (sizeof(task_kinds) / sizeof(task_kinds[0]))

/* Write sentences of random words until about n bytes, each line prefixed by indent. */
static void prose(struct rng *r, size_t n, const char *indent, size_t width)
{
	size_t col = 0, done = 0;
	int cap = 1;

	while (done < n) {
		const char *w = words[rng_below(r, NWORDS)];
		size_t len = strlen(w);
		if (col == 0) {
			puts_(indent);
			col = strlen(indent);
		} else {
			put(" ", 1);
			col++;
		}
		if (cap) {
			char c = (char)(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]);
			put(&c, 1);
			put(w + 1, len - 1);
			cap = 0;
		} else {
			put(w, len);
		}
		col += len;
		done += len + 1;
		if (rng_below(r, 10) == 0) {
			put(".", 1);
			cap = 1;
		}
		if (col >= width) {
			put("\n", 1);
			col = 0;
		}
	}
	if (col)
		put("\n", 1);
}

static void hex(struct rng *r, char *buf, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
		buf[i] = digits[rng_below(r, 16)];
	buf[n] = '\0';
}

/* "2026-02-04T01:51:00+01:00" for t seconds after EPOCH (UTC+1, as the example). */
static void iso(int64_t t, char *buf, size_t size)
{
	int64_t s = EPOCH + 3600 + t;
	int64_t days = s / 86400, rem = s % 86400;
	/* civil from days (Howard Hinnant) */
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d+01:00", (int)(y + (m <= 2)), (int)m,
		 (int)d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}

/* config/ and config/personalities/ */

static void gen_config(void)
{
	static const char *const personalities[] = {
		"grand_boss", "night_shift", "auditor", "janitor", "diplomat", "intern",
	};
	struct rng r;
	char path[256];

	make_dir("config");
	make_dir("config/personalities");
	rng_seed(&r, 1);

	open_out("config/cc-cluster.yaml");
	puts_("# orchestrator-cc cluster settings (generated for the snapfs benchmark)\n"
	      "cluster:\n  name: cc-main\n  workers: 16\n  queue_dir: queue\n"
	      "  status_dir: status\n  log_dir: logs\n  retry:\n    max_attempts: 5\n"
	      "    backoff_seconds: [1, 5, 30, 120, 600]\npersonalities:\n");
	for (size_t i = 0; i < sizeof(personalities) / sizeof(*personalities); i++)
		putf("  - %s\n", personalities[i]);
	puts_("shards:\n");
	for (int i = 0; i < 64; i++)
		putf("  - { id: %d, primary: node-%02d, replica: node-%02d, weight: %u }\n", i,
		     i % 12, (i + 5) % 12, rng_range(&r, 1, 10));
	close_out(EPOCH - 86400 * 30);

	open_out("config/workers.yaml");
	puts_("workers:\n");
	for (int i = 1; i <= 16; i++)
		putf("  worker-%d:\n    personality: %s\n    max_tasks: %u\n    memory_mib: %u\n"
		     "    tags: [%s, %s]\n", i, personalities[i % 6], rng_range(&r, 1, 8),
		     256u << rng_below(&r, 4), words[rng_below(&r, NWORDS)],
		     words[rng_below(&r, NWORDS)]);
	close_out(EPOCH - 86400 * 12);

	open_out("config/logging.yaml");
	puts_("logging:\n  level: info\n  rotate:\n    max_size_mib: 64\n    keep: 9\n"
	      "  format: \"{time} {level} [{component}] {message}\"\n  components:\n");
	for (int i = 0; i < 12; i++)
		putf("    %s: %s\n", words[i + 1], i % 3 ? "info" : "debug");
	close_out(EPOCH - 86400 * 40);

	open_out("config/schedule.yaml");
	puts_("schedule:\n");
	for (int i = 0; i < 40; i++)
		putf("  - cron: \"%u %u * * *\"\n    task: \"%s %04u\"\n    owner: %s\n",
		     rng_below(&r, 60), rng_below(&r, 24), task_kinds[rng_below(&r, NKINDS)],
		     rng_below(&r, 10000), people[rng_below(&r, NPEOPLE)]);
	close_out(EPOCH - 86400 * 3);

	for (size_t i = 0; i < sizeof(personalities) / sizeof(*personalities); i++) {
		snprintf(path, sizeof(path), "config/personalities/%s.txt", personalities[i]);
		open_out(path);
		putf("You are %s, one of the orchestrator's personalities.\n\n", personalities[i]);
		prose(&r, rng_range(&r, 1500, 6000), "", 76);
		close_out(EPOCH - 86400 * (int64_t)(50 + i));
	}
}

/* queue/: small YAML messages */

static void gen_queue(void)
{
	uint64_t n = scaled(20000);
	struct rng r;
	char path[256], t0[40], t1[40], sum[65], rid[17];

	make_dir("queue");
	for (uint64_t i = 0; i < n; i++) {
		rng_seed(&r, 1000000 + i);
		/* log-uniform-ish sizes: most messages are small, a few near 4 KiB */
		size_t target = 200 + (size_t)(3800.0 * (double)rng_below(&r, 1000) *
					       (double)rng_below(&r, 1000) / 1e6);
		int64_t t = (int64_t)(i * 3) + rng_below(&r, 3);
		iso(t, t0, sizeof(t0));
		iso(t + 30 + rng_below(&r, 600), t1, sizeof(t1));
		hex(&r, sum, 64);
		hex(&r, rid, 16);
		snprintf(path, sizeof(path), "queue/msg-%06llu.yaml", (unsigned long long)i);
		open_out(path);
		putf("id: %06llu\ncreated: %s\nfrom: %s\nto: worker-%u\npriority: %u\n"
		     "task: \"%s %04u\"\nattempts: %u\nrequest_id: %s\n",
		     (unsigned long long)i, t0, people[rng_below(&r, NPEOPLE)], rng_range(&r, 1, 16),
		     rng_below(&r, 5), task_kinds[rng_below(&r, NKINDS)], rng_below(&r, 10000),
		     rng_below(&r, 4), rid);
		if (target > 400)
			putf("deadline: %s\nlabels: [%s, %s, shard-%u]\npayload:\n  shard: %u\n"
			     "  source: s3://cc-main-data/shards/%04u/part-%05u.parquet\n"
			     "  checksum: sha256:%s\n  rows: %u\n", t1, words[rng_below(&r, NWORDS)],
			     words[rng_below(&r, NWORDS)], rng_below(&r, 512), rng_below(&r, 512),
			     rng_below(&r, 512), rng_below(&r, 100000), sum, rng_below(&r, 10000000));
		if (target > 800) {
			puts_("history:\n");
			for (uint32_t k = rng_range(&r, 1, 4); k > 0; k--)
				putf("  - at: %s\n    event: %s\n    by: %s\n", t0,
				     k == 1 ? "queued" : k == 2 ? "claimed" : "requeued",
				     people[rng_below(&r, NPEOPLE)]);
		}
		if (out_size() + 20 < target) {
			puts_("notes: |\n");
			prose(&r, target - out_size() - 10, "  ", 72);
		}
		close_out(EPOCH + t);
	}
}

/* status/: per-worker and per-shard state, JSON and YAML */

static void gen_status(void)
{
	uint64_t workers = scaled(100), shards = scaled(200);
	struct rng r;
	char path[256], t0[40];

	make_dir("status");
	for (uint64_t i = 1; i <= workers; i++) {
		rng_seed(&r, 2000000 + i);
		iso(86400 - rng_below(&r, 60), t0, sizeof(t0));
		snprintf(path, sizeof(path), "status/worker-%03llu.yaml", (unsigned long long)i);
		open_out(path);
		putf("worker: %llu\nstate: %s\nlast_task: \"%06u\"\nheartbeat: %s\n"
		     "tasks_done: %u\nrss_mib: %u\nload: [%u.%02u, %u.%02u, %u.%02u]\n",
		     (unsigned long long)i, rng_below(&r, 3) ? "busy" : "idle", rng_below(&r, 20000),
		     t0, rng_below(&r, 100000), rng_range(&r, 80, 900), rng_below(&r, 4),
		     rng_below(&r, 100), rng_below(&r, 4), rng_below(&r, 100), rng_below(&r, 4),
		     rng_below(&r, 100));
		close_out(EPOCH + 86400);
		snprintf(path, sizeof(path), "status/worker-%03llu.json", (unsigned long long)i);
		open_out(path);
		putf("{\n  \"worker\": %llu,\n  \"heartbeat\": \"%s\",\n  \"queue\": [", (unsigned long long)i,
		     t0);
		for (uint32_t k = rng_below(&r, 20); k > 0; k--)
			putf("\"%06u\"%s", rng_below(&r, 20000), k > 1 ? ", " : "");
		putf("],\n  \"errors\": %u,\n  \"version\": \"1.%u.%u\"\n}\n", rng_below(&r, 10),
		     rng_below(&r, 4), rng_below(&r, 20));
		close_out(EPOCH + 86400);
	}
	for (uint64_t i = 0; i < shards; i++) {
		rng_seed(&r, 3000000 + i);
		snprintf(path, sizeof(path), "status/shard-%04llu.json", (unsigned long long)i);
		open_out(path);
		putf("{\"shard\": %llu, \"primary\": \"node-%02u\", \"rows\": %u, \"bytes\": %u, "
		     "\"segments\": [", (unsigned long long)i, rng_below(&r, 12), rng_below(&r, 1u << 30),
		     rng_below(&r, 1u << 31));
		for (uint32_t k = rng_range(&r, 1, 12); k > 0; k--)
			putf("{\"id\": %u, \"rows\": %u, \"sealed\": %s}%s", rng_below(&r, 100000),
			     rng_below(&r, 1000000), rng_below(&r, 4) ? "true" : "false", k > 1 ? ", " : "");
		puts_("]}\n");
		close_out(EPOCH + 86400 - rng_below(&r, 3600));
	}
}

/* logs/: lines from message templates with varying numbers and ids */

/* Each template has its usual component and level; a few lines in 30 get another level. */
static const struct {
	const char *comp, *level;
} log_kinds[16] = {
	{ "queue", "INFO" }, { "queue", "INFO" }, { "http", "INFO" }, { "http", "INFO" },
	{ "db", "WARN" }, { "cache", "DEBUG" }, { "metrics", "DEBUG" }, { "db", "INFO" },
	{ "shard", "INFO" }, { "db", "DEBUG" }, { "auth", "INFO" }, { "metrics", "DEBUG" },
	{ "scheduler", "INFO" }, { "http", "WARN" }, { "scheduler", "INFO" }, { "runtime", "DEBUG" },
};

static void log_line(struct rng *r, int64_t ms, unsigned worker)
{
	char ts[40], rid[17];
	unsigned kind = rng_below(r, 16), odd = rng_below(r, 30), t = rng_below(r, 100000);
	const char *level = odd == 0 ? "ERROR" : odd == 1 ? "WARN" : log_kinds[kind].level;

	iso(ms / 1000, ts, sizeof(ts));
	ts[19] = '\0';	/* cut the offset; milliseconds go in between */
	putf("%s.%03u+01:00 %-5s [%s] worker-%u ", ts, (unsigned)(ms % 1000), level,
	     log_kinds[kind].comp, worker);
	switch (kind) {
	case 0:
		putf("took task %06u from queue (depth %u)\n", t % 20000, rng_below(r, 400));
		break;
	case 1:
		putf("finished task %06u in %u.%03us (rows=%u)\n", t % 20000, rng_below(r, 30),
		     rng_below(r, 1000), rng_below(r, 100000));
		break;
	case 2:
		hex(r, rid, 16);
		putf("GET /api/v1/tasks/%06u 200 %u.%ums req_id=%s\n", t % 20000, rng_below(r, 40),
		     rng_below(r, 10), rid);
		break;
	case 3:
		hex(r, rid, 16);
		putf("POST /api/v1/shards/%u/compact 202 %u.%ums req_id=%s\n", t % 512,
		     rng_below(r, 400), rng_below(r, 10), rid);
		break;
	case 4:
		putf("retrying task %06u attempt %u/5 after %us: connection reset by peer "
		     "(peer=10.0.%u.%u:5432)\n", t % 20000, rng_range(r, 1, 5), 1u << rng_below(r, 7),
		     rng_below(r, 8), rng_range(r, 2, 250));
		break;
	case 5:
		putf("cache hit ratio %u.%u%% (%u hits, %u misses, %u evictions)\n", rng_range(r, 60, 99),
		     rng_below(r, 10), rng_below(r, 1000000), rng_below(r, 100000), rng_below(r, 5000));
		break;
	case 6:
		putf("heartbeat ok rss=%uMiB load=%u.%02u open_fds=%u\n", rng_range(r, 80, 900),
		     rng_below(r, 4), rng_below(r, 100), rng_range(r, 20, 400));
		break;
	case 7:
		putf("replica node-%02u lag %ums (threshold 500ms)\n", rng_below(r, 12),
		     rng_below(r, 2000));
		break;
	case 8:
		putf("shard %u compaction: %u segments -> %u, %u MiB reclaimed\n", t % 512,
		     rng_range(r, 2, 40), rng_range(r, 1, 4), rng_below(r, 2000));
		break;
	case 9:
		putf("query \"SELECT id, state FROM tasks WHERE shard = $1 AND updated_at > $2\" "
		     "took %u.%03ums rows=%u\n", rng_below(r, 200), rng_below(r, 1000), rng_below(r, 5000));
		break;
	case 10:
		putf("token refreshed for %s, expires in %us\n", people[rng_below(r, NPEOPLE)],
		     rng_range(r, 300, 3600));
		break;
	case 11:
		putf("metrics flushed: %u series, %u points, %u.%ums\n", rng_range(r, 200, 2000),
		     rng_below(r, 100000), rng_below(r, 50), rng_below(r, 10));
		break;
	case 12:
		putf("task %06u state %s -> %s\n", t % 20000, rng_below(r, 2) ? "pending" : "claimed",
		     rng_below(r, 2) ? "running" : "done");
		break;
	case 13:
		putf("slow request: %u.%03us over budget for shard %u (p99 %ums)\n", rng_below(r, 5),
		     rng_below(r, 1000), t % 512, rng_range(r, 100, 5000));
		break;
	case 14:
		putf("%s %s %s %s %s\n", words[rng_below(r, NWORDS)], words[rng_below(r, NWORDS)],
		     words[rng_below(r, NWORDS)], words[rng_below(r, NWORDS)],
		     words[rng_below(r, NWORDS)]);
		break;
	default:
		putf("gc: freed %u objects (%u KiB) in %uus\n", rng_below(r, 100000),
		     rng_below(r, 50000), rng_range(r, 50, 20000));
		break;
	}
}

static void gen_logs(void)
{
	/* the current logs and their rotations: 12 files, 600 MiB in all at scale 1 */
	static const struct {
		const char *name;
		double mib;
	} files[] = {
		{ "orchestrator.log", 56 }, { "orchestrator.log.1", 64 }, { "orchestrator.log.2", 64 },
		{ "orchestrator.log.3", 64 }, { "scheduler.log", 24 }, { "scheduler.log.1", 64 },
		{ "http-access.log", 48 }, { "http-access.log.1", 64 }, { "db.log", 32 },
		{ "db.log.1", 64 }, { "worker-errors.log", 8 }, { "audit.log", 48 },
	};
	struct rng r;
	char path[256];

	make_dir("logs");
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		uint64_t size = (uint64_t)(files[i].mib * 1048576 * scale);
		int64_t ms = (int64_t)(i * 86400000ull);
		rng_seed(&r, 4000000 + i);
		snprintf(path, sizeof(path), "logs/%s", files[i].name);
		open_out(path);
		while (out_size() < size) {
			ms += rng_below(&r, 40);
			log_line(&r, ms, rng_range(&r, 1, 16));
		}
		close_out(EPOCH + ms / 1000);
	}
}

/*
 * state/worker-state.db: 4 KiB pages of a made-up database. Record pages hold
 * fixed-layout rows (sequential keys, close timestamps, a random 16-byte id, a
 * name from a small set, zero padding); blob pages hold random bytes, as pages
 * of already compressed values would. zstd -3 gets about 2x.
 */
static void gen_db(void)
{
	uint64_t pages = scaled(262144);	/* 1 GiB */
	static const char *const names[] = {
		"pending", "claimed", "running", "done", "failed", "requeued", "cancelled",
		"expired",
	};
	struct rng r;
	unsigned char page[4096];
	uint64_t key = 1, lsn = 1000;

	make_dir("state");
	rng_seed(&r, 5);
	open_out("state/worker-state.db");
	for (uint64_t p = 0; p < pages; p++) {
		unsigned type = rng_below(&r, 100) < 38 ? 1 : 0;	/* 1: blob page */
		memset(page, 0, sizeof(page));
		memcpy(page, "SNPG", 4);
		memcpy(page + 4, &p, 4);
		lsn += rng_range(&r, 1, 50);
		memcpy(page + 8, &lsn, 8);
		uint64_t crc = rng_next(&r);
		memcpy(page + 16, &crc, 4);
		page[20] = (unsigned char)type;
		if (type) {
			for (size_t o = 32; o < sizeof(page); o += 8) {
				uint64_t v = rng_next(&r);
				memcpy(page + o, &v, 8);
			}
		} else {
			uint32_t nrec = rng_range(&r, 20, 40);
			page[22] = (unsigned char)nrec;
			for (uint32_t k = 0; k < nrec; k++) {
				unsigned char *rec = page + 32 + k * 100;
				uint32_t ts = (uint32_t)(EPOCH + key / 4);
				uint64_t id0 = rng_next(&r), id1 = rng_next(&r);
				uint32_t val = rng_below(&r, 10000);
				const char *nm = names[rng_below(&r, 8)];
				key += rng_range(&r, 1, 3);
				memcpy(rec, &key, 8);
				memcpy(rec + 8, &ts, 4);
				memcpy(rec + 12, &id0, 8);
				memcpy(rec + 20, &id1, 8);
				memcpy(rec + 28, &val, 4);
				rec[32] = (unsigned char)rng_below(&r, 8);
				memcpy(rec + 36, nm, strlen(nm));
				snprintf((char *)rec + 52, 40, "shard-%03u/worker-%02u", rng_below(&r, 512),
					 rng_range(&r, 1, 16));
			}
		}
		put(page, sizeof(page));
	}
	close_out(EPOCH + 86400);
}

static void gen_env(void)
{
	struct rng r;
	char k1[41], k2[33];

	rng_seed(&r, 6);
	hex(&r, k1, 40);
	hex(&r, k2, 32);
	open_out(".env");
	putf("API_TOKEN=%s\nDB_PASSWORD=%s\nDB_HOST=10.0.0.5\nDB_PORT=5432\n"
	     "CC_ENV=production\n", k1, k2);
	close_out(EPOCH - 86400 * 90);
	fchmodat(rootfd, ".env", 0600, 0);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gentree DIR [SCALE]\n");
		return 2;
	}
	if (argc == 3) {
		char *end;
		scale = strtod(argv[2], &end);
		if (*end || !(scale > 0) || scale > 100)
			die("SCALE must be a number in (0, 100], not '%s'", argv[2]);
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST)
		die("cannot create '%s': %s", argv[1], strerror(errno));
	if ((rootfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die("cannot open '%s': %s", argv[1], strerror(errno));

	uint64_t before = 0;
	gen_config();
	gen_queue();
	fprintf(stderr, "gentree: config+queue %.1f MiB\n", (double)(out.total - before) / 1048576);
	before = out.total;
	gen_status();
	gen_env();
	gen_logs();
	fprintf(stderr, "gentree: status+logs %.1f MiB\n", (double)(out.total - before) / 1048576);
	before = out.total;
	gen_db();
	fprintf(stderr, "gentree: state %.1f MiB\n", (double)(out.total - before) / 1048576);
	fprintf(stderr, "gentree: %.1f MiB in '%s'\n", (double)out.total / 1048576, argv[1]);
	close(rootfd);
	return 0;
}

/*
 * config: YAML -> struct cfg, with libyaml's document API.
 *
 * The document API keeps each node's start mark, so every check can name FILE:LINE:COLUMN of
 * the node it rejects. libyaml composes nodes but resolves no implicit tags (every scalar
 * arrives tagged as a string), so this file decides itself what an integer and what a null
 * is: is_int(), is_null().
 *
 * A mapping with fixed keys (the top level, compression, a set, keep) is described by a
 * table of struct field and read by walk_map(), which rejects unknown, duplicate and missing
 * keys in one place; each field's parse function checks its value.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* A config is a few hundred bytes; a bigger file is almost surely not a config. */
#define CFG_MAX_SIZE (1024 * 1024)
#define CFG_LEVEL_DEFAULT 3
#define CFG_LEVEL_MAX 19	/* 20..22 need zstd's --ultra window sizes */
#define CFG_LEVEL_FAST_MIN -7
#define CFG_THREADS_MAX 200	/* zstd's ZSTDMT_NBWORKERS_MAX on 64-bit */
/* An archive is STORE/<set>/<set>-<ts>.tar.zst (SPEC, "The store"): the name must fit NAME_MAX. */
#define CFG_ARCHIVE_SUFFIX "-YYYYMMDD_HHMMSS.tar.zst"
#define CFG_SET_NAME_MAX (NAME_MAX - (int)(sizeof(CFG_ARCHIVE_SUFFIX) - 1))
#define CFG_DUR_HINT "write it as restic does, e.g. 24h, 30d, 1y6m"
/* The index of `within` in the keep table; rules 0..KEEP_NRULES-1 are enum keep_rule. */
#define RULE_WITHIN KEEP_NRULES
#define MAX_FIELDS 8
/*
 * The schema nests 4 deep (top, sets, a set, keep). libyaml's scanner takes time quadratic in
 * the flow nesting depth (40,000 '[' take seconds), so deeper input is refused before loading.
 */
#define CFG_MAX_DEPTH 32

struct ctx {
	const char *file;
	yaml_document_t *doc;
	const char *owner;	/* whose keys are read: "set 'full'"; NULL at the top level */
	char in[160];		/* "in set 'full'" or "at the top level", for messages */
	struct err *e;
};

struct field {
	const char *name;
	bool required;
	const char *hint;	/* what to do when a required key is missing */
	int (*parse)(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj);
	int arg;
};

/* What a set's fields write to; optional is checked against paths once both are read. */
struct set_parse {
	struct cfg_set *set;
	const yaml_node_t *optional;
};

__attribute__((format(printf, 4, 0)))
static int verr_at(struct ctx *c, int code, yaml_mark_t m, const char *fmt, va_list ap)
{
	char msg[sizeof(((struct err *)NULL)->msg)];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return err_set(c->e, code, "%s:%zu:%zu: %s", c->file, m.line + 1, m.column + 1, msg);
}

__attribute__((format(printf, 3, 4)))
static int node_err(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(c, EINVAL, n->start_mark, fmt, ap);
	va_end(ap);
	return -1;
}

/* node_err() for a failure that is not the file's fault, with its errno */
__attribute__((format(printf, 4, 5)))
static int node_err_code(struct ctx *c, int code, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(c, code, n->start_mark, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct ctx *c)
{
	return err_set(c->e, ENOMEM, "out of memory while loading '%s'", c->file);
}

static yaml_node_t *node(struct ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *text(const yaml_node_t *n)
{
	assert(n->type == YAML_SCALAR_NODE);
	return (const char *)n->data.scalar.value;
}

/* YAML 1.1's null: an empty plain scalar, ~ or null. */
static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = text(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* A plain decimal integer; a quoted "3" is a string, as YAML says. */
static bool is_int(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = text(n);
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The value of an is_int() node; out of long's range saturates, which every caller rejects. */
static long int_value(const yaml_node_t *n)
{
	return strtol(text(n), NULL, 10);
}

static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a sequence";
	if (is_null(n))
		return "nothing";
	snprintf(buf, size, "'%.40s'", text(n));
	return buf;
}

static int expect(struct ctx *c, const yaml_node_t *n, const char *what, const char *key)
{
	char buf[48];

	return node_err(c, n, "expected %s for '%s' %s, found %s", what, key, c->in,
			describe(n, buf, sizeof(buf)));
}

static void enter(struct ctx *c, const char *owner)
{
	c->owner = owner;
	if (owner)
		snprintf(c->in, sizeof(c->in), "in %s", owner);
	else
		snprintf(c->in, sizeof(c->in), "at the top level");
}

static int unknown_key(struct ctx *c, const yaml_node_t *k, const struct field *fields, size_t n)
{
	char list[128] = "";
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
					fields[i].name);
	return node_err(c, k, "unknown key '%.40s' %s; expected one of %s", text(k), c->in, list);
}

static int duplicate_key(struct ctx *c, const yaml_node_t *k, const yaml_node_t *first)
{
	return node_err(c, k, "duplicate key '%.40s' %s, first given at %zu:%zu; remove one",
			text(k), c->in, first->start_mark.line + 1, first->start_mark.column + 1);
}

static int check_key(struct ctx *c, const yaml_node_t *k)
{
	char buf[48];

	if (k->type == YAML_SCALAR_NODE)
		return 0;
	return node_err(c, k, "expected a key name %s, found %s", c->in,
			describe(k, buf, sizeof(buf)));
}

static const struct field *find_field(const struct field *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(fields[i].name, name))
			return &fields[i];
	return NULL;
}

static int walk_pairs(struct ctx *c, yaml_node_t *map, const struct field *fields, size_t n,
		      yaml_node_t **seen, void *obj)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
		const struct field *f;

		if (check_key(c, k) < 0)
			return -1;
		f = find_field(fields, n, text(k));
		if (!f)
			return unknown_key(c, k, fields, n);
		if (seen[f - fields])
			return duplicate_key(c, k, seen[f - fields]);
		seen[f - fields] = k;
		if (f->parse(c, f, v, obj) < 0)
			return -1;
	}
	return 0;
}

/* A missing key is reported at the mapping that lacks it: there is no node for it. */
static int check_required(struct ctx *c, const yaml_node_t *map, const struct field *fields,
			  size_t n, yaml_node_t **seen)
{
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && !seen[i])
			return node_err(c, map, "missing key '%s' %s; %s", fields[i].name, c->in,
					fields[i].hint);
	return 0;
}

/* Read mapping map, whose keys must be fields[0..n), into obj. owner names it in messages. */
static int walk_map(struct ctx *c, yaml_node_t *map, const char *owner,
		    const struct field *fields, size_t n, void *obj)
{
	yaml_node_t *seen[MAX_FIELDS] = { NULL };
	const char *saved = c->owner;
	int rc;

	assert(map->type == YAML_MAPPING_NODE && n <= MAX_FIELDS);
	enter(c, owner);
	rc = walk_pairs(c, map, fields, n, seen, obj);
	if (rc == 0)
		rc = check_required(c, map, fields, n, seen);
	enter(c, saved);
	return rc;
}

static int parse_int(struct ctx *c, const struct field *f, const yaml_node_t *v, long *out)
{
	if (!is_int(v))
		return expect(c, v, "an integer", f->name);
	*out = int_value(v);
	return 0;
}

/* A non-empty string, owned by the caller on success. */
static int parse_str(struct ctx *c, const struct field *f, const yaml_node_t *v, char **out)
{
	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return expect(c, v, "a string", f->name);
	if (!*text(v))
		return node_err(c, v, "'%s' %s is empty; give a value or remove the key", f->name,
				c->in);
	*out = strdup(text(v));
	return *out ? 0 : oom(c);
}

/* ---- paths, sets and their lists ---- */

static bool has_dotdot(const char *p)
{
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += len;
		p += strspn(p, "/");
	}
	return false;
}

/* An entry of paths, optional or require: below source, as tar -C stores it. */
static int check_relpath(struct ctx *c, const struct field *f, const yaml_node_t *item)
{
	const char *p = text(item);

	if (*p == '/')
		return node_err(c, item, "absolute path '%.60s' in '%s' of %s; write it "
				"relative to source, as tar -C takes it", p, f->name, c->owner);
	if (has_dotdot(p))
		return node_err(c, item, "path '%.60s' in '%s' of %s leaves source with '..'; "
				"name a path below source", p, f->name, c->owner);
	return 0;
}

typedef int check_fn(struct ctx *c, const struct field *f, const yaml_node_t *item);

/* A sequence of non-empty strings into out, each passing check (if any). */
static int parse_strv(struct ctx *c, const struct field *f, const yaml_node_t *seq,
		      struct cfg_strv *out, check_fn *check)
{
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE)
		return expect(c, seq, "a sequence of strings such as [a, b]", f->name);
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v)
		return oom(c);
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		const yaml_node_t *item = node(c, *it);
		char buf[48];

		if (item->type != YAML_SCALAR_NODE || is_null(item) || !*text(item))
			return node_err(c, item, "expected a string in '%s' of %s, found %s",
					f->name, c->owner, describe(item, buf, sizeof(buf)));
		if (check && check(c, f, item) < 0)
			return -1;
		out->v[out->n] = strdup(text(item));
		if (!out->v[out->n++])
			return oom(c);
	}
	return 0;
}

static bool strv_has(const struct cfg_strv *sv, size_t n, const char *s)
{
	for (size_t i = 0; i < n && i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

static int set_paths(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	struct cfg_strv *paths = &((struct set_parse *)obj)->set->paths;

	if (parse_strv(c, f, v, paths, check_relpath) < 0)
		return -1;
	if (paths->n == 0)
		return node_err(c, v, "'paths' of %s is empty; list at least one path to archive",
				c->owner);
	for (size_t i = 1; i < paths->n; i++)
		if (strv_has(paths, i, paths->v[i]))
			return node_err(c, node(c, v->data.sequence.items.start[i]),
					"path '%.60s' is listed twice in 'paths' of %s; remove one",
					paths->v[i], c->owner);
	return 0;
}

static int set_optional(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	struct set_parse *sp = obj;

	sp->optional = v;
	return parse_strv(c, f, v, &sp->set->optional, NULL);
}

static int set_exclude(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	return parse_strv(c, f, v, &((struct set_parse *)obj)->set->exclude, NULL);
}

static int set_require(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	return parse_strv(c, f, v, &((struct set_parse *)obj)->set->require, check_relpath);
}

/* Every optional entry must be one of paths: it only relaxes a path that is archived. */
static int check_optional(struct ctx *c, const struct set_parse *sp, const char *owner)
{
	const struct cfg_set *s = sp->set;

	for (size_t i = 0; i < s->optional.n; i++)
		if (!strv_has(&s->paths, s->paths.n, s->optional.v[i]))
			return node_err(c, node(c, sp->optional->data.sequence.items.start[i]),
					"'%.60s' in 'optional' of %s is not in its paths; add it "
					"to paths or remove it from optional", s->optional.v[i],
					owner);
	return 0;
}

/* ---- keep ---- */

static const char *keep_what(int rule)
{
	if (rule == KEEP_LAST)
		return "a count such as 10";
	if (rule == RULE_WITHIN)
		return "a duration such as 30d";
	return "a count such as 7 or a duration such as 30d";
}

static int keep_count(struct ctx *c, const struct field *f, const yaml_node_t *v,
		      struct keep_policy *p)
{
	long n = int_value(v);

	if (f->arg == RULE_WITHIN)
		return node_err(c, v, "expected a duration for 'within' %s, found '%.40s'; %s",
				c->in, text(v), CFG_DUR_HINT);
	if (n < 1 || n > INT_MAX)
		return node_err(c, v, "'%s' %s is '%.40s'; expected a count of 1 or more, or "
				"remove the rule", f->name, c->in, text(v));
	p->count[f->arg] = (int)n;
	return 0;
}

static int keep_duration(struct ctx *c, const struct field *f, const yaml_node_t *v,
			 struct keep_policy *p)
{
	struct keep_dur d;
	struct err ignored;

	if (f->arg == KEEP_LAST)
		return node_err(c, v, "expected a count for 'last' %s, found '%.40s'; 'last' keeps "
				"the N newest snapshots", c->in, text(v));
	if (keep_parse_dur(text(v), &d, &ignored) < 0)
		return node_err(c, v, "invalid duration '%.40s' for '%s' %s; %s", text(v), f->name,
				c->in, CFG_DUR_HINT);
	/* restic takes a zero duration for "no rule": say so rather than silently keep less */
	if (!d.years && !d.months && !d.days && !d.hours)
		return node_err(c, v, "duration '%.40s' for '%s' %s is zero; give a longer one or "
				"remove the rule", text(v), f->name, c->in);
	if (f->arg == RULE_WITHIN) {
		p->has_keep_within = true;
		p->keep_within = d;
	} else {
		p->has_within[f->arg] = true;
		p->within[f->arg] = d;
	}
	return 0;
}

static int keep_value(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return expect(c, v, keep_what(f->arg), f->name);
	if (is_int(v))
		return keep_count(c, f, v, obj);
	return keep_duration(c, f, v, obj);
}

static const struct field keep_fields[] = {
	{ .name = "last", .parse = keep_value, .arg = KEEP_LAST },
	{ .name = "hourly", .parse = keep_value, .arg = KEEP_HOURLY },
	{ .name = "daily", .parse = keep_value, .arg = KEEP_DAILY },
	{ .name = "weekly", .parse = keep_value, .arg = KEEP_WEEKLY },
	{ .name = "monthly", .parse = keep_value, .arg = KEEP_MONTHLY },
	{ .name = "yearly", .parse = keep_value, .arg = KEEP_YEARLY },
	{ .name = "within", .parse = keep_value, .arg = RULE_WITHIN },
};

static int set_keep(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	struct cfg_set *s = ((struct set_parse *)obj)->set;
	char owner[sizeof(c->in)];

	if (v->type != YAML_MAPPING_NODE)
		return expect(c, v, "a mapping such as { daily: 30d }", f->name);
	if (map_len(v) == 0)
		return node_err(c, v, "'keep' of %s has no rule; add one of last, hourly, daily, "
				"weekly, monthly, yearly, within, or remove 'keep' to never prune",
				c->owner);
	snprintf(owner, sizeof(owner), "'keep' of %s", c->owner);
	s->has_keep = true;
	return walk_map(c, v, owner, keep_fields, sizeof(keep_fields) / sizeof(keep_fields[0]),
			&s->keep);
}

static const struct field set_fields[] = {
	{ .name = "paths", .required = true, .parse = set_paths,
	  .hint = "add paths: [PATH, ...], what to archive below source" },
	{ .name = "optional", .parse = set_optional },
	{ .name = "exclude", .parse = set_exclude },
	{ .name = "require", .parse = set_require },
	{ .name = "keep", .parse = set_keep },
};

/* ---- sets ---- */

/* A set name becomes a directory and the start of file names: keep it portable. */
static int check_set_name(struct ctx *c, const yaml_node_t *k)
{
	const char *s = text(k);
	size_t len = strlen(s);

	if (len == 0 || s[0] == '.' || s[0] == '-' ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
		return node_err(c, k, "set name '%.40s' cannot be used in file names; use letters, "
				"digits, '_', '.' and '-', not starting with '.' or '-'", s);
	if (len > CFG_SET_NAME_MAX)
		return node_err(c, k, "set name '%.40s...' is longer than %d characters; "
				"shorten it", s, CFG_SET_NAME_MAX);
	return 0;
}

static int check_set_unique(struct ctx *c, const yaml_node_t *sets, const yaml_node_pair_t *p)
{
	const yaml_node_t *k = node(c, p->key);

	for (const yaml_node_pair_t *q = sets->data.mapping.pairs.start; q < p; q++) {
		const yaml_node_t *first = node(c, q->key);

		if (!strcmp(text(first), text(k)))
			return node_err(c, k, "duplicate set '%s' in 'sets', first given at "
					"%zu:%zu; rename or remove one", text(k),
					first->start_mark.line + 1, first->start_mark.column + 1);
	}
	return 0;
}

static int parse_set(struct ctx *c, const yaml_node_t *sets, const yaml_node_pair_t *p,
		     struct cfg_set *s)
{
	yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
	struct set_parse sp = { .set = s };
	char owner[sizeof(c->in)], buf[48];

	if (check_key(c, k) < 0 || check_set_name(c, k) < 0 || check_set_unique(c, sets, p) < 0)
		return -1;
	s->name = strdup(text(k));
	if (!s->name)
		return oom(c);
	if (v->type != YAML_MAPPING_NODE)
		return node_err(c, v, "expected a mapping for set '%s', found %s; give it "
				"paths: [PATH, ...]", s->name, describe(v, buf, sizeof(buf)));
	snprintf(owner, sizeof(owner), "set '%s'", s->name);
	if (walk_map(c, v, owner, set_fields, sizeof(set_fields) / sizeof(set_fields[0]), &sp) < 0)
		return -1;
	return check_optional(c, &sp, owner);
}

static int top_sets(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	struct cfg *cfg = obj;

	if (v->type != YAML_MAPPING_NODE)
		return expect(c, v, "a mapping of set names to sets", f->name);
	if (map_len(v) == 0)
		return node_err(c, v, "'sets' is empty; add at least one set, e.g. "
				"sets: { all: { paths: [.] } }");
	cfg->sets = calloc(map_len(v), sizeof(*cfg->sets));
	if (!cfg->sets)
		return oom(c);
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
	     p++) {
		/* counted before it is filled, so that cfg_free() frees a half-read set */
		if (parse_set(c, v, p, &cfg->sets[cfg->nsets++]) < 0)
			return -1;
	}
	return 0;
}

/* ---- store, source, compression ---- */

/*
 * path as seen from the directory of file, made absolute with the current directory when file
 * is relative, so that a cron job finds the store from any cwd. NULL with errno on failure.
 */
static char *resolve(const char *file, const char *path)
{
	const char *slash, *sep = "";
	char *cwd = NULL, *out = NULL;
	int dlen;

	if (path[0] == '/')
		return strdup(path);
	while (file[0] == '.' && file[1] == '/')
		file += 2 + strspn(file + 2, "/");
	while (path[0] == '.' && path[1] == '/')
		path += 2 + strspn(path + 2, "/");
	slash = strrchr(file, '/');
	dlen = slash ? (int)(slash - file) + 1 : 0;
	if (file[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return NULL;
		sep = cwd[strlen(cwd) - 1] == '/' ? "" : "/";
	}
	if (asprintf(&out, "%s%s%.*s%s", cwd ? cwd : "", sep, dlen, file, path) < 0)
		out = NULL;
	free(cwd);
	return out;
}

static int parse_dir(struct ctx *c, const struct field *f, const yaml_node_t *v, char **out)
{
	char *s;
	int code;

	if (parse_str(c, f, v, &s) < 0)
		return -1;
	if (s[0] == '~') {
		free(s);
		return node_err(c, v, "'%s' starts with '~', which is not expanded; write the full "
				"path", f->name);
	}
	*out = resolve(c->file, s);
	code = errno;
	free(s);
	if (!*out)
		return node_err_code(c, code, v, "cannot resolve relative '%s': %s; make it "
				     "absolute", f->name, strerror(code));
	return 0;
}

static int top_store(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	return parse_dir(c, f, v, &((struct cfg *)obj)->store);
}

static int top_source(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	return parse_dir(c, f, v, &((struct cfg *)obj)->source);
}

static int comp_level(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	long n;

	if (parse_int(c, f, v, &n) < 0)
		return -1;
	/* zstd's level 0 means "the default", which would hide a typo: ask for a real level */
	if (n == 0 || n < CFG_LEVEL_FAST_MIN || n > CFG_LEVEL_MAX)
		return node_err(c, v, "'level' %s is '%.40s'; expected 1 to %d, or %d to -1 for "
				"zstd's fast levels", c->in, text(v), CFG_LEVEL_MAX,
				CFG_LEVEL_FAST_MIN);
	((struct cfg *)obj)->level = (int)n;
	return 0;
}

static int comp_threads(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	long n;

	if (parse_int(c, f, v, &n) < 0)
		return -1;
	if (n < 0 || n > CFG_THREADS_MAX)
		return node_err(c, v, "'threads' %s is '%.40s'; expected 0 (all cores) to %d",
				c->in, text(v), CFG_THREADS_MAX);
	((struct cfg *)obj)->threads = (int)n;
	return 0;
}

static const struct field comp_fields[] = {
	{ .name = "level", .parse = comp_level },
	{ .name = "threads", .parse = comp_threads },
};

static int top_compression(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	if (v->type != YAML_MAPPING_NODE)
		return expect(c, v, "a mapping such as { level: 3, threads: 0 }", f->name);
	return walk_map(c, v, "'compression'", comp_fields,
			sizeof(comp_fields) / sizeof(comp_fields[0]), obj);
}

static const struct field top_fields[] = {
	{ .name = "store", .required = true, .parse = top_store,
	  .hint = "add store: DIR, the directory that holds the archives" },
	{ .name = "source", .parse = top_source },
	{ .name = "compression", .parse = top_compression },
	{ .name = "sets", .required = true, .parse = top_sets,
	  .hint = "add at least one set, e.g. sets: { all: { paths: [.] } }" },
};

/* ---- the file and the document ---- */

static int grow(char **buf, size_t *cap)
{
	size_t bigger = *cap ? *cap * 2 : 4096;
	char *p = realloc(*buf, bigger);

	if (!p)
		return -1;
	*buf = p;
	*cap = bigger;
	return 0;
}

/* Read to the end rather than trust st_size: -c /dev/stdin and FIFOs work too. */
static int read_fd(int fd, const char *file, char **out, size_t *outlen, struct err *e)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t r;

	do {
		if (len == cap && grow(&buf, &cap) < 0) {
			free(buf);
			return err_set(e, ENOMEM, "out of memory while reading '%s'", file);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno != EINTR) {
			int code = errno;

			free(buf);
			return err_set(e, code, "cannot read '%s': %s", file, strerror(code));
		}
		len += r > 0 ? (size_t)r : 0;
		if (len > CFG_MAX_SIZE) {
			free(buf);
			return err_set(e, EFBIG, "'%s' is larger than %d KiB; is it the config "
				       "file?", file, CFG_MAX_SIZE / 1024);
		}
	} while (r != 0);
	*out = buf;
	*outlen = len;
	return 0;
}

static int read_file(const char *file, char **out, size_t *len, struct err *e)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		int code = errno;

		return err_set(e, code, "cannot open '%s': %s", file, strerror(code));
	}
	rc = read_fd(fd, file, out, len, e);
	close(fd);
	return rc;
}

/* libyaml's reader reports a byte offset only: count lines and UTF-8 characters up to it. */
static yaml_mark_t offset_mark(const char *buf, size_t len, size_t off)
{
	yaml_mark_t m = { .index = off };

	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static int syntax_err(const char *file, const yaml_parser_t *p, const char *buf, size_t len,
		      struct err *e)
{
	yaml_mark_t m = p->problem_mark, cm = p->context_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return err_set(e, ENOMEM, "out of memory while parsing '%s'", file);
	if (p->error == YAML_READER_ERROR) {
		m = offset_mark(buf, len, p->problem_offset);
		return err_set(e, EINVAL, "%s:%zu:%zu: %s; save the file as UTF-8 text", file,
			       m.line + 1, m.column + 1, p->problem);
	}
	if (p->context)
		return err_set(e, EINVAL, "%s:%zu:%zu: invalid YAML: %s %s at %zu:%zu", file,
			       m.line + 1, m.column + 1, p->problem, p->context, cm.line + 1,
			       cm.column + 1);
	return err_set(e, EINVAL, "%s:%zu:%zu: invalid YAML: %s", file, m.line + 1, m.column + 1,
		       p->problem ? p->problem : "unknown error");
}

/* A second document would be silently ignored by a reader that takes the first: refuse it. */
static int check_one_document(const char *file, yaml_parser_t *p, const char *buf, size_t len,
			      struct err *e)
{
	yaml_document_t next;
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_load(p, &next))
		return syntax_err(file, p, buf, len, e);
	root = yaml_document_get_root_node(&next);
	if (root)
		rc = err_set(e, EINVAL, "%s:%zu:%zu: a second YAML document; keep the whole config "
			     "in one document, without another '---'", file,
			     root->start_mark.line + 1, root->start_mark.column + 1);
	yaml_document_delete(&next);
	return rc;
}

static int walk_events(const char *file, yaml_parser_t *p, const char *buf, size_t len,
		       struct err *e)
{
	yaml_event_t ev;
	int depth = 0;

	for (;;) {
		if (!yaml_parser_parse(p, &ev))
			return syntax_err(file, p, buf, len, e);
		if (ev.type == YAML_STREAM_END_EVENT)
			break;
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
			depth++;
		else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
			depth--;
		if (depth > CFG_MAX_DEPTH) {
			err_set(e, EINVAL, "%s:%zu:%zu: nested deeper than %d levels; a config "
				"needs 4", file, ev.start_mark.line + 1, ev.start_mark.column + 1,
				CFG_MAX_DEPTH);
			yaml_event_delete(&ev);
			return -1;
		}
		yaml_event_delete(&ev);
	}
	yaml_event_delete(&ev);
	return 0;
}

/* A pass over the events before loading, to refuse absurd nesting while it is cheap. */
static int check_depth(const char *file, const char *buf, size_t len, struct err *e)
{
	yaml_parser_t p;
	int rc;

	if (!yaml_parser_initialize(&p))
		return err_set(e, ENOMEM, "out of memory while parsing '%s'", file);
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	rc = walk_events(file, &p, buf, len, e);
	yaml_parser_delete(&p);
	return rc;
}

static int load_doc(const char *file, const char *buf, size_t len, yaml_document_t *doc,
		    struct err *e)
{
	yaml_parser_t p;
	int rc = -1;

	if (!yaml_parser_initialize(&p))
		return err_set(e, ENOMEM, "out of memory while parsing '%s'", file);
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, doc)) {
		syntax_err(file, &p, buf, len, e);
		goto done;
	}
	rc = check_one_document(file, &p, buf, len, e);
	if (rc < 0)
		yaml_document_delete(doc);
done:
	yaml_parser_delete(&p);
	return rc;
}

static int parse_root(struct ctx *c, struct cfg *cfg)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	char buf[48];

	if (!root || is_null(root))
		return err_set(c->e, EINVAL, "%s:1:1: the config is empty; give at least 'store' "
			       "and 'sets'", c->file);
	if (root->type != YAML_MAPPING_NODE)
		return node_err(c, root, "expected a mapping with 'store' and 'sets' at the top "
				"level, found %s", describe(root, buf, sizeof(buf)));
	return walk_map(c, root, NULL, top_fields, sizeof(top_fields) / sizeof(top_fields[0]),
			cfg);
}

static struct cfg *cfg_new(const char *file)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->file = strdup(file);
	if (!cfg->file) {
		free(cfg);
		return NULL;
	}
	cfg->level = CFG_LEVEL_DEFAULT;
	return cfg;
}

int cfg_load(const char *file, struct cfg **out, struct err *e)
{
	struct ctx c = { .file = file, .e = e };
	yaml_document_t doc;
	struct cfg *cfg;
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (read_file(file, &buf, &len, e) < 0)
		return -1;
	if (check_depth(file, buf, len, e) < 0 || load_doc(file, buf, len, &doc, e) < 0)
		goto out_buf;
	c.doc = &doc;
	cfg = cfg_new(file);
	if (!cfg) {
		oom(&c);
		goto out_doc;
	}
	rc = parse_root(&c, cfg);
	if (rc == 0)
		*out = cfg;
	else
		cfg_free(cfg);
out_doc:
	yaml_document_delete(&doc);
out_buf:
	free(buf);
	return rc;
}

static void strv_release(struct cfg_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsets; i++) {
		struct cfg_set *s = &c->sets[i];

		free(s->name);
		strv_release(&s->paths);
		strv_release(&s->optional);
		strv_release(&s->exclude);
		strv_release(&s->require);
	}
	free(c->sets);
	free(c->source);
	free(c->store);
	free(c->file);
	free(c);
}

const struct cfg_set *cfg_find_set(const struct cfg *c, const char *name)
{
	for (size_t i = 0; c && i < c->nsets; i++)
		if (strcmp(c->sets[i].name, name) == 0)
			return &c->sets[i];
	return NULL;
}

/*
 * keep_driver: keep_apply() behind restic-like flags, for tests/retention_restic.sh.
 *
 *   keep_driver [--reasons] [--keep-last N] [--keep-hourly N] ... [--keep-yearly N]
 *               [--keep-within DUR] [--keep-within-hourly DUR] ... [--keep-within-yearly DUR]
 *
 * Reads snapshot times, one `YYYY-MM-DD HH:MM:SS` a line, in local time (TZ applies), and
 * prints one line per input line, in input order: `keep` or `prune` (with --reasons, `keep`
 * is followed by the reason names). Exit 0, or 2 with a message on bad flags or input.
 *
 * A local time is resolved as restic's `backup --time` resolves it (Go's time.Date in
 * time.Local): a time in a spring-forward gap takes the offset from before the change, one in
 * the repeated autumn hour the offset after it (for zones east of UTC). The snapshot's fields
 * are then those of the resolved instant, as restic stores it.
 */
#include "retention.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SNAPS 100000

static const char *const rule_flags[KEEP_NRULES] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly",
};

static struct keep_snap snaps[MAX_SNAPS];
static struct keep_verdict verdicts[MAX_SNAPS];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "keep_driver: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* keep_clock's utc_offset: the TZ zone's offset at t. */
static int local_offset(int64_t t, void *arg)
{
	time_t tt = (time_t)t;
	struct tm tm;

	(void)arg;
	if (!localtime_r(&tt, &tm))
		return 0;	/* beyond struct tm's years: any offset is as good there */
	return (int)tm.tm_gmtoff;
}

static int parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > INT_MAX)
		die("bad count '%s': expected 1 or more", s);
	return (int)v;
}

/* Apply flag `name` (without "--keep-") with value `val` to p; false if name is unknown. */
static bool set_rule(struct keep_policy *p, const char *name, const char *val)
{
	struct err e = { 0 };
	bool within = strncmp(name, "within", 6) == 0;
	const char *rule = within ? name + 6 : name;

	if (within && !*rule) {
		if (keep_parse_dur(val, &p->keep_within, &e) < 0)
			die("%s", e.msg);
		p->has_keep_within = true;
		return true;
	}
	if (within && *rule++ != '-')
		return false;
	for (int r = 0; r < KEEP_NRULES; r++) {
		if (strcmp(rule, rule_flags[r]) != 0 || (within && r == KEEP_LAST))
			continue;
		if (!within) {
			p->count[r] = parse_count(val);
		} else if (keep_parse_dur(val, &p->within[r], &e) < 0) {
			die("%s", e.msg);
		} else {
			p->has_within[r] = true;
		}
		return true;
	}
	return false;
}

/* Go's time.Date(fields, time.Local), then the fields of that instant. */
static void resolve(struct keep_snap *s, struct tm *tm, const char *line)
{
	time_t wall, t;
	int guess;

	tm->tm_isdst = 0;
	wall = timegm(tm);
	guess = local_offset(wall, NULL);
	t = wall - local_offset((int64_t)wall - guess, NULL);
	if (!localtime_r(&t, tm))
		die("cannot convert '%s' to local time", line);
	*s = (struct keep_snap){ .year = tm->tm_year + 1900, .month = tm->tm_mon + 1,
				 .day = tm->tm_mday, .hour = tm->tm_hour, .min = tm->tm_min,
				 .sec = tm->tm_sec, .unix_time = t };
}

static size_t read_snaps(FILE *in)
{
	char line[128];
	size_t n = 0;

	while (fgets(line, sizeof(line), in)) {
		struct tm tm = { 0 };
		char *end;

		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		end = strptime(line, "%Y-%m-%d %H:%M:%S", &tm);
		if (!end || *end)
			die("bad time '%s': expected YYYY-MM-DD HH:MM:SS", line);
		if (n == MAX_SNAPS)
			die("too many snapshots at '%s'", line);
		resolve(&snaps[n++], &tm, line);
	}
	return n;
}

static void print_verdict(const struct keep_verdict *v, bool reasons)
{
	fputs(v->keep ? "keep" : "prune", stdout);
	for (unsigned bit = 1; reasons && bit <= KEEP_REASON_WITHIN; bit <<= 1)
		if (v->reasons & bit)
			printf(" %s", keep_reason_name(bit));
	putchar('\n');
}

int main(int argc, char **argv)
{
	struct keep_policy p = { 0 };
	struct keep_clock clk = { .now = time(NULL), .utc_offset = local_offset };
	struct err e = { 0 };
	bool reasons = false;
	size_t n;

	tzset();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reasons") == 0)
			reasons = true;
		else if (strncmp(argv[i], "--keep-", 7) != 0 || i + 1 == argc ||
			 !set_rule(&p, argv[i] + 7, argv[i + 1]))
			die("unknown flag or missing value: '%s'", argv[i]);
		else
			i++;
	}
	n = read_snaps(stdin);
	if (keep_apply(&p, &clk, snaps, n, verdicts, &e) < 0)
		die("%s", e.msg);
	for (size_t i = 0; i < n; i++)
		print_verdict(&verdicts[i], reasons);
	return ferror(stdout) || fflush(stdout) ? 2 : 0;
}

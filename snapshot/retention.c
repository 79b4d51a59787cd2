#include "retention.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>

/*
 * The policy of restic 0.14's ApplyPolicy (internal/restic/snapshot_policy.go), ported rule
 * for rule; the comments quote the Go it mirrors. Calendar arithmetic is Go's: proleptic
 * Gregorian, AddDate normalising out-of-range months and days, ISO 8601 weeks.
 */

#define SECS_PER_HOUR 3600
#define SECS_PER_DAY 86400
#define DUR_HINT "e.g. 24h, 30d, 1y6m"

/* ---- calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

static int64_t time_of_day(const struct keep_snap *s)
{
	return (int64_t)s->hour * SECS_PER_HOUR + s->min * 60 + s->sec;
}

/* The local calendar time as seconds since 1970-01-01 00:00 of the same calendar (timegm). */
static int64_t wall_secs(const struct keep_snap *s)
{
	return days_from_civil(s->year, s->month, s->day) * SECS_PER_DAY + time_of_day(s);
}

/*
 * Go's ISOWeek() as year * 100 + week: weeks run Monday to Sunday and the week's Thursday
 * decides the year. Day 0, 1970-01-01, was a Thursday.
 */
static int64_t iso_year_week(const struct keep_snap *s)
{
	int64_t days = days_from_civil(s->year, s->month, s->day);
	int64_t monday_based = days + 3 - 7 * floor_div(days + 3, 7);	/* 0 = Monday */
	int64_t thursday = days - monday_based + 3;
	int64_t year = s->year;

	if (thursday < days_from_civil(year, 1, 1))
		year--;
	else if (thursday >= days_from_civil(year + 1, 1, 1))
		year++;
	return year * 100 + (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
}

/*
 * restic's bucket functions: ymdh, ymd, yw, ym, y, and for "last" always(), which is the
 * snapshot's position nr in the newest-first list, so every snapshot is a period of its own.
 */
static int64_t period_key(enum keep_rule rule, const struct keep_snap *s, size_t nr)
{
	int64_t y = s->year;

	switch (rule) {
	case KEEP_LAST:
		return (int64_t)nr;
	case KEEP_HOURLY:
		return y * 1000000 + s->month * 10000 + s->day * 100 + s->hour;
	case KEEP_DAILY:
		return y * 10000 + s->month * 100 + s->day;
	case KEEP_WEEKLY:
		return iso_year_week(s);
	case KEEP_MONTHLY:
		return y * 100 + s->month;
	case KEEP_YEARLY:
	case KEEP_NRULES:
		break;
	}
	assert(rule == KEEP_YEARLY);
	return y;
}

/* ---- the reference time and the cut-offs of duration rules ---- */

/* The zone of the reference time: time.Local, or the fixed offset it was stored with. */
struct zone {
	const struct keep_clock *clk;
	bool local;
	int64_t fixed;			/* seconds east of UTC */
};

/*
 * restic parses a stored time into time.Local when Local had that offset at that instant,
 * otherwise into a fixed zone (Go's time.Parse).
 */
static struct zone reference_zone(const struct keep_clock *clk, const struct keep_snap *ref)
{
	struct zone z = { .clk = clk, .fixed = wall_secs(ref) - ref->unix_time };

	z.local = clk->utc_offset && clk->utc_offset(ref->unix_time, clk->arg) == z.fixed;
	return z;
}

/*
 * Go's time.Date in zone z: look up the offset at the wall time taken as UTC, then again at
 * the instant that gives, which is the offset kept either way. So a wall time in a spring gap
 * takes the offset before the change, and one in the repeated autumn hour (east of UTC) the
 * offset after it.
 */
static int64_t zone_to_unix(const struct zone *z, int64_t wall)
{
	int guess;

	if (!z->local)
		return wall - z->fixed;
	guess = z->clk->utc_offset(wall, z->clk->arg);
	return wall - z->clk->utc_offset(wall - guess, z->clk->arg);
}

/*
 * restic: latest.AddDate(-d.Years, -d.Months, -d.Days).Add(time.Hour * -d.Hours).
 * AddDate keeps the wall clock and normalises the date: 03-31 minus 1m is "02-31", which is
 * 03-03 (03-02 in a leap year). The hours are elapsed time, not wall time.
 */
static int64_t cutoff(const struct keep_dur *d, const struct keep_snap *ref, const struct zone *z)
{
	int64_t month0 = (int64_t)ref->month - 1 - d->months - 12 * (int64_t)d->years;
	int64_t year = ref->year + floor_div(month0, 12);
	int month = (int)(month0 - 12 * floor_div(month0, 12)) + 1;
	int64_t days = days_from_civil(year, month, 1) + ref->day - 1 - d->days;

	return zone_to_unix(z, days * SECS_PER_DAY + time_of_day(ref)) -
	       (int64_t)d->hours * SECS_PER_HOUR;
}

/*
 * restic's findLatestTimestamp: the newest snapshot that is not in the future,
 * `sn.Time.After(latest) && sn.Time.Before(now)`, or NULL when all are. Times are whole
 * seconds here and restic's now has nanoseconds, so "before now" is unix_time <= now.
 */
static const struct keep_snap *find_reference(const struct keep_snap *s, size_t n, int64_t now)
{
	const struct keep_snap *ref = NULL;

	for (size_t i = 0; i < n; i++)
		if (s[i].unix_time <= now && (!ref || s[i].unix_time > ref->unix_time))
			ref = &s[i];
	return ref;
}

static bool dur_zero(const struct keep_dur *d)
{
	return !d->years && !d->months && !d->days && !d->hours;
}

/* ---- evaluation state ---- */

/*
 * One rule's buckets. restic keeps a count bucket and a "within" bucket per period length,
 * each remembering the period key it kept last (-1 before the first) on its own.
 */
struct rule_state {
	int left;			/* count rule: periods still to keep; 0: unused or spent */
	int64_t last;			/* count rule: key of the period kept last */
	bool has_cut;			/* duration rule in use */
	int64_t cut;			/* duration rule: only snapshots after this instant */
	int64_t last_within;		/* duration rule: key of the period kept last */
};

struct state {
	struct rule_state rule[KEEP_NRULES];
	bool has_keep_within;
	int64_t keep_within_cut;
};

/*
 * Cut-off of a duration rule. With no reference (every snapshot in the future), restic's
 * latest stays Go's zero time, year 1, so every snapshot lies after the cut-off.
 */
static int64_t rule_cutoff(const struct keep_dur *d, const struct keep_snap *ref,
			   const struct zone *z)
{
	return ref ? cutoff(d, ref, z) : INT64_MIN;
}

static void state_init(struct state *st, const struct keep_policy *p,
		       const struct keep_clock *clk, const struct keep_snap *ref)
{
	struct zone z = ref ? reference_zone(clk, ref) : (struct zone){ .clk = clk };

	for (int r = 0; r < KEEP_NRULES; r++) {
		struct rule_state *rs = &st->rule[r];

		rs->left = p->count[r];
		rs->last = -1;
		rs->has_cut = r != KEEP_LAST && p->has_within[r] && !dur_zero(&p->within[r]);
		rs->cut = rs->has_cut ? rule_cutoff(&p->within[r], ref, &z) : 0;
		rs->last_within = -1;
	}
	st->has_keep_within = p->has_keep_within && !dur_zero(&p->keep_within);
	st->keep_within_cut = st->has_keep_within ? rule_cutoff(&p->keep_within, ref, &z) : 0;
}

/*
 * One step of restic's loop for cur = s at position nr, newest first. A count rule keeps s
 * when `val != b.Last` and it has count left, and then counts it even if another rule kept
 * it too; a duration rule when `cur.Time.After(t) && val != b.Last`. Strictly after: a
 * snapshot exactly at the cut-off is out.
 */
static unsigned decide(struct state *st, const struct keep_snap *s, size_t nr)
{
	unsigned why = 0;

	if (st->has_keep_within && s->unix_time > st->keep_within_cut)
		why |= KEEP_REASON_WITHIN;
	for (int r = 0; r < KEEP_NRULES; r++) {
		struct rule_state *rs = &st->rule[r];
		int64_t key = period_key((enum keep_rule)r, s, nr);

		if (rs->left > 0 && key != rs->last) {
			rs->last = key;
			rs->left--;
			why |= 1u << r;
		}
		if (rs->has_cut && s->unix_time > rs->cut && key != rs->last_within) {
			rs->last_within = key;
			why |= 1u << r;
		}
	}
	return why;
}

/* ---- the newest-first walk ---- */

/*
 * restic sorts newest first (sort.Sort, unstable: equal times come in any order). Here the
 * later index is the newer of two equal times, so the walk is deterministic.
 */
static bool newer(const struct keep_snap *s, size_t i, size_t j)
{
	if (s[i].unix_time != s[j].unix_time)
		return s[i].unix_time > s[j].unix_time;
	return i > j;
}

enum order { ORDER_OLDEST_FIRST, ORDER_NEWEST_FIRST, ORDER_NONE };

static enum order find_order(const struct keep_snap *s, size_t n)
{
	bool up = true, down = true;

	for (size_t i = 1; i < n && (up || down); i++) {
		up = up && newer(s, i, i - 1);
		down = down && newer(s, i - 1, i);
	}
	return up ? ORDER_OLDEST_FIRST : down ? ORDER_NEWEST_FIRST : ORDER_NONE;
}

/*
 * The index of the nr-th newest snapshot; prev is the (nr-1)-th. Unsorted input costs a scan
 * per step: sorting would need memory the caller did not give.
 */
static size_t walk_step(const struct keep_snap *s, size_t n, enum order o, size_t nr, size_t prev)
{
	size_t best = n;

	if (o == ORDER_OLDEST_FIRST)
		return n - 1 - nr;
	if (o == ORDER_NEWEST_FIRST)
		return nr;
	for (size_t j = 0; j < n; j++)
		if ((nr == 0 || newer(s, prev, j)) && (best == n || newer(s, j, best)))
			best = j;
	return best;
}

/* ---- checks ---- */

static const char *const rule_names[KEEP_NRULES] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly",
};

static bool dur_negative(const struct keep_dur *d)
{
	return d->years < 0 || d->months < 0 || d->days < 0 || d->hours < 0;
}

bool keep_policy_any(const struct keep_policy *p)
{
	if (p->has_keep_within && !dur_zero(&p->keep_within))
		return true;
	for (int r = 0; r < KEEP_NRULES; r++)
		if (p->count[r] > 0 || (r != KEEP_LAST && p->has_within[r] &&
					!dur_zero(&p->within[r])))
			return true;
	return false;
}

static int check_policy(const struct keep_policy *p, struct err *e)
{
	for (int r = 0; r < KEEP_NRULES; r++) {
		if (p->count[r] < 0)
			return err_set(e, EINVAL, "negative count %d for keep %s; restic 0.14 "
				       "has no 'unlimited', give a count of 1 or more",
				       p->count[r], rule_names[r]);
		if (p->has_within[r] && (r == KEEP_LAST || dur_negative(&p->within[r])))
			return err_set(e, EINVAL, "keep %s cannot take %s duration", rule_names[r],
				       r == KEEP_LAST ? "a" : "a negative");
	}
	if (p->has_keep_within && dur_negative(&p->keep_within))
		return err_set(e, EINVAL, "keep within cannot take a negative duration");
	if (!keep_policy_any(p))
		return err_set(e, EINVAL, "the keep policy has no rule, so nothing is pruned; add "
			       "one of last, hourly, daily, weekly, monthly, yearly, within");
	return 0;
}

static bool snap_valid(const struct keep_snap *s)
{
	return s->month >= 1 && s->month <= 12 && s->day >= 1 &&
	       s->day <= days_in_month(s->year, s->month) && s->hour >= 0 && s->hour <= 23 &&
	       s->min >= 0 && s->min <= 59 && s->sec >= 0 && s->sec <= 59;
}

static int check_snaps(const struct keep_snap *s, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++)
		if (!snap_valid(&s[i]))
			return err_set(e, EINVAL, "snapshot %zu has an impossible local time "
				       "%04d-%02d-%02d %02d:%02d:%02d", i, s[i].year, s[i].month,
				       s[i].day, s[i].hour, s[i].min, s[i].sec);
	return 0;
}

/* ---- public ---- */

int keep_apply(const struct keep_policy *p, const struct keep_clock *clk,
	       const struct keep_snap *snaps, size_t n, struct keep_verdict *out, struct err *e)
{
	struct state st;
	enum order o;
	size_t cur = 0;

	assert(p && clk && ((snaps && out) || n == 0));
	if (check_policy(p, e) < 0 || check_snaps(snaps, n, e) < 0)
		return -1;
	state_init(&st, p, clk, find_reference(snaps, n, clk->now));
	o = find_order(snaps, n);
	for (size_t nr = 0; nr < n; nr++) {
		cur = walk_step(snaps, n, o, nr, cur);
		out[cur].reasons = decide(&st, &snaps[cur], nr);
		out[cur].keep = out[cur].reasons != 0;
	}
	return 0;
}

/* ---- durations ---- */

/* Read the decimal number at *p into *num and move *p past it. */
static int parse_number(const char **p, int *num, const char *text, struct err *e)
{
	long long v = 0;
	const char *q = *p;

	if (*q < '0' || *q > '9')
		return err_set(e, EINVAL, "no number before '%.8s' in duration '%.40s'; write a "
			       "number and a unit (y, m, d, h), " DUR_HINT, q, text);
	for (; *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (*q - '0');
		if (v > INT_MAX)
			return err_set(e, EINVAL, "number too large in duration '%.40s'; at most "
				       "%d per unit, " DUR_HINT, text, INT_MAX);
	}
	*num = (int)v;
	*p = q;
	return 0;
}

/* Store num for the unit at *unit; each unit once (restic would take the last one). */
static int set_unit(struct keep_dur *d, unsigned *seen, const char *unit, int num,
		    const char *text, struct err *e)
{
	static const char units[] = "ymdh";
	int *field[4] = { &d->years, &d->months, &d->days, &d->hours };
	int i = 0;

	if (!*unit)
		return err_set(e, EINVAL, "no unit after %d in duration '%.40s'; add y, m, d or "
			       "h, " DUR_HINT, num, text);
	while (units[i] && units[i] != *unit)
		i++;
	if (!units[i])
		return err_set(e, EINVAL, "unknown unit at '%.8s' in duration '%.40s'; use y "
			       "(years), m (months), d (days) or h (hours), " DUR_HINT, unit, text);
	if (*seen & 1u << i)
		return err_set(e, EINVAL, "unit '%c' twice in duration '%.40s'; give each unit "
			       "once, " DUR_HINT, *unit, text);
	*seen |= 1u << i;
	*field[i] = num;
	return 0;
}

int keep_parse_dur(const char *s, struct keep_dur *out, struct err *e)
{
	struct keep_dur d = { 0 };
	unsigned seen = 0;
	const char *p = s;

	if (!*s)
		return err_set(e, EINVAL, "empty duration; write a number and a unit (y, m, d, "
			       "h), " DUR_HINT);
	while (*p) {
		int num = 0;

		if (parse_number(&p, &num, s, e) < 0 || set_unit(&d, &seen, p, num, s, e) < 0)
			return -1;
		p++;
	}
	*out = d;
	return 0;
}

const char *keep_reason_name(unsigned bit)
{
	if (bit == KEEP_REASON_WITHIN)
		return "within";
	for (int r = 0; r < KEEP_NRULES; r++)
		if (bit == 1u << r)
			return rule_names[r];
	return "unknown";
}

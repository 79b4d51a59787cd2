/*
 * Tests for snapshot/retention.c: restic 0.14's forget policy (SPEC, "snapkeep prune").
 *
 * Snapshots are built from local times in UTC or in Europe/Berlin. Berlin's offsets come from
 * the EU rule (summer time from the last Sunday of March to the last Sunday of October, 01:00
 * UTC), computed here, so no test depends on TZ or tzdata. A local time is resolved as Go's
 * time.Date resolves it, which is what `restic backup --time` stores. The scenarios with
 * durations, DST changes and ISO weeks are also fixed scenarios of tests/retention_restic.sh,
 * which checks them against restic 0.14 itself; only snapshots at the first of a repeated
 * autumn hour (02:xx CEST) are not, as `restic backup --time` cannot name them.
 *
 * Verdicts are compared as masks: one character per snapshot in input order, 'k' kept, '.'
 * pruned.
 */
#include "retention.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

#define MAX_SNAPS 40000		/* 100 years of daily backups */

enum zone { UTC, BERLIN };

static struct keep_snap snaps[MAX_SNAPS];
static struct keep_verdict out[MAX_SNAPS];
static char mask_buf[MAX_SNAPS + 1];

/* ---- Europe/Berlin and Go's time.Date ---- */

/* 01:00 UTC on the last Sunday of month (March or October: both have 31 days) of year. */
static int64_t last_sunday_0100(int year, int month)
{
	struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = 31,
			 .tm_hour = 1 };
	int64_t t = timegm(&tm);

	return t - (int64_t)tm.tm_wday * 86400;
}

static int berlin_offset(int64_t t, void *arg)
{
	time_t tt = (time_t)t;
	struct tm tm;

	(void)arg;
	ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
	if (t >= last_sunday_0100(tm.tm_year + 1900, 3) &&
	    t < last_sunday_0100(tm.tm_year + 1900, 10))
		return 7200;
	return 3600;
}

static const struct keep_clock utc_clock = { .now = INT64_MAX };
static const struct keep_clock berlin_clock = { .now = INT64_MAX, .utc_offset = berlin_offset };

/* The snapshot at local wall time `wall` (seconds, as timegm gives) in zone z. */
static struct keep_snap from_wall(int64_t wall, enum zone z)
{
	int64_t t = wall;
	time_t local;
	struct tm tm;

	if (z == BERLIN)	/* Go's time.Date: the offset at (wall - offset at wall as UTC) */
		t = wall - berlin_offset(wall - berlin_offset(wall, NULL), NULL);
	local = (time_t)(t + (z == BERLIN ? berlin_offset(t, NULL) : 0));
	ck_assert_ptr_nonnull(gmtime_r(&local, &tm));
	return (struct keep_snap){ .year = tm.tm_year + 1900, .month = tm.tm_mon + 1,
				   .day = tm.tm_mday, .hour = tm.tm_hour, .min = tm.tm_min,
				   .sec = tm.tm_sec, .unix_time = t };
}

static int64_t wall_of(const char *text)
{
	struct tm tm = { 0 };
	int n = sscanf(text, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		       &tm.tm_hour, &tm.tm_min, &tm.tm_sec);

	ck_assert_msg(n == 6, "bad time '%s' in a test", text);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static struct keep_snap at(const char *text, enum zone z)
{
	return from_wall(wall_of(text), z);
}

/* snaps[0..n) = times[0..n) in zone z; returns n. */
static size_t set_snaps(enum zone z, const char *const *times, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snaps[i] = at(times[i], z);
	return n;
}

#define SET_SNAPS(z, ...) \
	set_snaps(z, (const char *const[]){ __VA_ARGS__ }, \
		  sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* snaps[0..days) = one snapshot a day at the wall time of first, in zone z; returns days. */
static size_t daily_snaps(const char *first, size_t days, enum zone z)
{
	int64_t wall = wall_of(first);

	ck_assert_uint_le(days, MAX_SNAPS);
	for (size_t i = 0; i < days; i++)
		snaps[i] = from_wall(wall + (int64_t)i * 86400, z);
	return days;
}

/* ---- running the policy ---- */

static void apply(const struct keep_policy *p, const struct keep_clock *clk, size_t n)
{
	struct err e = { 0 };

	ck_assert_msg(keep_apply(p, clk, snaps, n, out, &e) == 0, "keep_apply: %s", e.msg);
}

static const char *mask(size_t n)
{
	for (size_t i = 0; i < n; i++)
		mask_buf[i] = out[i].keep ? 'k' : '.';
	mask_buf[n] = '\0';
	return mask_buf;
}

static const char *run(const struct keep_policy *p, const struct keep_clock *clk, size_t n)
{
	apply(p, clk, n);
	return mask(n);
}

static size_t count_kept(size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += out[i].keep;
	return k;
}

static struct keep_dur dur(const char *text)
{
	struct keep_dur d;
	struct err e = { 0 };

	ck_assert_msg(keep_parse_dur(text, &d, &e) == 0, "'%s': %s", text, e.msg);
	return d;
}

static struct keep_policy within(enum keep_rule r, const char *d)
{
	struct keep_policy p = { 0 };

	p.has_within[r] = true;
	p.within[r] = dur(d);
	return p;
}

static struct keep_policy keep_within(const char *d)
{
	struct keep_policy p = { .has_keep_within = true };

	p.keep_within = dur(d);
	return p;
}

/* ---- restic's documented examples ---- */

START_TEST(keeps_last_four_sundays_of_twelve)
{
	/* doc/060_forget.rst: a backup every Sunday for 12 weeks, `forget --keep-daily 4` */
	size_t n = SET_SNAPS(UTC, "2019-09-01 11:00:00", "2019-09-08 11:00:00",
			     "2019-09-15 11:00:00", "2019-09-22 11:00:00", "2019-09-29 11:00:00",
			     "2019-10-06 11:00:00", "2019-10-13 11:00:00", "2019-10-20 11:00:00",
			     "2019-10-27 11:00:00", "2019-11-03 11:00:00", "2019-11-10 11:00:00",
			     "2019-11-17 11:00:00");
	struct keep_policy p = { .count[KEEP_DAILY] = 4 };

	ck_assert_str_eq(run(&p, &utc_clock, n), "........kkkk");
	for (size_t i = 8; i < n; i++)
		ck_assert_uint_eq(out[i].reasons, 1u << KEEP_DAILY);
}
END_TEST

START_TEST(keeps_daily_weekly_monthly_yearly_of_a_century)
{
	/*
	 * doc/060_forget.rst: "one backup every day for 100 years. Then forget --keep-daily 7
	 * --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 would keep the most recent 7 daily
	 * snapshots and 4 last-day-of-the-week ones (since the 7 dailies already include 1
	 * weekly). Additionally, 12 or 11 last-day-of-the-month snapshots [...] And finally 75
	 * or 74 last-day-of-the-year snapshots". Ending on Sunday 2026-11-29: the dailies are
	 * Mon 11-23..Sun 11-29, 4 more Sundays, 11 more month ends (November's is 11-29), and
	 * 73 more year ends, 1952..2024 (2026's is 11-29, 2025's is a monthly): 95.
	 */
	size_t n = daily_snaps("1926-11-30 03:00:00", 36525, UTC);
	struct keep_policy p = { .count = { [KEEP_DAILY] = 7, [KEEP_WEEKLY] = 5,
					    [KEEP_MONTHLY] = 12, [KEEP_YEARLY] = 75 } };
	size_t oldest = n;

	ck_assert_int_eq(snaps[n - 1].day, 29);
	apply(&p, &utc_clock, n);
	ck_assert_uint_eq(count_kept(n), 7 + 4 + 11 + 73);
	for (size_t i = 0; i < n && oldest == n; i++)
		if (out[i].keep)
			oldest = i;
	ck_assert_int_eq(snaps[oldest].year, 1952);
	ck_assert_int_eq(snaps[oldest].month, 12);
	ck_assert_int_eq(snaps[oldest].day, 31);
	ck_assert_uint_eq(out[n - 1].reasons, 1u << KEEP_DAILY | 1u << KEEP_WEEKLY |
			  1u << KEEP_MONTHLY | 1u << KEEP_YEARLY);
}
END_TEST

START_TEST(counts_a_snapshot_kept_by_several_rules_for_each)
{
	/*
	 * FIELD-NOTES case 1: 60 daily backups, daily 7 + weekly 4 + monthly 3: restic keeps
	 * 11 (borg 13). Ending on Friday 2025-03-14, the dailies hold this week's newest and
	 * Sunday 03-09, so the weekly rule adds only 03-02 and 02-23, and monthly 02-28 and 01-31.
	 */
	size_t n = daily_snaps("2025-01-14 02:00:00", 60, UTC);
	struct keep_policy p = { .count = { [KEEP_DAILY] = 7, [KEEP_WEEKLY] = 4,
					    [KEEP_MONTHLY] = 3 } };

	apply(&p, &utc_clock, n);
	ck_assert_uint_eq(count_kept(n), 11);
	ck_assert_uint_eq(out[59].reasons, 1u << KEEP_DAILY | 1u << KEEP_WEEKLY |
			  1u << KEEP_MONTHLY);
	ck_assert_uint_eq(out[54].reasons, 1u << KEEP_DAILY | 1u << KEEP_WEEKLY);	/* 03-09 */
	ck_assert_uint_eq(out[53].reasons, 1u << KEEP_DAILY);
	ck_assert_uint_eq(out[47].reasons, 1u << KEEP_WEEKLY);			/* 03-02 */
	ck_assert_uint_eq(out[45].reasons, 1u << KEEP_MONTHLY);			/* 02-28 */
}
END_TEST

/* ---- periods ---- */

START_TEST(keeps_newest_of_each_period_with_several_snapshots)
{
	size_t n = SET_SNAPS(UTC, "2026-05-04 01:00:00", "2026-05-04 01:30:00",
			     "2026-05-04 09:00:00", "2026-05-05 00:00:00", "2026-05-05 23:59:59",
			     "2026-05-06 12:00:00", "2026-05-06 12:00:01", "2026-05-11 00:00:00");
	struct keep_policy daily = { .count[KEEP_DAILY] = 3 };
	struct keep_policy hourly = { .count[KEEP_HOURLY] = 5 };
	struct keep_policy weekly = { .count[KEEP_WEEKLY] = 2 };

	ck_assert_str_eq(run(&daily, &utc_clock, n), "....k.kk");
	ck_assert_str_eq(run(&hourly, &utc_clock, n), "..kkk.kk");
	ck_assert_str_eq(run(&weekly, &utc_clock, n), "......kk");
}
END_TEST

START_TEST(keeps_one_per_period_when_count_exceeds_periods)
{
	/* restic 0.14 has no "oldest" rule (0.16 added it): only one per day, however many */
	size_t n = SET_SNAPS(UTC, "2026-01-01 01:00:00", "2026-01-01 02:00:00",
			     "2026-01-02 01:00:00", "2026-01-02 02:00:00", "2026-01-03 01:00:00",
			     "2026-01-03 02:00:00");
	struct keep_policy p = { .count = { [KEEP_DAILY] = 5, [KEEP_YEARLY] = 100 } };

	ck_assert_str_eq(run(&p, &utc_clock, n), ".k.k.k");
}
END_TEST

START_TEST(keeps_last_n_snapshots_whatever_their_times)
{
	size_t n = SET_SNAPS(UTC, "2026-01-01 01:00:00", "2026-01-01 01:00:00",
			     "2026-01-01 01:00:01", "2020-01-01 00:00:00");
	struct keep_policy p = { .count[KEEP_LAST] = 2 };

	/* equal times: the later index is the newer */
	ck_assert_str_eq(run(&p, &utc_clock, n), ".kk.");
	ck_assert_uint_eq(out[1].reasons, 1u << KEEP_LAST);
}
END_TEST

START_TEST(keeps_newest_of_each_iso_week_across_week_53)
{
	/* 2020-W53 is Mon 2020-12-28 .. Sun 2021-01-03; 2021-W01 starts Mon 2021-01-04 */
	size_t n = daily_snaps("2020-12-20 10:00:00", 22, UTC);	/* .. 2021-01-10 */
	struct keep_policy p = { .count[KEEP_WEEKLY] = 3 };

	ck_assert_str_eq(run(&p, &utc_clock, n), ".......k......k......k");
	n = SET_SNAPS(UTC, "2026-12-27 10:00:00", "2026-12-28 10:00:00", "2026-12-31 10:00:00",
		      "2027-01-03 10:00:00", "2027-01-04 10:00:00", "2024-12-29 10:00:00",
		      "2024-12-30 10:00:00", "2025-01-05 10:00:00");
	/* 2026-W53 holds 12-28 .. 01-03; 2024-12-30 is in 2025-W01, 2024-12-29 in 2024-W52 */
	p.count[KEEP_WEEKLY] = 10;
	ck_assert_str_eq(run(&p, &utc_clock, n), "k..kkk.k");
}
END_TEST

START_TEST(keeps_year_and_month_ends_by_local_calendar)
{
	/* 2026-01-01 00:30 CET is 2025-12-31 23:30 UTC: its own year in Berlin */
	size_t n = SET_SNAPS(BERLIN, "2025-12-31 23:00:00", "2025-12-31 23:30:00",
			     "2026-01-01 00:30:00", "2026-01-31 23:59:59", "2026-02-01 00:00:00");
	struct keep_policy yearly = { .count[KEEP_YEARLY] = 5 };
	struct keep_policy monthly = { .count[KEEP_MONTHLY] = 5 };

	ck_assert_int_eq(snaps[2].unix_time, wall_of("2025-12-31 23:30:00"));
	ck_assert_str_eq(run(&yearly, &berlin_clock, n), ".k..k");
	ck_assert_str_eq(run(&monthly, &berlin_clock, n), ".k.kk");
}
END_TEST

START_TEST(keeps_hours_by_local_clock_across_dst_changes)
{
	/*
	 * Spring: 01:30 CET is followed an hour later by 03:30 CEST (02:xx does not exist).
	 * Autumn: 02:30 CEST and, an hour later, 02:20 CET share hour 02.
	 */
	size_t n = 6;
	struct keep_policy p = { .count[KEEP_HOURLY] = 10 };

	snaps[0] = at("2026-03-29 01:30:00", BERLIN);
	snaps[1] = at("2026-03-29 03:30:00", BERLIN);
	snaps[2] = from_wall(wall_of("2026-10-25 02:30:00") - 7200, UTC);	/* 00:30 UTC */
	snaps[2].hour += 2;	/* as Berlin shows it: 02:30 CEST */
	snaps[3] = at("2026-10-25 02:20:00", BERLIN);	/* 01:20 UTC, CET */
	snaps[4] = at("2026-10-25 03:00:00", BERLIN);
	snaps[5] = at("2026-10-25 01:59:00", BERLIN);	/* 23:59 UTC, CEST */
	ck_assert_int_eq(snaps[1].unix_time - snaps[0].unix_time, 3600);
	ck_assert_int_eq(snaps[3].unix_time - snaps[2].unix_time, 3000);
	ck_assert_str_eq(run(&p, &berlin_clock, n), "kk.kkk");
}
END_TEST

/* ---- durations ---- */

START_TEST(keeps_within_strictly_after_the_cutoff)
{
	size_t n = daily_snaps("2026-01-01 02:00:00", 10, UTC);
	struct keep_policy p = keep_within("3d");

	/* 01-07 02:00 is exactly 3 days before the newest: restic's `After` leaves it out */
	ck_assert_str_eq(run(&p, &utc_clock, n), ".......kkk");
	ck_assert_uint_eq(out[9].reasons, KEEP_REASON_WITHIN);
	p = keep_within("3d1h");
	ck_assert_str_eq(run(&p, &utc_clock, n), "......kkkk");
}
END_TEST

START_TEST(keeps_newest_of_each_period_within_duration)
{
	size_t n = SET_SNAPS(UTC, "2026-04-01 08:00:00", "2026-04-02 08:00:00",
			     "2026-04-02 20:00:00", "2026-04-03 07:00:00", "2026-04-03 07:30:00",
			     "2026-04-03 08:00:00", "2026-04-04 06:00:00");
	struct keep_policy daily = within(KEEP_DAILY, "2d");
	struct keep_policy hourly = within(KEEP_HOURLY, "24h");

	/* cut-off 04-02 06:00: 04-01 is out, however few days that leaves */
	ck_assert_str_eq(run(&daily, &utc_clock, n), "..k..kk");
	ck_assert_uint_eq(out[6].reasons, 1u << KEEP_DAILY);
	ck_assert_str_eq(run(&hourly, &utc_clock, n), "....kkk");
}
END_TEST

START_TEST(applies_count_and_duration_of_one_period_independently)
{
	size_t n = daily_snaps("2026-04-01 08:00:00", 6, UTC);
	struct keep_policy p = within(KEEP_DAILY, "2d");

	p.count[KEEP_DAILY] = 4;
	/* the within bucket and the count bucket each remember their own last day */
	ck_assert_str_eq(run(&p, &utc_clock, n), "..kkkk");
	p.has_keep_within = true;
	p.keep_within = dur("5d");
	ck_assert_str_eq(run(&p, &utc_clock, n), ".kkkkk");
	ck_assert_uint_eq(out[1].reasons, KEEP_REASON_WITHIN);
	ck_assert_uint_eq(out[5].reasons, KEEP_REASON_WITHIN | 1u << KEEP_DAILY);
}
END_TEST

START_TEST(steps_months_back_as_go_adddate_normalises)
{
	/* 2026-03-31 minus 1m is "2026-02-31", which Go normalises to 2026-03-03 */
	size_t n = SET_SNAPS(UTC, "2026-02-28 12:00:00", "2026-03-02 12:00:00",
			     "2026-03-03 11:59:59", "2026-03-03 12:00:00", "2026-03-03 12:00:01",
			     "2026-03-31 12:00:00");
	struct keep_policy p = keep_within("1m");

	ck_assert_str_eq(run(&p, &utc_clock, n), "....kk");
	p = keep_within("1m1d");
	ck_assert_str_eq(run(&p, &utc_clock, n), "..kkkk");
	/* 2024-02-29 minus 1y is "2023-02-29", that is 2023-03-01 */
	n = SET_SNAPS(UTC, "2023-02-28 06:00:00", "2023-03-01 06:00:00", "2023-03-01 06:00:01",
		      "2024-02-29 06:00:00");
	p = keep_within("1y");
	ck_assert_str_eq(run(&p, &utc_clock, n), "..kk");
	p = keep_within("12m");
	ck_assert_str_eq(run(&p, &utc_clock, n), "..kk");
}
END_TEST

START_TEST(steps_days_back_in_local_time_across_dst)
{
	/*
	 * Daily at 02:00 in Berlin. 30 days before 2026-04-10 02:00 CEST is 03-11 02:00 CET, an
	 * hour more than 30 * 24h, as restic computes it in time.Local: 03-11 is out. With a
	 * fixed offset (restic run under another TZ than the backups) 03-11 would be in.
	 */
	size_t n = daily_snaps("2026-03-01 02:00:00", 41, BERLIN);
	struct keep_policy p = keep_within("30d");
	const struct keep_clock fixed = { .now = INT64_MAX };

	ck_assert_int_eq(snaps[28].hour, 3);	/* 03-29 02:00 does not exist: 03:00 CEST */
	ck_assert_str_eq(run(&p, &berlin_clock, n), "...........kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
	ck_assert_str_eq(run(&p, &fixed, n), "..........kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
	/* hours are elapsed time: 30d24h reaches 03-10 02:00 CET, keeping 03-11 */
	p = keep_within("30d24h");
	ck_assert_str_eq(run(&p, &berlin_clock, n), "..........kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
}
END_TEST

START_TEST(counts_hours_as_elapsed_time_across_dst)
{
	/* 24h before 2026-03-30 02:00 CEST is 03-29 01:00 CET, not 02:00 */
	size_t n = SET_SNAPS(BERLIN, "2026-03-29 00:30:00", "2026-03-29 01:00:00",
			     "2026-03-29 01:30:00", "2026-03-30 02:00:00");
	struct keep_policy p = keep_within("24h");

	ck_assert_str_eq(run(&p, &berlin_clock, n), "..kk");
}
END_TEST

START_TEST(resolves_cutoff_in_spring_gap_with_offset_before_change)
{
	/*
	 * 30 days before 2026-04-28 02:20 CEST is 03-29 02:20, which does not exist; Go's Date
	 * takes the offset before the change: 02:20 CET, that is 03:20 CEST.
	 */
	size_t n = SET_SNAPS(BERLIN, "2026-03-29 01:40:00", "2026-03-29 03:00:00",
			     "2026-03-29 03:20:00", "2026-03-29 03:40:00", "2026-04-28 02:20:00");
	struct keep_policy p = keep_within("30d");

	ck_assert_str_eq(run(&p, &berlin_clock, n), "...kk");
}
END_TEST

START_TEST(resolves_cutoff_in_autumn_overlap_with_offset_after_change)
{
	/*
	 * 30 days before 2026-11-24 02:10 CET is 10-25 02:10, which happens twice; Go's Date
	 * takes the second, CET (01:10 UTC). 02:40 CEST (00:40 UTC) is before it.
	 */
	size_t n = 4;
	struct keep_policy p = keep_within("30d");

	snaps[0] = from_wall(wall_of("2026-10-25 00:40:00"), UTC);
	snaps[0].hour = 2;	/* 02:40 CEST */
	snaps[1] = at("2026-10-25 02:10:00", BERLIN);
	snaps[2] = at("2026-10-25 02:20:00", BERLIN);
	snaps[3] = at("2026-11-24 02:10:00", BERLIN);
	ck_assert_int_eq(snaps[1].unix_time, wall_of("2026-10-25 01:10:00"));
	ck_assert_str_eq(run(&p, &berlin_clock, n), "..kk");
}
END_TEST

START_TEST(ignores_future_snapshots_as_reference)
{
	size_t n = daily_snaps("2026-01-01 02:00:00", 10, UTC);
	struct keep_clock clk = { .now = wall_of("2026-06-01 00:00:00") };
	struct keep_policy p = keep_within("3d");

	snaps[n++] = at("2099-01-01 00:00:00", UTC);
	/* measured from 01-10, not from 2099; the future one is kept too */
	ck_assert_str_eq(run(&p, &clk, n), ".......kkkk");
	clk.now = INT64_MAX;
	ck_assert_str_eq(run(&p, &clk, n), "..........k");
	/* a snapshot at now is not in the future; later ones are all after the cut-off */
	clk.now = snaps[8].unix_time;
	ck_assert_str_eq(run(&p, &clk, n), "......kkkkk");
	clk.now--;
	ck_assert_str_eq(run(&p, &clk, n), ".....kkkkkk");
}
END_TEST

START_TEST(keeps_all_within_when_every_snapshot_is_in_the_future)
{
	/* restic's latest stays the zero time, year 1: every snapshot is within */
	size_t n = SET_SNAPS(UTC, "2098-12-25 02:00:00", "2098-12-26 02:00:00",
			     "2098-12-26 03:00:00", "2098-12-27 02:00:00");
	struct keep_clock clk = { .now = wall_of("2026-06-01 00:00:00") };
	struct keep_policy p = keep_within("1h");
	struct keep_policy daily = within(KEEP_DAILY, "1h");

	ck_assert_str_eq(run(&p, &clk, n), "kkkk");
	ck_assert_str_eq(run(&daily, &clk, n), "k.kk");
}
END_TEST

/* ---- input ---- */

START_TEST(decides_the_same_in_any_input_order)
{
	static const size_t perm[] = { 7, 2, 9, 0, 5, 11, 3, 8, 1, 10, 6, 4 };
	struct keep_snap sorted[12];
	struct keep_verdict want[12];
	struct keep_policy p = { .count = { [KEEP_LAST] = 2, [KEEP_WEEKLY] = 2 } };
	size_t n = SET_SNAPS(UTC, "2026-03-01 10:00:00", "2026-03-02 10:00:00",
			     "2026-03-04 10:00:00", "2026-03-08 10:00:00", "2026-03-08 11:00:00",
			     "2026-03-09 10:00:00", "2026-03-12 10:00:00", "2026-03-15 10:00:00",
			     "2026-03-16 10:00:00", "2026-03-20 10:00:00", "2026-03-21 10:00:00",
			     "2026-03-28 10:00:00");

	p.has_within[KEEP_DAILY] = true;
	p.within[KEEP_DAILY] = dur("9d");
	memcpy(sorted, snaps, sizeof(sorted));
	apply(&p, &utc_clock, n);
	memcpy(want, out, sizeof(want));
	for (size_t i = 0; i < n; i++)		/* newest first */
		snaps[i] = sorted[n - 1 - i];
	apply(&p, &utc_clock, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(out[i].reasons, want[n - 1 - i].reasons);
	for (size_t i = 0; i < n; i++)		/* shuffled */
		snaps[i] = sorted[perm[i]];
	apply(&p, &utc_clock, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(out[i].reasons, want[perm[i]].reasons);
	ck_assert_str_eq(run(&p, &utc_clock, 0), "");
}
END_TEST

START_TEST(rejects_policy_without_rule)
{
	struct keep_policy p = { 0 };
	struct err e = { 0 };

	snaps[0] = at("2026-01-01 00:00:00", UTC);
	out[0] = (struct keep_verdict){ .keep = true, .reasons = 42 };
	ck_assert(!keep_policy_any(&p));
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, 1, out, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_str_eq(e.msg, "the keep policy has no rule, so nothing is pruned; add one of "
			 "last, hourly, daily, weekly, monthly, yearly, within");
	ck_assert_uint_eq(out[0].reasons, 42);
	/* zero durations are no rule, as restic's Duration.Zero() */
	p = keep_within("0d");
	p.has_within[KEEP_DAILY] = true;
	ck_assert(!keep_policy_any(&p));
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, 1, out, &e), -1);
	p.count[KEEP_LAST] = 1;
	ck_assert(keep_policy_any(&p));
}
END_TEST

START_TEST(rejects_negative_counts_and_misplaced_durations)
{
	struct keep_policy p = { .count = { [KEEP_DAILY] = 3, [KEEP_WEEKLY] = -1 } };
	struct err e = { 0 };

	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, 0, out, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_str_eq(e.msg, "negative count -1 for keep weekly; restic 0.14 has no "
			 "'unlimited', give a count of 1 or more");
	p = (struct keep_policy){ .has_within[KEEP_LAST] = true, .within[KEEP_LAST].days = 1 };
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, 0, out, &e), -1);
	ck_assert_str_eq(e.msg, "keep last cannot take a duration");
	p = keep_within("1d");
	p.keep_within.hours = -1;
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, 0, out, &e), -1);
	ck_assert_str_eq(e.msg, "keep within cannot take a negative duration");
}
END_TEST

START_TEST(rejects_impossible_local_times)
{
	struct keep_policy p = { .count[KEEP_DAILY] = 1 };
	struct err e = { 0 };
	size_t n = SET_SNAPS(UTC, "2026-01-01 00:00:00", "2026-01-02 00:00:00");

	snaps[1].day = 32;
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, n, out, &e), -1);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_str_eq(e.msg, "snapshot 1 has an impossible local time 2026-01-32 00:00:00");
	snaps[1] = (struct keep_snap){ .year = 2025, .month = 2, .day = 29 };
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, n, out, &e), -1);
	snaps[1] = (struct keep_snap){ .year = 2024, .month = 2, .day = 29, .hour = 24 };
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, n, out, &e), -1);
	snaps[1].hour = 23;
	ck_assert_int_eq(keep_apply(&p, &utc_clock, snaps, n, out, &e), 0);
}
END_TEST

/* ---- durations and names ---- */

static void assert_dur(const char *text, int y, int m, int d, int h)
{
	struct keep_dur got = dur(text);

	ck_assert_msg(got.years == y && got.months == m && got.days == d && got.hours == h,
		      "'%s' parsed as %dy%dm%dd%dh", text, got.years, got.months, got.days,
		      got.hours);
}

START_TEST(parses_restic_durations)
{
	assert_dur("1y6m", 1, 6, 0, 0);
	assert_dur("30d", 0, 0, 30, 0);
	assert_dur("24h", 0, 0, 0, 24);
	assert_dur("2y5m7d3h", 2, 5, 7, 3);
	assert_dur("3h2d", 0, 0, 2, 3);
	assert_dur("0d", 0, 0, 0, 0);
	assert_dur("007d", 0, 0, 7, 0);
	assert_dur("2147483647h", 0, 0, 0, INT_MAX);
}
END_TEST

static void assert_bad_dur(const char *text, const char *msg)
{
	struct keep_dur d = { 1, 2, 3, 4 };
	struct err e = { 0 };

	ck_assert_msg(keep_parse_dur(text, &d, &e) == -1, "'%s' parsed", text);
	ck_assert_int_eq(e.code, EINVAL);
	ck_assert_str_eq(e.msg, msg);
	ck_assert(d.years == 1 && d.months == 2 && d.days == 3 && d.hours == 4);
}

START_TEST(rejects_bad_durations_naming_the_text)
{
	assert_bad_dur("", "empty duration; write a number and a unit (y, m, d, h), "
		       "e.g. 24h, 30d, 1y6m");
	assert_bad_dur("d", "no number before 'd' in duration 'd'; write a number and a unit "
		       "(y, m, d, h), e.g. 24h, 30d, 1y6m");
	assert_bad_dur("-1d", "no number before '-1d' in duration '-1d'; write a number and a "
		       "unit (y, m, d, h), e.g. 24h, 30d, 1y6m");
	assert_bad_dur("30", "no unit after 30 in duration '30'; add y, m, d or h, e.g. 24h, "
		       "30d, 1y6m");
	assert_bad_dur("2w", "unknown unit at 'w' in duration '2w'; use y (years), m (months), "
		       "d (days) or h (hours), e.g. 24h, 30d, 1y6m");
	assert_bad_dur("24 h", "unknown unit at ' h' in duration '24 h'; use y (years), m "
		       "(months), d (days) or h (hours), e.g. 24h, 30d, 1y6m");
	assert_bad_dur("1.5d", "unknown unit at '.5d' in duration '1.5d'; use y (years), m "
		       "(months), d (days) or h (hours), e.g. 24h, 30d, 1y6m");
	assert_bad_dur("1d2d", "unit 'd' twice in duration '1d2d'; give each unit once, e.g. "
		       "24h, 30d, 1y6m");
	assert_bad_dur("2147483648h", "number too large in duration '2147483648h'; at most "
		       "2147483647 per unit, e.g. 24h, 30d, 1y6m");
	assert_bad_dur("99999999999999999999999d", "number too large in duration "
		       "'99999999999999999999999d'; at most 2147483647 per unit, e.g. 24h, 30d, "
		       "1y6m");
}
END_TEST

START_TEST(names_each_reason)
{
	static const char *const names[] = {
		"last", "hourly", "daily", "weekly", "monthly", "yearly", "within",
	};

	for (unsigned i = 0; i <= KEEP_NRULES; i++)
		ck_assert_str_eq(keep_reason_name(1u << i), names[i]);
	ck_assert_str_eq(keep_reason_name(KEEP_REASON_WITHIN), "within");
	ck_assert_str_eq(keep_reason_name(0), "unknown");
	ck_assert_str_eq(keep_reason_name(3), "unknown");
}
END_TEST

static Suite *retention_suite(void)
{
	Suite *s = suite_create("retention");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, keeps_last_four_sundays_of_twelve);
	tcase_add_test(tc, keeps_daily_weekly_monthly_yearly_of_a_century);
	tcase_add_test(tc, counts_a_snapshot_kept_by_several_rules_for_each);
	tcase_add_test(tc, keeps_newest_of_each_period_with_several_snapshots);
	tcase_add_test(tc, keeps_one_per_period_when_count_exceeds_periods);
	tcase_add_test(tc, keeps_last_n_snapshots_whatever_their_times);
	tcase_add_test(tc, keeps_newest_of_each_iso_week_across_week_53);
	tcase_add_test(tc, keeps_year_and_month_ends_by_local_calendar);
	tcase_add_test(tc, keeps_hours_by_local_clock_across_dst_changes);
	tcase_add_test(tc, keeps_within_strictly_after_the_cutoff);
	tcase_add_test(tc, keeps_newest_of_each_period_within_duration);
	tcase_add_test(tc, applies_count_and_duration_of_one_period_independently);
	tcase_add_test(tc, steps_months_back_as_go_adddate_normalises);
	tcase_add_test(tc, steps_days_back_in_local_time_across_dst);
	tcase_add_test(tc, counts_hours_as_elapsed_time_across_dst);
	tcase_add_test(tc, resolves_cutoff_in_spring_gap_with_offset_before_change);
	tcase_add_test(tc, resolves_cutoff_in_autumn_overlap_with_offset_after_change);
	tcase_add_test(tc, ignores_future_snapshots_as_reference);
	tcase_add_test(tc, keeps_all_within_when_every_snapshot_is_in_the_future);
	tcase_add_test(tc, decides_the_same_in_any_input_order);
	tcase_add_test(tc, rejects_policy_without_rule);
	tcase_add_test(tc, rejects_negative_counts_and_misplaced_durations);
	tcase_add_test(tc, rejects_impossible_local_times);
	tcase_add_test(tc, parses_restic_durations);
	tcase_add_test(tc, rejects_bad_durations_naming_the_text);
	tcase_add_test(tc, names_each_reason);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_run(retention_suite());
}

/*
 * retention: which snapshots a keep policy keeps, and why.
 *
 * The semantics are those of restic 0.14's `forget` (SPEC, "snapkeep prune"):
 * every rule looks at every snapshot, newest first; a count rule keeps a
 * snapshot when its period differs from the last period that rule kept and it
 * has count left, and a snapshot kept by several rules counts for each. A
 * duration rule (`daily 30d`) keeps the newest snapshot of every period that
 * lies within the duration of the reference time, the newest snapshot not in
 * the future. Periods are in local time: a snapshot's local calendar fields
 * come from its file name.
 *
 * Pure: no I/O, no allocation but the caller's arrays, no clock or time zone
 * access of its own: the current time and the local zone's UTC offsets come
 * in through struct keep_clock. Thread-safe if the clock's callback is.
 */
#ifndef SNAPFS_RETENTION_H
#define SNAPFS_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A duration as restic writes it: "1y6m", "30d", "24h" (years, months, days, hours). */
struct keep_dur {
	int years, months, days, hours;
};

enum keep_rule {
	KEEP_LAST,
	KEEP_HOURLY,
	KEEP_DAILY,
	KEEP_WEEKLY,	/* ISO 8601 weeks */
	KEEP_MONTHLY,
	KEEP_YEARLY,
	KEEP_NRULES
};

/*
 * A policy. For each rule either a count (> 0), or a duration (has_within),
 * or neither (rule unused). KEEP_LAST takes a count only. `within` is
 * --keep-within, which keeps every snapshot within it of the reference.
 */
struct keep_policy {
	int count[KEEP_NRULES];
	bool has_within[KEEP_NRULES];
	struct keep_dur within[KEEP_NRULES];
	bool has_keep_within;
	struct keep_dur keep_within;
};

/* A snapshot: its local calendar time (from its name) and that instant in Unix time. */
struct keep_snap {
	int year, month, day, hour, min, sec;	/* month 1-12, day 1-31 */
	int64_t unix_time;
};

/* Why a snapshot is kept: bit (1 << rule) for each rule, KEEP_REASON_WITHIN for keep-within. */
#define KEEP_REASON_WITHIN (1u << KEEP_NRULES)

struct keep_verdict {
	bool keep;
	unsigned reasons;
};

/*
 * What restic's forget takes from the running system. now: snapshots after it
 * (unix_time > now) are never the reference time (restic's findLatestTimestamp;
 * when every snapshot is after now, every snapshot is within every duration,
 * as in restic). utc_offset: the
 * local zone's offset east of UTC, in seconds, at a Unix time (the caller's
 * localtime_r() tm_gmtoff); it must answer for any time. Duration rules step
 * back in calendar time in that zone, as Go's AddDate does in time.Local, so
 * "30d" before 02:00 CEST is 02:00 CET. NULL: the reference snapshot's own
 * offset all the way back, as restic does when its TZ differs from the stored
 * offsets; identical for zones without DST changes.
 */
struct keep_clock {
	int64_t now;
	int (*utc_offset)(int64_t unix_time, void *arg);
	void *arg;
};

/* True when the policy has at least one rule (a count > 0 or a non-zero duration). */
bool keep_policy_any(const struct keep_policy *p);

/*
 * Parse a restic duration: one or more of <N>y, <N>m, <N>d, <N>h, e.g. "1y6m",
 * each unit at most once, N in decimal digits up to INT_MAX, no spaces or signs.
 * "0d" parses; keep_apply() treats a zero duration as no rule, as restic does.
 * Returns 0, or -1 with EINVAL and a message naming the text (*out untouched).
 */
int keep_parse_dur(const char *s, struct keep_dur *out, struct err *e);

/*
 * Decide. snaps[0..n) in any order; out[i] gets the verdict for snaps[i].
 * Snapshots with the same unix_time are ordered by index: the later one is
 * the newer. Fast for snapshots sorted by time (either way), O(n^2) otherwise.
 * Returns 0, or -1 with EINVAL when the policy has no rule, a negative count or
 * duration, or a snapshot has an impossible local time (out is then untouched).
 */
int keep_apply(const struct keep_policy *p, const struct keep_clock *clk,
	       const struct keep_snap *snaps, size_t n, struct keep_verdict *out, struct err *e);

/*
 * The name of a reason bit for JSON and text output: "last", "hourly", ..., "within".
 * A count rule and a duration rule of the same period share a name. Static storage;
 * "unknown" for anything but one reason bit.
 */
const char *keep_reason_name(unsigned bit);

#endif

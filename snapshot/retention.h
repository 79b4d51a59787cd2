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
 * Pure: no I/O, no allocation but the caller's arrays. Thread-safe.
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

/* True when the policy has at least one rule. */
bool keep_policy_any(const struct keep_policy *p);

/*
 * Parse a restic duration: one or more of <N>y, <N>m, <N>d, <N>h, e.g. "1y6m".
 * Returns 0, or -1 with EINVAL and a message naming the text.
 */
int keep_parse_dur(const char *s, struct keep_dur *out, struct err *e);

/*
 * Decide. snaps[0..n) in any order; out[i] gets the verdict for snaps[i].
 * Returns 0, or -1 with EINVAL when the policy has no rule (nothing is decided).
 */
int keep_apply(const struct keep_policy *p, const struct keep_snap *snaps, size_t n,
	       struct keep_verdict *out, struct err *e);

/* The name of a reason bit for JSON and text output: "last", "hourly", ..., "within". */
const char *keep_reason_name(unsigned bit);

#endif

#!/bin/bash
#
# retention_restic.sh KEEP_DRIVER: keep_apply() against the real restic 0.14's forget.
#
# For each scenario (a time zone, snapshot times, several policies) it makes a throwaway
# restic repository with one snapshot per time (`backup --time`, all of the same directory
# and host, so one group, each tagged L<line>), asks `forget --dry-run --json POLICY` which
# it keeps, and compares that with tests/keep_driver given the same times and policy.
# Scenarios: fixed ones (restic's doc examples, FIELD-NOTES case 1, DST changes in
# Europe/Berlin, month ends, ISO week 53, year ends, future snapshots) and seeded random ones.
#
# Exit 0 when all agree, 1 on any mismatch (each printed in full), 77 (meson's SKIP) without
# restic or jq, 2 on a broken set-up. Environment: RETENTION_SEED (default 20260329),
# RETENTION_RANDOM (number of random scenarios, default 12), RETENTION_FIXED=0 (random ones
# only), RETENTION_JOBS (repositories built at once, default 12).
#
# Speed: a restic command costs ~0.5 s of scrypt for the repository key, calibrated at
# init. With python3's cryptography module the key file of the template repository is
# re-encrypted with scrypt N=2 (restic reads any valid parameters), so a backup costs ~30 ms
# of CPU and ~0.2 s of waiting on its lock, and backups run in parallel. Without it the
# random scenarios shrink to 4.

set -u

driver=${1:-./keep_driver}
seed=${RETENTION_SEED:-20260329}
nrandom=${RETENTION_RANDOM:-12}
jobs=${RETENTION_JOBS:-12}

if ! command -v restic >/dev/null; then
	echo "SKIP: restic not installed"
	exit 77
fi
if ! command -v jq >/dev/null; then
	echo "SKIP: jq not installed"
	exit 77
fi
if [ ! -x "$driver" ]; then
	echo "retention_restic.sh: no keep driver at '$driver'; pass its path as \$1" >&2
	exit 2
fi
case $(restic version) in
"restic 0.14."*) ;;
*) echo "note: $(restic version | head -n1); the policy follows restic 0.14" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/retention_restic.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=snapfs-retention-test
mkdir "$work/data" && echo snapfs >"$work/data/file" || exit 2

passed=0
failed=0

# ---- the template repository ----

# Re-encrypt the repository key KEYFILE with cheap scrypt parameters (see "Speed" above).
cheapen_key() {
	python3 - "$1" <<'EOF'
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

# restic's key file: scrypt(password) gives a 32-byte AES key and a Poly1305-AES key (k, r);
# data is nonce || AES-256-CTR(master key JSON) || Poly1305-AES tag over the ciphertext.
def user_key(pw, kf):
    k = hashlib.scrypt(pw, salt=base64.b64decode(kf["salt"]), n=kf["N"], r=kf["r"],
                       p=kf["p"], dklen=64, maxmem=1 << 30)
    return k[:32], k[32:48], k[48:]

def ctr(key, nonce, data):
    c = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return c.update(data) + c.finalize()

def tag(k, r, nonce, msg):
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return Poly1305.generate_tag(r + e.update(nonce) + e.finalize(), msg)

path, pw = sys.argv[1], os.environ["RESTIC_PASSWORD"].encode()
kf = json.load(open(path))
ek, mk, mr = user_key(pw, kf)
blob = base64.b64decode(kf["data"])
nonce, ct = blob[:16], blob[16:-16]
if tag(mk, mr, nonce, ct) != blob[-16:]:
    sys.exit("key file does not authenticate")
master = ctr(ek, nonce, ct)
kf.update(N=2, r=1, p=1, salt=base64.b64encode(os.urandom(64)).decode())
ek, mk, mr = user_key(pw, kf)
nonce = os.urandom(16)
ct = ctr(ek, nonce, master)
kf["data"] = base64.b64encode(nonce + ct + tag(mk, mr, nonce, ct)).decode()
out = json.dumps(kf).encode()
new = os.path.join(os.path.dirname(path), hashlib.sha256(out).hexdigest())
open(new, "wb").write(out)
os.unlink(path)
EOF
}

make_template() {
	local keys

	RESTIC_REPOSITORY=$work/tmpl restic --no-cache -q init >/dev/null || return 1
	cp -a "$work/tmpl/keys" "$work/keys.orig"
	keys=("$work"/tmpl/keys/*)
	if python3 -c 'import cryptography' 2>/dev/null && cheapen_key "${keys[0]}" &&
		RESTIC_REPOSITORY=$work/tmpl restic --no-cache --no-lock -q cat config \
			>/dev/null; then
		return 0
	fi
	echo "note: restic's key kept as it is (no python3 cryptography?): 4 random scenarios"
	rm -rf "$work/tmpl/keys" && cp -a "$work/keys.orig" "$work/tmpl/keys"
	nrandom=$((nrandom < 4 ? nrandom : 4))
}

# ---- scenarios: written to $work/s/NNN, built in parallel, then compared ----

# scenario NAME TZ POLICY... < TIMES: add a scenario (safe in a pipeline's subshell).
scenario() {
	local dir

	dir=$work/s/$(printf '%03d' "$(find "$work/s" -mindepth 1 -maxdepth 1 | wc -l)")
	mkdir -p "$dir" || exit 2
	printf '%s\n' "$1" >"$dir/name"
	printf '%s\n' "$2" >"$dir/tz"
	shift 2
	cat >"$dir/times"
	printf '%s\n' "$@" >"$dir/policies"
}

# build_repo DIR: DIR/repo with one snapshot per line of DIR/times, tagged L<line>. Backups
# into one repository run one after another: restic 0.14's lock check retries for seconds
# when a concurrent backup's lock file vanishes under it.
build_repo() {
	local dir=$1 line date clock

	cp -a "$work/tmpl" "$dir/repo" || return 1
	while read -r line date clock; do
		RESTIC_REPOSITORY=$dir/repo TZ=$(cat "$dir/tz") restic --no-cache -q backup \
			--host h --tag "L$line" --time "$date $clock" "$work/data" \
			>/dev/null 2>>"$dir/backup.err" || return 1
	done < <(awk '{ print NR, $1, $2 }' "$dir/times")
	touch "$dir/built"
}

# shellcheck disable=SC2016 # $1 is the inner bash's
build_all() {
	export -f build_repo
	export work
	find "$work/s" -mindepth 1 -maxdepth 1 | sort |
		xargs -P "$jobs" -n 1 bash -c 'build_repo "$1"' _
}

# check_scenario DIR: compare restic and the driver on every policy of the scenario.
check_scenario() {
	local dir=$1 name tz repo=$1/repo ok=0 policy want got

	name=$(cat "$dir/name")
	tz=$(cat "$dir/tz")
	if [ ! -e "$dir/built" ]; then
		echo "FAIL: $name: restic backup failed: $(tail -n 3 "$dir/backup.err" 2>/dev/null)"
		failed=$((failed + $(wc -l <"$dir/policies")))
		return
	fi
	while read -r policy; do
		# shellcheck disable=SC2086 # a policy is a list of flags
		want=$(RESTIC_REPOSITORY=$repo TZ=$tz restic --no-cache --no-lock -q forget \
			--dry-run --json $policy | jq -r '.[].keep[]?.tags[]?' | tr -d L | sort -n)
		# shellcheck disable=SC2086
		got=$(TZ=$tz "$driver" $policy <"$dir/times" | grep -n '^keep' | cut -d: -f1)
		if [ -n "$want" ] && [ "$want" = "$got" ]; then
			passed=$((passed + 1))
			ok=$((ok + 1))
			continue
		fi
		failed=$((failed + 1))
		report "$name" "$tz" "$dir/times" "$policy" "$want" "$got"
	done <"$dir/policies"
	echo "ok: $name (TZ=$tz, $(wc -l <"$dir/times") snapshots): $ok of" \
		"$(wc -l <"$dir/policies") policies agree"
}

report() {
	local name=$1 tz=$2 times=$3 policy=$4 want=$5 got=$6 i=0 line r d

	echo "MISMATCH: $name, TZ=$tz, policy: $policy"
	echo "  line  time                 restic  keep_driver"
	while IFS= read -r line; do
		i=$((i + 1))
		r=prune d=prune
		grep -qx "$i" <<<"$want" && r=keep
		grep -qx "$i" <<<"$got" && d=keep
		printf '  %4d  %s  %-6s  %-6s%s\n' "$i" "$line" "$r" "$d" \
			"$([ "$r" = "$d" ] || echo '  <--')"
	done <"$times"
}

# ---- fixed scenarios ----

# daily FROM DAYS TIME: DAYS consecutive days from FROM at TIME.
daily() {
	local i

	for ((i = 0; i < $2; i++)); do
		TZ=UTC date -d "$1 +$i days" "+%F $3"
	done
}

fixed_scenarios() {
	# doc/060_forget.rst: one backup every Sunday for 12 weeks; --keep-daily 4 keeps the last
	# four Sundays.
	for d in 09-01 09-08 09-15 09-22 09-29 10-06 10-13 10-20 10-27 11-03 11-10 11-17; do
		echo "2019-$d 11:00:00"
	done | scenario doc-12-sundays UTC "--keep-daily 4" "--keep-weekly 3 --keep-monthly 2" \
		"--keep-last 2 --keep-monthly 5" "--keep-within-weekly 1m"

	# FIELD-NOTES case 1: 60 daily backups, daily 7 + weekly 4 + monthly 3 keeps 11.
	daily 2025-01-14 60 02:00:00 | scenario field-notes-60-days UTC \
		"--keep-daily 7 --keep-weekly 4 --keep-monthly 3" \
		"--keep-within 2d --keep-daily 7" "--keep-within-daily 7d --keep-within-weekly 1m"

	# Daily 02:00 across the spring change: "30d" before 02:00 CEST is 02:00 CET.
	for tz in Europe/Berlin UTC; do
		{ daily 2026-03-01 28 02:00:00; daily 2026-03-30 12 02:00:00; } |
			scenario dst-spring-daily "$tz" "--keep-within 30d" "--keep-within 30d24h" \
			"--keep-within-daily 10d" "--keep-within 1m" "--keep-within-weekly 20d" \
			"--keep-daily 9 --keep-weekly 3"
	done

	# Every 20 minutes through 2026-03-29's gap (02:15 does not exist: it is 03:15 CEST), and
	# a latest 30 days on whose cut-off wall time 02:20 lies in the gap.
	{
		for h in 00 01 03 04; do
			for m in 00 20 40; do echo "2026-03-29 $h:$m:00"; done
		done
		echo "2026-03-29 02:15:00"
		echo "2026-04-28 02:20:00"
	} | scenario dst-spring-gap Europe/Berlin "--keep-within 30d" "--keep-within 29d24h" \
		"--keep-within 30d1h" "--keep-within-hourly 30d2h" "--keep-hourly 6" \
		"--keep-within 720h"

	# Every 20 minutes through 2026-10-25's repeated hour (02:xx strings are the second,
	# CET, 02:xx as with restic), and a latest whose 30-day cut-off lies in that hour.
	{
		for h in 00 01 02 03 04; do
			for m in 00 20 40; do echo "2026-10-25 $h:$m:00"; done
		done
		echo "2026-10-24 23:50:00"
		echo "2026-11-24 02:10:00"
	} | scenario dst-autumn-overlap Europe/Berlin "--keep-within 30d" "--keep-within 30d1h" \
		"--keep-within 1m" "--keep-within-hourly 31d" "--keep-hourly 5" \
		"--keep-within 720h"

	# 24 hours before 2026-03-30 02:00 CEST is 03-29 01:00 CET: hours are elapsed time.
	printf '%s\n' "2026-03-29 00:30:00" "2026-03-29 01:00:00" "2026-03-29 01:30:00" \
		"2026-03-30 02:00:00" |
		scenario dst-elapsed-hours Europe/Berlin "--keep-within 24h" "--keep-within 1d" \
		"--keep-within-hourly 25h"

	# Hours by the local clock across both changes; year and month ends in local time.
	printf '%s\n' "2026-03-29 01:30:00" "2026-03-29 03:30:00" "2026-10-25 02:20:00" \
		"2026-10-25 03:00:00" "2026-10-25 01:59:00" "2025-12-31 23:00:00" \
		"2025-12-31 23:30:00" "2026-01-01 00:30:00" "2026-01-31 23:59:59" \
		"2026-02-01 00:00:00" |
		scenario local-periods Europe/Berlin "--keep-hourly 10" "--keep-yearly 5" \
		"--keep-monthly 5" "--keep-daily 4"

	# Periods within durations; count and duration rules of one period side by side.
	printf '%s\n' "2026-04-01 08:00:00" "2026-04-02 08:00:00" "2026-04-02 20:00:00" \
		"2026-04-03 07:00:00" "2026-04-03 07:30:00" "2026-04-03 08:00:00" \
		"2026-04-04 06:00:00" |
		scenario within-periods UTC "--keep-within-daily 2d" "--keep-within-hourly 24h" \
		"--keep-within-daily 2d --keep-daily 4" \
		"--keep-within-daily 2d --keep-daily 4 --keep-within 5d"

	# Month ends: 03-31 minus 1m is "02-31" = 03-03 (Go's AddDate normalisation).
	printf '%s\n' "2026-01-31 12:00:00" "2026-02-28 12:00:00" "2026-03-01 12:00:00" \
		"2026-03-02 12:00:00" "2026-03-03 11:59:59" "2026-03-03 12:00:00" \
		"2026-03-03 12:00:01" "2026-03-04 08:00:00" "2026-03-31 12:00:00" |
		scenario month-end-2026 UTC "--keep-within 1m" "--keep-within 1m1d" \
		"--keep-within-daily 1m" "--keep-within 2m" "--keep-within-monthly 1m"

	# Leap day: 2024-02-29 minus 1y is "2023-02-29" = 2023-03-01.
	printf '%s\n' "2023-02-27 06:00:00" "2023-02-28 06:00:00" "2023-03-01 05:00:00" \
		"2023-03-01 06:00:00" "2023-03-01 07:00:00" "2023-03-02 06:00:00" \
		"2023-12-31 23:59:59" "2024-01-01 00:00:00" "2024-02-29 06:00:00" |
		scenario leap-day Europe/Berlin "--keep-within 1y" "--keep-within 12m" \
		"--keep-within-monthly 1y" "--keep-within-yearly 1y" "--keep-yearly 3"

	# ISO week 53 (2020-W53: 2020-12-28..2021-01-03; 2026-W53: 2026-12-28..2027-01-03).
	{
		daily 2020-12-20 22 10:00:00
		daily 2026-12-24 14 10:00:00
		printf '%s\n' "2024-12-29 10:00:00" "2024-12-30 10:00:00" "2025-01-05 10:00:00"
	} |
		scenario iso-week-53 UTC "--keep-weekly 6" "--keep-weekly 3 --keep-yearly 4" \
		"--keep-monthly 5" "--keep-daily 3 --keep-weekly 2"

	# Year ends at midnight in local time.
	{
		for y in 2021 2022 2023 2024 2025; do
			echo "$y-12-31 23:30:00"
			echo "$((y + 1))-01-01 00:30:00"
		done
	} | scenario year-ends Europe/Berlin "--keep-yearly 3" "--keep-yearly 10" \
		"--keep-monthly 4 --keep-hourly 2" "--keep-within-yearly 2y"

	# Future snapshots are never the reference; with only future ones, all are within.
	{ daily 2026-01-01 10 02:00:00; echo "2099-01-01 00:00:00"; echo "2099-01-01 05:00:00"; } |
		scenario future-dated UTC "--keep-within 3d" "--keep-within-daily 5d" \
		"--keep-last 2" "--keep-daily 3" "--keep-within-hourly 1h"
	daily 2098-12-25 5 02:00:00 |
		scenario all-future UTC "--keep-within 1d" "--keep-within-monthly 1h" \
		"--keep-within-daily 2d --keep-last 1"

	# Several snapshots in one period; counts larger than the number of periods.
	printf '%s\n' "2026-05-04 01:00:00" "2026-05-04 01:30:00" "2026-05-04 09:00:00" \
		"2026-05-05 00:00:00" "2026-05-05 23:59:59" "2026-05-06 12:00:00" \
		"2026-05-06 12:00:01" "2026-05-11 00:00:00" |
		scenario same-period UTC "--keep-daily 2" "--keep-daily 50" "--keep-hourly 100" \
		"--keep-weekly 9 --keep-last 3" "--keep-within-daily 2d"
}

# ---- random scenarios ----

# rnd LO HI: a number in [LO, HI] in R. These functions set variables rather than print, as
# $(...) would draw from a copy of RANDOM's sequence.
rnd() {
	R=$((((RANDOM << 15) | RANDOM) % ($2 - $1 + 1) + $1))
}

# A duration in D; whole days and hours often meet a regular series' snapshots exactly.
random_dur() {
	rnd 1 9
	case $R in
	1 | 2) rnd 1 72 && D=${R}h ;;
	3 | 4 | 5) rnd 1 40 && D=${R}d ;;
	6) rnd 1 14 && D=${R}m ;;
	7) rnd 1 9 && D=${R}d && rnd 1 23 && D=$D${R}h ;;
	8) rnd 1 6 && D=${R}m && rnd 1 20 && D=$D${R}d ;;
	*) rnd 0 11 && D=1y${R}m && D=${D%0m} ;;
	esac
}

random_rule() {
	local periods=(hourly daily weekly monthly yearly)

	rnd 1 4
	case $R in
	1) rnd 1 8 && P="--keep-last $R" ;;
	2) rnd 0 4 && P="--keep-${periods[R]}" && rnd 1 14 && P="$P $R" ;;
	3) random_dur && P="--keep-within $D" ;;
	*) rnd 0 4 && P="--keep-within-${periods[R]}" && random_dur && P="$P $D" ;;
	esac
}

# A policy of one to three rules in POLICY.
random_policy() {
	local k

	rnd 1 3
	k=$R
	random_rule && POLICY=$P
	while ((--k > 0)); do
		random_rule && POLICY="$POLICY $P"
	done
}

# Snapshot instants: random within a span, or a regular series with gaps and jitter; three
# in ten end a little after a DST change, where Berlin and fixed offsets differ.
random_times() {
	local n start len step=0 i t
	local spans=(172800 1209600 7776000 31536000 94608000)
	local steps=(3600 21600 86400 604800)
	local changes=(1711846800 1729990800 1743296400 1761440400 1774746000)

	rnd 20 60 && n=$R
	rnd 0 1
	if ((R == 0)); then
		rnd 0 4 && len=${spans[R]}
	else
		rnd 0 3 && step=${steps[R]} && len=$((n * step * 10 / 9))
	fi
	rnd 0 9
	if ((R < 3)); then
		rnd 0 4 && start=$((changes[R] - len * 3 / 4))
	else
		rnd 1672531200 1767225600 && start=$R	# 2023-01-01 .. 2026-01-01
	fi
	if ((step == 0)); then
		for ((i = 0; i < n; i++)); do
			rnd 0 "$len" && echo "@$((start + R))"
		done
		return
	fi
	for ((i = 0, t = start - start % 3600; i < n; t += step)); do
		rnd 0 9
		((R == 0)) && continue	# a missed backup
		rnd 0 7
		if ((R == 0)); then
			rnd -1800 1800 && echo "@$((t + R))"
		else
			echo "@$t"
		fi
		i=$((i + 1))
	done
}

random_scenarios() {
	local i k tz policies

	RANDOM=$seed
	for ((i = 1; i <= nrandom; i++)); do
		tz=UTC
		((i % 2 == 0)) && tz=Europe/Berlin
		policies=()
		for ((k = 0; k < 6; k++)); do
			random_policy && policies+=("$POLICY")
		done
		# Distinct local times (restic orders equal times arbitrarily), two in three
		# shuffled: keep_apply takes any order. random_times runs in this shell (RANDOM).
		random_times >"$work/instants"
		TZ=$tz date -f "$work/instants" '+%F %T' | sort -u >"$work/times"
		if ((i % 3 != 0)); then
			shuf --random-source=<(yes "$seed$i") "$work/times"
		else
			cat "$work/times"
		fi | scenario "random-$i (seed $seed)" "$tz" "${policies[@]}"
	done
}

start=$SECONDS
mkdir "$work/s" || exit 2
make_template || { echo "retention_restic.sh: restic init failed" >&2; exit 2; }
[ "${RETENTION_FIXED:-1}" = 0 ] || fixed_scenarios
random_scenarios
build_all
for dir in "$work"/s/*; do
	check_scenario "$dir"
done
echo "$passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]

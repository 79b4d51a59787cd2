#!/bin/bash
#
# prune_restic.sh SNAPKEEP: `snapkeep prune` end to end against restic 0.14's `forget`.
#
# For each scenario (snapshot times in TZ=Europe/Berlin, several policies) it makes a store of
# empty archive files named by those times (prune looks at names only) and a restic repository
# with one snapshot per time (`backup --time`, tagged with the archive's name), then compares
# `snapkeep prune --store STORE --dry-run --json POLICY` with `restic forget --dry-run --json`
# for the same policy: the same archives kept, each for the same reasons (restic's "daily
# snapshot" and "daily within 30d" are both snapkeep's "daily"). A snapkeep duration rule
# (`--keep-daily 30d`) is restic's `--keep-within-daily 30d`. Finally a real prune must delete
# exactly what restic would forget, and leave hidden temporary files, other files and archives
# without a time alone.
#
# Exit 0 when all agree, 1 on a mismatch (printed in full), 77 (SKIP) without restic or jq.
# Times avoid the repeated autumn hour, whose names say nothing of the offset.

set -u
snapkeep=$(realpath "${1:?usage: prune_restic.sh SNAPKEEP}")

for tool in restic jq; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not installed"
		exit 77
	fi
done
case $(restic version) in
"restic 0.14."*) ;;
*) echo "note: $(restic version | head -n1); SPEC follows restic 0.14" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/prune_restic.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
export TZ=Europe/Berlin RESTIC_PASSWORD=snapkeep-prune-test
mkdir "$work/data" && echo snapfs >"$work/data/file" || exit 2
passed=0
failed=0

# ---- a restic repository that opens fast ----

# restic derives the key of its key file with scrypt, about 0.5 s a command. Re-encrypt the
# repository's master key under scrypt N=2 (restic accepts any parameters) so the many
# backups below cost milliseconds. Needs python3's cryptography; without it, slow but fine.
cheap_key() {
	python3 - "$1" <<'EOF'
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

def keys(pw, k):	# scrypt -> AES-256 key, Poly1305-AES (k, r)
    d = hashlib.scrypt(pw, salt=base64.b64decode(k["salt"]), n=k["N"], r=k["r"], p=k["p"],
                       dklen=64, maxmem=1 << 30)
    return d[:32], d[32:48], d[48:]

def aes(mode, key, data):
    c = Cipher(algorithms.AES(key), mode).encryptor()
    return c.update(data) + c.finalize()

def mac(k, r, nonce, ct):
    return Poly1305.generate_tag(r + aes(modes.ECB(), k, nonce), ct)

path, pw = sys.argv[1], os.environ["RESTIC_PASSWORD"].encode()
kf = json.load(open(path))
enc, mk, mr = keys(pw, kf)
raw = base64.b64decode(kf["data"])
nonce, ct, tag = raw[:16], raw[16:-16], raw[-16:]
if mac(mk, mr, nonce, ct) != tag:
    sys.exit("cannot open the key file")
master = aes(modes.CTR(nonce), enc, ct)
kf.update(N=2, r=1, p=1, salt=base64.b64encode(os.urandom(64)).decode())
enc, mk, mr = keys(pw, kf)
nonce = os.urandom(16)
ct = aes(modes.CTR(nonce), enc, master)
kf["data"] = base64.b64encode(nonce + ct + mac(mk, mr, nonce, ct)).decode()
out = json.dumps(kf).encode()
open(os.path.join(os.path.dirname(path), hashlib.sha256(out).hexdigest()), "wb").write(out)
os.unlink(path)
EOF
}

make_template() {
	RESTIC_REPOSITORY=$work/template restic --no-cache -q init >/dev/null || return 1
	cp -a "$work/template/keys" "$work/keys.orig"
	if python3 -c 'import cryptography' 2>/dev/null &&
		cheap_key "$(ls -d "$work"/template/keys/* | head -n1)" &&
		RESTIC_REPOSITORY=$work/template restic --no-cache --no-lock -q cat config >/dev/null
	then
		return 0
	fi
	echo "note: restic's key left as it is (python3 cryptography missing?): this takes minutes"
	rm -rf "$work/template/keys" && cp -a "$work/keys.orig" "$work/template/keys"
}

# ---- one scenario ----

# restic's flags for a snapkeep policy: a duration on a period rule is --keep-within-PERIOD.
restic_policy() {
	local out=() flag
	while [ $# -gt 0 ]; do
		flag=$1
		if [ "$flag" != --keep-last ] && [ "$flag" != --keep-within ] &&
			[[ $2 == *[!0-9]* ]]; then
			flag=--keep-within-${flag#--keep-}
		fi
		out+=("$flag" "$2")
		shift 2
	done
	echo "${out[@]}"
}

# Kept archives with their reasons, one "NAME REASON,REASON" a line, sorted.
restic_kept() {
	# shellcheck disable=SC2046 # a policy is a list of flags
	RESTIC_REPOSITORY=$1 restic --no-cache --no-lock -q forget --dry-run --json \
		$(restic_policy $2) |
		jq -r '.[] | .reasons[]? | "\(.snapshot.tags[0]) \([.matches[] | split(" ")[0]] |
			unique | join(","))"' | sort
}

snapkeep_kept() {
	# shellcheck disable=SC2086
	"$snapkeep" prune --store "$1" --dry-run --json $2 |
		jq -r '.[] | select(.action == "keep" and (.archive | startswith("s-"))) |
			"\(.archive | sub("\\.tar\\.zst$"; "")) \(.reasons | sort | join(","))"' | sort
}

# make_store_and_repo TIMES_FILE: the store and the repository for those local times.
make_store_and_repo() {
	rm -rf "$work/store" "$work/repo" && mkdir "$work/store" && cp -a "$work/template" "$work/repo" ||
		exit 2
	while read -r day clock; do
		: >"$work/store/s-${day//-/}_${clock//:/}.tar.zst"
	done <"$1"
	awk '{ t = $1 $2; gsub(/[-:]/, "", t); print "s-" substr(t, 1, 8) "_" substr(t, 9), $1, $2 }' \
		"$1" | RESTIC_REPOSITORY=$work/repo xargs -L 1 sh -c \
		'exec restic --no-cache -q backup --host h --tag "$1" --time "$2 $3" "$0" >/dev/null' \
		"$work/data" || return 1
	# one by one: parallel backups race on restic's lock files and back off for seconds
	[ "$(RESTIC_REPOSITORY=$work/repo restic --no-cache --no-lock -q snapshots --json |
		jq length)" -eq "$(wc -l <"$1")" ]
}

compare() {	# compare NAME POLICY
	local want got
	want=$(restic_kept "$work/repo" "$2")
	got=$(snapkeep_kept "$work/store" "$2")
	if [ -n "$want" ] && [ "$want" = "$got" ]; then
		passed=$((passed + 1))
		return 0
	fi
	failed=$((failed + 1))
	echo "MISMATCH: $1, policy: $2 (restic: $(restic_policy $2))"
	diff <(echo "$want") <(echo "$got") | sed 's/^</  restic  /; s/^>/  snapkeep/'
	return 1
}

# scenario NAME POLICY... < TIMES ("YYYY-MM-DD HH:MM:SS" local, one a line); not in a pipeline,
# which would count in a subshell
scenario() {
	local name=$1 policy ok=0 n
	shift
	sort -u >"$work/times"
	n=$(wc -l <"$work/times")
	make_store_and_repo "$work/times" || { echo "FAIL $name: restic backup failed"; exit 1; }
	for policy in "$@"; do
		compare "$name" "$policy" && ok=$((ok + 1))
	done
	echo "ok: $name ($n snapshots): $ok of $# policies agree"
}

# Local times every STEP seconds from the local time START, COUNT of them.
series() {
	local t i
	t=$(date -d "$1" +%s)
	for ((i = 0; i < $3; i++)); do
		date -d "@$((t + i * $2))" '+%F %T'
	done
}

# ---- scenarios ----

make_template || { echo "prune_restic.sh: restic init failed" >&2; exit 2; }

# The example's schedules: "full" daily at 02:00 (through the autumn change and a year end),
# "hourly" every hour through the spring change (02:00 on 2026-03-29 does not exist).
scenario daily-full \
	"--keep-daily 30d --keep-weekly 90d --keep-monthly 365d" \
	"--keep-daily 7 --keep-weekly 4 --keep-monthly 3" \
	"--keep-last 5" "--keep-within 10d" "--keep-within 1m2d" "--keep-yearly 2 --keep-monthly 2" \
	"--keep-weekly 53" "--keep-daily 0 --keep-monthly 1y" \
	< <(series "2025-09-01 02:00:00" 86400 150)

scenario hourly-dst-spring \
	"--keep-hourly 24h" "--keep-hourly 24" "--keep-hourly 30 --keep-daily 2" \
	"--keep-within 12h" "--keep-hourly 2d --keep-last 3" \
	< <(series "2026-03-27 12:00:00" 3600 60)

# ISO week 53 of 2020 (2020-12-28 .. 2021-01-03), several snapshots a day.
scenario iso-week-53 "--keep-weekly 4" "--keep-weekly 30d" "--keep-yearly 3" \
	"--keep-daily 5 --keep-weekly 3" "--keep-monthly 2 --keep-within 2d" \
	< <(series "2020-12-14 10:00:00" 86400 35; series "2020-12-30 18:30:00" 86400 8)

# A snapshot with a future time is never the reference of a duration.
scenario future-dated "--keep-within 3d" "--keep-daily 5d" "--keep-last 2" "--keep-daily 3" \
	< <(series "2026-01-01 02:00:00" 86400 10; echo "2099-01-01 00:00:00")

# ---- a real prune deletes what restic forgets, and nothing else ----

series "2025-11-01 02:00:00" 43200 40 >"$work/times"
make_store_and_repo "$work/times" || exit 1
policy="--keep-daily 5 --keep-weekly 2d --keep-monthly 2"
want=$(restic_kept "$work/repo" "$policy" | cut -d' ' -f1)
: >"$work/store/.s-20251120_020000.tar.zst.abc123"	# a take in progress
: >"$work/store/legacy.tar.gz"				# no time in its name
: >"$work/store/notes.txt"
# shellcheck disable=SC2086
if ! out=$("$snapkeep" prune --store "$work/store" $policy); then
	echo "FAIL: real prune exited non-zero"
	failed=$((failed + 1))
fi
got=$(cd "$work/store" && ls -A | sort | tr '\n' ' ')
expect=$(printf '%s\n' .s-20251120_020000.tar.zst.abc123 .snapkeep.lock legacy.tar.gz notes.txt \
	$(sed 's/$/.tar.zst/' <<<"$want") | sort | tr '\n' ' ')
if [ "$got" = "$expect" ] && grep -q '^keep   legacy.tar.gz  no-time$' <<<"$out" &&
	[ "$(grep -c '^prune' <<<"$out")" -eq $((40 - $(wc -l <<<"$want"))) ]; then
	passed=$((passed + 1))
	echo "ok: a real prune deleted what restic forgets, and nothing else"
else
	failed=$((failed + 1))
	echo "FAIL: real prune left: $got"
	echo "      expected:        $expect"
	echo "$out"
fi

# Archives of different names in one store are kept apart, as restic keeps apart the
# snapshots of different paths: --keep-last 1 keeps the newest of each name.
mkdir -p "$work/names"
for f in a-20200101_000000 a-20200102_000000 b-20200101_120000; do : >"$work/names/$f.tar.zst"; done
out=$("$snapkeep" prune --store "$work/names" --keep-last 1)
got=$(cd "$work/names" && ls | tr '\n' ' ')
if [ "$got" = "a-20200102_000000.tar.zst b-20200101_120000.tar.zst " ]; then
	passed=$((passed + 1))
	echo "ok: --keep-last 1 over two names keeps the newest of each"
else
	failed=$((failed + 1))
	echo "FAIL: --keep-last 1 over two names left: $got"
	echo "$out"
fi

# No rule: refuse with exit 2 and name the flags.
"$snapkeep" prune --store "$work/store" >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- '--keep-last N' "$work/err"; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	echo "FAIL: prune without a rule exited $rc: $(cat "$work/err")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

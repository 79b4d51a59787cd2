#!/bin/bash
#
# example_e2e.sh SNAPKEEP: the example configuration, end to end, on a generated
# orchestrator-cc tree in a temporary directory.
#
# examples/orchestrator-cc.yaml with its store and source pointed at the temporary directory:
# take the "full" and "hourly" sets; add older copies of those archives under older names, as
# weeks of schedule would have left them; prune --dry-run (nothing deleted) and prune (exactly
# what the dry run said); verify (all OK, then a damaged copy FAILs); restore the newest
# snapshots, whole and in part, and compare them with the source: content, modes, nanosecond
# mtimes, symlinks, hard links, excluded files absent. tar --zstd -xf reads the same archive.
# Exit 0, or 1 naming each failure.

set -u
snapkeep=$(realpath "${1:?usage: example_e2e.sh SNAPKEEP}")
examples=$(cd "$(dirname "$0")/../examples" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/example_e2e.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
src=$work/orchestrator-cc
store=$work/backup/orchestrator-cc
cfg=$work/orchestrator-cc.yaml
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
sk() { "$snapkeep" -c "$cfg" "$@"; }

# ---- a service's state: settings, a queue of small messages, status, logs, secrets ----
make_tree() {
	local i
	mkdir -p "$src"/{config/personalities,queue,status,logs,venv/lib,__pycache__} || exit 2
	printf 'cluster: cc\nworkers: 4\nretry: 3\n' >"$src/config/cc-cluster.yaml"
	echo "You are the grand boss." >"$src/config/personalities/grand_boss.txt"
	echo "You work nights." >"$src/config/personalities/night_shift.txt"
	ln -s personalities/grand_boss.txt "$src/config/current-personality"
	for ((i = 1; i <= 400; i++)); do
		printf 'id: %d\nto: worker-%d\nbody: task %d\n' "$i" $((i % 4)) "$i" \
			>"$src/queue/msg-$(printf %04d "$i").yaml"
	done
	for i in 1 2 3 4; do
		printf 'worker: %d\nstate: idle\n' "$i" >"$src/status/worker-$i.yaml"
	done
	ln "$src/status/worker-1.yaml" "$src/status/leader.yaml"
	seq 1 200000 | sed 's/^/2026-02-04T02:00:00Z dispatch /' >"$src/logs/orchestrator.log"
	printf 'API_KEY=secret\n' >"$src/.env"
	chmod 600 "$src/.env"
	chmod 700 "$src/queue"
	echo "not backed up" >"$src/venv/lib/site.py"
	echo "bytecode" >"$src/__pycache__/x.cpython-311.pyc"
	echo "bytecode" >"$src/config/old.pyc"
	touch -d '2026-02-03 04:05:06.123456789' "$src/config/cc-cluster.yaml"
}

make_tree
sed -e "s|^store: [^ ]*|store: $store|" -e "s|^source: [^ ]*|source: $src|" \
	"$examples/orchestrator-cc.yaml" >"$cfg" || exit 2

# ---- take ----
if sk take full hourly >"$work/taken" && [ "$(wc -l <"$work/taken")" -eq 2 ]; then
	ok "take full hourly: $(tr '\n' ' ' <"$work/taken")"
else
	bad "take full hourly"
	exit 1
fi
full=$(grep '/full/' "$work/taken")
hourly=$(grep '/hourly/' "$work/taken")
[ "$(stat -c %a "$full")" = 600 ] && [ "$(stat -c %a "$store/full")" = 700 ] &&
	ok "archives 0600, store directories 0700" || bad "modes of the store"

# Weeks of schedule: a nightly full for 120 days, an hourly for 3 days, as copies.
for ((d = 1; d <= 120; d++)); do
	cp -p "$full" "$store/full/full-$(date -d "-$d days" +%Y%m%d)_020000.tar.zst"
done
for ((h = 1; h <= 72; h++)); do
	cp -p "$hourly" "$store/hourly/hourly-$(date -d "-$h hours" +%Y%m%d_%H)0500.tar.zst"
done
n_before=$(find "$store" -name '*.tar.zst' | wc -l)

# ---- prune ----
if sk prune --dry-run --json >"$work/dry.json" &&
	[ "$(find "$store" -name '*.tar.zst' | wc -l)" -eq "$n_before" ]; then
	ok "prune --dry-run deletes nothing"
else
	bad "prune --dry-run"
fi
pruned=$(jq -r '.[] | select(.action == "prune") | "\(.set)/\(.archive)"' "$work/dry.json" | sort)
n_full=$(grep -c '^full/' <<<"$pruned")
n_hourly=$(grep -c '^hourly/' <<<"$pruned")
# full keeps one a day for 30 days, one a week for 90, one a month for 365: of 121 archives
# roughly 30 + 9 + 1; hourly keeps the last 24 hours of 73
if [ "$n_full" -ge 70 ] && [ "$n_full" -le 85 ] && [ "$n_hourly" -ge 45 ] &&
	[ "$n_hourly" -le 50 ] && ! grep -q '^config/' <<<"$pruned"; then
	ok "prune --dry-run would prune $n_full full and $n_hourly hourly archives, no config"
else
	bad "prune --dry-run would prune $n_full full, $n_hourly hourly: $pruned"
fi
sk prune --dry-run | grep -q '^config: no keep rules' && ok "the config set says it is never pruned" ||
	bad "the config set does not say it is never pruned"
if sk prune >"$work/prune.txt"; then
	left=$(cd "$store" && find full hourly -name '*.tar.zst' | sort)
	all=$(jq -r '.[] | "\(.set)/\(.archive)"' "$work/dry.json" | sort)
	if [ "$(comm -23 <(echo "$all") <(echo "$pruned"))" = "$left" ]; then
		ok "prune deleted exactly what the dry run listed"
	else
		bad "prune left: $left"
	fi
else
	bad "prune exited non-zero: $(cat "$work/prune.txt")"
fi

# ---- verify ----
if sk verify full hourly >"$work/verify.txt" && ! grep -qv '^OK ' "$work/verify.txt" &&
	[ "$(wc -l <"$work/verify.txt")" -eq "$(find "$store" -name '*.tar.zst' | wc -l)" ]; then
	ok "verify full hourly: $(wc -l <"$work/verify.txt") archives OK"
else
	bad "verify: $(grep -v '^OK' "$work/verify.txt")"
fi
# a set with no snapshot at all is a failed check, not a pass
sk verify >/dev/null 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "set 'config' has no archives" "$work/err" &&
	ok "verify of every set: the never-taken config set fails it" ||
	bad "verify with an empty set exited $rc: $(cat "$work/err")"
victim=$(find "$store/full" -name '*.tar.zst' | sort | head -n1)
cp -p "$victim" "$work/victim.bak"
printf '\xff' | dd of="$victim" bs=1 seek=300 conv=notrunc 2>/dev/null
sk verify full >"$work/verify.txt"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^FAIL $victim: .*at byte" "$work/verify.txt" &&
	[ "$(grep -c '^OK ' "$work/verify.txt")" -eq $(($(find "$store/full" -name '*.tar.zst' | wc -l) - 1)) ]; then
	ok "verify: a damaged archive FAILs with its offset, the others are OK, exit 1"
else
	bad "verify of a damaged archive exited $rc: $(cat "$work/verify.txt")"
fi
cp -p "$work/victim.bak" "$victim"
"$snapkeep" verify --require config/cc-cluster.yaml --require .env --require queue/msg-0400.yaml \
	"$full" >/dev/null && ok "verify --require finds the required paths" ||
	bad "verify --require"

# ---- restore and compare ----

# describe DIR [PATH...]: one line per entry: path, type and mode, size, mtime (ns), link target
describe() {
	local dir=$1
	shift
	(cd "$dir" && find "${@:-.}" \( -path ./venv -o -path '*/venv' -o -name __pycache__ \
		-o -name '*.pyc' \) -prune -o ! -path . -printf '%p %M %s %T@ %l\n' | sort)
}

sk restore "$full" --to "$work/full" 2>"$work/err" && [ ! -s "$work/err" ] ||
	bad "restore full: $(cat "$work/err")"
paths=(config queue status logs .env)
if [ "$(describe "$src" "${paths[@]}")" = "$(describe "$work/full" "${paths[@]}")" ] &&
	diff -r "$work/full/config" "$src/config" -x '*.pyc' >/dev/null &&
	diff -r "$work/full/queue" "$src/queue" >/dev/null && cmp -s "$src/.env" "$work/full/.env"; then
	ok "restore of the full set equals the source (modes, ns mtimes, links, content)"
else
	bad "restore of the full set differs from the source"
	diff <(describe "$src" "${paths[@]}") <(describe "$work/full" "${paths[@]}") | head
fi
[ "$(stat -c %i "$work/full/status/leader.yaml")" = "$(stat -c %i "$work/full/status/worker-1.yaml")" ] &&
	ok "hard links restored as one inode" || bad "hard link not restored"
[ ! -e "$work/full/venv" ] && [ ! -e "$work/full/config/old.pyc" ] && ok "excluded files absent" ||
	bad "excluded files were archived"
sk restore "$hourly" --to "$work/hourly" && [ "$(describe "$src" queue status)" = \
	"$(describe "$work/hourly" queue status)" ] && ok "restore of the hourly set equals the source" ||
	bad "restore of the hourly set"
"$snapkeep" restore "$full" config/personalities .env --to "$work/part" &&
	[ "$(cd "$work/part" && find . | sort | tr '\n' ' ')" = \
		". ./.env ./config ./config/personalities ./config/personalities/grand_boss.txt ./config/personalities/night_shift.txt " ] &&
	ok "restore of chosen paths restores only them" || bad "restore of chosen paths"
mkdir "$work/tar" && tar --zstd -xf "$full" -C "$work/tar" 2>"$work/err" &&
	diff -r "$work/tar" "$work/full" >/dev/null && ok "tar --zstd -xf gives the same tree" ||
	bad "tar --zstd -xf: $(cat "$work/err")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# bench/memory.sh: the snapfs daemon's memory against the number of entries it
# has indexed (docs/BENCHMARKS.md, "snapfs memory").
#
#   bench/memory.sh                 trees of 20k, 50k, 100k and 200k small files
#   COUNTS="20000 200000" bench/memory.sh
#
# Needs root only for drop_caches (skipped otherwise), /dev/fuse, python3, meson, ninja.
#
# For each count N: a tree of N files of 200 B - 2 KiB in directories of 1,000
# (deterministic bytes), one `snapkeep take` archive of it, a fresh mount with
# -o cache_size=$CACHE_MIB, then
#   walk   `find -type f` and `stat` of every file (the index loaded, no data read);
#   read   `find -print0 | xargs -0 cat` (every byte read: the cache fills up);
# and the daemon's VmRSS/VmHWM (/proc/PID/status) after mount, walk and read. The
# fixed cost (the daemon at mount) and the cost per entry (least-squares slope of
# the walk's peak over the entries) are fitted over all counts; the issue's
# formula, (peak - cache) / entries, is printed for each count.
#
# Environment: BENCH_DIR (default /var/tmp/snapfs-memory), COUNTS, CACHE_MIB (16).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
BENCH_DIR=${BENCH_DIR:-/var/tmp/snapfs-memory}
COUNTS=${COUNTS:-"20000 50000 100000 200000"}
CACHE_MIB=${CACHE_MIB:-16}
BUILD=$SRC/build-bench2
RES=$BENCH_DIR/results
MNT=$BENCH_DIR/mnt
mkdir -p "$BENCH_DIR" "$RES" "$MNT"

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
cleanup() { mountpoint -q "$MNT" && fusermount3 -u "$MNT"; return 0; }
trap cleanup EXIT

[ -c /dev/fuse ] || { echo "SKIP: /dev/fuse is missing" >&2; exit 77; }
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup --buildtype=release "$BUILD" "$SRC" >/dev/null
fi
ninja -C "$BUILD" >/dev/null
SNAPFS=$BUILD/fs/snapfs
SNAPKEEP=$BUILD/tools/snapkeep

drop() { [ "$(id -u)" = 0 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; } || true; }
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# gen DIR N: N files of 200 B - 2 KiB, 1,000 to a directory, the same bytes every time
gen() {
	python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(n)
words = [b"queue", b"status", b"message", b"retry", b"worker", b"ok", b"error", b"state"]
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    size = rnd.randint(200, 2048)
    body = b" ".join(rnd.choice(words) for _ in range(size // 5))[:size]
    with open(os.path.join(d, "msg-%07d.yaml" % i), "wb") as f:
        f.write(body)
    os.utime(os.path.join(d, "msg-%07d.yaml" % i), (1770163200, 1770163200))
EOF
}

printf 'files\tentries\tmounted_kib\twalk_hwm_kib\tread_hwm_kib\n' >"$RES/memory.tsv"
for n in $COUNTS; do
	tree=$BENCH_DIR/tree-$n store=$BENCH_DIR/store-$n
	if [ ! -f "$tree.done" ]; then
		rm -rf "$tree" "$store"
		log "tree of $n files"
		gen "$tree" "$n"
		touch "$tree.done"
	fi
	if ! ls "$store"/*.tar.zst >/dev/null 2>&1; then
		"$SNAPKEEP" take --store "$store" --name mem -C "$tree" . >/dev/null
	fi
	entries=$(find "$tree" | wc -l)	# every file and directory, the root included
	drop
	"$SNAPFS" "$store" "$MNT" -o "cache_size=$CACHE_MIB"
	pid=$(pgrep -n -f "^$SNAPFS $store ")
	mounted=$(kib "$pid" VmRSS)
	snap=$(ls "$MNT" | grep -v '^latest$' | head -1)
	find "$MNT/$snap" -type f -print0 | xargs -0 stat -c %s >/dev/null
	walk=$(kib "$pid" VmHWM)
	find "$MNT/$snap" -type f -print0 | xargs -0 cat >/dev/null
	read=$(kib "$pid" VmHWM)
	fusermount3 -u "$MNT"
	printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$entries" "$mounted" "$walk" "$read" >>"$RES/memory.tsv"
	log "$n files: $entries entries, mounted $mounted KiB, walk $walk KiB, read $read KiB"
done

awk -v cache=$((CACHE_MIB * 1024)) 'NR > 1 {
	n++; x[n] = $2; y[n] = $4; r[n] = $5; m[n] = $3
	sx += $2; sy += $4; sxx += $2 * $2; sxy += $2 * $4
} END {
	slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
	icpt = (sy - slope * sx) / n
	printf "\nsnapfs memory, cache_size=%d MiB (KiB; bytes per entry = KiB * 1024 / entries)\n", cache / 1024
	printf "%8s %8s %10s %10s %10s %22s\n", "entries", "mounted", "walk peak", "read peak",
		"read-cache", "(read peak-cache)/entry"
	for (i = 1; i <= n; i++)
		printf "%8d %8d %10d %10d %10d %20.0f B\n", x[i], m[i], y[i], r[i], r[i] - cache,
			(r[i] - cache) * 1024 / x[i]
	printf "\nwalk peak = %.0f KiB + %.1f bytes x entries (least squares over %d counts)\n",
		icpt, slope * 1024, n
}' "$RES/memory.tsv" | tee "$RES/summary.txt"

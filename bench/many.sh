#!/usr/bin/env bash
# bench/many.sh: `grep -r` over a store of many old `tar czf` / `tar cJf` backups, through
# snapfs, through one archivemount per archive, and by unpacking each in turn (results:
# bench/many-results.md). What it measures is what the reading leaves held: the
# daemons' memory and the spill files' disk, beside the time.
#
#   bench/many.sh                 N=24 archives of gentree's tree at SCALE=0.05
#   N=6 SCALE=0.01 bench/many.sh  a quick run
#
# The tree is bench/gentree.c's without its 1 GiB file (as bench/foreign.sh's); the store
# holds N/2 copies of it as .tar.gz and N/2 as .tar.xz, one a day. Each peer runs once,
# from a cold cache (drop_caches), the snapshots grepped one after the other in name
# order, each with `grep -r -c NEEDLE` (a string no file holds: every byte is read, in
# grep's order, not the archive's):
#   snapfs            the default: -o max_foreign=4
#   snapfs-unbounded  -o max_foreign=0: every archive read keeps its decoder, gzip
#                     checkpoints and spill file while it is open (max_open: 256), as
#                     snapfs did before max_foreign
#   archivemount      one mount per archive, each mounted just before its grep and kept
#                     (the mounts are timed with the greps); it reads an archive from its
#                     start for each file, so it starts no other archive after AM_TIMEOUT s
#   untar             tar x of each archive into /dev/shm, grep -r, rm -rf
# Figures: wall seconds for all of it; the daemons' peak RSS (VmHWM; archivemount: the sum
# over its processes) and RSS at the end; the disk the spill files take (blocks of the
# daemon's unlinked files in the spill directory), after each snapshot (the most) and at
# the end. Results: BENCH_DIR/results/ (runs.tsv, summary.txt); an earlier run's are moved
# to results.<its time> first.
#
# Environment: BENCH_DIR (default /var/tmp/snapfs-many), N (default 24), SCALE (default
# 0.05), ARCHIVEMOUNT=0 leaves archivemount out, AM_TIMEOUT (default 120), QUIET_WAIT (default 30 s of waiting for an
# idle machine before each peer).
# Needs: root, /dev/fuse, archivemount, xz (apt-get install -y archivemount xz-utils).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/machine.sh
source "$ROOT/bench/machine.sh"
W=${BENCH_DIR:-/var/tmp/snapfs-many}
N=${N:-24}
SCALE=${SCALE:-0.05}
ARCHIVEMOUNT=${ARCHIVEMOUNT:-1}
AM_TIMEOUT=${AM_TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-30}
TREE=$W/tree
STORE=$W/store
RES=$W/results
BIN=$W/bin
MNT=$W/mnt
SPILL=$W/spill
SHM=/dev/shm/snapfs-many
SNAPFS=$ROOT/build-bench2/fs/snapfs
NEEDLE=zq7-no-file-holds-this-xv3
AM_PIDS=()

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'many.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (drop_caches and mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
for tool in xz gzip tar grep fusermount3 mountpoint meson ninja cc timeout; do
	command -v "$tool" >/dev/null || die "'$tool' is missing (see the header for apt-get)"
done
[ "$ARCHIVEMOUNT" = 0 ] || command -v archivemount >/dev/null ||
	die "'archivemount' is missing (apt-get install -y archivemount, or ARCHIVEMOUNT=0)"

cleanup() {
	local m
	for m in "$MNT" "$MNT".*; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	grep --version >/dev/null
	tar --version >/dev/null
	"$SNAPFS" --version >/dev/null
}
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# spill_kib PID: KiB on disk of PID's unlinked files in SPILL
spill_kib() {
	local f b=0
	for f in $(find "/proc/$1/fd" -lname "$SPILL/* (deleted)" 2>/dev/null); do
		b=$((b + $(stat -L -c %b "$f" 2>/dev/null || echo 0)))
	done
	echo $((b / 2))
}

# ---- build, tree, archives -----------------------------------------------------------------

log "building snapfs (release, build-bench2/)"
cd "$ROOT"
release_build "$ROOT" fs/snapfs
mkdir -p "$BIN" "$STORE" "$MNT" "$SPILL"
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/gentree" bench/gentree.c
stamp="$(sha256sum bench/gentree.c | cut -c1-16) scale=$SCALE n=$N"
if ! [ -f "$W/tree.stamp" ] || [ "$(cat "$W/tree.stamp")" != "$stamp" ]; then
	log "generating the tree (scale $SCALE) and $N archives"
	rm -rf "$TREE" "$STORE" "$W/tree.stamp"
	mkdir -p "$STORE"
	"$BIN/gentree" "$TREE" "$SCALE" >/dev/null
	rm -rf "$TREE/state"
	(cd "$TREE" && tar czf "$W/one.tar.gz" . && tar cJf "$W/one.tar.xz" .)
	for ((i = 0; i < N; i++)); do
		day=$(date -u -d "2025-01-01 +$i day" +%Y%m%d)
		if ((i % 2)); then cp "$W/one.tar.xz" "$STORE/old-${day}_020000.tar.xz"
		else cp "$W/one.tar.gz" "$STORE/old-${day}_020000.tar.gz"; fi
	done
	rm -f "$W/one.tar.gz" "$W/one.tar.xz"
	echo "$stamp" >"$W/tree.stamp"
fi
mapfile -t ARCHIVES < <(cd "$STORE" && ls)
[ "${#ARCHIVES[@]}" = "$N" ] || die "the store holds ${#ARCHIVES[@]} archives, not $N"
[ -d "$RES" ] && mv "$RES" "$RES.$(date -r "$RES" +%Y%m%d-%H%M%S)"
mkdir -p "$RES"
: >"$RES/runs.tsv"
want=$({ grep -r -c "$NEEDLE" "$TREE" || true; } | wc -l)	# the files grep -r counts in one snapshot

# grep_one DIR: grep -r a snapshot; it must see the files the tree has
grep_one() {
	local got
	got=$({ grep -r -c "$NEEDLE" "$1" || true; } | wc -l)
	[ "$got" = "$want" ] || die "grep -r in $1 saw $got files, want $want"
}

# ---- peers -----------------------------------------------------------------------------------

snapfs_peer() { # PEER MAX_FOREIGN
	local p=$1 pid t0 t1 most=0 s
	drop_caches
	quiet
	t0=$EPOCHREALTIME
	"$SNAPFS" "$STORE" "$MNT" -o "max_foreign=$2,spill_dir=$SPILL"
	pid=$(pgrep -n -f -- "$SNAPFS $STORE $MNT")
	for a in "${ARCHIVES[@]}"; do
		s=${a#old-}
		grep_one "$MNT/${s%%.tar.*}"
		s=$(spill_kib "$pid")
		[ "$s" -gt "$most" ] && most=$s
	done
	t1=$EPOCHREALTIME
	row 1 "$p" seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	row 1 "$p" peak_rss_kib "$(kib "$pid" VmHWM)"
	row 1 "$p" end_rss_kib "$(kib "$pid" VmRSS)"
	row 1 "$p" spill_most_kib "$most"
	row 1 "$p" spill_end_kib "$(spill_kib "$pid")"
	umount "$MNT"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}

archivemount_peer() {
	local t0 t1 i=0 hwm=0 rss=0 pid
	drop_caches
	quiet
	t0=$EPOCHREALTIME
	for a in "${ARCHIVES[@]}"; do
		# it reads an archive from its start for each file, so it gets AM_TIMEOUT in all
		awk -v a="$t0" -v b="$EPOCHREALTIME" -v c="$AM_TIMEOUT" 'BEGIN { exit !(b - a > c) }' &&
			break
		i=$((i + 1))
		mkdir -p "$MNT.$i"
		archivemount -o readonly "$STORE/$a" "$MNT.$i"
		AM_PIDS+=("$(pgrep -n -f -- " $MNT.$i\$")")
		grep_one "$MNT.$i"
	done
	t1=$EPOCHREALTIME
	for pid in "${AM_PIDS[@]}"; do
		hwm=$((hwm + $(kib "$pid" VmHWM)))
		rss=$((rss + $(kib "$pid" VmRSS)))
	done
	row 1 archivemount archives "$i" "of $N: it starts no other after ${AM_TIMEOUT}s"
	row 1 archivemount seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	row 1 archivemount peak_rss_kib "$hwm" "sum over its $i processes"
	row 1 archivemount end_rss_kib "$rss" "sum over its $i processes"
	for ((j = 1; j <= i; j++)); do umount "$MNT.$j"; rmdir "$MNT.$j"; done
}

untar_peer() {
	local t0 t1 most=0 s
	drop_caches
	quiet
	t0=$EPOCHREALTIME
	for a in "${ARCHIVES[@]}"; do
		mkdir -p "$SHM"
		tar xf "$STORE/$a" -C "$SHM"
		s=$(du -sk "$SHM" | cut -f1)
		[ "$s" -gt "$most" ] && most=$s
		grep_one "$SHM"
		rm -rf "$SHM"
	done
	t1=$EPOCHREALTIME
	row 1 untar seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	row 1 untar disk_most_kib "$most" "one archive unpacked in /dev/shm"
}

log "snapfs, default max_foreign"
snapfs_peer snapfs 4
log "snapfs, max_foreign=0"
snapfs_peer snapfs-unbounded 0
if [ "$ARCHIVEMOUNT" = 1 ]; then
	log "archivemount, $N mounts"
	archivemount_peer
fi
log "untar"
untar_peer

# ---- summary ---------------------------------------------------------------------------------

{
	machine_lines "$ROOT"
	echo "snapfs: $("$SNAPFS" --version 2>&1 | head -1)"
	[ "$ARCHIVEMOUNT" = 0 ] || echo "archivemount: $(archivemount --version 2>&1 | head -1)"
	echo "scale: $SCALE; $N archives, $(du -sk "$STORE" | cut -f1) KiB in all; the tree:" \
		"$(du -sk "$TREE" | cut -f1) KiB, $want files"
	for a in "${ARCHIVES[@]:0:2}"; do echo "$a: $(stat -c %s "$STORE/$a") bytes"; done
	[ -f "$RES/noisy.txt" ] && echo "peers measured on a busy machine: $(wc -l <"$RES/noisy.txt")"
	echo
	column -t -s $'\t' "$RES/runs.tsv"
} | tee "$RES/summary.txt"

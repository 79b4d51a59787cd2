#!/usr/bin/env bash
# bench/floor.sh: how close snapfs is to what any FUSE daemon costs on this machine
# (bench/mount-results.md, "The floor"). Run bench/mount.sh first: this uses its
# tree, squashfs image and store (BENCH_DIR).
#
#   bench/floor.sh
#
# Peers, side by side, RUNS rounds (the order rotates), medians reported:
#   floor        bench/floor.c over the plain tree: a FUSE daemon that has every name
#                and attribute in memory before it mounts and does no other work;
#                listings are names only (READDIR), as squashfuse_ll's are
#   floor-plus   the same with attributes in every listing (READDIRPLUS), as snapfs's
#   snapfs       the daemon, over bench/mount.sh's store (its one archive of the tree)
#   snapfs-auto  the same with -o readdirplus=auto: the kernel lists names only when
#                no one stats, and every file opened costs a LOOKUP
#   floor-cpu0   floor with the daemon and the program measuring both on CPU 0 (taskset):
#                no request or reply then wakes the other CPU (lookup only)
#   floor-spin   floor with one thread that polls /dev/fuse for 50 us after each
#                request before it sleeps (-o spin=50): a request then wakes no
#                daemon thread, and only the caller's wakeup is left (lookup only)
#   squashfuse   squashfuse_ll over the image (walk only)
#   tree         the tree itself, through no FUSE at all (reads only)
#   zstd         zstd -d -c ARCHIVE > /dev/null, from a cold cache
# Metrics, each on a fresh mount after `echo 3 > drop_caches`:
#   walk         find -type f | wc -l
#   read-big     find state logs -type f -print0 | randmnt -R: the 13 big files
#   read-small   the same over config queue status .env: the ~20,400 small files
#   read-all     the same over everything
#   lookup       randmnt -S: lstat every file by path, with no listing before it, so
#                each is one LOOKUP round trip (floor, floor-cpu0, floor-spin,
#                snapfs-auto)
# (randmnt -R reads as bench/mount.sh does since its run 10: open, read, close, with
# none of `cat`'s own cost a file.) For each step on a FUSE peer, the daemon's user and
# system CPU seconds go beside the wall time: the same work on the same binary, so their
# spread is the machine's. The summary also says what a fresh page of memory costs here
# (bench/pagetouch.c).
# snapfs and squashfuse start cold, as in bench/mount.sh. floor and tree stand for
# what FUSE (or the kernel alone) costs, not for a disk: after the drop, the tree is
# read back into the page cache first (its metadata only, for the walk).
#
# Environment: BENCH_DIR (default /var/tmp/snapfs-mount), RUNS (default 3),
# CACHE_MIB (snapfs -o cache_size, default 64), QUIET_WAIT (default 30 s: waits for
# an idle machine before each timed step; a step measured on a busy one is noted in
# the summary). Results: BENCH_DIR/results-floor/ (runs.tsv, summary.txt); an earlier
# run's are moved to results-floor.<its time> first.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/machine.sh
source "$ROOT/bench/machine.sh"
W=${BENCH_DIR:-/var/tmp/snapfs-mount}
RUNS=${RUNS:-3}
CACHE_MIB=${CACHE_MIB:-64}
QUIET_WAIT=${QUIET_WAIT:-30}
TREE=$W/tree
IMG=$W/tree.sqfs
STORE=$W/store
RES=$W/results-floor
BIN=$W/bin
MNT=$W/mnt/floor
SNAPFS=$ROOT/build-bench2/fs/snapfs
BIGDIRS="state logs"
SMALLDIRS="config queue status .env"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'floor.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (drop_caches and mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
{ [ -d "$TREE" ] && [ -f "$IMG" ] && [ -d "$STORE" ]; } || die "no tree, image or store in $W: run bench/mount.sh first"
ARCHIVE=$(find "$STORE" -maxdepth 1 -name '*.tar.zst' | head -1)
[ -n "$ARCHIVE" ] || die "no archive in $STORE: run bench/mount.sh first"
SQUASHFUSE=$(command -v squashfuse_ll || command -v squashfuse) || die "squashfuse is missing"
pkg-config --exists fuse3 || die "libfuse3-dev is missing"

# mounted MNT: whether anything is mounted there, a daemon that died included
mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }
mounted "$MNT" && die "$MNT is mounted (a run that did not end?): umount it first"

DAEMON=
cleanup() {
	if mounted "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
	[ -z "$DAEMON" ] || wait_gone "$DAEMON"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_gone() { for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; kill -KILL "$1" 2>/dev/null || true; }

cd "$ROOT"
release_build "$ROOT" fs/snapfs
if [ -e "$RES/runs.tsv" ]; then
	mv "$RES" "$RES.$(date -r "$RES/runs.tsv" +%Y%m%d_%H%M%S)"
fi
mkdir -p "$BIN" "$RES" "$MNT"
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/floor" bench/floor.c $(pkg-config --cflags --libs fuse3)
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/randmnt" bench/randmnt.c
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/pagetouch" bench/pagetouch.c
: >"$RES/runs.tsv"

# mount_peer PEER: mounts it at MNT (untimed); TOP: where the tree is in it
mount_peer() {
	local cmd pin=()
	case $1 in
	floor) cmd=("$BIN/floor" "$TREE" "$MNT") ;;
	floor-plus) cmd=("$BIN/floor" -o plus "$TREE" "$MNT") ;;
	floor-cpu0) pin=(taskset -c 0) cmd=("$BIN/floor" "$TREE" "$MNT") ;;
	floor-spin) cmd=("$BIN/floor" -o spin=50 "$TREE" "$MNT") ;;
	snapfs) cmd=("$SNAPFS" -o "cache_size=$CACHE_MIB" "$STORE" "$MNT") ;;
	snapfs-auto) cmd=("$SNAPFS" -o "cache_size=$CACHE_MIB,readdirplus=auto" "$STORE" "$MNT") ;;
	squashfuse) cmd=("$SQUASHFUSE" "$IMG" "$MNT") ;;
	esac
	"${pin[@]}" "${cmd[@]}" >&2 || die "mount failed: ${cmd[*]}"
	for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
	mountpoint -q "$MNT" || die "not mounted: ${cmd[*]}"
	DAEMON=$(pgrep -n -f -- "${cmd[0]##*/} .*$MNT\$") || die "no daemon for $MNT"
	TOP=$MNT
	[ "${1%-auto}" != snapfs ] || TOP=$(find "$MNT" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' | head -1)
}

umount_peer() {
	umount "$MNT" 2>/dev/null || { sleep 1; umount "$MNT"; }
	wait_gone "$DAEMON"
	DAEMON=
}

wait_idle() { # STEP: an idle machine (machine.sh), or QUIET_WAIT s passed (then noted)
	machine_idle "$QUIET_WAIT" && return 0
	log "machine still busy after ${QUIET_WAIT}s; measuring $1 anyway"
	echo "$1" >>"$RES/busy.txt"
}

# drop_caches PEER METRIC: the drop, then what the measurement's programs (and, for
# floor and tree, the tree) need in the page cache
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	bash -c : && find /dev/null -maxdepth 0 -type f -print0 | "$BIN/randmnt" -R | sed -n 1p | wc -l >/dev/null
	zstd -V >/dev/null
	case $1 in
	floor*|tree)
		if [ "$2" = walk ] || [ "$2" = lookup ]; then
			find "$TREE" >/dev/null
		else
			find "$TREE" -type f -print0 | "$BIN/randmnt" -R >/dev/null
		fi ;;
	esac
}

# cmd_of METRIC ROOT PEER
cmd_of() {
	local d list="" on_cpu0=""
	case $1 in
	walk) echo "find '$2' -type f | wc -l >'$RES/count'"; return ;;
	lookup)
		[ "$3" != floor-cpu0 ] || on_cpu0="taskset -c 0"
		echo "set -o pipefail; cd '$2' && $on_cpu0 '$BIN/randmnt' -S <'$RES/files.list' |" \
			"sed -n 's/^files=\([0-9]*\) .*/\1/p' >'$RES/count'"
		return ;;
	read-all) list="'$2'" ;;
	read-big) for d in $BIGDIRS; do list="$list '$2/$d'"; done ;;
	read-small) for d in $SMALLDIRS; do list="$list '$2/$d'"; done ;;
	esac
	echo "set -o pipefail; find $list -type f -print0 | '$BIN/randmnt' -R |" \
		"sed -n 's/^files=\([0-9]*\) .*/\1/p' >'$RES/count'"
}

# cpu_of PID: the process's user and system CPU seconds so far, all threads
cpu_of() { awk -v hz="$HZ" '{ printf "%.2f\t%.2f", $14 / hz, $15 / hz }' "/proc/$1/stat"; }

# timed ROUND PEER METRIC: one row of runs.tsv
timed() {
	local cmd t0 t1 c0="-	-" c1 cpu="-	-"
	TOP=$TREE
	[ "$2" = tree ] || mount_peer "$2"
	cmd=$(cmd_of "$3" "$TOP" "$2")
	wait_idle "round $1: $2 $3"
	drop_caches "$2" "$3"
	[ "$2" = tree ] || c0=$(cpu_of "$DAEMON")
	t0=$EPOCHREALTIME
	bash -c "$cmd" || die "'$cmd' failed"
	t1=$EPOCHREALTIME
	if [ "$2" != tree ]; then
		c1=$(cpu_of "$DAEMON")
		cpu=$(printf '%s\t%s\n' "$c0" "$c1" | awk -F'\t' '{ printf "%.2f\t%.2f", $3 - $1, $4 - $2 }')
	fi
	[ "$(cat "$RES/count")" = "${want[$3]}" ] ||
		die "$2 $3: found $(cat "$RES/count") files, the tree has ${want[$3]}"
	[ "$2" = tree ] || umount_peer
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" \
		"$cpu" | tee -a "$RES/runs.tsv" >&2
}

HZ=$(getconf CLK_TCK)
files=$(find "$TREE" -type f | wc -l)
declare -A want=([walk]=$files [read-all]=$files [lookup]=$files)
(cd "$TREE" && find . -type f -print0) >"$RES/files.list"
# shellcheck disable=SC2086
want[read-big]=$(cd "$TREE" && find $BIGDIRS -type f | wc -l)
# shellcheck disable=SC2086
want[read-small]=$(cd "$TREE" && find $SMALLDIRS -type f | wc -l)
bytes=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
tar_bytes=$(zstd -dc "$ARCHIVE" | wc -c)
{
	machine_lines "$ROOT"
	echo "libfuse3: $(pkg-config --modversion fuse3)"
	echo "tree: $bytes bytes in $files files; archive: $(basename "$ARCHIVE"), $(stat -c %s "$ARCHIVE") bytes, $tar_bytes decompressed"
	echo "snapfs: -o cache_size=$CACHE_MIB"
	"$BIN/pagetouch"
} >"$RES/summary.txt"

WALKERS=(floor floor-plus squashfuse snapfs snapfs-auto)
READERS=(floor-plus snapfs snapfs-auto tree)
LOOKERS=(floor floor-cpu0 floor-spin snapfs-auto)
for r in $(seq "$RUNS"); do
	log "round $r of $RUNS"
	for i in "${!WALKERS[@]}"; do
		timed "$r" "${WALKERS[$(((i + r) % ${#WALKERS[@]}))]}" walk
	done
	for i in "${!LOOKERS[@]}"; do
		timed "$r" "${LOOKERS[$(((i + r) % ${#LOOKERS[@]}))]}" lookup
	done
	for m in read-big read-small read-all; do
		for i in "${!READERS[@]}"; do
			timed "$r" "${READERS[$(((i + r) % ${#READERS[@]}))]}" "$m"
		done
	done
	wait_idle "round $r: zstd -d"
	drop_caches zstd decompress
	t0=$EPOCHREALTIME
	zstd -d -q -c "$ARCHIVE" >/dev/null
	t1=$EPOCHREALTIME
	printf '%s\tzstd\tdecompress-cold\t%s\t-\t-\n' "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" |
		tee -a "$RES/runs.tsv" >&2
done

# medians, and the ratios the targets of bench/mount.sh are stated in
awk -F'\t' -v bytes="$bytes" -v tar_bytes="$tar_bytes" -v small="${want[read-small]}" \
	-v files="$files" '
	{ k = $2 SUBSEP $3; v[k, ++n[k]] = $4; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
	$5 != "-" { u[k] = u[k] " " $5; s[k] = s[k] " " $6 }
	function med(k,   i, j, t, c, a) {
		c = n[k]; for (i = 1; i <= c; i++) a[i] = v[k, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
	}
	END {
		printf "\nMedians of the rounds (seconds); the daemon'"'"'s user and system CPU seconds, round by round\n"
		for (i = 1; i <= m; i++) {
			split(order[i], f, SUBSEP); printf "%-12s %-16s %.4f", f[1], f[2], med(order[i])
			if (order[i] in u) printf "   user%s   sys%s", u[order[i]], s[order[i]]
			printf "\n"
		}
		sq = med("squashfuse" SUBSEP "walk"); z = med("zstd" SUBSEP "decompress-cold")
		printf "\nwalk against squashfuse_ll (target of snapfs: <= 1.5x)\n"
		split("floor floor-plus snapfs snapfs-auto", w, " ")
		for (i = 1; i <= 4; i++) printf "  %-12s %.2fx\n", w[i], med(w[i] SUBSEP "walk") / sq
		printf "\nread all against zstd -d cold, %.0f MB/s (target of snapfs: >= 0.8x)\n", tar_bytes / z / 1e6
		split("floor-plus snapfs snapfs-auto tree", w, " ")
		for (i = 1; i <= 4; i++) {
			t = med(w[i] SUBSEP "read-all")
			printf "  %-12s %.0f MB/s = %.2fx\n", w[i], bytes / t / 1e6, bytes / t / (tar_bytes / z)
		}
		d = med("snapfs-auto" SUBSEP "read-small") - med("snapfs" SUBSEP "read-small")
		printf "\nthe small files without attributes in the listings: %+.3f s, %.1f us a file (its LOOKUP)\n",
		       d, d / small * 1e6
		printf "\na LOOKUP round trip (lstat of each file by path, none listed first; us)\n"
		split("floor floor-cpu0 floor-spin snapfs-auto", w, " ")
		for (i = 1; i <= 4; i++)
			printf "  %-12s %.1f\n", w[i], med(w[i] SUBSEP "lookup") / files * 1e6
	}' "$RES/runs.tsv" | tee -a "$RES/summary.txt"
if [ -s "$RES/busy.txt" ]; then
	echo "measured on a busy machine: $(paste -sd, "$RES/busy.txt")" | tee -a "$RES/summary.txt"
fi

#!/usr/bin/env bash
# bench/mount.sh: snapfs against its peers, side by side, in one run on the
# tree of bench/gentree.c (bench/mount-results.md).
#
#   bench/mount.sh              full scale (~1.6 GiB tree), as published
#   SCALE=0.05 bench/mount.sh   a quick run (~80 MiB tree)
#
# Needs root (drop_caches, mounts), /dev/fuse, and: squashfuse (squashfuse_ll),
# squashfs-tools, archivemount, zstd, fuse3, meson, ninja, cc
#   apt-get install -y squashfuse squashfs-tools archivemount zstd fuse3 time
#
# Environment:
#   BENCH_DIR     work directory (default /var/tmp/snapfs-mount): tree, images, mounts, results
#   SCALE         gentree scale (default 1.0)
#   SHARED_TREE   a tree bench/take.sh generated, hard-linked instead of generating one
#                 when its tree.stamp matches (default /var/tmp/snapfs-bench/tree)
#   RUNS          rounds of the timed metrics (default 3; medians are reported)
#   CACHE_MIB     snapfs -o cache_size (default 64)
#   AM_TIMEOUT    cap of each archivemount measurement, seconds (default 60)
#   QUIET_WAIT    seconds to wait for an idle machine before each timed step (default 120)
#   CURVE=0       skip the frame-size curve; FRAMES: its frame sizes (default 64K..1M)
#   PEERS         subset of "snapfs squashfuse archivemount zstd tree"
#   ALT_SNAPFS    another snapfs binary (a build before a change) measured as peer snapfs-alt
#   ALT_OPTS      extra -o options for snapfs-alt (e.g. readdirplus=auto, with ALT_SNAPFS
#                 the same binary: the other listing mode side by side)
#   WAIT_OTHER=0  do not wait for bench/take.sh: only to try the script at a tiny SCALE
#   MEMORY_RUNS   fresh mounts of each snapfs daemon in the memory step (default RUNS):
#                 its peak varies by up to ~1 MiB from mount to mount; the median is reported
#   ONLY_MEMORY=1 the tree, the memory step and its summary only (no timed rounds, no curve)
#
# What it does:
#   1. builds snapfs/snapkeep (meson release, build-bench2/) and bench/randmnt.c;
#   2. the tree (reused when gentree.c and SCALE are unchanged); one `snapkeep take`
#      archive of it in a store (default framing); `mksquashfs TREE img -comp zstd`
#      (128 KiB blocks, cached by tree stamp); `tar | zstd -3 -T0` for the size
#      baseline; a store of 1,000 hard links to one small archive;
#   3. RUNS rounds; in each, every peer in turn (the order rotates). "Caches dropped"
#      means `echo 3 > drop_caches`, then the programs used (bash, find, cat, the daemon
#      binaries...) run once, so that only the archive, image or tree is cold:
#        mount to first stat   caches dropped, then `randmnt -w`: start the mount
#                              command, stat a file in it every 100 us; "mount-allcold":
#                              the same with the daemon's binary and libraries cold too
#        walk cold / warm      fresh mount, caches dropped, `find -type f | wc -l` twice
#        read all              fresh mount, caches dropped, find -print0 | randmnt -R
#                              (open, posix_fadvise SEQUENTIAL, 128 KiB reads, close: as
#                              cat, without cat's own cost a file), twice: read-all-first,
#                              then read-all, the same step again (on this VM the first
#                              large read after lighter steps was slower, it seems for
#                              memory the host took back: snapfs 0.37-0.90 s in runs 11
#                              and 12, zstd -d -0.10 to +0.27 s);
#                              then the same with `xargs -0 cat` (read-all-cat: cat's own
#                              cost is ~40 us a file here, 0.8 s on the tree); then, with
#                              randmnt -R, the split: the 13 big files (state/, logs/),
#                              the 20,000 small ones, each on a fresh mount
#        open+close            the mean cost of open()+close() of one file (FUSE OPEN)
#        random reads          fresh mount, caches dropped (the archive too: "cold"),
#                              2,000 random 4 KiB preads of the 1 GiB file; the same
#                              again ("warm": the kernel page cache answers); a fresh
#                              mount, caches dropped, the backing file read back into
#                              the page cache ("hot backing": only decompression and
#                              FUSE are timed)
#      limits: zstd -d -c ARCHIVE >/dev/null cold (twice, as read all) and warm; the tree
#      itself walked
#      and read cold (disk) and warm (page cache); randmnt on the tree's file;
#      the 1,000-archive store: mount to first stat, first `ls`, first `ls -l`
#   4. untimed: each daemon's RSS (VmHWM) after mount, after a walk, after reading
#      everything and the random reads (snapfs: MEMORY_RUNS fresh mounts, median);
#      every file's bytes checked against the tree
#   5. the frame-size curve: snapfs random reads on archives taken with
#      --frame-size F --group-size F, and their sizes against tar | zstd -3 -T0.
# Each timed step first waits until bench/take.sh (the other benchmark) is not
# running and the machine is idle. Results: BENCH_DIR/results/ (runs.tsv, summary.txt).
# No mount is left behind, whatever happens.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/machine.sh
source "$ROOT/bench/machine.sh"
W=${BENCH_DIR:-/var/tmp/snapfs-mount}
SCALE=${SCALE:-1.0}
SHARED_TREE=${SHARED_TREE:-/var/tmp/snapfs-bench/tree}
RUNS=${RUNS:-3}
CACHE_MIB=${CACHE_MIB:-64}
AM_TIMEOUT=${AM_TIMEOUT:-60}
QUIET_WAIT=${QUIET_WAIT:-120}
CURVE=${CURVE:-1}
FRAMES=${FRAMES:-"65536 131072 262144 524288 1048576"}
PEERS=${PEERS:-"snapfs squashfuse archivemount zstd tree"}
ALT_SNAPFS=${ALT_SNAPFS:-}
ALT_OPTS=${ALT_OPTS:+,$ALT_OPTS}
[ -n "$ALT_SNAPFS" ] && PEERS="$PEERS snapfs-alt"
WAIT_OTHER=${WAIT_OTHER:-1}
MEMORY_RUNS=${MEMORY_RUNS:-$RUNS}
ONLY_MEMORY=${ONLY_MEMORY:-0}
TIMED_RUNS=$RUNS
[ "$ONLY_MEMORY" = 1 ] && { TIMED_RUNS=0; CURVE=0; }
NREADS=2000
SEED=42
MANY=1000
T_LIMIT=600		# a cap for steps of the other peers (never expected)

BIN=$W/bin
TREE=$W/tree
RES=$W/results
TMP=$W/tmp
MNTS=$W/mnt
SNAPFS=$ROOT/build-bench2/fs/snapfs
SNAPKEEP=$ROOT/build-bench2/tools/snapkeep
BIGFILE=state/worker-state.db
STATFILE=config/cc-cluster.yaml
BIGDIRS="state logs"			# the 13 big files (1.6 GiB)
SMALLDIRS="config queue status .env"	# the ~20,400 small ones (~25 MiB)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'mount.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (drop_caches and mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
for tool in zstd tar mksquashfs archivemount fusermount3 meson ninja cc awk timeout mountpoint; do
	command -v "$tool" >/dev/null || die "'$tool' is missing (see the header for apt-get)"
done
if command -v squashfuse_ll >/dev/null; then
	SQUASHFUSE=$(command -v squashfuse_ll)
elif command -v squashfuse >/dev/null; then
	SQUASHFUSE=$(command -v squashfuse)
else
	die "squashfuse is missing (apt-get install squashfuse)"
fi

# ---- mounts, and never leaving one behind ------------------------------------------------

declare -A DPID=()	# mount point -> pid of the daemon this script started
MCMD=()

cleanup() {
	local m pid
	for m in "$MNTS"/*; do
		[ -d "$m" ] || continue
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	for m in "${!DPID[@]}"; do
		pid=${DPID[$m]}
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	DPID=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mcmd PEER SOURCE MNT: the mount command, in MCMD
mcmd() {
	case $1 in
	snapfs) MCMD=("$SNAPFS" -o "cache_size=$CACHE_MIB" "$2" "$3") ;;
	snapfs-alt) MCMD=("$ALT_SNAPFS" -o "cache_size=$CACHE_MIB$ALT_OPTS" "$2" "$3") ;;
	squashfuse) MCMD=("$SQUASHFUSE" "$2" "$3") ;;
	archivemount) MCMD=(archivemount -o readonly "$2" "$3") ;;
	*) die "no mount for $1" ;;
	esac
}

# note_pid MNT: remember the daemon serving MNT (the mount commands detach)
note_pid() {
	local exe=${MCMD[0]##*/} pid
	pid=$(pgrep -n -f -- "$exe .*$1\$" || true)
	[ -n "$pid" ] || die "no daemon found for $1"
	DPID[$1]=$pid
}

# do_mount PEER SOURCE MNT: mount, untimed; returns when it is live
do_mount() {
	local limit=$T_LIMIT
	[ "$1" = archivemount ] && limit=$((AM_TIMEOUT * 5))
	mkdir -p "$3"
	mountpoint -q "$3" && die "$3 is already a mount point"
	mcmd "$@"
	timeout "$limit" "${MCMD[@]}" >"$TMP/mount.log" 2>&1 || die "mount failed: ${MCMD[*]} ($(cat "$TMP/mount.log"))"
	for _ in $(seq 100); do mountpoint -q "$3" && break; sleep 0.05; done
	mountpoint -q "$3" || die "not mounted: ${MCMD[*]}"
	note_pid "$3"
}

# do_umount MNT: unmount and wait for the daemon to end
do_umount() {
	local m=$1 pid=${DPID[$1]:-}
	if mountpoint -q "$m"; then
		umount "$m" 2>/dev/null || { sleep 1; umount "$m" 2>/dev/null; } || umount -l "$m"
	fi
	if [ -n "$pid" ]; then
		for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$pid" 2>/dev/null && { kill -TERM "$pid"; sleep 1; kill -KILL "$pid" 2>/dev/null || true; }
		unset "DPID[$m]"
	fi
}

# Drop the page cache, dentries and inodes; then run the programs a measurement uses,
# so that what is cold is the file system under test, not bash or find.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	[ "${1:-}" = all ] && return
	bash -c : && find /dev/null -maxdepth 0 -type f -print0 | xargs -0 cat | wc -l >/dev/null
	ls /dev/null >/dev/null
	md5sum </dev/null >/dev/null
	zstd -V >/dev/null
	"$BIN/randmnt" -O 1 /dev/null >/dev/null
	"$SNAPFS" --version >/dev/null
	[ -z "$ALT_SNAPFS" ] || "$ALT_SNAPFS" --version >/dev/null
	"$SQUASHFUSE" --help >/dev/null 2>&1 || true
	archivemount --version >/dev/null 2>&1 || true
}

# ---- an idle machine for every timed step ------------------------------------------------

# Wait until bench/take.sh is not running and the machine is >= 90% idle for 2 s.
wait_idle() {
	local said=0
	while [ "$WAIT_OTHER" = 1 ] && pgrep -f bench/take.sh >/dev/null; do
		[ $said = 1 ] || log "waiting for bench/take.sh (the other benchmark) to end"
		said=1
		sleep 10
	done
	machine_idle "$QUIET_WAIT" && return 0
	log "machine still busy after ${QUIET_WAIT}s; measuring anyway"
	echo "busy" >>"$RES/noisy.txt"
}

kv() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# ---- 1. build ----------------------------------------------------------------------------

log "building snapfs and snapkeep (release, build-bench2/) and the bench tools"
cd "$ROOT"
release_build "$ROOT" fs/snapfs tools/snapkeep
mkdir -p "$BIN" "$TMP" "$MNTS"
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/gentree" bench/gentree.c
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/randmnt" bench/randmnt.c
cleanup	# mounts a killed earlier run left
rm -rf "$RES"
mkdir -p "$RES"
printf 'round\tpeer\tmetric\tvalue\tnote\n' >"$RES/runs.tsv"

# ---- 2. the tree and what is made of it --------------------------------------------------

wait_idle	# generating and compressing would disturb the other benchmark's timings
stamp="$(sha256sum bench/gentree.c | cut -c1-16) scale=$SCALE"
if [ -f "$W/tree.stamp" ] && [ "$(cat "$W/tree.stamp")" = "$stamp" ] && [ -d "$TREE" ]; then
	log "reusing the tree in $TREE"
else
	rm -rf "$TREE" "$W/tree.stamp" "$W/tree.sqfs" "$W/sqfs.stamp"
	shared_stamp=$(dirname "$SHARED_TREE")/tree.stamp
	if [ -d "$SHARED_TREE" ] && [ -f "$shared_stamp" ] && [ "$(cat "$shared_stamp")" = "$stamp" ]; then
		log "hard-linking the tree of $SHARED_TREE (same gentree, same scale)"
		cp -al "$SHARED_TREE" "$TREE"
	else
		log "generating the tree (scale $SCALE) in $TREE"
		"$BIN/gentree" "$TREE" "$SCALE"
	fi
	echo "$stamp" >"$W/tree.stamp"
fi
tree_bytes=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }')
tree_files=$(find "$TREE" -type f | wc -l)
tree_entries=$(find "$TREE" -mindepth 1 | wc -l)
part_bytes() { (cd "$TREE" && find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }'); }
# shellcheck disable=SC2086
big_bytes=$(part_bytes $BIGDIRS)
# shellcheck disable=SC2086
small_bytes=$(part_bytes $SMALLDIRS)
# shellcheck disable=SC2086
small_files=$(cd "$TREE" && find $SMALLDIRS -type f | wc -l)
# shellcheck disable=SC2086
big_files=$(cd "$TREE" && find $BIGDIRS -type f | wc -l)

log "snapkeep take (default framing) into $W/store"
rm -rf "$W/store"
ARCHIVE=$("$SNAPKEEP" take --store "$W/store" --name bench -C "$TREE" .)
SNAPDIR=$(basename "$ARCHIVE" .tar.zst)
SNAPDIR=${SNAPDIR#bench-}
tar_bytes=$(zstd -dc "$ARCHIVE" | wc -c)
archive_bytes=$(stat -c %s "$ARCHIVE")
base_bytes=$(tar -cf - -C "$TREE" . | zstd -3 -T0 -q -c | wc -c)

IMG=$W/tree.sqfs
if [ -f "$IMG" ] && [ "$(cat "$W/sqfs.stamp" 2>/dev/null)" = "$stamp" ]; then
	log "reusing $IMG"
else
	log "mksquashfs $TREE $IMG -comp zstd (default 128 KiB blocks)"
	rm -f "$IMG"
	/usr/bin/time -f '%e s wall, %M KiB max RSS' -o "$RES/mksquashfs-time.txt" \
		mksquashfs "$TREE" "$IMG" -comp zstd -noappend -quiet -no-progress >/dev/null
	echo "$stamp" >"$W/sqfs.stamp"
fi
img_bytes=$(stat -c %s "$IMG")

log "a store of $MANY archives (hard links to one small archive)"
rm -rf "$W/many" "$W/small"
small=$("$SNAPKEEP" take --store "$W/small" --name small -C "$TREE" config .env)
mkdir -p "$W/many"
t=1767225600	# 2026-01-01 00:00 UTC, one archive an hour
for ((k = 0; k < MANY; k++)); do
	TZ=UTC printf -v ts '%(%Y%m%d_%H%M%S)T' $((t + k * 3600))
	ln "$small" "$W/many/svc-$ts.tar.zst"
done
MANY_FIRST=$(TZ=UTC printf '%(%Y%m%d_%H%M%S)T' "$t")

{
	machine_lines "$ROOT"
	echo "filesystem: $(df -PT "$W" | awk 'NR == 2 { print $2 " on " $1 }')"
	echo "zstd: $(zstd --version | head -1)"
	echo "squashfuse: $SQUASHFUSE, Debian package $(dpkg-query -W -f '${Version}' squashfuse 2>/dev/null || echo '?') ($("$SQUASHFUSE" --help 2>&1 | head -1))"
	echo "squashfs-tools: $(dpkg-query -W -f '${Version}' squashfs-tools 2>/dev/null || echo '?')"
	echo "archivemount: $(archivemount --version 2>&1 | head -1), FUSE 2 library $(dpkg-query -W -f '${Version}' libfuse2 2>/dev/null || echo '?')"
	echo "libfuse3: $(pkg-config --modversion fuse3 2>/dev/null || dpkg-query -W -f '${Version}' libfuse3-3)"
	echo "libzstd: $(pkg-config --modversion libzstd), libarchive: $(pkg-config --modversion libarchive)"
	echo "tree: $tree_bytes bytes in $tree_files files, $tree_entries entries, scale $SCALE"
	echo "parts: $big_bytes bytes in $BIGDIRS (big files), $small_bytes bytes in $SMALLDIRS (small files)"
	echo "tar stream: $tar_bytes bytes (zstd -d of the archive)"
	echo "snapkeep archive: $archive_bytes bytes ($(basename "$ARCHIVE"), default framing:" \
		"$(grep -E '^#define WR_DEFAULT_(FRAME|GROUP)_SIZE' snapshot/writer.h | awk '{ printf "%s %s ", $2, $3 $4 $5 }'))"
	echo "tar -cf - . | zstd -3 -T0: $base_bytes bytes"
	echo "squashfs image: $img_bytes bytes (mksquashfs -comp zstd, 128 KiB blocks, level 15)"
	echo "snapfs: -o cache_size=$CACHE_MIB (MiB)"
	echo "many: $MANY hard links to $(basename "$small") ($(stat -c %s "$small") bytes)"
} | tee "$RES/machine.txt" >&2

# ---- 3. the rounds -----------------------------------------------------------------------

root_of() { # PEER MNT: where the tree is in the mount
	case $1 in snapfs*) echo "$2/$SNAPDIR" ;; *) echo "$2" ;; esac
}
source_of() {
	case $1 in snapfs*) echo "$W/store" ;; squashfuse) echo "$IMG" ;; archivemount) echo "$ARCHIVE" ;; esac
}
backing_of() {
	case $1 in snapfs* | archivemount) echo "$ARCHIVE" ;; squashfuse) echo "$IMG" ;; esac
}
limit_of() { [ "$1" = archivemount ] && echo "$AM_TIMEOUT" || echo "$T_LIMIT"; }
declare -A CAPPED=()	# peer:metric -> 1 once a run hit the cap: later rounds skip it

walk_cmd() { echo "find '$1' -type f | wc -l > '$TMP/count'"; }
# the reader of every file: randmnt -R, which says how many files it read (into TMP/count)
read_part_cmd() { # ROOT [DIRS...]: the DIRS in ROOT, or all of it
	local root=$1 d list=""
	shift
	for d in "$@"; do list="$list '$root/$d'"; done
	[ -n "$list" ] || list="'$root'"
	echo "set -o pipefail; find $list -type f -print0 | '$BIN/randmnt' -R |" \
		"sed -n 's/^files=\([0-9]*\) .*/\1/p' > '$TMP/count'"
}
read_cmd() { read_part_cmd "$1"; }
read_cat_cmd() { echo "set -o pipefail; find '$1' -type f -print0 | xargs -0 cat > /dev/null"; }

check_count() { # WHAT [FILES]: the count a walk or a read left in TMP/count
	local want=${2:-$tree_files}
	[ "$(cat "$TMP/count")" = "$want" ] || die "$1: found $(cat "$TMP/count") files, expected $want"
}

# timed_row ROUND PEER METRIC LIMIT CMD [check [FILES]]
timed_row() {
	local v
	if [ -n "${CAPPED[$2:$3]:-}" ]; then
		return
	fi
	wait_idle
	v=$(tsec "$4" "$5")
	[ "${v#>}" != "$v" ] && CAPPED[$2:$3]=1
	[ "${6:-}" = check ] && [ "${v#>}" = "$v" ] && check_count "$2 $3" "${7:-}"
	row "$1" "$2" "$3" "$v"
}

# rr_row ROUND PEER METRIC FILE BUDGET: randmnt, one row for p50 and p99 each
rr_row() {
	local out budget=$5
	if [ -n "${CAPPED[$2:$3]:-}" ]; then
		return
	fi
	wait_idle
	out=$("$BIN/randmnt" -n $NREADS -s $SEED ${budget:+-t "$budget"} "$4")
	echo "$1 $2 $3 $out" >>"$RES/randmnt.txt"
	local reads hit
	reads=$(echo "$out" | kv reads)
	hit=$(echo "$out" | kv budget_hit)
	row "$1" "$2" "$3-p50_us" "$(echo "$out" | kv p50_us)" "reads=$reads"
	row "$1" "$2" "$3-p99_us" "$(echo "$out" | kv p99_us)" "reads=$reads"
	if [ "$hit" = 1 ]; then
		row "$1" "$2" "$3-capped" ">$budget" "only $reads of $NREADS reads in ${budget}s"
		CAPPED[$2:$3]=1
	fi
}

mount_peer_round() { # ROUND PEER
	local r=$1 p=$2 m=$MNTS/$2 root out lim
	root=$(root_of "$p" "$m")
	lim=$(limit_of "$p")
	mkdir -p "$m"

	# (1) mount to first stat: the backing file cold; then everything cold
	for metric in mount mount-allcold; do
		[ -z "${CAPPED[$p:$metric]:-}" ] || continue
		wait_idle
		if [ $metric = mount ]; then drop_caches; else drop_caches all; fi
		mcmd "$p" "$(source_of "$p")" "$m"
		out=$("$BIN/randmnt" -w "$lim" "$root/$STATFILE" "${MCMD[@]}" || true)
		echo "$r $p $metric $out" >>"$RES/mount.txt"
		if [ "$(echo "$out" | kv timeout)" = 1 ]; then
			row "$r" "$p" $metric ">$lim"
			CAPPED[$p:$metric]=1
		else
			[ "$(echo "$out" | kv stat_s)" != "" ] && [ "$(echo "$out" | kv cmd_status)" -le 0 ] ||
				die "$p: mount failed: $out"
			row "$r" "$p" $metric "$(echo "$out" | kv stat_s)" "command returned after $(echo "$out" | kv cmd_exit_s) s"
		fi
		for _ in $(seq 100); do mountpoint -q "$m" && break; sleep 0.05; done
		mountpoint -q "$m" && note_pid "$m"
		do_umount "$m"
	done

	# (2) walk, cold then warm
	do_mount "$p" "$(source_of "$p")" "$m"
	drop_caches
	timed_row "$r" "$p" walk-cold "$lim" "$(walk_cmd "$root")" check
	timed_row "$r" "$p" walk-warm "$lim" "$(walk_cmd "$root")" check
	do_umount "$m"

	# (3) read every file once, twice over; then the big files and the small ones apart
	for metric in read-all-first read-all; do
		# archivemount reaches the cap every time: once is enough
		[ "$p" = archivemount ] && [ $metric = read-all-first ] && continue
		[ -z "${CAPPED[$p:$metric]:-}" ] || continue
		do_mount "$p" "$(source_of "$p")" "$m"
		drop_caches
		timed_row "$r" "$p" $metric "$lim" "$(read_cmd "$root")" check
		do_umount "$m"
	done
	if [ "$p" != archivemount ]; then
		do_mount "$p" "$(source_of "$p")" "$m"
		drop_caches
		timed_row "$r" "$p" read-all-cat "$lim" "$(read_cat_cmd "$root")"
		do_umount "$m"
		do_mount "$p" "$(source_of "$p")" "$m"
		drop_caches
		# shellcheck disable=SC2086 # lists of directories
		timed_row "$r" "$p" read-big "$lim" "$(read_part_cmd "$root" $BIGDIRS)" check "$big_files"
		do_umount "$m"
		do_mount "$p" "$(source_of "$p")" "$m"
		drop_caches
		# shellcheck disable=SC2086
		timed_row "$r" "$p" read-small "$lim" "$(read_part_cmd "$root" $SMALLDIRS)" check "$small_files"
		# the cost of one open, the file's attributes and pages cached
		cat "$root/$STATFILE" >/dev/null
		wait_idle
		row "$r" "$p" open-close_us "$("$BIN/randmnt" -O 5000 "$root/$STATFILE" | kv open_close_us)"
		do_umount "$m"
	fi

	# (4) random reads: cold (caches dropped, the backing file too), then warm
	do_mount "$p" "$(source_of "$p")" "$m"
	drop_caches
	if [ "$p" = archivemount ]; then
		rr_row "$r" "$p" rand-cold "$root/$BIGFILE" "$AM_TIMEOUT"
	else
		rr_row "$r" "$p" rand-cold "$root/$BIGFILE" ""
		rr_row "$r" "$p" rand-warm "$root/$BIGFILE" ""
	fi
	do_umount "$m"
	# hot backing: the mounted file's pages dropped, the archive or image in the page cache
	if [ "$p" != archivemount ]; then
		do_mount "$p" "$(source_of "$p")" "$m"
		drop_caches
		cat "$(backing_of "$p")" >/dev/null
		rr_row "$r" "$p" rand-hotbacking "$root/$BIGFILE" ""
		do_umount "$m"
	fi
}

limits_round() { # ROUND PEER
	local r=$1
	case $2 in
	zstd)
		drop_caches
		timed_row "$r" zstd decompress-cold-first $T_LIMIT "zstd -d -q -c '$ARCHIVE' > /dev/null"
		drop_caches
		timed_row "$r" zstd decompress-cold $T_LIMIT "zstd -d -q -c '$ARCHIVE' > /dev/null"
		cat "$ARCHIVE" >/dev/null
		timed_row "$r" zstd decompress-warm $T_LIMIT "zstd -d -q -c '$ARCHIVE' > /dev/null"
		;;
	tree)
		drop_caches
		timed_row "$r" tree walk-cold $T_LIMIT "$(walk_cmd "$TREE")" check
		timed_row "$r" tree walk-warm $T_LIMIT "$(walk_cmd "$TREE")" check
		drop_caches
		timed_row "$r" tree read-all-cold $T_LIMIT "$(read_cmd "$TREE")" check
		timed_row "$r" tree read-all $T_LIMIT "$(read_cmd "$TREE")" check	# warm: page cache
		timed_row "$r" tree read-all-cat $T_LIMIT "$(read_cat_cmd "$TREE")"	# warm
		# shellcheck disable=SC2086
		timed_row "$r" tree read-big $T_LIMIT "$(read_part_cmd "$TREE" $BIGDIRS)" check "$big_files"
		# shellcheck disable=SC2086
		timed_row "$r" tree read-small $T_LIMIT "$(read_part_cmd "$TREE" $SMALLDIRS)" check "$small_files"
		wait_idle
		row "$r" tree open-close_us "$("$BIN/randmnt" -O 5000 "$TREE/$STATFILE" | kv open_close_us)"
		drop_caches
		rr_row "$r" tree rand-cold "$TREE/$BIGFILE" ""
		rr_row "$r" tree rand-warm "$TREE/$BIGFILE" ""
		;;
	esac
}

many_round() { # ROUND
	local r=$1 m=$MNTS/many out
	mkdir -p "$m"
	drop_caches
	wait_idle
	mcmd snapfs "$W/many" "$m"
	out=$("$BIN/randmnt" -w $T_LIMIT "$m/$MANY_FIRST" "${MCMD[@]}")
	row "$r" many mount "$(echo "$out" | kv stat_s)" "command returned after $(echo "$out" | kv cmd_exit_s) s"
	note_pid "$m"
	do_umount "$m"
	do_mount snapfs "$W/many" "$m"
	drop_caches
	timed_row "$r" many first-ls $T_LIMIT "ls '$m' > '$TMP/ls'"
	[ "$(wc -l <"$TMP/ls")" = $((MANY + 1)) ] || die "ls of the $MANY-archive store listed $(wc -l <"$TMP/ls") names"
	timed_row "$r" many second-ls $T_LIMIT "ls '$m' > '$TMP/ls'"
	do_umount "$m"
	do_mount snapfs "$W/many" "$m"
	drop_caches
	timed_row "$r" many first-ls-l $T_LIMIT "ls -l '$m' > '$TMP/ls'"
	do_umount "$m"
	drop_caches
	timed_row "$r" many store-ls $T_LIMIT "ls '$W/many' > '$TMP/ls'"
}

order=()
for p in $PEERS; do order+=("$p"); done
for ((r = 1; r <= TIMED_RUNS; r++)); do
	log "round $r of $RUNS"
	for ((k = 0; k < ${#order[@]}; k++)); do
		p=${order[$(((k + r - 1) % ${#order[@]}))]}
		log "round $r: $p"
		case $p in
		snapfs | snapfs-alt | squashfuse | archivemount) mount_peer_round "$r" "$p" ;;
		zstd | tree) limits_round "$r" "$p" ;;
		esac
	done
	case " $PEERS " in *" snapfs "*) many_round "$r" ;; esac
done

# ---- 4. memory, and the bytes checked (untimed) ------------------------------------------

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
log "checksum of every file of the tree (in find order of each mount, sorted by path)"
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 cat | md5sum | cut -d' ' -f1); }
ref_sum=$(tree_sum "$TREE")
printf 'peer\tstage\tVmHWM_kib\tVmRSS_kib\tround\n' >"$RES/rss.tsv"
rss_row() { # PEER STAGE ROUND
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(status_kib "$pid" VmHWM)" "$(status_kib "$pid" VmRSS)" "$3" >>"$RES/rss.tsv"
}
for p in $PEERS; do
	case $p in snapfs | snapfs-alt) mr=$MEMORY_RUNS ;; squashfuse | archivemount) mr=1 ;; *) continue ;; esac
	m=$MNTS/$p
	root=$(root_of "$p" "$m")
	for ((r = 1; r <= mr; r++)); do
		log "memory of $p, mount $r of $mr"
		do_mount "$p" "$(source_of "$p")" "$m"
		pid=${DPID[$m]}
		rss_row "$p" mounted "$r"
		drop_caches
		bash -c "$(walk_cmd "$root")"
		bash -c "$(walk_cmd "$root")"
		rss_row "$p" walked "$r"
		if [ "$p" != archivemount ]; then
			drop_caches
			sum=$(tree_sum "$root")
			[ "$sum" = "$ref_sum" ] && echo "$p: every file's bytes equal the tree's" >>"$RES/check.txt" ||
				{ echo "$p: CONTENT DIFFERS ($sum != $ref_sum)" >>"$RES/check.txt"; log "$p: content differs!"; }
			drop_caches
			"$BIN/randmnt" -n $NREADS -s $SEED -c "$TREE/$BIGFILE" "$root/$BIGFILE" >>"$RES/check.txt"
			rss_row "$p" read-all+rand "$r"
		fi
		do_umount "$m"
	done
done
cat "$RES/check.txt" >&2 2>/dev/null || true

# ---- 5. the frame-size curve -------------------------------------------------------------

if [ "$CURVE" = 1 ] && case " $PEERS " in *" snapfs "*) true ;; *) false ;; esac; then
	printf 'frame\tsize\tsize_ratio\n' >"$RES/curve-size.tsv"
	for f in $FRAMES; do
		log "curve: frame = group = $f"
		wait_idle
		rm -rf "$W/curve"
		a=$("$SNAPKEEP" take --store "$W/curve" --name bench --frame-size "$f" --group-size "$f" -C "$TREE" .)
		printf '%s\t%s\t%s\n' "$f" "$(stat -c %s "$a")" \
			"$(awk -v a="$(stat -c %s "$a")" -v b="$base_bytes" 'BEGIN { printf "%.4f", a / b }')" >>"$RES/curve-size.tsv"
		d=$(basename "$a" .tar.zst)
		d=${d#bench-}
		m=$MNTS/curve
		for ((r = 1; r <= RUNS; r++)); do
			do_mount snapfs "$W/curve" "$m"
			drop_caches
			rr_row "$r" "curve-$f" rand-cold "$m/$d/$BIGFILE" ""
			do_umount "$m"
			do_mount snapfs "$W/curve" "$m"
			drop_caches
			cat "$a" >/dev/null
			rr_row "$r" "curve-$f" rand-hotbacking "$m/$d/$BIGFILE" ""
			do_umount "$m"
		done
	done
	rm -rf "$W/curve"
fi

# ---- summary -----------------------------------------------------------------------------

log "summary"
{
	cat "$RES/machine.txt"
	echo
	if [ "$TIMED_RUNS" != 0 ]; then
		echo "Medians of $RUNS rounds (seconds, or microseconds for *_us; >T: hit the cap T)"
		awk -F'\t' 'NR > 1 { k = $2 "\t" $3; if (!(k in n)) order[++m] = k; v[k, ++n[k]] = $4 }
		function num(s) { return substr(s, 1, 1) == ">" ? substr(s, 2) + 1e9 : s + 0 }
		END {
			for (i = 1; i <= m; i++) {
				k = order[i]; c = n[k]
				for (a = 1; a <= c; a++) s[a] = v[k, a]
				for (a = 2; a <= c; a++) for (b = a; b > 1 && num(s[b - 1]) > num(s[b]); b--) {
					t = s[b]; s[b] = s[b - 1]; s[b - 1] = t }
				line = ""; for (a = 1; a <= c; a++) line = line " " s[a]
				printf "%-28s %-22s median %-10s runs:%s\n", substr(k, 1, index(k, "\t") - 1),
					substr(k, index(k, "\t") + 1), s[int((c + 1) / 2)], line
			}
		}' "$RES/runs.tsv"
		echo
	fi
	echo "Daemon memory (KiB):"
	column -t "$RES/rss.tsv" 2>/dev/null || cat "$RES/rss.tsv"
	[ -f "$RES/curve-size.tsv" ] && { echo; echo "Curve sizes:"; cat "$RES/curve-size.tsv"; }
	echo
	echo "Targets (medians; ratios are snapfs / peer):"
	awk -F'\t' -v tree="$tree_bytes" -v tar="$tar_bytes" -v big="$big_bytes" -v small="$small_bytes" -v nsmall="$small_files" \
		-v entries="$tree_entries" -v cache="$CACHE_MIB" -v rss="$RES/rss.tsv" '
	function num(x) { return substr(x, 1, 1) == ">" ? substr(x, 2) + 1e9 : x + 0 }
	function med(k,  c, a, b, t, sv) {
		c = n[k]; if (!c) return ""
		for (a = 1; a <= c; a++) sv[a] = v[k, a]
		for (a = 2; a <= c; a++) for (b = a; b > 1 && num(sv[b - 1]) > num(sv[b]); b--) {
			t = sv[b]; sv[b] = sv[b - 1]; sv[b - 1] = t }
		return sv[int((c + 1) / 2)]
	}
	function verdict(ok) { return ok ? "met" : "MISSED" }
	function ratio(what, a, b, lim,  r) {
		if (a == "" || b == "") return
		r = a / b
		printf "  %-34s snapfs %-9s squashfuse %-9s ratio %.2f  (<= %.1f) %s\n", what, a, b, r, lim,
			verdict(r <= lim)
	}
	NR > 1 { k = $2 SUBSEP $3; v[k, ++n[k]] = $4 }
	END {
		ratio("random 4 KiB p50, cold (us)", med("snapfs" SUBSEP "rand-cold-p50_us"), med("squashfuse" SUBSEP "rand-cold-p50_us"), 1.5)
		ratio("random 4 KiB p50, hot backing (us)", med("snapfs" SUBSEP "rand-hotbacking-p50_us"), med("squashfuse" SUBSEP "rand-hotbacking-p50_us"), 1.5)
		ratio("walk, cold (s)", med("snapfs" SUBSEP "walk-cold"), med("squashfuse" SUBSEP "walk-cold"), 1.5)
		ratio("walk, warm (s)", med("snapfs" SUBSEP "walk-warm"), med("squashfuse" SUBSEP "walk-warm"), 1.5)
		z = med("zstd" SUBSEP "decompress-cold"); zw = med("zstd" SUBSEP "decompress-warm")
		if (z != "") {
			zr = tar / z / 1e6; zwr = tar / zw / 1e6
			printf "  zstd -d: %.0f MB/s of tar stream cold, %.0f MB/s warm\n", zr, zwr
			split("snapfs squashfuse archivemount tree", P, " ")
			for (i = 1; i <= 4; i++) {
				a = med(P[i] SUBSEP "read-all"); if (a == "") continue
				if (substr(a, 1, 1) == ">") { printf "  read all, %-12s %s s\n", P[i], a; continue }
				r = tree / a / 1e6
				printf "  read all, %-12s %6.0f MB/s = %.2fx zstd -d cold (>= 0.8) %s", P[i], r, r / zr,
					P[i] == "snapfs" ? verdict(r / zr >= 0.8) : ""
				b = med(P[i] SUBSEP "read-big"); sm = med(P[i] SUBSEP "read-small")
				if (b != "") printf "; big files %.0f MB/s = %.2fx; small files %.2f s, %.0f us a file",
					big / b / 1e6, big / b / 1e6 / zr, sm, sm / nsmall * 1e6
				printf "\n"
				c = med(P[i] SUBSEP "read-all-first"); zf = med("zstd" SUBSEP "decompress-cold-first")
				if (c != "" && substr(c, 1, 1) != ">" && zf != "" && substr(zf, 1, 1) != ">")
					printf "    the first pass:       %6.0f MB/s = %.2fx zstd -d cold, first pass (%s s, zstd -d %s s)\n",
						tree / c / 1e6, tree / c * zf / tar, c, zf
				c = med(P[i] SUBSEP "read-all-cat")
				if (c != "" && substr(c, 1, 1) != ">")
					printf "    with xargs cat:       %6.0f MB/s = %.2fx zstd -d cold (%s s)\n",
						tree / c / 1e6, tree / c / 1e6 / zr, c
			}
		}
		l = med("many" SUBSEP "first-ls")
		if (l != "") printf "  first ls of the 1,000-archive store: %s s (< 0.1) %s\n", l, verdict(l < 0.1)
		# each stage of each mount; the medians over the mounts (the peak varies by ~1 MiB)
		while ((getline line < rss) > 0) {
			split(line, f, "\t")
			if (f[1] != "snapfs") continue
			if (f[2] == "mounted") v["m0", ++n["m0"]] = f[3]
			# after the walk, what stays (VmRSS): loading the index peaks above it for a moment
			if (f[2] == "walked") { v["m1", ++n["m1"]] = f[4]; v["m1p", ++n["m1p"]] = f[3] }
			if (f[2] == "read-all+rand") { v["m2", ++n["m2"]] = f[3]; all = all " " f[3] }
		}
		m0 = med("m0"); m1 = med("m1"); m1p = med("m1p"); m2 = med("m2")
		if (m2 != "" && m2 - m1 < cache * 1024) {
			printf "  snapfs peak RSS %d KiB: the %d MiB cache never filled (tree too small)\n", m2, cache
		} else if (m2 != "") {
			pe = (m2 * 1024 - cache * 1048576) / entries
			printf "  snapfs peak RSS %d KiB (median of%s) with cache_size=%d MiB, %d entries: (RSS - cache) / entries = %.0f bytes (< 200) %s\n",
				m2, all, cache, entries, pe, verdict(pe < 200)
			printf "    of which: %d KiB at mount (%.0f bytes an entry); the index, walked: +%d KiB (%.0f bytes an entry; %d KiB peak while loading); reading: +%d KiB over the cache\n",
				m0, m0 * 1024 / entries, m1 - m0, (m1 - m0) * 1024 / entries, m1p, m2 - m1 - cache * 1024
		}
	}' "$RES/runs.tsv"
	[ -f "$RES/noisy.txt" ] && echo "steps measured on a busy machine: $(wc -l <"$RES/noisy.txt")"
	true
} | tee "$RES/summary.txt"

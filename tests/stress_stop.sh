#!/bin/bash
# stress_stop.sh: SIGTERM to snapfs at bad moments, many rounds. Not part of
# `meson test` (minutes, and each round only has a chance to hit the window);
# run it after touching fs/main.c's signal handling, fs/ops.c's pusher or the
# invalidations in fs/tree.c.
#
#   bash tests/stress_stop.sh PATH/TO/snapfs PATH/TO/snapkeep [ROUNDS]
#
# Two scenarios, ROUNDS each (default 20):
#   reading  many small files read by two readers while SIGTERM comes: the
#            pusher may wait on a page a READ holds (found: 2 hangs in 30);
#   pruned   a shell inside a snapshot of 100,000 files, the archive deleted,
#            stat() of random names inside while the daemon invalidates the
#            names and SIGTERM comes (found: 1 hang in 3 before tree_stop).
# A round fails when the daemon still runs 10 s after SIGTERM; the connection is
# then aborted through fusectl so the next round can go on. Needs root.
set -u
export LC_ALL=C
[ $# -ge 2 ] || { echo "usage: $0 SNAPFS SNAPKEEP [ROUNDS]" >&2; exit 2; }
SNAPFS=$(realpath -- "$1") SNAPKEEP=$(realpath -- "$2") ROUNDS=${3:-20}
[ -c /dev/fuse ] || { echo "SKIP: /dev/fuse is missing"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (fusectl abort)"; exit 77; }
W=$(mktemp -d /tmp/snapfs_stress.XXXXXX)
M=$W/mnt
mkdir -p "$M" "$W/src/small" "$W/src/big" "$W/store1" "$W/store2"
trap 'mountpoint -q "$M" && umount -l "$M"; rm -rf "$W"' EXIT

python3 - "$W/src" <<'PY'
import os, random, sys
r = random.Random(7)
for i in range(5000):
    with open(os.path.join(sys.argv[1], "small", "m%05d" % i), "wb") as f:
        f.write(os.urandom(r.randint(100, 3000)))
for d in range(100):
    p = os.path.join(sys.argv[1], "big", "d%03d" % d)
    os.mkdir(p)
    for i in range(1000):
        open(os.path.join(p, "f%04d" % i), "w").write("x")
PY
"$SNAPKEEP" take --store "$W/store1" --name s -C "$W/src" small >/dev/null || exit 1
"$SNAPKEEP" take --store "$W/scratch" --name p -C "$W/src" big >/dev/null || exit 1
BIGARC=$(ls "$W"/scratch/*.tar.zst)

# stop PID: SIGTERM, then 10 s; 0 if it exited
stop() {
	local pid=$1 k
	kill -TERM "$pid"
	for ((k = 0; k < 200; k++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "  daemon $pid hangs:" $(cat /proc/"$pid"/task/*/wchan 2>/dev/null)
	mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections
	echo 1 >"/sys/fs/fuse/connections/$(mountpoint -d "$M" | cut -d: -f2)/abort" 2>/dev/null
	sleep 1
	return 1
}

fails=0
for ((i = 1; i <= ROUNDS; i++)); do
	"$SNAPFS" "$W/store1" "$M" || exit 1
	pid=$(pgrep -n -f "^$SNAPFS $W/store1 ")
	snap=$(ls "$M" | grep -v latest)
	( find "$M/$snap" -type f -print0 | xargs -0 -P2 cat >/dev/null 2>&1 ) &
	sleep "0.$((RANDOM % 9 + 1))"
	stop "$pid" || { echo "reading round $i failed"; fails=$((fails + 1)); }
	kill %1 2>/dev/null; wait 2>/dev/null
	mountpoint -q "$M" && umount -l "$M"
done
for ((i = 1; i <= ROUNDS; i++)); do
	ln -f "$BIGARC" "$W/store2/p-20260101_000000.tar.zst"
	"$SNAPFS" "$W/store2" "$M" || exit 1
	pid=$(pgrep -n -f "^$SNAPFS $W/store2 ")
	(cd "$M/20260101_000000/big/d050" && exec sleep 60) &
	sp=$!
	sleep 0.3
	rm "$W/store2/p-20260101_000000.tar.zst"
	for k in 1 2 3 4; do
		( while :; do stat "/proc/$sp/cwd/x$RANDOM" >/dev/null 2>&1; done ) &
	done
	sleep "1.$((RANDOM % 9))"
	stop "$pid" || { echo "pruned round $i failed"; fails=$((fails + 1)); }
	kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
	mountpoint -q "$M" && umount -l "$M"
done
mountpoint -q /sys/fs/fuse/connections && umount /sys/fs/fuse/connections 2>/dev/null
echo "$((2 * ROUNDS)) rounds, $fails hung"
[ "$fails" = 0 ]

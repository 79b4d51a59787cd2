#!/usr/bin/env bash
# bench/foreign.sh: reading an old `tar czf` backup through snapfs, against archivemount
# on the same file and the old way of unpacking it into a temporary directory
# (results: bench/foreign-results.md).
#
#   bench/foreign.sh            full scale: a .tar.gz of ~625 MiB of files, a .tar.xz of its small ones
#   SCALE=0.1 bench/foreign.sh  a quick run
#
# The tree is bench/gentree.c's without its one 1 GiB file: config, queue, status, .env
# (~20,400 small files) and logs (12 big ones). GNU tar stores each directory's files in
# readdir order, as the old backups did. The archives, in BENCH_DIR/store:
#   a-20250101_000000.tar.gz   tar czf of all of it (gzip -6)
#   b-20250102_000000.tar.xz   tar cJf of the small files (xz -6)
#   c-20250103_000000.zip      bsdtar --format zip of the small files (deflate)
#   d-20250104_000000.7z       bsdtar --format 7zip of the small files (one solid LZMA block)
# Steps, on each archive, each on a fresh mount after `echo 3 > drop_caches`:
#   scan      snapfs: mount, then the first `ls` of the snapshot (its one scan); archivemount:
#             its mount, which reads the archive through
#   cp-a      cp -a of the snapshot to a directory in /dev/shm: names in sorted order, which
#             is not the archive's
#   in-order  cat of every file in the archive's own order (`tar t`'s)
#   untar     tar x (bsdtar x for the zip and the 7z) of the archive into /dev/shm: the old
#             way, no mount (cp-a and in-order put it under both)
#   decode    gzip -dc / xz -dc / bsdtar xOf of the archive to /dev/null: the decoder alone
# Every cp -a copy is compared with the tree. archivemount runs one round (it takes minutes
# a step), capped at AM_TIMEOUT seconds: ">N" is a step it did not finish. ALT_SNAPFS=PATH
# adds another snapfs binary (an earlier commit's, say) as the peer snapfs-alt, run like
# archivemount; ARCHIVEMOUNT=0 leaves archivemount out.
#
# Environment: FORMATS (default "gz xz zip 7z": the archives measured), BENCH_DIR (default
# /var/tmp/snapfs-foreign), SCALE (default 1.0), RUNS
# (default 3), AM_TIMEOUT (default 120), ALT_SNAPFS (default none), QUIET_WAIT (default 30 s of waiting for an idle
# machine before each timed step). Results: BENCH_DIR/results/ (runs.tsv, summary.txt); an
# earlier run's are moved to results.<its time> first.
# Needs: root, /dev/fuse, archivemount, xz (apt-get install -y archivemount xz-utils).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/machine.sh
source "$ROOT/bench/machine.sh"
W=${BENCH_DIR:-/var/tmp/snapfs-foreign}
SCALE=${SCALE:-1.0}
RUNS=${RUNS:-3}
AM_TIMEOUT=${AM_TIMEOUT:-120}
ALT_SNAPFS=${ALT_SNAPFS:-}
ARCHIVEMOUNT=${ARCHIVEMOUNT:-1}
QUIET_WAIT=${QUIET_WAIT:-30}
TREE=$W/tree
STORE=$W/store
RES=$W/results
BIN=$W/bin
MNT=$W/mnt
SHM=/dev/shm/snapfs-foreign
SNAPFS=$ROOT/build-bench2/fs/snapfs
GZ=a-20250101_000000.tar.gz
XZ=b-20250102_000000.tar.xz
ZIP=c-20250103_000000.zip
SZ=d-20250104_000000.7z
FORMATS=${FORMATS:-gz xz zip 7z}
ARCHIVES=""
for f in $FORMATS; do
	case $f in
	gz) ARCHIVES="$ARCHIVES $GZ" ;; xz) ARCHIVES="$ARCHIVES $XZ" ;;
	zip) ARCHIVES="$ARCHIVES $ZIP" ;; 7z) ARCHIVES="$ARCHIVES $SZ" ;;
	*) printf 'foreign.sh: FORMATS takes gz, xz, zip and 7z, not %s\n' "$f" >&2; exit 2 ;;
	esac
done
GZ_DIRS="config queue status .env logs"
XZ_DIRS="config queue status .env"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'foreign.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (drop_caches and mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
for tool in archivemount xz gzip tar bsdtar fusermount3 mountpoint meson ninja cc timeout; do
	command -v "$tool" >/dev/null || die "'$tool' is missing (see the header for apt-get)"
done

cleanup() {
	mountpoint -q "$MNT" && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# the programs a step runs, so that only the archive is cold
	ls /dev/null >/dev/null
	cp --version >/dev/null
	tar --version >/dev/null
	find /dev/null -maxdepth 0 -print0 | xargs -0 cat >/dev/null
	"$SNAPFS" --version >/dev/null
	[ -z "$ALT_SNAPFS" ] || "$ALT_SNAPFS" --version >/dev/null
	archivemount --version >/dev/null 2>&1 || true
}

# umount_wait: unmount MNT and wait for its daemon to go
umount_wait() {
	mountpoint -q "$MNT" || return 0
	umount "$MNT" 2>/dev/null || { sleep 1; umount "$MNT"; }
	for _ in $(seq 100); do pgrep -f -- " $MNT\$" >/dev/null || return 0; sleep 0.05; done
	die "a daemon stayed after unmounting $MNT"
}


# ---- build, tree, archives -----------------------------------------------------------------

log "building snapfs (release, build-bench2/)"
cd "$ROOT"
release_build "$ROOT" fs/snapfs
mkdir -p "$BIN" "$STORE" "$MNT"
cc -O2 -std=c11 -Wall -Wextra -o "$BIN/gentree" bench/gentree.c
stamp="$(sha256sum bench/gentree.c | cut -c1-16) scale=$SCALE"
if ! [ -f "$W/tree.stamp" ] || [ "$(cat "$W/tree.stamp")" != "$stamp" ]; then
	log "generating the tree (scale $SCALE) and the archives"
	rm -rf "$TREE" "$STORE" "$W/tree.stamp"
	mkdir -p "$STORE"
	"$BIN/gentree" "$TREE" "$SCALE" >/dev/null
	rm -rf "$TREE/state"
	# shellcheck disable=SC2086
	(cd "$TREE" && tar czf "$STORE/$GZ" $GZ_DIRS && tar cJf "$STORE/$XZ" $XZ_DIRS)
	echo "$stamp" >"$W/tree.stamp"
fi
# (made apart: a tree of an earlier foreign.sh has the two tars only)
# shellcheck disable=SC2086
[ -f "$STORE/$ZIP" ] || (cd "$TREE" && bsdtar --format zip -cf "$STORE/$ZIP" $XZ_DIRS)
# shellcheck disable=SC2086
[ -f "$STORE/$SZ" ] || (cd "$TREE" && bsdtar --format 7zip -cf "$STORE/$SZ" $XZ_DIRS)
[ -d "$RES" ] && mv "$RES" "$RES.$(date -r "$RES" +%Y%m%d-%H%M%S)"
mkdir -p "$RES"
: >"$RES/runs.tsv"
for a in $ARCHIVES; do
	bsdtar tf "$STORE/$a" | grep -v '/$' | sed 's|^\./||' | tr '\n' '\0' >"$W/order-$a"
done

# ---- steps -----------------------------------------------------------------------------------

snap_of() { local b=${1#*-}; echo "${b%%.*}"; }

# mount_peer PEER ARCHIVE: mount it on MNT, echo the directory holding the archive's files
mount_peer() {
	drop_caches
	quiet
	if [ "$1" = snapfs ] || [ "$1" = snapfs-alt ]; then
		local t bin=$SNAPFS
		[ "$1" = snapfs-alt ] && bin=$ALT_SNAPFS
		t=$(tsec 600 "'$bin' '$STORE' '$MNT' && ls '$MNT/$(snap_of "$2")' >/dev/null")
		row "$r" "$1" "$2" scan "$t"
		echo "$MNT/$(snap_of "$2")"
	else
		local t
		t=$(tsec "$AM_TIMEOUT" "archivemount -o readonly '$STORE/$2' '$MNT' && ls '$MNT' >/dev/null")
		row "$r" "$1" "$2" scan "$t"
		echo "$MNT"
	fi
}

# steps PEER ARCHIVE
steps() {
	local d t limit=600
	[ "$1" = snapfs ] || limit=$AM_TIMEOUT
	d=$(mount_peer "$1" "$2")
	rm -rf "$SHM"
	mkdir -p "$SHM"
	quiet
	t=$(tsec "$limit" "cp -a '$d/.' '$SHM/x'")
	row "$r" "$1" "$2" cp-a "$t"
	if [ "${t:0:1}" != ">" ]; then
		local dirs=$XZ_DIRS
		[ "$2" = "$GZ" ] && dirs=$GZ_DIRS
		for sub in $dirs; do
			diff -r "$TREE/$sub" "$SHM/x/$sub" >/dev/null || die "$1: $2: cp -a differs in $sub"
		done
	fi
	rm -rf "$SHM"
	umount_wait
	d=$(mount_peer "$1" "$2")
	quiet
	t=$(tsec "$limit" "cd '$d' && xargs -0 cat <'$W/order-$2' >/dev/null")
	row "$r" "$1" "$2" in-order "$t"
	umount_wait
}

for r in $(seq "$RUNS"); do
	log "round $r of $RUNS"
	for a in $ARCHIVES; do
		steps snapfs "$a"
		[ "$r" = 1 ] && [ "$ARCHIVEMOUNT" = 1 ] && steps archivemount "$a"
		[ "$r" = 1 ] && [ -n "$ALT_SNAPFS" ] && steps snapfs-alt "$a"
		drop_caches
		mkdir -p "$SHM"
		quiet
		x="tar xf"
		case $a in *.zip | *.7z) x="bsdtar xf" ;; esac
		row "$r" untar "$a" untar "$(tsec 600 "$x '$STORE/$a' -C '$SHM'")"
		rm -rf "$SHM"
		drop_caches
		quiet
		case $a in *.gz) dec="gzip -dc" ;; *.xz) dec="xz -dc" ;; *) dec="bsdtar xOf" ;; esac
		row "$r" "${dec%% *}" "$a" decode "$(tsec 600 "$dec '$STORE/$a' >/dev/null")"
	done
done

# ---- summary ---------------------------------------------------------------------------------

{
	machine_lines "$ROOT"
	echo "snapfs: $("$SNAPFS" --version 2>&1 | head -1)"
	echo "archivemount: $(archivemount --version 2>&1 | head -1)"
	[ -z "$ALT_SNAPFS" ] || echo "snapfs-alt: $ALT_SNAPFS"
	echo "scale: $SCALE, rounds: $RUNS; archivemount: $([ "$ARCHIVEMOUNT" = 1 ] && echo 1 || echo 0), snapfs-alt: $([ -n "$ALT_SNAPFS" ] && echo 1 || echo 0) round, capped at ${AM_TIMEOUT}s"
	for a in $ARCHIVES; do
		echo "$a: $(stat -c %s "$STORE/$a") bytes, $(tr -cd '\0' <"$W/order-$a" | wc -c) files"
	done
	[ -f "$RES/noisy.txt" ] && echo "steps measured on a busy machine: $(wc -l <"$RES/noisy.txt")"
	echo
	echo "median seconds (rounds); a step is on a fresh mount from a cold cache"
	awk -F'\t' '
		{ k = $3 "\t" $2 "\t" $4; v[k] = v[k] (v[k] == "" ? "" : " ") $5; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
		END {
			for (i = 0; i < n; i++) {
				k = order[i]; m = split(v[k], a, " ")
				capped = 0
				for (j = 1; j <= m; j++) if (substr(a[j], 1, 1) == ">") capped = 1
				if (capped) { med = a[1] }
				else {
					for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
					med = a[int((m + 1) / 2)]
				}
				printf "%s\t%s\n", k, med " (" v[k] ")"
			}
		}' "$RES/runs.tsv" | column -t -s $'\t'
} | tee "$RES/summary.txt"

#!/bin/bash
# mount_test.sh: the snapfs daemon end to end, with real FUSE mounts (issue 3, "Tests";
# SPEC "The store", "The mount", "snapfs").
#
#   bash tests/mount_test.sh PATH/TO/snapfs PATH/TO/snapkeep
#
# Builds stores in a temporary directory with snapkeep (and tar, bsdtar for the
# foreign formats), mounts them and compares what the mount shows with the
# source: every kind of entry, the layout, EROFS, stable inode numbers, live
# updates, foreign and damaged archives, permissions under allow_other, the
# program's behaviour (readiness, errors, mount -t, fstab, SIGTERM) and a
# 1,000-archive store. Nothing sleeps for a fixed time: the daemon returns once
# mounted, and everything else is polled with a deadline that stops early when
# the daemon died. Every mount made is unmounted on every path.
#
# Root covers device nodes, big uids, setpriv as nobody and mount(8); without
# root those parts are skipped with a "# SKIP <reason>" note. Without /dev/fuse
# or fusermount3 the whole test prints "SKIP: <reason>" and exits 77. The last
# line is "N passed, M failed"; any failure exits 1, and a part skipped with
# none failed exits 77 (meson's SKIP): what did not run is never counted as passed.
set -u
export LC_ALL=C	# English error messages, and bytes in names stay bytes
export TZ=UTC0	# archive names are local times: the same on every machine

if [ $# -ne 2 ]; then
	echo "usage: $0 PATH/TO/snapfs PATH/TO/snapkeep" >&2
	exit 2
fi
SNAPFS=$(realpath -- "$1") || exit 2
SNAPKEEP=$(realpath -- "$2") || exit 2
if [ ! -x "$SNAPFS" ] || [ ! -x "$SNAPKEEP" ]; then
	echo "$0: need executables, got '$1' '$2'" >&2
	exit 2
fi

[ -c /dev/fuse ] || { echo "SKIP: /dev/fuse is missing"; exit 77; }
# libfuse opens /dev/fuse itself before it falls back to fusermount3
[ -r /dev/fuse ] && [ -w /dev/fuse ] ||
	{ echo "SKIP: /dev/fuse is not readable and writable by uid $(id -u)"; exit 77; }
command -v fusermount3 >/dev/null || { echo "SKIP: fusermount3 is missing"; exit 77; }
for tool in tar bsdtar getfattr setfattr cmp truncate find stat python3 fincore; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
# lz4 for the .tar.lz4 archive: installed when missing and we may
if ! command -v lz4 >/dev/null && [ "$ROOT" = 1 ] && command -v apt-get >/dev/null; then
	apt-get install -y -qq lz4 >/dev/null 2>&1
fi

umask 022
W=$(mktemp -d "${TMPDIR:-/tmp}/snapfs_mount.XXXXXX") || exit 2
W=$(realpath -- "$W")
chmod 711 "$W"	# user nobody must reach the mount points (check 8); nothing else here is secret
MOUNTS=()	# every mount point this test mounted on
BGPIDS=()	# daemons started in the foreground (-f) in the background

mounted() {	# mounted MNT: something is mounted on MNT
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}
# mount_opts MNT: the per-mount options; mount_type MNT: the file system type;
# mount_super MNT: the super block's options (proc(5), /proc/PID/mountinfo).
mount_opts() { awk -v m="$1" '$5 == m { print $6; exit }' /proc/self/mountinfo; }
mount_type() {
	awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1); exit }' \
		/proc/self/mountinfo
}
mount_super() {
	awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 3); exit }' \
		/proc/self/mountinfo
}
cleanup() {
	local i m
	exec 3<&-
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${MOUNTS[i]}
		mounted "$m" || continue
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null ||
			umount -l "$m" 2>/dev/null
	done
	for m in "${BGPIDS[@]}"; do
		kill -0 "$m" 2>/dev/null && kill "$m" 2>/dev/null
	done
	rm -rf --one-file-system -- "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0
FAIL=0
SKIPPED=0	# parts that cannot run here (note "SKIP ...")
WHY=0
# check NAME CMD...: one counted check. It fails when CMD returns nonzero or
# called why() at any point, so a check function need not carry every
# failure through to its last command.
check() {
	local name=$1
	shift
	WHY=0
	if "$@" && [ "$WHY" = 0 ]; then
		PASS=$((PASS + 1))
		echo "PASS: $name"
	else
		FAIL=$((FAIL + 1))
		echo "FAIL: $name"
	fi
}
why() { echo "    - $*"; WHY=1; return 1; }
# fatal WHAT: the setup failed; no further check can run.
fatal() {
	echo "FAIL: $*"
	FAIL=$((FAIL + 1))
	echo "$PASS passed, $FAIL failed"
	exit 1
}
note() {
	echo "# $*"
	[[ $1 != SKIP* ]] || SKIPPED=$((SKIPPED + 1))
}

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $((($(now_us) - $1) / 1000)); }
# gone PID: PID has exited (a zombie child of ours counts as exited)
gone() {
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 0
	s=${s##*) }
	[ "${s:0:1}" = Z ]
}
# wait_for MS PID CMD...: run CMD every 50 ms until it succeeds, at most MS ms;
# give up at once when PID (0: none) has died.
wait_for() {
	local ms=$1 pid=$2 start
	shift 2
	start=$(now_us)
	while :; do
		"$@" && return 0
		if [ "$pid" != 0 ] && gone "$pid"; then
			why "the daemon (pid $pid) died"
			return 1
		fi
		[ "$(ms_since "$start")" -ge "$ms" ] && return 1
		sleep 0.05
	done
}

# The pid of the snapfs that serves mount point $1 (an argument of its command line).
daemon_pid() {
	local p a
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$SNAPFS" ] || continue
		while IFS= read -r -d '' a; do
			[ "$a" = "$1" ] && { echo "${p#/proc/}"; return 0; }
		done 2>/dev/null <"$p/cmdline"
	done
	return 1
}

# mount_fs STORE MNT [OPTION...]: snapfs, detached; returns its status.
mount_fs() {
	local st=$1 m=$2
	shift 2
	MOUNTS+=("$m")
	# a daemon that never comes up must not hang the test (it returns once mounted)
	timeout -k 5 30 "$SNAPFS" "$@" "$st" "$m"
}
# unmount MNT: fusermount3 -u, and wait (5 s at most) for its daemon to exit.
unmount() {
	local m=$1 pid
	mounted "$m" || return 0
	pid=$(daemon_pid "$m")
	fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m"
	[ -z "$pid" ] || wait_for 5000 0 gone "$pid" ||
		why "daemon $pid still runs after unmounting $m"
	! mounted "$m"
}
# Mount STORE on MNT detached, or fail the check that needs it.
need_mount() {
	mkdir -p "$2"
	mount_fs "$@" || { why "cannot mount $1 on $2"; return 1; }
}

SEQ=0
# mkarchive DEST SRC PATH...: a native archive of PATHs in SRC, under the name DEST.
mkarchive() {
	local dest=$1 src=$2 out
	shift 2
	SEQ=$((SEQ + 1))
	out=$("$SNAPKEEP" take --store "$W/scratch" --name "s$SEQ" -C "$src" "$@") || {
		echo "snapkeep take into $dest failed" >&2
		return 1
	}
	mkdir -p "$(dirname "$dest")"
	mv -- "$out" "$dest"
}
# flip FILE OFFSET: invert the byte at OFFSET.
flip() {
	local v
	v=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((v ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# errs EXPECT CMD...: CMD must fail with EXPECT in its message.
errs() {
	local expect=$1 out
	shift
	if out=$("$@" 2>&1 >/dev/null); then
		why "'$*' succeeded"
		return 1
	fi
	[[ $out == *"$expect"* ]] || why "'$*' failed without '$expect': $out"
}

T0=$(now_us)

#####################################################################################
# 1. Round trip: a tree with every kind of entry, mounted, equals its source.
#####################################################################################
S1=$W/src1/tree
mkdir -p "$S1"
NL=$'new\nline'
BAD=$'bad\xff\xfename'
LONG=$(printf 'L%.0s' {1..220})
(
	cd "$S1" || exit 1
	printf 'hello world\n' >regular
	: >empty
	mkdir -p nested/deeper/deepest emptydir sticky
	chmod 1777 sticky
	seq 1 20000 >nested/deeper/numbers
	head -c 3000000 /dev/urandom >nested/random.bin
	ln -s nested/deeper/numbers symlink
	ln -s /nonexistent/dangling dangling
	ln -P symlink symlink_hl	# hard links to a symlink and to a FIFO (cp -al, rsnapshot)
	echo 'linked twice' >hard1
	ln hard1 hard2
	truncate -s 9G sparse
	truncate -s 64M allhole	# sparse with no data at all
	head -c 1048576 /dev/urandom | dd of=sparse bs=1M seek=4608 conv=notrunc status=none
	# two data regions with a hole between and after: SEEK_DATA / SEEK_HOLE inside each
	truncate -s 8M sparse2
	head -c 1048576 /dev/urandom | dd of=sparse2 bs=1M conv=notrunc status=none
	head -c 1048576 /dev/urandom | dd of=sparse2 bs=1M seek=5 conv=notrunc status=none
	setfattr -n user.color -v blue regular
	setfattr -n user.bin -v 0x00ff0a7f regular
	setfattr -n user.on_dir -v yes nested
	setfattr -n user.on_link -v same hard1
	mkfifo fifo
	ln fifo fifo_hl
	# POSIX ACLs (an access one with a named user and a mask, a default one on a
	# directory), set as Linux stores them: no setfacl needed
	echo 'with an acl' >aclfile
	mkdir acldir
	python3 -c 'import os, struct, sys
acl = lambda *e: struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *x) for x in e)
N = 2**32 - 1
os.setxattr("aclfile", "system.posix_acl_access",
	    acl((1, 6, N), (2, 6, 1234), (4, 4, N), (0x10, 6, N), (0x20, 4, N)))
os.setxattr("acldir", "system.posix_acl_default",
	    acl((1, 7, N), (4, 5, N), (8, 5, 4321), (0x10, 5, N), (0x20, 5, N)))' ||
		echo 'no POSIX ACLs here' >no-acls
	echo 'newline in the name' >"$NL"
	echo 'not utf-8' >"$BAD"
	echo 'a long name' >"$LONG"
	printf 'SECRET=hunter2\n' >.env
	chmod 600 .env
	echo '#!/bin/sh' >script
	chmod 4755 script
	if [ "$ROOT" = 1 ]; then
		mknod chardev c 1 3
		echo 'big owner' >bigowner
		chown 4000000:4000001 bigowner
		chown -h 4000002:4000003 symlink
	fi
) || fatal "cannot build the source tree"
[ "$ROOT" = 1 ] || note "SKIP device node and uid 4000000 in the round trip: not root"
[ -e "$S1/no-acls" ] && note "SKIP POSIX ACLs in the round trip: the test's file system takes none"
mapfile -d '' P1 < <(cd "$S1" && find . -mindepth 1 -print0)
# Times with nanoseconds, every entry its own, children before parents; atime =
# mtime because archives keep no atime and the mount reports the mtime for it.
i=0
while IFS= read -r -d '' p; do
	i=$((i + 1))
	touch -h -d "@$((1700000000 + i * 3671)).$(printf %09d $((123456789 + i * 1013)))" \
		"$S1/$p"
done < <(cd "$S1" && find . -depth -print0)
# What the mount must show, read before anything reads the source (relatime).
STATFMT='%f %u %g %h %Y %X %y %t %T'
stat_of() {	# never follows a symlink: that would update its atime
	if [ ! -L "$1" ] && [ -d "$1" ]; then
		stat -c "$STATFMT" -- "$1"
	else
		stat -c "$STATFMT %s" -- "$1"	# a directory's size is its file system's business
	fi
}
declare -a E1
for p in "${P1[@]}"; do
	E1+=("$(stat_of "$S1/$p")")
done
A1=$W/store1/rt-20260101_000000.tar.zst
mkarchive "$A1" "$W/src1" tree || fatal "cannot build the archives"
M1=$W/m1
need_mount "$W/store1" "$M1" || fatal "cannot mount the round-trip store"
R1=$M1/latest/tree

t_names() {
	local a b
	a=$(cd "$S1" && find . -print0 | sort -z | od -c)
	b=$(cd "$R1" && find . -print0 | sort -z | od -c)
	[ "$a" = "$b" ] || why "the names differ: $(diff <(echo "$a") <(echo "$b") | head -5)"
}
check "round trip: the same names, newline, non-UTF-8 and 220-char names included" t_names

t_statfs() {	# df on the mount: the store's file system, read-only, 255-byte names
	local m s
	m=$(stat -f -c '%b %S %l' "$M1/latest/tree")
	s=$(stat -f -c '%b %S' "$W/store1")
	[ "${m% *}" = "$s" ] || why "blocks and block size '${m% *}', the store's are '$s'"
	[ "${m##* }" = 255 ] || why "longest name ${m##* }, want 255"
	python3 -c 'import os, sys; sys.exit(not os.statvfs(sys.argv[1]).f_flag & os.ST_RDONLY)' \
		"$M1" || why "statvfs does not say read-only"
}
check "statfs: the store's size and free space, read-only, names up to 255 bytes" t_statfs

t_stat() {
	local i got bad=0
	for i in "${!P1[@]}"; do
		got=$(stat_of "$R1/${P1[i]}" 2>&1)
		if [ "$got" != "${E1[i]}" ]; then
			why "${P1[i]@Q}: got '$got', want '${E1[i]}'"
			bad=1
		fi
	done
	return $bad
}
check "round trip: mode, owner, links, mtime (ns), atime, rdev and size of every entry" t_stat

# The archive holds tree but not the directory above it: the snapshot's own
# directory still counts its subdirectory in its links, as every other does.
t_snap_nlink() {
	ls "$M1/latest/" >/dev/null
	wait_for 3000 0 eval '[ "$(stat -c %h "$M1/latest/")" = 3 ]' ||
		why "the snapshot's directory has $(stat -c %h "$M1/latest/") links, want 3"
}
check "round trip: a snapshot's directory counts its subdirectories in its links" t_snap_nlink

t_nsec() {
	local got want
	got=$(stat -c %y -- "$R1/regular")
	want=$(stat -c %y -- "$S1/regular")
	[[ $got != *.000000000* ]] || why "mtime without nanoseconds: $got"
	[ "$got" = "$want" ] || why "mtime $got, want $want"
}
check "round trip: mtime to the nanosecond" t_nsec

t_links() {
	local p bad=0
	for p in "${P1[@]}"; do
		[ -L "$S1/$p" ] || continue
		[ -L "$R1/$p" ] || { why "${p@Q} is not a symlink"; bad=1; continue; }
		[ "$(readlink -- "$R1/$p")" = "$(readlink -- "$S1/$p")" ] ||
			{ why "${p@Q} -> $(readlink -- "$R1/$p")"; bad=1; }
	done
	[ "$(cat "$R1/symlink")" = "$(cat "$S1/symlink")" ] || why "symlink does not resolve"
	return $bad
}
check "round trip: symlink targets" t_links

t_xattrs() {
	local p a b bad=0 n=0
	for p in "${P1[@]}"; do
		a=$(cd "$S1" && getfattr -h -d -m- -e hex -- "$p" 2>&1)
		b=$(cd "$R1" && getfattr -h -d -m- -e hex -- "$p" 2>&1)
		[ -n "$a" ] && n=$((n + 1))
		[ "$a" = "$b" ] || { why "${p@Q}: got '$b', want '$a'"; bad=1; }
	done
	[ $n -ge 3 ] || { why "only $n entries with xattrs in the source"; bad=1; }
	a=$(getfattr --absolute-names --only-values -n user.color "$R1/regular" 2>&1)
	[ "$a" = blue ] || why "getfattr -n user.color: $a"
	return $bad
}
check "round trip: xattrs of every entry (getfattr -d -m-)" t_xattrs

t_special() {
	test -p "$R1/fifo" || why "fifo is not a FIFO"
	if [ "$ROOT" = 1 ]; then
		test -c "$R1/chardev" || why "chardev is not a character device"
		[ "$(stat -c '%t:%T' "$R1/chardev")" = 1:3 ] ||
			why "chardev is $(stat -c '%t:%T' "$R1/chardev")"
		[ "$(stat -c '%u:%g' "$R1/bigowner")" = 4000000:4000001 ] ||
			why "bigowner is owned by $(stat -c '%u:%g' "$R1/bigowner")"
	fi
	[ -d "$R1/emptydir" ] && [ -z "$(ls -A "$R1/emptydir")" ] || why "emptydir is not empty"
	[ "$(stat -c %a "$R1/.env")" = 600 ] || why ".env has mode $(stat -c %a "$R1/.env")"
}
check "round trip: FIFO, device, big uid, empty dir, 0600 .env as such" t_special

t_content() {
	local p bad=0 n=0 start
	for p in "${P1[@]}"; do
		[ -f "$S1/$p" ] && [ ! -L "$S1/$p" ] || continue
		[ "$p" != ./sparse ] && [ "$p" != ./allhole ] || continue	# checked below
		n=$((n + 1))
		cmp -- "$S1/$p" "$R1/$p" || { bad=1; why "${p@Q} differs"; }
	done
	[ $n -ge 8 ] || why "only $n files compared"
	return $bad
}
check "round trip: content of every regular file" t_content

# The source's holes are zeros by construction (truncate), and ext4 reads them
# at a few hundred MB/s here: the holes are compared with /dev/zero, the data
# in the middle with the source. Every byte of the 9 GiB is read through the mount.
t_sparse() {
	local blocks start data=$((4608 << 20)) mib=$((1 << 20)) size=$((9 << 30))
	[ "$(stat -c %s "$R1/sparse")" = $size ] || why "size $(stat -c %s "$R1/sparse")"
	blocks=$(stat -c %b "$R1/sparse")
	[ "$blocks" -lt $((4 << 11)) ] || why "st_blocks $blocks: holes counted as data"
	start=$(now_us)
	cmp -n $data -- "$R1/sparse" /dev/zero || why "the hole before the data is not zeros"
	cmp -i $data -n $mib -- "$R1/sparse" "$S1/sparse" || why "the data in the middle differs"
	cmp -i $((data + mib)):0 -n $((size - data - mib)) -- "$R1/sparse" /dev/zero ||
		why "the hole after the data is not zeros"
	note "reading the 9 GiB sparse file through the mount: $(ms_since "$start") ms"
	[ "$(dd if="$R1/sparse" bs=1M skip=9215 status=none | wc -c)" = $mib ] ||
		why "reads past its size"
}
check "round trip: 9 GiB sparse file: few blocks, holes read as zeros, data in the middle" t_sparse

t_allhole() {
	[ "$(stat -c %s "$R1/allhole")" = $((64 << 20)) ] || why "size $(stat -c %s "$R1/allhole")"
	cmp -- "$R1/allhole" "$S1/allhole" || why "a file with no data does not read as zeros"
}
check "round trip: a sparse file that is all hole (truncate -s 64M) reads as zeros" t_allhole

# lseek SEEK_DATA / SEEK_HOLE answered as the source's file system answers them
seek_map() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for off in (0, 1 << 19, 1 << 20, 3 << 20, 5 << 20, 11 << 19, 6 << 20, 7 << 20, 8 << 20):
    for w, name in ((os.SEEK_DATA, "data"), (os.SEEK_HOLE, "hole")):
        try:
            r = os.lseek(fd, off, w)
        except OSError as e:
            r = os.strerror(e.errno)
        print(off, name, r)
' "$1"
}
t_seek() {
	local want got
	want=$(seek_map "$S1/sparse2") || { why "python3 failed on the source"; return 1; }
	got=$(seek_map "$R1/sparse2") || { why "python3 failed on the mount"; return 1; }
	[ "$got" = "$want" ] || why "lseek answers differ: $(diff <(echo "$want") <(echo "$got") | tr '\n' ' ')"
}
check "round trip: SEEK_DATA and SEEK_HOLE in a file of two data regions match the source" t_seek

t_hardlinks() {
	local a b pair dup
	for pair in "hard1 hard2" "symlink symlink_hl" "fifo fifo_hl"; do
		a=$(stat -c '%i %h %F' "$R1/${pair% *}")
		b=$(stat -c '%i %h %F' "$R1/${pair#* }")
		[ "$a" = "$b" ] || why "${pair% *} '$a', ${pair#* } '$b'"
		[ "$(echo "$a" | cut -d' ' -f2)" = 2 ] || why "${pair% *}: link count in '$a', want 2"
	done
	[ "$(cat "$R1/hard2")" = 'linked twice' ] || why "hard2 reads '$(cat "$R1/hard2")'"
	[ "$(readlink "$R1/symlink_hl")" = nested/deeper/numbers ] ||
		why "symlink_hl -> '$(readlink "$R1/symlink_hl")'"
	# every other entry has its own number
	dup=$(cd "$R1" && find . -print0 | xargs -0 stat -c %i | sort | uniq -d)
	[ "$dup" = "$(stat -c %i "$R1/hard1" "$R1/symlink" "$R1/fifo" | sort)" ] ||
		why "shared inode numbers: '$dup', want those of hard1, symlink and fifo only"
}
check "round trip: hard links to a file, a symlink and a FIFO: one inode each, link count 2" \
	t_hardlinks

#####################################################################################
# 2. Layout of the mount.
#####################################################################################
ST2=$W/store2
for x in A B X H1 H2; do
	mkdir -p "$W/src2/$x"
	echo "$x" >"$W/src2/$x/which"
done
mkarchive "$ST2/p-20260101_000000.tar.zst" "$W/src2/A" which &&
	mkarchive "$ST2/a-20260204_020000.tar.zst" "$W/src2/A" which &&
	mkarchive "$ST2/b-20260204_020000.tar.zst" "$W/src2/B" which &&
	mkarchive "$ST2/z-20260203_000000.tar.zst" "$W/src2/X" which &&
	mkarchive "$ST2/hourly/h-20260205_120000.tar.zst" "$W/src2/H1" which &&
	mkarchive "$ST2/hourly/h-20260205_130000.tar.zst" "$W/src2/H2" which &&
	mkarchive "$ST2/latest/l-20260206_000000.tar.zst" "$W/src2/H1" which ||
	fatal "cannot build the archives"
tar czf "$ST2/old-backup.tar.gz" -C "$W/src2/X" which
echo 'not an archive' >"$ST2/notes.txt"
: >"$ST2/e-20260401_000000.tar.zst"	# empty: no archive (a copy only begun, say)
ln -s . "$ST2/loop"		# links back to the store: not followed round
ln -s .. "$ST2/hourly/up"
ln -s self "$ST2/self"		# a link that cannot be followed: skipped, the rest listed
cp "$ST2/p-20260101_000000.tar.zst" "$ST2/.x.tar.zst.ABC123"
cp "$ST2/p-20260101_000000.tar.zst" "$ST2/.y-20260301_000000.tar.zst"	# hidden, else an archive
M2=$W/m2
need_mount "$ST2" "$M2" || fatal "cannot mount the layout store"

t_top() {
	local got want
	got=$(ls -A "$M2" | tr '\n' ' ')
	want='20260101_000000 20260203_000000 20260204_020000 20260204_020000_2 hourly latest '
	want+='latest_2 old-backup '
	[ "$got" = "$want" ] || why "ls: '$got', want '$want'"
}
check "layout: timestamp names, collision _2, no-timestamp name; notes.txt, empty and dot files hidden" \
	t_top

t_collision() {
	[ "$(cat "$M2/20260204_020000/which")" = A ] || why "20260204_020000 is not a-*"
	[ "$(cat "$M2/20260204_020000_2/which")" = B ] || why "20260204_020000_2 is not b-*"
	[ "$(cat "$M2/old-backup/which")" = X ] || why "old-backup does not read"
}
check "layout: the later file name gets _2; old-backup.tar.gz reads" t_collision

t_latest() {
	[ -L "$M2/latest" ] || why "latest is not a symlink"
	[ "$(readlink "$M2/latest")" = 20260204_020000_2 ] ||
		why "latest -> '$(readlink "$M2/latest")', want the newest 20260204_020000_2"
	[ "$(cat "$M2/latest/which")" = B ] || why "latest/which is not B"
}
check "layout: latest points at the newest (by time, not file name)" t_latest

# Names are local times: in the hour the autumn change repeats (here Berlin's rule, as a POSIX
# TZ string: no tzdata needed) the archive's mtime tells which of the two it means.
t_latest_autumn() {
	local st=$W/store2b m=$W/m2b
	mkarchive "$st/n-20261025_023000.tar.zst" "$W/src2/A" which &&
		mkarchive "$st/n-20261025_021500.tar.zst" "$W/src2/B" which ||
		{ why "cannot build the archives"; return 1; }
	touch -d @1792888240 "$st/n-20261025_023000.tar.zst"	# written 02:30:40 CEST
	touch -d @1792890940 "$st/n-20261025_021500.tar.zst"	# written 02:15:40 CET, an hour on
	TZ=CET-1CEST,M3.5.0,M10.5.0/3 need_mount "$st" "$m" || return 1
	[ "$(readlink "$m/latest")" = 20261025_021500 ] ||
		why "latest -> '$(readlink "$m/latest")', want 20261025_021500 (02:15 CET, the later)"
	[ "$(stat -c %Y "$m/20261025_023000") $(stat -c %Y "$m/20261025_021500")" = \
		"1792888200 1792890900" ] || why "snapshot times $(stat -c %Y "$m"/2026*)"
	[ "$(cat "$m/latest/which")" = B ] || why "latest/which is not B"
	unmount "$m"
}
check "layout: in the repeated autumn hour the file's time orders snapshots, not the name" \
	t_latest_autumn

t_hourly() {
	[ -d "$M2/hourly" ] && [ ! -L "$M2/hourly" ] || why "hourly is not a directory"
	[ "$(ls -A "$M2/hourly" | tr '\n' ' ')" = '20260205_120000 20260205_130000 latest ' ] ||
		why "hourly holds '$(ls -A "$M2/hourly" | tr '\n' ' ')'"
	[ "$(readlink "$M2/hourly/latest")" = 20260205_130000 ] ||
		why "hourly/latest -> '$(readlink "$M2/hourly/latest")'"
	[ "$(cat "$M2/hourly/latest/which")" = H2 ] || why "hourly/latest/which is not H2"
}
check "layout: a store subdirectory is a directory with its own latest" t_hourly

t_latest_dir() {	# a store subdirectory named latest: the link keeps the name
	[ -L "$M2/latest" ] || why "latest is not the link"
	[ -d "$M2/latest_2" ] && [ ! -L "$M2/latest_2" ] || why "latest_2 is not the directory"
	[ "$(cat "$M2/latest_2/latest/which")" = H1 ] || why "latest_2/latest/which is not H1"
	[ "$(ls -a "$M2" | grep -cx latest)" = 1 ] || why "two entries named latest"
}
check "layout: a store subdirectory named latest shows as latest_2" t_latest_dir

t_loops() {
	[ ! -e "$M2/loop" ] || why "loop -> . is shown"
	[ ! -e "$M2/hourly/up" ] || why "hourly/up -> .. is shown"
	[ ! -e "$M2/self" ] || why "self -> self is shown"
	[ "$(find "$M2" -maxdepth 3 | wc -l)" -lt 40 ] || why "the walk goes round"
}
check "layout: a link in the store back to the store, a parent or itself is not followed" t_loops

#####################################################################################
# 3. Read-only.
#####################################################################################
t_erofs() {
	local T=$M1/latest/tree snap
	snap=$(readlink "$M1/latest")
	local -a cmds=(
		"touch $T/regular" "touch $T/newfile" "touch $M1/newfile" "touch $M1/$snap"
		"mkdir $T/newdir" "mkdir $M1/newdir" "mkdir $T/nested/newdir"
		"rm -f $T/regular" "rm -f $M1/latest" "rmdir $T/emptydir" "rmdir $M1/$snap"
		"mv $T/regular $T/renamed" "mv $M1/$snap $M1/renamed" "mv $T/regular $M1/moved"
		"ln $T/regular $T/hardnew" "ln -s x $T/symnew" "ln -s x $M1/symnew"
		"chmod 777 $T/regular" "chmod 700 $M1/$snap" "chown 1:1 $T/regular"
		"setfattr -n user.new -v 1 $T/regular" "setfattr -x user.color $T/regular"
		"truncate -s 0 $T/regular" "truncate -s 0 $T/empty" "mkfifo $T/newfifo"
	)
	local c bad=0
	for c in "${cmds[@]}"; do
		errs 'Read-only file system' $c || bad=1
	done
	errs 'Read-only file system' bash -c 'echo x >"$1"' _ "$T/regular" || bad=1
	errs 'Read-only file system' bash -c 'echo x >>"$1"' _ "$T/nested/deeper/numbers" || bad=1
	errs 'Read-only file system' bash -c 'echo x >"$1"' _ "$M1/newfile" || bad=1
	# open(2) for writing, with O_TRUNC alone, O_TMPFILE; utimes with explicit times
	local py='import os, sys; p, how = sys.argv[1], sys.argv[2]
if how == "utime": os.utime(p, (1, 1))
else: os.close(os.open(p, {"rdwr": os.O_RDWR, "trunc": os.O_RDONLY | os.O_TRUNC,
	"tmpfile": os.O_TMPFILE | os.O_WRONLY}[how]))'
	errs 'Read-only file system' python3 -c "$py" "$T/regular" rdwr || bad=1
	errs 'Read-only file system' python3 -c "$py" "$T/regular" trunc || bad=1
	errs 'Read-only file system' python3 -c "$py" "$T/nested" tmpfile || bad=1
	errs 'Read-only file system' python3 -c "$py" "$T/regular" utime || bad=1
	cmp -s "$S1/regular" "$T/regular" || { why "regular changed"; bad=1; }
	[ "$(getfattr --absolute-names --only-values -n user.color "$T/regular")" = blue ] ||
		why "xattr changed"
	return $bad
}
check "read-only: 32 kinds of write inside and outside snapshots fail with EROFS" t_erofs

#####################################################################################
# 4. Inode numbers across remounts.
#####################################################################################
INO_PATHS=("" /20260204_020000 /20260204_020000_2 /20260204_020000_2/which /latest
	/hourly /hourly/latest /hourly/20260205_130000/which /old-backup /old-backup/which)
inos() { local p; for p in "${INO_PATHS[@]}"; do stat -c "%i $p" "$1$p"; done; }
t_inodes() {
	local before after
	before=$(inos "$M2")
	unmount "$M2" || return 1
	need_mount "$ST2" "$M2" || return 1
	after=$(inos "$M2")
	[ "$before" = "$after" ] ||
		why "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -6)"
	[ "$(echo "$after" | cut -d' ' -f1 | sort -u | wc -l)" = ${#INO_PATHS[@]} ] ||
		why "inode numbers not distinct: $after"
}
check "inode numbers are the same after unmount and mount" t_inodes

# Two archive paths whose 31-bit ids collide (found by search over the hash):
# the newer sorts first by name, so it was numbered first when a mount met
# both; taken while mounted, it must leave the older one's numbers as they were.
ST4=$W/store4
M4=$W/m4
OLDER=o3498-20250101_000000.tar.zst NEWER=n46716-20260101_000000.tar.zst
t_inodes_collide() {
	local before after
	mkarchive "$ST4/$OLDER" "$W/src2/A" which || return 1
	need_mount "$ST4" "$M4" || return 1
	before=$(stat -c %i "$M4/20250101_000000" "$M4/20250101_000000/which") || return 1
	mkarchive "$ST4/$NEWER" "$W/src2/B" which || return 1
	wait_for 2000 0 test -e "$M4/20260101_000000/which" ||
		{ why "the newer archive did not appear"; return 1; }
	before+=" $(stat -c %i "$M4/20260101_000000" "$M4/20260101_000000/which")"
	unmount "$M4" || return 1
	need_mount "$ST4" "$M4" || return 1
	after=$(stat -c %i "$M4/20250101_000000" "$M4/20250101_000000/which" \
		"$M4/20260101_000000" "$M4/20260101_000000/which")
	[ "$(echo $before)" = "$(echo $after)" ] || why "live: $(echo $before); remounted: $(echo $after)"
	[ "$(echo "$after" | sort -u | wc -l)" = 4 ] || why "inode numbers not distinct: $(echo $after)"
}
check "inode numbers of colliding archive ids are the same after a live take and a remount" \
	t_inodes_collide
unmount "$M4"

#####################################################################################
# 5. Live updates.
#####################################################################################
ST5=$W/store5
S5=$W/src5
mkdir -p "$S5"
head -c $((6 << 20)) /dev/urandom >"$S5/big.bin"	# a dozen frames, none read before the prune
echo live >"$S5/small.txt"
mkarchive "$ST5/l-20000101_000000.tar.zst" "$S5" small.txt || fatal "cannot build the archives"
M5=$W/m5
need_mount "$ST5" "$M5" || fatal "cannot mount the live store"
PID5=$(daemon_pid "$M5")
ls "$M5" >/dev/null	# the kernel has the listing now
LIVE_FILE= LIVE_NAME=
listed() { ls "$M5" | grep -qxF -- "$1"; }
not_listed() { ! listed "$1"; }
latest_is() { [ "$(readlink "$M5/latest")" = "$1" ]; }

t_appear() {
	local start ms
	LIVE_FILE=$("$SNAPKEEP" take --store "$ST5" --name live -C "$S5" big.bin small.txt) ||
		{ why "snapkeep take failed"; return 1; }
	start=$(now_us)
	LIVE_NAME=${LIVE_FILE##*/live-}
	LIVE_NAME=${LIVE_NAME%.tar.zst}
	wait_for 2000 "${PID5:-0}" listed "$LIVE_NAME" ||
		{ why "$LIVE_NAME not listed after 2 s"; return 1; }
	ms=$(ms_since "$start")
	note "a new snapshot appeared in ls after $ms ms"
	wait_for 2000 "${PID5:-0}" latest_is "$LIVE_NAME" ||
		why "latest -> $(readlink "$M5/latest")"
}
check "live: a snapshot taken while mounted appears within 2 s, latest follows" t_appear

t_prune() {
	local start ms bad=0
	[ -n "$LIVE_NAME" ] || { why "no live snapshot"; return 1; }
	exec 3<"$M5/$LIVE_NAME/big.bin" || { why "cannot open big.bin"; return 1; }
	rm -- "$LIVE_FILE"
	start=$(now_us)
	if wait_for 2000 "${PID5:-0}" not_listed "$LIVE_NAME"; then
		ms=$(ms_since "$start")
		note "a deleted snapshot left ls after $ms ms"
	else
		why "$LIVE_NAME still listed 2 s after rm"
		bad=1
	fi
	wait_for 2000 "${PID5:-0}" latest_is 20000101_000000 ||
		{ why "latest -> $(readlink "$M5/latest") after the prune"; bad=1; }
	errs 'No such file or directory' ls "$M5/$LIVE_NAME" || bad=1
	# the open file still reads every byte, from the deleted archive
	cmp - "$S5/big.bin" <&3 || { why "the file open across the prune read wrong"; bad=1; }
	exec 3<&-
	return $bad
}
check "live: an rm'd archive vanishes within 2 s; a file open in it reads right till closed" \
	t_prune
t_alive5() {
	[ -n "$PID5" ] && ! gone "$PID5" || why "the daemon is gone"
	[ "$(cat "$M5/latest/small.txt")" = live ] || why "the old snapshot does not read"
}
check "live: the daemon serves on after the prune and close" t_alive5

# holds DIR: the daemon of store 5 has a descriptor of a deleted file in DIR
holds_deleted() { ls -l "/proc/$PID5/fd" 2>/dev/null | grep -F -- "$1/" | grep -qF '(deleted)'; }
released() { ! holds_deleted "$ST5"; }
t_released() {
	[ -n "$PID5" ] || { why "no daemon"; return 1; }
	wait_for 2000 "$PID5" released ||
		why "2 s after the close the daemon still holds the pruned archive open"
}
check "live: once the file is closed the pruned archive's space is given back" t_released

# A shell inside a pruned snapshot looks names up after the prune: those answers
# must not keep the archive once the shell has gone.
t_released_cwd() {
	local file name spid bad=0
	file=$("$SNAPKEEP" take --store "$ST5" --name cwd -C "$S5" small.txt) ||
		{ why "snapkeep take failed"; return 1; }
	name=${file##*/cwd-}
	name=${name%.tar.zst}
	wait_for 2000 "${PID5:-0}" listed "$name" || { why "$name not listed"; return 1; }
	(cd "$M5/$name" && exec sleep 30) &
	spid=$!
	wait_for 2000 0 test -e "/proc/$spid/cwd/small.txt" || why "the shell is not inside"
	rm -- "$file"
	wait_for 2000 "${PID5:-0}" not_listed "$name" || { why "$name still listed"; bad=1; }
	ls -l "/proc/$spid/cwd/" >/dev/null 2>&1	# new lookups inside the pruned snapshot
	[ "$(cat "/proc/$spid/cwd/small.txt" 2>/dev/null)" = live ] ||
		{ why "small.txt does not read from inside the pruned snapshot"; bad=1; }
	kill "$spid"
	wait "$spid" 2>/dev/null
	wait_for 2000 "$PID5" released ||
		{ why "2 s after the shell left, the daemon still holds the pruned archive"; bad=1; }
	return $bad
}
check "live: names looked up inside a pruned snapshot do not keep it after the last user" \
	t_released_cwd

# The pruned snapshot's index was closed (max_open=1) before the prune, with a
# file open in it that had read nothing: it reopens from the deleted file.
t_prune_evicted() {
	local st=$W/store5b m=$W/m5b bad=0
	mkarchive "$st/e-20000101_000000.tar.zst" "$S5" big.bin small.txt &&
		mkarchive "$st/e-20000102_000000.tar.zst" "$S5" small.txt ||
		{ why "cannot build the archives"; return 1; }
	need_mount "$st" "$m" -o max_open=1 || return 1
	exec 3<"$m/20000101_000000/big.bin" || { why "cannot open big.bin"; unmount "$m"; return 1; }
	[ "$(cat "$m/20000102_000000/small.txt")" = live ] || why "the other snapshot does not read"
	rm -- "$st/e-20000101_000000.tar.zst"
	wait_for 2000 0 eval '! ls "$m" | grep -qx 20000101_000000' ||
		{ why "the pruned snapshot is still listed"; bad=1; }
	cmp - "$S5/big.bin" <&3 || { why "the open file read wrong after the prune"; bad=1; }
	exec 3<&-
	unmount "$m"
	return $bad
}
check "live: a file open in a pruned snapshot whose index was closed still reads right" \
	t_prune_evicted

# A listing read in several getdents calls while archives come and go, as a
# cron prune can make it under a long `ls`: the names that stay are each listed
# once, whether older archives vanish or appear before the reader's position.
LIST_PY='
import ctypes, os, subprocess, sys, time
nr = {"x86_64": 217, "aarch64": 61}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(1024)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
def chunk():
    n = libc.syscall(nr, fd, buf, len(buf))
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    out, at = [], 0
    while at < n:
        reclen = int.from_bytes(buf.raw[at + 16:at + 18], "little")
        out.append(buf.raw[at + 19:at + reclen].split(b"\0")[0].decode())
        at += reclen
    return out
names = chunk()
subprocess.run(sys.argv[2], shell=True, check=True)
time.sleep(3)
while True:
    more = chunk()
    if not more:
        break
    names += more
print("\n".join(names))
'
t_listing_stable() {
	local st=$W/store5l m=$W/m5l bad=0 out want
	mkdir -p "$st"
	for i in $(seq 0 299); do
		echo >"$st/$(printf 'l-202601%02d_%02d0000.tar.zst' $((1 + i / 24)) $((i % 24)))"
	done
	need_mount "$st" "$m" || return 1
	want=$(ls "$m" | grep -v latest)
	out=$(python3 -c "$LIST_PY" "$m" \
		"rm -- '$st/l-20260101_000000.tar.zst' '$st/l-20260101_010000.tar.zst'") ||
		{ why "listing while pruning failed"; bad=1; }
	[ "$(printf '%s\n' "$out" | grep -v '^\.\.\?$' | grep -v latest | sort)" = "$want" ] ||
		{ why "pruning the oldest mid-listing: $(diff <(printf '%s\n' "$want") \
			<(printf '%s\n' "$out" | grep -v '^\.\.\?$' | grep -v latest | sort) | head -5)"; bad=1; }
	want=$(ls "$m" | grep -v latest)
	out=$(python3 -c "$LIST_PY" "$m" \
		"echo >'$st/l-20251231_000000.tar.zst'; echo >'$st/l-20251231_010000.tar.zst'")
	[ "$(printf '%s\n' "$out" | grep -v '^\.\.\?$' | grep -v latest |
		grep -v '^20251231_0[01]0000$' | sort)" = "$want" ] ||
		{ why "adding older archives mid-listing: $(printf '%s\n' "$out" | sort | uniq -d | head -3)"; bad=1; }
	unmount "$m"
	return $bad
}
case $(uname -m) in
x86_64 | aarch64)
	check "live: a listing read while archives come and go lists each other name once" \
		t_listing_stable ;;
*) note "SKIP stable listings: the test knows no getdents64 number for $(uname -m)" ;;
esac

#####################################################################################
# 6. Foreign archives.
#####################################################################################
S6=$W/src6
ST6=$W/store6
mkdir -p "$S6/f6/docs/nested" "$ST6"
(
	cd "$S6" || exit 1
	seq 1 50000 >f6/docs/numbers.txt
	echo 'deep inside' >f6/docs/nested/deep.txt
	head -c 1500000 /dev/urandom >f6/blob.bin
	: >f6/empty.txt
	printf 'cluster: cc\nnodes: 3\n' >f6/config.yaml
	mkdir -p many/a many/b	# small files that cp -a reads out of archive order
	for i in $(seq 1 300); do
		d=many/a
		[ $((i % 2)) = 0 ] && d=many/b
		head -c $((i * 13 % 4000 + 100)) /dev/urandom >"$d/m$i"
	done
)
declare -A FOREIGN=(
	[orchestrator-cc-20260204_020000.tar.gz]=20260204_020000
	[xz-20260205_000000.tar.xz]=20260205_000000
	[bz-20260206_000000.tar.bz2]=20260206_000000
	[zip-20260207_000000.zip]=20260207_000000
	[cpio-20260208_000000.cpio]=20260208_000000
	[sz-20260210_000000.7z]=20260210_000000
	[iso-20260211_000000.iso]=20260211_000000
	[zst-20260212_000000.tar.zst]=20260212_000000
	[plain-20260213_000000.tar]=20260213_000000
)
(
	cd "$S6" || exit 1
	tar czf "$ST6/orchestrator-cc-20260204_020000.tar.gz" f6
	tar cJf "$ST6/xz-20260205_000000.tar.xz" f6
	tar cjf "$ST6/bz-20260206_000000.tar.bz2" f6
	bsdtar --format zip -cf "$ST6/zip-20260207_000000.zip" f6
	find f6 -print0 | bsdtar -cf "$ST6/cpio-20260208_000000.cpio" --format newc -n --null -T -
	bsdtar --format 7zip -cf "$ST6/sz-20260210_000000.7z" f6
	bsdtar --format iso9660 -cf "$ST6/iso-20260211_000000.iso" f6
	tar --zstd -cf "$ST6/zst-20260212_000000.tar.zst" f6	# plain zstd, no snapfs index
	tar cf "$ST6/plain-20260213_000000.tar" f6
	tar czf "$ST6/many-20260214_000000.tar.gz" many
	tar cJf "$ST6/many-20260215_000000.tar.xz" many
) || fatal "cannot build the archives"
if command -v lz4 >/dev/null; then
	(cd "$S6" && tar -I lz4 -cf "$ST6/lz4-20260209_000000.tar.lz4" f6) ||
		fatal "cannot build the archives"
	FOREIGN[lz4-20260209_000000.tar.lz4]=20260209_000000
else
	note "SKIP .tar.lz4: lz4 is missing and could not be installed"
fi
M6=$W/m6
need_mount "$ST6" "$M6" || fatal "cannot mount the foreign store"
mapfile -t F6 < <(cd "$S6" && find f6 -type f | sort)

t_foreign() {	# t_foreign FILE DIR
	local d=$M6/$2 f got
	[ -d "$d" ] || { why "$2 is not a directory"; return 1; }
	got=$(cd "$d" && find f6 -type f | sort | tr '\n' ' ')
	[ "$got" = "$(printf '%s ' "${F6[@]}")" ] || why "files: $got"
	for f in "${F6[@]}"; do
		cmp -- "$S6/$f" "$d/$f" || why "$f differs"
	done
	[ "$(stat -c %s "$d/f6/blob.bin")" = 1500000 ] ||
		why "blob.bin has size $(stat -c %s "$d/f6/blob.bin")"
}
for a in "${!FOREIGN[@]}"; do
	echo "${FOREIGN[$a]} $a"
done | sort >"$W/foreign.list"
while read -r ts a; do
	check "foreign: .${a#*_[0-9][0-9][0-9][0-9][0-9][0-9].} ($a) equals its source" \
		t_foreign "$a" "$ts"
done <"$W/foreign.list"

# A zip or a 7z stores names in UTF-8, which libarchive converts to the locale's
# character set: in the "C" locale a daemon starts in, "été" failed and vanished.
t_utf8_names() {
	local u=$W/u8 st=$W/store-u8 m=$W/m-u8 ts
	mkdir -p "$u/src" "$st" && printf 'e\n' >"$u/src/été" && printf 'j\n' >"$u/src/日本.txt" &&
		printf 'p\n' >"$u/src/plain" || { why "cannot build the source"; return 1; }
	(cd "$u/src" && LC_ALL=C.UTF-8 bsdtar --format zip -cf "$st/u-20260301_000000.zip" . &&
		LC_ALL=C.UTF-8 bsdtar --format 7zip -cf "$st/u-20260302_000000.7z" .) ||
		{ why "cannot build the archives"; return 1; }
	need_mount "$st" "$m" || return 1
	for ts in 20260301_000000 20260302_000000; do
		[ "$(cd "$m/$ts" && LC_ALL=C ls | tr '\n' ' ')" = "plain été 日本.txt " ] ||
			why "$ts lists: $(cd "$m/$ts" && ls | tr '\n' ' ')"
		diff -r "$u/src" "$m/$ts" >/dev/null || why "$ts differs from its source"
	done
	unmount "$m"
	"$SNAPKEEP" restore "$st/u-20260301_000000.zip" --to "$u/out" 2>"$u/err" ||
		why "restore of the zip: $(cat "$u/err")"
	diff -r "$u/src" "$u/out" >/dev/null || why "the zip's restore differs from its source"
}
check "foreign: UTF-8 names of a zip and a 7z show and restore" t_utf8_names

t_find_cat() {
	local bytes want
	want=$(cat "${F6[@]/#/$S6/}" | wc -c)
	bytes=$(cd "$M6/20260204_020000" && find . -type f -exec cat {} + | wc -c;
		exit "${PIPESTATUS[0]}") || why "find -exec cat failed"
	[ "$bytes" = "$want" ] || why "find -exec cat read $bytes bytes, want $want"
	# and over a tar.xz
	bytes=$(cd "$M6/20260205_000000" && find . -type f -exec cat {} + | wc -c)
	[ "$bytes" = "$want" ] || why ".tar.xz: $bytes bytes"
}
check "foreign: find -type f -exec cat over a tar.gz reads every byte" t_find_cat

# Names sorted, as cp -a reads them, are out of the order tar stored them in:
# the reads spill the members they pass (snapshot/foreign.h). Reversed first,
# while the files are not in the page cache yet, then cp -a.
t_out_of_order() {	# t_out_of_order DIR
	local d=$M6/$1 f
	(cd "$S6" && find many -type f | sort -r) | while read -r f; do
		cmp -s -- "$S6/$f" "$d/$f" || echo "$f"
	done >"$W/many.bad"
	[ -s "$W/many.bad" ] && why "read in reverse, these differ: $(head -3 "$W/many.bad" | tr '\n' ' ')"
	rm -rf "$W/many.cp"
	cp -a "$d/many" "$W/many.cp" || why "cp -a failed"
	diff -r "$S6/many" "$W/many.cp" >/dev/null || why "the cp -a copy differs"
	rm -rf "$W/many.cp"
}
check "foreign: 300 small files of a .tar.gz read in reverse, then by cp -a" \
	t_out_of_order 20260214_000000
check "foreign: 300 small files of a .tar.xz read in reverse, then by cp -a" \
	t_out_of_order 20260215_000000

# Past -o max_foreign, an idle foreign archive gives up its decoders and spill file
# (snapshot/foreign.h) when another is read: reading one file from each of
# three, a second apart, leaves one spill file open, and the other files read right
# after, each archive starting again.
t_max_foreign() {
	local m=$W/m6b sp=$W/spill6b pid ts f=${F6[0]} n
	mkdir -p "$sp"
	need_mount "$ST6" "$m" -o "max_foreign=1,spill_dir=$sp" || return 1
	pid=$(daemon_pid "$m")
	for ts in 20260204_020000 20260205_000000 20260206_000000; do
		cmp -- "$S6/$f" "$m/$ts/$f" || why "$ts/$f differs"
		n=$(find "/proc/$pid/fd" -lname "$sp/* (deleted)" | wc -l)
		[ "$n" = 1 ] || why "after reading $ts: $n spill files open, want 1"
		sleep 1.2
	done
	# the files not read yet (the kernel holds blob.bin), archives dropping state by turns
	for ts in 20260206_000000 20260205_000000 20260204_020000; do
		for f in "${F6[@]:1}"; do
			cmp -- "$S6/$f" "$m/$ts/$f" || why "$ts/$f differs after giving up state"
		done
		sleep 1.2
	done
	unmount "$m"
}
check "foreign: past max_foreign, idle archives give up their spill files" t_max_foreign

# libarchive is loaded on the first foreign archive (snapshot/arlib.h), so a store of
# native archives never maps it, and one that cannot be loaded costs only the
# foreign snapshots, with a message that says what to install.
ST6N=$W/store6n
mkdir -p "$ST6N"
mkarchive "$ST6N/native-20260301_000000.tar.zst" "$S6" f6 &&
	cp "$ST6/orchestrator-cc-20260204_020000.tar.gz" "$ST6N/" ||
	fatal "cannot build the archives"
t_native_no_libarchive() {
	local m=$W/m6n pid
	need_mount "$ST6N" "$m" || return 1
	pid=$(daemon_pid "$m")
	cmp -- "$S6/f6/blob.bin" "$m/20260301_000000/f6/blob.bin" || why "native blob.bin differs"
	! grep -q libarchive "/proc/$pid/maps" || why "libarchive mapped before any foreign archive"
	cmp -- "$S6/f6/blob.bin" "$m/20260204_020000/f6/blob.bin" || why "foreign blob.bin differs"
	grep -q libarchive "/proc/$pid/maps" || why "libarchive not mapped after a foreign read"
	unmount "$m"
}
check "foreign: libarchive is loaded only when a foreign archive is first read" \
	t_native_no_libarchive
LIBARCHIVE=$(readlink -f "$(ldconfig -p | awk '/libarchive\.so\.13 /{ print $NF; exit }')")
t_no_libarchive() {
	local m=$W/m6x log=$W/daemon6x.log
	mkdir -p "$m"
	MOUNTS+=("$m")
	# libarchive made unloadable for this daemon only: /dev/null bound over it
	unshare --mount --propagation private bash -c '
		mount --bind /dev/null "$1" || exit 1
		"$2" -f "$3" "$4" 2>"$5" & d=$!
		for i in $(seq 100); do mountpoint -q "$4" && break; sleep 0.05; done
		cmp -- "$6/f6/blob.bin" "$4/20260301_000000/f6/blob.bin" || echo "native differs"
		cat "$4/20260204_020000/f6/config.yaml" 2>&1 | grep -q "Input/output error" ||
			echo "the foreign archive did not give EIO"
		fusermount3 -u "$4"
		wait "$d"' _ "$LIBARCHIVE" "$SNAPFS" "$ST6N" "$m" "$log" "$S6" >"$W/no-la.out" 2>&1 ||
		why "could not run it: $(cat "$W/no-la.out")"
	[ ! -s "$W/no-la.out" ] || why "$(cat "$W/no-la.out")"
	grep -q "cannot load libarchive.so.13.*apt-get install libarchive13" "$log" ||
		why "no advice in the log: $(cat "$log")"
}
if [ "$ROOT" = 1 ] && command -v unshare >/dev/null && [ -f "$LIBARCHIVE" ]; then
	check "foreign: without libarchive, native archives read, foreign ones give EIO and advice" \
		t_no_libarchive
else
	note "SKIP the check without libarchive: needs root, unshare and libarchive.so.13"
fi

#####################################################################################
# 7. Damaged archives: faults stay local.
#####################################################################################
ST7=$W/store7
S7=$W/src7
mkdir -p "$S7/d"
for f in a b c; do head -c $((3 << 20)) /dev/urandom >"$S7/d/$f.bin"; done
echo 'other snapshot' >"$S7/other.txt"
mkarchive "$ST7/good-20260101_000000.tar.zst" "$S7" other.txt &&
	mkarchive "$ST7/dmg-20260102_000000.tar.zst" "$S7" d &&
	mkarchive "$ST7/trunc-20260103_000000.tar.zst" "$S7" d other.txt ||
	fatal "cannot build the archives"
DMG=$ST7/dmg-20260102_000000.tar.zst
# the middle of the archive lies in b.bin's frames (a, b, c: 3 MiB each, incompressible)
flip "$DMG" $(($(stat -c %s "$DMG") / 2))
TRUNC=$ST7/trunc-20260103_000000.tar.zst
truncate -s $(($(stat -c %s "$TRUNC") / 2)) "$TRUNC"
M7=$W/m7
LOG7=$W/daemon7.log
mkdir -p "$M7"
MOUNTS+=("$M7")
"$SNAPFS" -f "$ST7" "$M7" 2>"$LOG7" &
PID7=$!
BGPIDS+=("$PID7")
is_snapfs() { [ "$(mount_type "$1")" = fuse.snapfs ]; }
wait_for 5000 "$PID7" is_snapfs "$M7" || fatal "snapfs -f did not mount $M7: $(cat "$LOG7")"

t_damaged() {
	errs 'Input/output error' cat "$M7/20260102_000000/d/b.bin"
	errs 'Input/output error' cat "$M7/20260102_000000/d/b.bin"
	cmp "$S7/d/a.bin" "$M7/20260102_000000/d/a.bin" || why "a.bin, before the damage, differs"
	cmp "$S7/d/c.bin" "$M7/20260102_000000/d/c.bin" || why "c.bin, after the damage, differs"
	[ "$(cat "$M7/20260101_000000/other.txt")" = 'other snapshot' ] || why "the good snapshot"
}
check "damaged: a flipped byte gives EIO in its file; the archive's other files read right" \
	t_damaged

t_damage_alive() {
	gone "$PID7" && { why "the daemon died"; return 1; }
	local want="20260101_000000 20260102_000000 20260103_000000 latest "
	[ "$(ls "$M7" | tr '\n' ' ')" = "$want" ] ||
		why "ls: $(ls "$M7" 2>&1 | tr '\n' ' ')"
}
check "damaged: the daemon is alive and the mount answers ls" t_damage_alive

t_damage_log() {
	local lines
	lines=$(grep -F 'dmg-20260102_000000.tar.zst' "$LOG7")
	[ "$(grep -c . <<<"$lines")" = 1 ] ||
		why "logged $(grep -c . <<<"$lines") times: $(cat "$LOG7")"
	grep -qE '(byte|offset) [0-9]+' <<<"$lines" || why "no offset in '$lines'"
}
check "damaged: the daemon logs the archive and the offset once" t_damage_log

# Detached, the daemon logs to syslog: in a mount namespace of its own, /dev is a
# directory of this test's with the devices snapfs needs and, as /dev/log, a
# socket the test reads.
SYSLOG_SINK='
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
'
t_syslog() {
	local dev=$W/dev9s log=$W/syslog9s.txt m=$W/m9s n
	mkdir -p "$dev" "$m" && : >"$log" || { why "cannot make $dev"; return 1; }
	for n in null zero urandom fuse; do
		: >"$dev/$n" || { why "cannot make $dev/$n"; return 1; }
	done
	MOUNTS+=("$m")
	unshare --mount --propagation private bash -c "
		set -u
		$(declare -p SNAPFS ST7 W dev log m SYSLOG_SINK)
		$(declare -f why mounted gone wait_for now_us ms_since)
		WHY=0
		for n in null zero urandom fuse; do
			mount --bind /dev/\$n \$dev/\$n || { why \"cannot bind /dev/\$n\"; exit 1; }
		done
		python3 -c \"\$SYSLOG_SINK\" \$dev/log \$log &
		sink=\$!
		trap 'mounted \$m && umount -l \$m; kill \$sink' EXIT
		wait_for 5000 \$sink test -S \$dev/log || { why 'the syslog sink did not start'; exit 1; }
		mount --rbind \$dev /dev || { why 'cannot bind-mount on /dev'; exit 1; }
		timeout -k 5 30 \$SNAPFS \$ST7 \$m || { why 'snapfs did not mount'; exit 1; }
		cat \$m/20260102_000000/d/b.bin >/dev/null 2>&1 && why 'the damaged file read'
		wait_for 5000 0 grep -q dmg-20260102_000000.tar.zst \$log ||
			why \"syslog got no line naming the archive: \$(head -c 500 \$log)\"
		grep -qE 'snapfs\\[[0-9]+\\]: .*(byte|offset) [0-9]+' \$log ||
			why \"the line lacks the ident, pid or offset: \$(head -c 500 \$log)\"
		umount \$m || why 'umount failed'
		[ \$WHY = 0 ]"
}
if [ "$ROOT" = 1 ] && command -v unshare >/dev/null; then
	check "damaged: detached, the daemon logs to syslog (/dev/log)" t_syslog
else
	note "SKIP syslog: needs root and unshare for a /dev/log of the test's own"
fi

# cut in the middle of d/b.bin: a.bin before it reads right, b.bin gives EIO,
# c.bin and other.txt after it are not there
t_truncated() {
	local d=$M7/20260103_000000 n
	[ -d "$d" ] || why "20260103_000000 is not listed as a directory"
	cmp "$S7/d/a.bin" "$d/d/a.bin" || why "the file before the cut does not read right"
	errs 'Input/output error' cat "$d/d/b.bin"
	errs 'Input/output error' cat "$d/d/b.bin"
	[ ! -e "$d/d/c.bin" ] && [ ! -e "$d/other.txt" ] || why "files after the cut are listed"
	[ "$(cat "$M7/20260101_000000/other.txt")" = 'other snapshot' ] || why "the good snapshot"
	cmp "$S7/d/a.bin" "$M7/20260102_000000/d/a.bin" || why "the damaged snapshot's good file"
	gone "$PID7" && why "the daemon died"
	n=$(grep -cF 'trunc-20260103_000000.tar.zst' "$LOG7")
	[ "$n" = 1 ] || why "the truncated archive was logged $n times"
}
check "damaged: a truncated archive shows the files before the cut, EIO in the cut one, logged once" \
	t_truncated

# A hard link whose file was deleted from the tar (tar --delete): tar -x and
# bsdtar -x make nothing for it, so it does not show as an empty file.
t_dangling_link() {
	local d=$M7/20260104_000000 src=$W/src7l
	mkdir -p "$src/s" && echo kept >"$src/s/keep" && echo gone >"$src/s/gone" &&
		ln "$src/s/gone" "$src/s/link" &&
		tar cf "$W/links.tar" -C "$src" s/keep s/gone s/link &&
		tar --delete -f "$W/links.tar" s/gone &&
		mv "$W/links.tar" "$ST7/links-20260104_000000.tar" || { why "cannot build it"; return 1; }
	wait_for 2000 "$PID7" test -d "$d" || { why "the archive did not appear"; return 1; }
	[ "$(cat "$d/s/keep")" = kept ] || why "s/keep does not read right"
	[ ! -e "$d/s/link" ] && [ ! -e "$d/s/gone" ] || why "listed: $(ls "$d/s" | tr '\n' ' ')"
	grep -F 'links-20260104_000000.tar' "$LOG7" | grep -qF "1 hard link is not shown" ||
		why "not logged: $(tr '\n' '|' <"$LOG7")"
}
check "foreign: a hard link to a file the archive lacks is left out, and logged" t_dangling_link
note "the daemon's log: $(tr '\n' '|' <"$LOG7")"
t_fg_unmount() {
	fusermount3 -u "$M7" || why "fusermount3 -u failed"
	wait_for 5000 0 gone "$PID7" || why "snapfs -f still runs after fusermount3 -u"
	wait "$PID7" || why "snapfs -f exited with $?"
}
check "damaged: snapfs -f exits 0 when unmounted" t_fg_unmount

#####################################################################################
# 8. Permissions under allow_other.
#####################################################################################
t_perms() {
	local S8=$W/src8 M8=$W/m8 out
	mkdir -p "$S8/d"
	echo 'top secret' >"$S8/d/secret"
	echo 'for everyone' >"$S8/d/public"
	chown -R 0:0 "$S8"
	chmod 600 "$S8/d/secret"
	chmod 644 "$S8/d/public"
	local trusted=1 acl=1
	setfattr -n user.shown -v 1 "$S8/d/public" && setfattr -n trusted.hidden -v 2 "$S8/d/public" ||
		trusted=0
	# an ACL lets nobody read, and not the owning group: user::rw- user:nobody:r--
	# group::--- mask::r-- other::--- (mode 0640: the group bits are the mask)
	echo 'by acl' >"$S8/d/acl"
	python3 -c 'import os, struct, sys
N = 2**32 - 1
e = ((1, 6, N), (2, 4, int(sys.argv[2])), (4, 0, N), (0x10, 4, N), (0x20, 0, N))
os.setxattr(sys.argv[1], "system.posix_acl_access",
	    struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *x) for x in e))' \
		"$S8/d/acl" "$(id -u nobody)" || acl=0
	mkarchive "$W/store8/p-20260101_000000.tar.zst" "$S8" d || return 1
	need_mount "$W/store8" "$M8" -o allow_other || return 1
	local as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	out=$("${as[@]}" cat "$M8/latest/d/public" 2>&1)
	[ "$out" = 'for everyone' ] || why "nobody cannot read the 0644 file: $out"
	errs 'Permission denied' "${as[@]}" cat "$M8/latest/d/secret"
	[ "$(cat "$M8/latest/d/secret")" = 'top secret' ] || why "root cannot read the 0600 file"
	# trusted.* names, as on a local file system, are listed to root alone
	if [ $trusted = 1 ]; then
		out=$(getfattr --absolute-names -d -m- "$M8/latest/d/public" 2>&1)
		[[ $out == *trusted.hidden* && $out == *user.shown* ]] || why "root's list: $out"
		out=$("${as[@]}" getfattr --absolute-names -d -m- "$M8/latest/d/public" 2>&1)
		[[ $out != *trusted.* && $out == *user.shown* ]] || why "nobody's list: $out"
	else
		note "SKIP trusted.* names: the test's file system takes no trusted xattr"
	fi
	# the kernel enforces the stored ACL, not the mode's group bits alone
	if [ $acl = 1 ]; then
		[ "$(stat -c %a "$M8/latest/d/acl")" = 640 ] ||
			why "the ACL file shows mode $(stat -c %a "$M8/latest/d/acl"), want 640"
		out=$("${as[@]}" cat "$M8/latest/d/acl" 2>&1)
		[ "$out" = 'by acl' ] || why "nobody, granted by the ACL, cannot read: $out"
		errs 'Permission denied' setpriv --reuid=4242 --regid=0 --clear-groups \
			cat "$M8/latest/d/acl"
	else
		note "SKIP POSIX ACL enforcement: the test's file system takes no ACL"
	fi
	unmount "$M8"
}
# A take of "." stores the directory itself: a 0700 one keeps nobody out of the
# snapshot, at once (the kernel then holds the attributes shown before the index
# opened) and after; its own xattrs and mode show once it was entered.
t_root_perms() {
	local S=$W/src8r M=$W/m8r as out
	mkdir -p "$S"
	echo 'for everyone, but in a 0700 directory' >"$S/conf.yaml"
	chmod 644 "$S/conf.yaml"
	chmod 700 "$S"
	setfattr -n user.rootx -v rv "$S" 2>/dev/null || true
	mkarchive "$W/store8r/r-20260101_000000.tar.zst" "$S" . || return 1
	mkarchive "$W/store8r/r-20260102_000000.tar.zst" "$S" . || return 1
	need_mount "$W/store8r" "$M" -o allow_other || return 1
	as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	ls -l "$M" >/dev/null	# the kernel holds the snapshot's directory as shown from its file
	# root enters first: the names it looks up are cached, nobody must still be kept out
	cat "$M/20260102_000000/conf.yaml" >/dev/null || why "root cannot read it"
	errs 'Permission denied' "${as[@]}" cat "$M/20260102_000000/conf.yaml"
	"${as[@]}" ls -l "$M" >/dev/null || why "nobody cannot ls -l the store"
	# nobody enters first: its own lookups and listings meet the stored mode
	errs 'Permission denied' "${as[@]}" cat "$M/20260101_000000/conf.yaml"
	errs 'Permission denied' "${as[@]}" ls "$M/20260101_000000/"
	wait_for 3000 0 eval '[ "$(stat -c %a "$M/latest/")" = 700 ]' ||
		why "the snapshot's directory shows mode $(stat -c %a "$M/latest/"), want 700 as stored"
	errs 'Permission denied' "${as[@]}" cat "$M/latest/conf.yaml"
	out=$(cat "$M/latest/conf.yaml")
	[ "$out" = 'for everyone, but in a 0700 directory' ] || why "root cannot read it: $out"
	if getfattr -n user.rootx "$S" >/dev/null 2>&1; then
		out=$(getfattr --absolute-names --only-values -n user.rootx "$M/latest/" 2>&1)
		[ "$out" = rv ] || why "the snapshot's directory lacks its stored xattr: $out"
	else
		note "SKIP the snapshot directory's xattr: $W takes no user xattrs"
	fi
	[ "$(stat -c %Y "$M/latest/")" = "$(stat -c %Y "$S")" ] ||
		why "the snapshot's directory has mtime $(stat -c %Y "$M/latest/"), want the stored one"
	unmount "$M"
	getfattr -n user.rootx "$S" >/dev/null 2>&1 || return 0
	# on a fresh mount, before anyone entered: a stored xattr asked for by name
	# shows, and reading a user.* one needs the stored mode's read permission (the
	# list shows once entered: ls -l of the store lists every entry's, fast start)
	need_mount "$W/store8r" "$M" -o allow_other || return 1
	errs 'Permission denied' "${as[@]}" getfattr -n user.rootx "$M/20260101_000000/"
	out=$(getfattr --absolute-names --only-values -n user.rootx "$M/20260101_000000/" 2>&1)
	[ "$out" = rv ] || why "a snapshot not yet entered lacks its stored xattr: $out"
	unmount "$M"
}
# Capabilities, not uid 0, pass the stored mode, as in the kernel's own check:
# root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH stays out of another
# user's 0700 directory (nobody's), another user with CAP_DAC_READ_SEARCH gets in
# (a backup agent).
t_root_caps() {
	local S=$W/src8c M=$W/m8c nocap rs out
	mkdir -p "$S"
	echo 'owned by nobody' >"$S/conf.yaml"
	chmod 644 "$S/conf.yaml"
	chmod 700 "$S"
	chown nobody "$S" || { why "cannot chown $S"; return 1; }
	mkarchive "$W/store8c/c-20260101_000000.tar.zst" "$S" . &&
		mkarchive "$W/store8c/c-20260102_000000.tar.zst" "$S" . &&
		mkarchive "$W/store8c/c-20260103_000000.tar.zst" "$S" . || return 1
	need_mount "$W/store8c" "$M" -o allow_other || return 1
	nocap=(setpriv --bounding-set=-dac_override,-dac_read_search)
	rs=(setpriv --reuid=4242 --regid=4242 --clear-groups
		--inh-caps=+dac_read_search --ambient-caps=+dac_read_search)
	"${nocap[@]}" grep -q '^CapEff:.*[^0]' /proc/self/status ||
		why "setpriv left no capability at all"
	errs 'Permission denied' "${nocap[@]}" cat "$M/20260101_000000/conf.yaml"
	errs 'Permission denied' "${nocap[@]}" ls "$M/20260101_000000/"
	out=$("${rs[@]}" cat "$M/20260102_000000/conf.yaml" 2>&1)
	[ "$out" = 'owned by nobody' ] || why "uid 4242 with CAP_DAC_READ_SEARCH: $out"
	"${rs[@]}" ls "$M/20260102_000000/" >/dev/null || why "uid 4242 with CAP_DAC_READ_SEARCH: ls"
	# capabilities in a user namespace of the caller's own count for nothing here
	# (a snapshot not entered yet: the kernel's own check then comes second)
	if setpriv --reuid=4242 --regid=4242 --clear-groups unshare -r true 2>/dev/null; then
		errs 'Permission denied' setpriv --reuid=4242 --regid=4242 --clear-groups \
			unshare -r cat "$M/20260103_000000/conf.yaml"
	else
		note "SKIP capabilities in a user namespace: unshare -r fails for uid 4242"
	fi
	[ "$(cat "$M/20260101_000000/conf.yaml")" = 'owned by nobody' ] || why "root cannot read it"
	unmount "$M"
}
if [ "$ROOT" = 1 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	check "permissions: under allow_other nobody reads a 0644 file, not a 0600 one, nor trusted.*; ACLs hold" \
		t_perms
	check "permissions: a snapshot of a 0700 directory (take of .) keeps nobody out" \
		t_root_perms
	check "permissions: capabilities pass a snapshot's stored mode, not uid 0 alone" t_root_caps
else
	note "SKIP permissions: needs root, user nobody and setpriv"
fi

#####################################################################################
# 9. As a program.
#####################################################################################
M9=$W/m9
mkdir -p "$M9"
t_ready() {
	local k
	for k in 1 2 3 4 5; do
		# a shell builtin, no fork: it runs the moment snapfs has returned
		mount_fs "$ST2" "$M9" && [ -L "$M9/latest" ] || why "no latest right after mount $k"
		stat "$M9/latest" >/dev/null || why "stat latest right after mount $k failed"
		[ "$(cat "$M9/latest/which")" = B ] || why "latest/which after mount $k"
		unmount "$M9" || return 1
	done
}
check "program: snapfs returns once the mount is ready (stat latest at once, 5 times)" t_ready

t_missing_store() {
	local out rc
	out=$("$SNAPFS" "$W/no-such-store" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "exit $rc, want 1"
	[[ $out == *"$W/no-such-store"* ]] || why "message does not name the store: $out"
	! mounted "$M9" || why "mounted anyway"
	: >"$W/a-file"
	out=$("$SNAPFS" "$W/a-file" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "a file as the store: exit $rc, want 1"
	[[ $out == *"$W/a-file"*"Not a directory"* ]] || why "a file as the store: '$out'"
	! mounted "$M9" || why "mounted on a file"
}
check "program: a missing store, or a file: exit 1, message names it and says why" t_missing_store

t_help_version() {
	local out
	out=$("$SNAPFS" -h 2>&1) || why "-h exited $?"
	[[ $out == usage:\ snapfs* ]] || why "-h: $out"
	out=$("$SNAPFS" -V 2>&1) || why "-V exited $?"
	[[ $out == snapfs\ [0-9]* ]] || why "-V: $out"
	out=$("$SNAPFS" --version 2>&1) || why "--version exited $?"
}
check "program: -h and -V (--version) print usage and version, exit 0" t_help_version

t_bad_option() {
	local out rc
	out=$("$SNAPFS" -o nosuchopt "$ST2" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "exit $rc, want 1"
	# libfuse writes the message in pieces: one line all the same
	[[ $out == *"unknown option(s): \`-o nosuchopt'"* ]] || why "message: $out"
	! mounted "$M9" || why "mounted anyway"
}
check "program: an unknown -o option: exit 1, named in one line" t_bad_option

t_missing_mnt() {
	local out rc
	out=$("$SNAPFS" "$ST2" "$W/no-such-mnt" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "exit $rc, want 1"
	[[ $out == *"$W/no-such-mnt"* && $out =~ (create|mkdir) ]] ||
		why "message does not say to create it: $out"
}
check "program: a missing mount point: exit 1, message says to create it" t_missing_mnt

t_twice() {
	local out rc
	mount_fs "$ST2" "$M9" || { why "first mount failed"; return 1; }
	out=$("$SNAPFS" "$ST2" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "second mount: exit $rc, want 1"
	[[ $out == *'already a snapfs mount'* ]] || why "message: $out"
	[ "$(awk -v m="$M9" '$5 == m' /proc/self/mountinfo | wc -l)" = 1 ] || why "stacked mounts"
	[ "$(cat "$M9/latest/which")" = B ] || why "the first mount stopped working"
	unmount "$M9"
}
check "program: mounting twice: exit 1, 'already a snapfs mount'" t_twice

BIN9=$W/bin
mkdir -p "$BIN9"
ln -s "$SNAPFS" "$BIN9/snapfs"
# mount(8) removes PATH from the environment before it runs a helper (util-linux
# sanitize_env), so mount.fuse3's `/bin/sh -c 'snapfs STORE MNT -o ...'` finds
# snapfs only in sh's default PATH, which begins with /usr/local/sbin: an
# installed snapfs is found there, a directory put first on PATH is not. in_ns
# runs a check in a private mount namespace in which BIN9 is bind-mounted on
# /usr/local/sbin; nothing outside sees that, or the FUSE mounts made in there.
in_ns() {
	unshare --mount --propagation private bash -c "
		set -u
		export LC_ALL=C
		WHY=0
		$(declare -p SNAPFS ST2 M9 W BIN9)
		$(declare -f why mounted mount_opts mount_type mount_super daemon_pid gone \
			wait_for now_us ms_since is_snapfs "$1")
		trap 'mounted \"\$M9\" && umount -l \"\$M9\"' EXIT
		mount --bind \"\$BIN9\" /usr/local/sbin ||
			{ why 'cannot bind-mount on /usr/local/sbin'; exit 1; }
		$1 && [ \$WHY = 0 ]"
}
t_mount_t() {
	local out pid
	out=$(PATH="$BIN9:$PATH" mount -t fuse.snapfs "$ST2" "$M9" -o allow_other 2>&1) ||
		{ why "mount -t failed: $out"; return 1; }
	is_snapfs "$M9" || why "type $(mount_type "$M9")"
	[ "$(cat "$M9/latest/which")" = B ] || why "cannot read through the mount"
	[[ ,$(mount_opts "$M9"), == *,nosuid,* && ,$(mount_opts "$M9"), == *,nodev,* ]] ||
		why "options $(mount_opts "$M9"): mount.fuse3 asked for dev,suid, snapfs must not"
	[[ ,$(mount_super "$M9"), == *,allow_other,* ]] || why "super options $(mount_super "$M9")"
	pid=$(daemon_pid "$M9")
	out=$(umount "$M9" 2>&1) || why "umount failed: $out"
	! mounted "$M9" || why "still mounted after umount"
	[ -z "$pid" ] || wait_for 5000 0 gone "$pid" || why "daemon $pid runs on after umount"
}
t_fstab() {
	local out opts pid
	# SPEC's line: nosuid and nodev come from snapfs itself
	printf '# snapfs test\n%s  %s  fuse.snapfs  ro,allow_other,nofail  0 0\n' \
		"$ST2" "$M9" >"$W/fstab"
	out=$(PATH="$BIN9:$PATH" mount -T "$W/fstab" "$M9" 2>&1) ||
		{ why "mount -T failed: $out"; return 1; }
	is_snapfs "$M9" || why "type $(mount_type "$M9")"
	opts=,$(mount_opts "$M9"),
	[[ $opts == *,ro,* && $opts == *,nosuid,* && $opts == *,nodev,* ]] || why "options $opts"
	[ "$(cat "$M9/hourly/latest/which")" = H2 ] || why "cannot read through the mount"
	pid=$(daemon_pid "$M9")
	out=$(umount "$M9" 2>&1) || why "umount failed: $out"
	! mounted "$M9" || why "still mounted after umount"
	[ -z "$pid" ] || wait_for 5000 0 gone "$pid" || why "daemon $pid runs on after umount"
}
if [ "$ROOT" != 1 ]; then
	note "SKIP mount -t and fstab: need root"
elif ! command -v mount.fuse3 >/dev/null && [ ! -x /sbin/mount.fuse3 ]; then
	note "SKIP mount -t and fstab: mount.fuse3 is missing"
elif ! command -v unshare >/dev/null || [ ! -d /usr/local/sbin ]; then
	note "SKIP mount -t and fstab: need unshare and /usr/local/sbin"
else
	check "program: mount -t fuse.snapfs -o allow_other (mount.fuse3), then umount" \
		in_ns t_mount_t
	check "program: SPEC's fstab line (ro,allow_other,nofail) via mount -T: ro, nosuid, nodev" \
		in_ns t_fstab
fi

t_sigterm() {
	local pid
	mount_fs "$ST2" "$M9" || { why "mount failed"; return 1; }
	pid=$(daemon_pid "$M9") || { why "no daemon for $M9"; return 1; }
	kill -TERM "$pid"
	wait_for 5000 0 gone "$pid" || why "the daemon runs on after SIGTERM"
	wait_for 5000 0 eval '! mounted "$M9"' || why "still in /proc/self/mountinfo after SIGTERM"
}
check "program: SIGTERM unmounts and the daemon exits, no mount left" t_sigterm

t_sigterm_relative() {	# the mount point given relative to the working directory
	local pid
	mkdir -p "$W/m9rel"
	MOUNTS+=("$W/m9rel")
	(cd "$W" && timeout -k 5 30 "$SNAPFS" "$ST2" m9rel) || { why "mount failed"; return 1; }
	pid=$(daemon_pid m9rel) || { why "no daemon for m9rel"; return 1; }
	kill -TERM "$pid"
	wait_for 5000 0 gone "$pid" || why "the daemon runs on after SIGTERM"
	wait_for 5000 0 eval '! mounted "$W/m9rel"' || why "a dead mount is left on m9rel"
}
check "program: SIGTERM unmounts a mount point given as a relative path" t_sigterm_relative

t_dead_mount() {	# the daemon killed: mounting there again says how to clear it
	local pid out rc
	mount_fs "$ST2" "$M9" || { why "mount failed"; return 1; }
	pid=$(daemon_pid "$M9") || { why "no daemon for $M9"; return 1; }
	kill -KILL "$pid"
	wait_for 5000 0 gone "$pid" || why "the daemon survived SIGKILL"
	out=$("$SNAPFS" "$ST2" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "mount on the dead mount: exit $rc, want 1"
	[[ $out == *"fusermount3 -u '$M9'"* ]] || why "message does not say how to clear it: $out"
	fusermount3 -u "$M9" 2>/dev/null || umount -l "$M9"
	! mounted "$M9" || why "still mounted"
}
check "program: a mount whose daemon was killed: exit 1, message says fusermount3 -u" t_dead_mount

t_option_range() {
	local out rc
	out=$("$SNAPFS" -o cache_size=17592186044416 "$ST2" "$M9" 2>&1)
	rc=$?
	[ $rc = 1 ] || why "cache_size=2^44: exit $rc, want 1"
	[[ $out == *"cache_size"*"from 1 to"* ]] || why "message: $out"
	! mounted "$M9" || { why "it mounted"; unmount "$M9"; }
}
check "program: a cache_size that would wrap is refused, not taken as 0" t_option_range

# -d: every request logged; and what the kernel keeps: a file read twice, and
# stat'ed, costs one READ and no more LOOKUP or GETATTR the second time
# (long entry and attribute timeouts, kept pages).
t_debug_cache() {
	local log=$W/debug9.log pid f=$M9/20260101_000000/which count1 count2
	MOUNTS+=("$M9")
	"$SNAPFS" -d "$ST2" "$M9" 2>"$log" &
	pid=$!
	wait_for 5000 "$pid" is_snapfs "$M9" || { why "snapfs -d did not mount"; return 1; }
	cat "$f" >/dev/null && stat "$f" >/dev/null
	count1=$(grep -cE 'opcode: (READ|LOOKUP|GETATTR|OPEN) ' "$log")
	[ "$(grep -c 'opcode: READ ' "$log")" -ge 1 ] || why "-d logged no READ: $(head -c 300 "$log")"
	cat "$f" >/dev/null && stat "$f" >/dev/null && cat "$f" >/dev/null
	count2=$(grep -cE 'opcode: (READ|LOOKUP|GETATTR|OPEN) ' "$log")
	[ "$count1" = "$count2" ] ||
		why "reading again asked the daemon $((count2 - count1)) more times"
	fusermount3 -u "$M9" || why "fusermount3 -u failed"
	wait_for 5000 0 gone "$pid" || why "snapfs -d runs on after the unmount"
}
check "program: -d logs requests; a file read again is served by the kernel alone" t_debug_cache

# Reads are large: the kernel asks for 1 MiB at a time (libfuse's max_pages, and
# the read-ahead snapfs sets on the mount's bdi as root; -o read_ahead=KIB sets
# another). Without root the bdi keeps the kernel's 128 KiB.
ST9B=$W/store9b
# max_read_reply LOG: the largest READ reply -d logged (outsize: 16 bytes of header + data)
max_read_reply() {
	awk '/opcode: READ / { sub(/,$/, "", $3); r[$3] = 1 }
	     /success, outsize:/ { u = $3; sub(/,$/, "", u); if (u in r && $NF + 0 > m) m = $NF + 0 }
	     END { print m + 0 }' "$1"
}
t_large_reads() {
	local log=$W/debug9b.log pid f big ra want
	mkarchive "$ST9B/r-20260101_000000.tar.zst" "$S5" big.bin || { why "cannot build"; return 1; }
	MOUNTS+=("$M9")
	"$SNAPFS" -d "$ST9B" "$M9" 2>"$log" &
	pid=$!
	wait_for 5000 "$pid" is_snapfs "$M9" || { why "snapfs -d did not mount"; return 1; }
	cmp "$M9/latest/big.bin" "$S5/big.bin" || why "big.bin reads wrong"
	big=$(max_read_reply "$log")
	ra=$(cat "/sys/class/bdi/$(mountpoint -d "$M9")/read_ahead_kb" 2>/dev/null)
	if [ "$ROOT" = 1 ]; then
		[ "$ra" = 1024 ] || why "the mount's read-ahead is ${ra:-unknown} KiB, want 1024"
		want=$(((1 << 20) + 16))
	else
		note "SKIP 1 MiB READs and -o read_ahead: not root, the read-ahead stays ${ra:-unknown} KiB"
		want=$(((128 << 10) + 16))
	fi
	[ "$big" -ge "$want" ] || why "the largest READ reply was $big bytes, want $want"
	fusermount3 -u "$M9" || why "fusermount3 -u failed"
	wait_for 5000 0 gone "$pid" || why "snapfs -d runs on after the unmount"
	[ "$ROOT" = 1 ] || return 0
	mount_fs "$ST9B" "$M9" -o read_ahead=256 || { why "mount -o read_ahead=256 failed"; return 1; }
	stat "$M9/latest/big.bin" >/dev/null
	f=/sys/class/bdi/$(mountpoint -d "$M9")/read_ahead_kb
	wait_for 2000 0 eval '[ "$(cat "$f")" = 256 ]' || why "-o read_ahead=256 gave $(cat "$f") KiB"
	unmount "$M9"
}
check "program: big files are read 1 MiB at a time (READ replies, the mount's read-ahead)" \
	t_large_reads

# A multithreaded session with no lock held across slow work: a store on a slow
# disk (here, inside a second snapfs mount whose daemon is stopped) blocks the
# thread that opens an index there, and the other threads answer meanwhile.
S9C=$W/src9c
ST9C=$W/store9c
M9I=$W/m9inner
M9O=$W/m9outer
# blocked_on_fuse PID [N]: N threads of PID (1 if not given) wait for a FUSE reply,
# or for a page a FUSE read fills
blocked_on_fuse() {
	[ "$(grep -lEs '^(request_wait_answer|folio_wait)' /proc/"$1"/task/*/wchan | wc -l)" \
		-ge "${2:-1}" ]
}
t_threads() {
	local ipid opid cpid wpid out bad=0
	# a's archive is no small file: reading b's does not bring it into the page cache
	mkdir -p "$S9C/arch" "$S9C/b" && echo b1 >"$S9C/b/which" && echo b2 >"$S9C/b/which2" ||
		{ why "cannot build the source"; return 1; }
	mkarchive "$S9C/arch/a-20260101_000000.tar.zst" "$S5" small.txt big.bin &&
		mkarchive "$S9C/arch/b-20260102_000000.tar.zst" "$S9C/b" which which2 &&
		"$SNAPKEEP" take --store "$ST9C" --name nest -C "$S9C" arch >/dev/null ||
		{ why "cannot build the archives"; return 1; }
	need_mount "$ST9C" "$M9I" || return 1
	need_mount "$M9I/latest/arch" "$M9O" || { unmount "$M9I"; return 1; }
	ipid=$(daemon_pid "$M9I") && opid=$(daemon_pid "$M9O") || why "no daemon pids"
	[ "$(cat "$M9O/20260102_000000/which")" = b1 ] || why "the outer mount does not read"
	kill -STOP "$ipid"
	cat "$M9O/20260101_000000/small.txt" >"$W/t9c.out" 2>&1 &
	cpid=$!
	# cat waits for the outer daemon; two of its threads for the stopped one: cat's
	# and the rescan's (every second), which must hold no lock the others need
	if ! wait_for 5000 0 eval 'blocked_on_fuse "$cpid" && blocked_on_fuse "$opid" 2'; then
		why "the read and the rescan were not seen waiting for the stopped store"
		bad=1
	else
		# a request the daemon took cannot be killed: after 5 s the store comes back
		(sleep 5 && touch "$W/t9c.resumed" && kill -CONT "$ipid") &
		wpid=$!
		out=$(stat -c %s "$M9O/20260102_000000/which2" 2>&1)
		[ "$out" = 3 ] || { why "which2: size '$out', want 3"; bad=1; }
		out=$(ls "$M9O" 2>&1) || { why "the store did not list: $out"; bad=1; }
		[ ! -e "$W/t9c.resumed" ] ||
			{ why "with one request blocked, the others waited for it"; bad=1; }
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
	fi
	kill -CONT "$ipid"
	wait "$cpid" || why "the blocked read failed once the disk came back"
	[ "$(cat "$W/t9c.out")" = live ] || why "the blocked read gave '$(cat "$W/t9c.out")'"
	unmount "$M9O"
	unmount "$M9I"
	return $bad
}
# Decompression contexts (one a CPU, 2 at least) are held while a frame is read:
# as many readers stuck on a hung archive must not stop reads in other snapshots.
t_threads_frames() {
	local src=$W/src9d st=$W/store9d m=$W/m9dinner o=$W/m9douter
	local ipid opid wpid out k n pids=() bad=0
	n=$(nproc)
	[ "$n" -ge 2 ] || n=2
	mkdir -p "$src/arch" "$src/a" "$src/c" && echo c1 >"$src/c/which" &&
		head -c $((n << 20)) /dev/urandom >"$src/a/big.bin" ||
		{ why "cannot build the source"; return 1; }
	mkarchive "$src/arch/a-20260101_000000.tar.zst" "$src/a" big.bin &&
		mkarchive "$src/arch/c-20260103_000000.tar.zst" "$src/c" which &&
		"$SNAPKEEP" take --store "$st" --name nest -C "$src" arch >/dev/null ||
		{ why "cannot build the archives"; return 1; }
	need_mount "$st" "$m" || return 1
	need_mount "$m/latest/arch" "$o" || { unmount "$m"; return 1; }
	ipid=$(daemon_pid "$m") && opid=$(daemon_pid "$o") || why "no daemon pids"
	stat "$o/20260101_000000/big.bin" >/dev/null || why "a's index does not open"
	# c's index opened now: opening it walks the stopped mount's root and latest, whose
	# attributes the kernel keeps 1 s, so on a busy machine the walk would wait for the
	# stopped daemon; c's frames are then read from the stopped mount's page cache
	stat "$o/20260103_000000/which" >/dev/null || why "c's index does not open"
	cat "$m/latest/arch/c-20260103_000000.tar.zst" >/dev/null
	kill -STOP "$ipid"
	for ((k = 0; k < n; k++)); do	# one reader a MiB: each waits in a frame of its own
		dd if="$o/20260101_000000/big.bin" of=/dev/null bs=4k count=1 skip=$((k * 256)) \
			2>/dev/null &
		pids+=($!)
	done
	blocked_all() {
		local p
		for p in "${pids[@]}"; do blocked_on_fuse "$p" || return 1; done
		blocked_on_fuse "$opid" "$n"
	}
	if ! wait_for 5000 0 blocked_all; then
		why "the $n readers were not seen waiting for the stopped store"
		bad=1
	else
		(sleep 5 && touch "$W/t9d.resumed" && kill -CONT "$ipid") &
		wpid=$!
		out=$(cat "$o/20260103_000000/which" 2>&1)
		[ "$out" = c1 ] || { why "c/which: '$out', want c1"; bad=1; }
		[ ! -e "$W/t9d.resumed" ] ||
			{ why "with $n reads blocked, a read in another snapshot waited for them"; bad=1; }
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
	fi
	kill -CONT "$ipid"
	for k in "${pids[@]}"; do wait "$k" || why "a blocked read failed once the store came back"; done
	unmount "$o"
	unmount "$m"
	return $bad
}
# wchan_named: /proc/PID/wchan names where a sleeping thread waits (0 where the kernel hides
# it). Asked of a sleep until it sleeps: asking this shell while it waited for a command
# substitution raced with the shell reaching its wait, and skipped the checks now and then.
wchan_named() {
	local p named=1
	sleep 30 &
	p=$!
	for _ in $(seq 250); do
		[[ $(cat "/proc/$p/wchan" 2>/dev/null) == [a-z_]* ]] && { named=0; break; }
		sleep 0.02
	done
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null || true
	return $named
}
if wchan_named; then
	check "program: with one request blocked on a slow store, other threads answer" t_threads
	# one reader a CPU: libfuse runs 10 workers at most, and one must stay free
	if [ "$(nproc)" -le 8 ]; then
		check "program: readers stuck on a hung archive do not stop reads in other snapshots" \
			t_threads_frames
	else
		note "SKIP stuck readers: $(nproc) CPUs, more decompression contexts than libfuse workers"
	fi
else
	note "SKIP threads: /proc/PID/wchan does not name where a thread waits"
fi

t_fusermount() {
	local pid
	mount_fs "$ST2" "$M9" || { why "mount failed"; return 1; }
	pid=$(daemon_pid "$M9") || { why "no daemon for $M9"; return 1; }
	fusermount3 -u "$M9" || why "fusermount3 -u failed"
	wait_for 5000 0 gone "$pid" || why "the daemon runs on after fusermount3 -u"
	! mounted "$M9" || why "still mounted"
}
check "program: fusermount3 -u makes the daemon exit" t_fusermount

#####################################################################################
# 10. Fast start: 1,000 archives.
#####################################################################################
ST10=$W/store10
mkdir -p "$ST10"
mkarchive "$W/one.tar.zst" "$W/src2/A" which || fatal "cannot build the archives"
for ((i = 0; i < 1000; i++)); do
	printf -v n 'k-%(%Y%m%d_%H%M%S)T.tar.zst' $((1767225600 + i * 3600))
	ln "$W/one.tar.zst" "$ST10/$n"
done
M10=$W/m10
t_fast() {
	local start ms n pid fds
	need_mount "$ST10" "$M10" || return 1
	start=$(now_us)
	n=$(ls "$M10" | wc -l)
	ms=$(ms_since "$start")
	note "the first ls of 1,000 archives took $ms ms"
	[ "$n" = 1001 ] || why "ls shows $n names, want 1001"
	[ "$ms" -lt 5000 ] || why "the first ls took $ms ms (safety net 5 s)"
	[ "$(readlink "$M10/latest")" = 20260211_150000 ] ||
		why "latest -> $(readlink "$M10/latest")"
	ls -l "$M10" >/dev/null	# stats every name, and asks each for security.selinux
	# coreutils 9.6 on also lists each name's xattrs, and asks for ACLs by name
	getfattr --absolute-names -d -m- "$M10"/* >/dev/null 2>&1
	getfattr --absolute-names -n system.posix_acl_access "$M10"/* >/dev/null 2>&1
	pid=$(daemon_pid "$M10")
	fds=$(ls -l "/proc/$pid/fd" 2>/dev/null | grep -c "$ST10/")
	[ "$fds" = 0 ] || why "listing opened $fds archives; they open on first entry"
	[ "$(cat "$M10/20260101_000000/which")" = A ] || why "an archive does not read"
	unmount "$M10"
}
check "fast start: 1,000 archives list at once (1001 names), none opened by ls, ls -l or getfattr -d" \
	t_fast

# The bound on open indexes (-o max_open=3). Every snapshot the kernel still knows
# an entry of keeps a descriptor of its archive; once the kernel forgot them all
# (drop_caches evicts the inodes), only the open indexes hold one.
archive_fds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -c "$ST10/"; }
t_max_open() {
	local pid d n=0 fds
	need_mount "$ST10" "$M10" -o max_open=3 || return 1
	pid=$(daemon_pid "$M10")
	for d in $(ls "$M10" | head -12); do
		[ "$(cat "$M10/$d/which")" = A ] || why "$d/which does not read"
		n=$((n + 1))
	done
	[ "$n" = 12 ] || why "read $n snapshots, want 12"
	sync
	echo 2 >/proc/sys/vm/drop_caches	# the kernel forgets the unused inodes
	wait_for 3000 "$pid" eval '[ "$(archive_fds "$pid")" -le 3 ]' ||
		why "$(archive_fds "$pid") archives open after the kernel forgot them, want 3 at most"
	fds=$(archive_fds "$pid")
	[ "$fds" -ge 1 ] || why "no index open at all ($fds)"
	for d in $(ls "$M10" | head -12); do
		[ "$(cat "$M10/$d/which")" = A ] || why "$d/which does not read again"
	done
	unmount "$M10"
}
if [ "$ROOT" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
	check "fast start: -o max_open=3 keeps 3 indexes open after reading in 12 snapshots" \
		t_max_open
else
	note "SKIP the bound on open indexes: needs root and a writable /proc/sys/vm/drop_caches"
fi

#####################################################################################
# 11. Many small files: the first read of a frame sends the kernel its other files.
#####################################################################################
S11=$W/src11
ST11=$W/store11
M11=$W/m11
mkdir -p "$S11/msgs"
python3 - "$S11/msgs" <<'PY' || fatal "cannot make the small files"
import os, random, sys
r = random.Random(11)
for i in range(3000):
    with open(os.path.join(sys.argv[1], "m%04d" % i), "wb") as f:
        f.write(bytes(r.getrandbits(8) for _ in range(r.randint(1, 3000))))
PY
mkarchive "$ST11/small-20260301_000000.tar.zst" "$S11" msgs || fatal "cannot build the archive"
need_mount "$ST11" "$M11" || fatal "cannot mount the small files"
R11=$M11/20260301_000000/msgs

# cached PATH: the kernel holds the first page of PATH (fincore maps it: no request)
cached() { [ "$(fincore -n -b -o RES -- "$1" 2>/dev/null)" -gt 0 ] 2>/dev/null; }
t_pushed() {
	ls "$R11" >/dev/null	# the kernel knows the files' inodes
	cached "$R11/m0001" && { why "m0001 cached before any read"; return 1; }
	cmp -s "$R11/m0000" "$S11/msgs/m0000" || why "m0000 reads wrong"
	wait_for 2000 0 cached "$R11/m0001" ||
		why "2 s after reading m0000 its frame-mate m0001 is not in the page cache"
}
check "small files: reading one sends its frame-mates to the page cache" t_pushed

t_small_content() {
	local bad=0 f
	for f in "$S11"/msgs/*; do
		cmp -s "$f" "$R11/${f##*/}" || { bad=1; why "${f##*/} differs"; break; }
	done
	return $bad
}
check "small files: all 3,000 read right (pushed or read)" t_small_content

# A request taken by a worker as the loop ends must still be answered, or the
# pusher waits for ever on its page (fs/main.c, on_stop_signal): five rounds,
# the signal at a different moment of the reading each time.
t_sigterm_busy() {
	local pid m=$W/m11b rpid round
	mkdir -p "$m"
	for round in 1 2 3 4 5; do
		mount_fs "$ST11" "$m" || { why "mount failed"; return 1; }
		pid=$(daemon_pid "$m") || { why "no daemon for $m"; return 1; }
		( while :; do
			find "$m"/20260301_000000/msgs -type f -print0 2>/dev/null |
				xargs -0 -P2 cat >/dev/null 2>&1 || exit 0
		done ) &
		rpid=$!
		sleep "0.$((round * 15))"
		kill -TERM "$pid"
		wait_for 5000 0 gone "$pid" ||
			why "round $round: the daemon runs on 5 s after SIGTERM while being read"
		kill "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null
		wait_for 5000 0 eval '! mounted "$m"' || why "round $round: still mounted after SIGTERM"
		[ "$WHY" = 0 ] || { unmount "$m"; return 1; }
	done
}
check "small files: SIGTERM while files are being read: the daemon exits (5 rounds)" t_sigterm_busy
unmount "$M11"

unmount "$M1"
unmount "$M2"
unmount "$M5"
unmount "$M6"
while read -r m; do
	mounted "$m" && { echo "FAIL: $m is still mounted at the end"; FAIL=$((FAIL + 1)); }
done < <(printf '%s\n' "${MOUNTS[@]}" | sort -u)
note "total time $(ms_since "$T0") ms"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ] || exit 1
if [ "$SKIPPED" != 0 ]; then
	echo "SKIP: $SKIPPED parts did not run here (the '# SKIP' lines say why)"
	exit 77
fi

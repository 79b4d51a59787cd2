#!/bin/bash
# take_cli.sh: `snapkeep take` and `snapkeep list` end to end, against the real binary.
#
#   bash tests/take_cli.sh build/tools/snapkeep
#
# Builds source trees with every kind of entry in a temporary directory, takes
# snapshots, and checks what SPEC promises: the archive's name and mode, that
# GNU tar (both ways) and bsdtar extract it equal to the source, the skippable
# index frames, list and list --json, --exclude and -C, the exit codes, and
# that a failed or killed take leaves nothing under a real name. Run as root to
# cover owners and device nodes. Prints "N passed, M failed" last; exits 1 if a
# check failed, else 77 if a tool it needs is missing or, not as root, the
# owners and device nodes were left out.
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/snapkeep" >&2
	exit 2
fi
SK=$(realpath -- "$1") || exit 2
[ -x "$SK" ] || { echo "$0: '$1' is not an executable" >&2; exit 2; }

for tool in zstd bsdtar tar getfattr setfattr sha256sum find truncate; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
tar --version 2>/dev/null | grep -q 'GNU tar' || { echo "SKIP: tar is not GNU tar"; exit 77; }

W=$(mktemp -d "${TMPDIR:-/tmp}/take_cli.XXXXXX") || exit 2
cleanup() {
	[ -n "${BGPID:-}" ] && kill -9 "$BGPID" 2>/dev/null
	rm -rf -- "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
umask 022
ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
PASS=0
FAIL=0
SKIPPED=0	# a part that cannot run here: exit 77 (meson's SKIP) if nothing failed

pass() { PASS=$((PASS + 1)); }
fail() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: the command's status decides
check() {
	local what=$1
	shift
	if "$@"; then pass; else fail "$what"; fi
}
# check_eq DESCRIPTION GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then pass; else fail "$1: got '$2', want '$3'"; fi
}
note() { echo "# $*"; }

# Everything in a store directory but the lock file, one name a line.
store_files() { ls -A -- "$1" 2>/dev/null | grep -vx '\.snapkeep\.lock'; }
# Hidden temporary files of a take in store $1.
store_temps() { ls -A -- "$1" 2>/dev/null | grep -E '^\..*\.tar\.zst\.[A-Za-z0-9]{6}$'; }

# A listing of a tree: one NUL-terminated record per entry, sorted. Directory
# sizes are left out: they depend on the file system's history, not the data.
# With a second argument the top directory itself is left out: bsdtar never
# sets the times of "." (not for GNU tar's archives either).
listing() {
	(cd -- "$1" && find . ${2:+-mindepth 1} \
		\( -type d -printf '%P|%y|%m|%U|%G|-|%T@|%l|%n\0' \) -o \
		-printf '%P|%y|%m|%U|%G|%s|%T@|%l|%n\0' | sort -z)
}
# The user.* xattrs of every entry, in name order.
xattr_listing() {
	(cd -- "$1" && find . -print0 | sort -z | while IFS= read -r -d '' f; do
		printf '%s\0' "$f"
		getfattr -h -d -m '^user\.' -- "$f" 2>/dev/null | grep -v '^# file:'
	done)
}
# same_file A B: equal bytes. A file over 1 GiB (the sparse one) is compared
# over the union of both files' data extents (SEEK_DATA/SEEK_HOLE): outside it
# both read as zeros. That is exact, and takes milliseconds where cmp reads
# 9 GiB of holes (half a minute here). Without python3, or with
# TAKE_CLI_FULL_CMP=1, it is cmp.
same_file() {
	if [ "$(stat -c %s -- "$1")" -le $((1 << 30)) ] || [ -n "${TAKE_CLI_FULL_CMP:-}" ] ||
		! command -v python3 >/dev/null; then
		cmp -s -- "$1" "$2"
		return
	fi
	python3 - "$1" "$2" <<-'EOF'
	import os, sys

	def extents(fd, size):
	    out, off = [], 0
	    while off < size:
	        try:
	            d = os.lseek(fd, off, os.SEEK_DATA)
	        except OSError:
	            break
	        off = os.lseek(fd, d, os.SEEK_HOLE)
	        out.append((d, off))
	    return out

	a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
	size = os.fstat(a).st_size
	if os.fstat(b).st_size != size:
	    sys.exit(1)
	spans = sorted(extents(a, size) + extents(b, size))
	for i, (start, end) in enumerate(spans):
	    if i and start < spans[i - 1][1]:
	        start = spans[i - 1][1]
	    while start < end:
	        n = min(end - start, 1 << 20)
	        if os.pread(a, n, start) != os.pread(b, n, start):
	            sys.exit(1)
	        start += n
	EOF
}
# Every regular file of $1 equal in $2: NUL-separated names from find.
same_contents() {
	local a=$1 b=$2 f bad=0
	while IFS= read -r -d '' f; do
		same_file "$a/$f" "$b/$f" || { echo "  differs: $(printf '%q' "$f")"; bad=1; }
	done < <(cd -- "$a" && find . -type f -print0)
	return $bad
}
# compare_trees WHAT SRC DST [noroot]: stat listing, contents and xattrs
compare_trees() {
	local what=$1 a=$2 b=$3 noroot=${4:-}
	if cmp -s <(listing "$a" $noroot) <(listing "$b" $noroot); then
		pass
	else
		fail "$what: listing differs from the source"
		diff <(listing "$a" $noroot | tr '\0' '\n') <(listing "$b" $noroot | tr '\0' '\n') |
			head -20
	fi
	check "$what: file contents equal the source" same_contents "$a" "$b"
	if cmp -s <(xattr_listing "$a") <(xattr_listing "$b"); then
		pass
	else
		fail "$what: xattrs differ from the source"
		diff <(xattr_listing "$a" | tr '\0' '\n') <(xattr_listing "$b" | tr '\0' '\n') |
			head -20
	fi
}

# The members of an archive, as GNU tar lists them (names escaped: one a line).
members() { tar --zstd -tf "$1" 2>/dev/null | sort; }

# ---------------------------------------------------------------------------
# A source tree with every kind of entry
# ---------------------------------------------------------------------------
SRC=$W/src
mkdir -p "$SRC"/config/personalities "$SRC"/empty "$SRC"/a/b/c/d "$SRC"/queue
printf 'cluster: cc\nworkers: 7\n' >"$SRC"/config/cc-cluster.yaml
printf 'you are the grand boss\n' >"$SRC"/config/personalities/grand_boss.txt
for i in 1 2 3 4 5; do printf 'id: %d\nstatus: queued\n' "$i" >"$SRC/queue/msg-$i.yaml"; done
printf 'deep\n' >"$SRC"/a/b/c/d/file
: >"$SRC"/empty-file
ln -s config/cc-cluster.yaml "$SRC"/link
ln -s does/not/exist "$SRC"/dangling
printf 'one inode, two names\n' >"$SRC"/hard1
ln "$SRC"/hard1 "$SRC"/a/hard2
# over 8 GiB, a hole on each side of a few bytes in the middle
truncate -s 9G "$SRC"/sparse
printf 'in the middle of nowhere' |
	dd of="$SRC"/sparse bs=1 seek=$((4 * 1024 * 1024 * 1024 + 5)) conv=notrunc status=none
setfattr -n user.note -v hello "$SRC"/config/cc-cluster.yaml
setfattr -n user.empty "$SRC"/hard1
setfattr -n user.dir -v 'on a directory' "$SRC"/config
mkfifo "$SRC"/fifo
printf 'newline\n' >"$SRC"/$'new\nline'
printf 'not utf-8\n' >"$SRC/$(printf 'bad\xffname')"
LONGDIR=$SRC/$(printf 'd%.0s' {1..120})
mkdir "$LONGDIR"
printf 'long\n' >"$LONGDIR/$(printf 'f%.0s' {1..120}).yaml"
printf 'nanoseconds\n' >"$SRC"/nano
touch -d '2020-01-02 03:04:05.123456789' "$SRC"/nano
printf 'SECRET=1\n' >"$SRC"/.env
chmod 0600 "$SRC"/.env
chmod 0750 "$SRC"/config
if [ "$ROOT" = 1 ]; then
	mknod "$SRC"/null c 1 3
	printf 'big uid\n' >"$SRC"/owned
	chown 4000000:4000001 "$SRC"/owned
else
	note "SKIP device node and foreign owner: not root, so the tree has neither"
	SKIPPED=1
fi
# directory times last, after their contents
touch -d '2021-03-04 05:06:07.5' "$SRC"/empty "$SRC"/a/b

# ---------------------------------------------------------------------------
# take: output, name, modes
# ---------------------------------------------------------------------------
S=$W/stores/main
T0=$(date +%s.%N)
"$SK" take --store "$S" --name n -C "$SRC" . >"$W/out" 2>"$W/err"
rc=$?
T1=$(date +%s.%N)
note "take of the full tree: $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }') s"
check_eq "take exits 0" "$rc" 0
check "take writes nothing to stderr when it is not a terminal" test ! -s "$W/err"
[ -s "$W/err" ] && sed 's/^/  stderr: /' "$W/err"
check_eq "take prints one line" "$(wc -l <"$W/out")" 1
A=$(cat "$W/out")
check "take prints the archive path STORE/n-YYYYMMDD_HHMMSS.tar.zst" \
	grep -qxE "$(printf '%s' "$S" | sed 's/[.[\*^$]/\\&/g')/n-[0-9]{8}_[0-9]{6}\.tar\.zst" "$W/out"
check "the printed archive exists" test -f "$A"
check_eq "archive mode" "$(stat -c %a "$A" 2>/dev/null)" 600
check_eq "store directory created 0700" "$(stat -c %a "$S" 2>/dev/null)" 700
check_eq "parent of the store created 0700" "$(stat -c %a "$W/stores" 2>/dev/null)" 700
check_eq "store holds the archive and nothing else" "$(store_files "$S")" "$(basename -- "$A")"
# in_window STAMP BEFORE AFTER: BEFORE <= STAMP <= AFTER, all YYYYMMDD_HHMMSS
in_window() { [[ ! "$1" < "$2" && ! "$1" > "$3" ]]; }
STAMP=$(basename -- "$A" .tar.zst)
check "archive is named by the local time of the take (${STAMP#n-})" in_window "${STAMP#n-}" \
	"$(date -d "@${T0%.*}" +%Y%m%d_%H%M%S)" "$(date -d "@${T1%.*}" +%Y%m%d_%H%M%S)"

# the same members as `tar -C SRC -cf - .` stores
check "members are those GNU tar stores for -C SRC ." \
	cmp -s <(members "$A") <(tar -S -C "$SRC" -cf - . 2>/dev/null | tar -tf - | sort)

# ---------------------------------------------------------------------------
# extraction with GNU tar (both ways) and bsdtar
# ---------------------------------------------------------------------------
HDRCHARSET="Ignoring unknown extended header keyword .*hdrcharset"
X=$W/x-tar
mkdir "$X"
tar --zstd --xattrs -xf "$A" -C "$X" 2>"$W/err"
check_eq "tar --zstd --xattrs -xf exits 0" "$?" 0
grep -v "$HDRCHARSET" "$W/err" | sed 's/^/  tar: /'
compare_trees "tar --zstd" "$SRC" "$X"
check_eq "tar --zstd: sparse size" "$(stat -c %s "$X/sparse")" $((9 * 1024 * 1024 * 1024))
check "tar --zstd: sparse file extracted with holes" test "$(du -k "$X/sparse" | cut -f1)" -lt 1024
rm -rf -- "$X"

X=$W/x-zstd
mkdir "$X"
zstd -q -dc "$A" | tar --xattrs -xf - -C "$X" 2>"$W/err"
check_eq "zstd -dc | tar --xattrs -xf - exits 0" "${PIPESTATUS[*]}" "0 0"
grep -v "$HDRCHARSET" "$W/err" | sed 's/^/  tar: /'
compare_trees "zstd -dc | tar" "$SRC" "$X"
check_eq "zstd -dc | tar: sparse size" "$(stat -c %s "$X/sparse")" $((9 * 1024 * 1024 * 1024))
check "zstd -dc | tar: sparse file extracted with holes" test "$(du -k "$X/sparse" | cut -f1)" -lt 1024
rm -rf -- "$X"

X=$W/x-bsdtar
mkdir "$X"
bsdtar --xattrs -xf "$A" -C "$X" 2>"$W/err"
check_eq "bsdtar --xattrs -xf exits 0" "$?" 0
sed 's/^/  bsdtar: /' "$W/err"
compare_trees "bsdtar" "$SRC" "$X" noroot
check_eq "bsdtar: sparse size" "$(stat -c %s "$X/sparse")" $((9 * 1024 * 1024 * 1024))
rm -rf -- "$X"

# ---------------------------------------------------------------------------
# the archive's frames: data frames, then the index and seek table as skippable frames
# ---------------------------------------------------------------------------
read -r frames skips _ < <(zstd -l "$A" 2>/dev/null | awk 'NR == 2 { print $1, $2 }')
check "zstd -l: more than one frame (got ${frames:-none})" test "${frames:-0}" -gt 1
check "zstd -l: at least 2 skippable frames (got ${skips:-none})" test "${skips:-0}" -ge 2
check "zstd -t accepts the archive" zstd -q -t "$A"

# ---------------------------------------------------------------------------
# list and list --json
# ---------------------------------------------------------------------------
"$SK" list --store "$S" >"$W/out" 2>"$W/err"
check_eq "list exits 0" "$?" 0
check_eq "list shows one line" "$(wc -l <"$W/out")" 1
check "list names the archive" grep -qF -- "$(basename -- "$A")" "$W/out"
check "list writes nothing to stderr" test ! -s "$W/err"
NMEMBERS=$(tar --zstd -tf "$A" 2>/dev/null | wc -l)
SIZE=$(stat -c %s "$A")
"$SK" list --store "$S" --json >"$W/json" 2>"$W/err"
check_eq "list --json exits 0" "$?" 0
if command -v python3 >/dev/null; then
	check "list --json: one object with archive, time, size = file size, entries = members" \
		python3 - "$W/json" "$(basename -- "$A")" "$SIZE" "$NMEMBERS" <<-'EOF'
	import json, re, sys
	v = json.load(open(sys.argv[1]))
	ok = (isinstance(v, list) and len(v) == 1 and
	      set(v[0]) >= {"archive", "time", "size", "entries"} and
	      v[0]["archive"] == sys.argv[2] and v[0]["size"] == int(sys.argv[3]) and
	      v[0]["entries"] == int(sys.argv[4]) and
	      re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", v[0]["time"]))
	if not ok:
	    print("  json:", v, file=sys.stderr)
	sys.exit(0 if ok else 1)
	EOF
else
	check "list --json: archive key" grep -qF "\"archive\": \"$(basename -- "$A")\"" "$W/json"
	check "list --json: time key" grep -qE '"time": "[0-9T:-]+[+-][0-9]{2}:[0-9]{2}"' "$W/json"
	check "list --json: size = file size" grep -qF "\"size\": $SIZE" "$W/json"
	check "list --json: entries = members" grep -qF "\"entries\": $NMEMBERS" "$W/json"
fi
"$SK" list --store "$W/no-such-store" >"$W/out" 2>&1
check_eq "list of a missing store exits 0" "$?" 0
check "list of a missing store prints nothing" test ! -s "$W/out"
check "list does not create a missing store" test ! -e "$W/no-such-store"

# ---------------------------------------------------------------------------
# --exclude and -C DIR a b
# ---------------------------------------------------------------------------
E=$W/exsrc
mkdir -p "$E"/venv/lib "$E"/app/__pycache__ "$E"/app/sub/__pycache__ "$E"/other "$E"/c
printf 'x' >"$E"/venv/lib/site.py
printf 'x' >"$E"/app/main.py
printf 'x' >"$E"/app/main.pyc
printf 'x' >"$E"/app/__pycache__/main.cpython-311.pyc
printf 'x' >"$E"/app/sub/__pycache__/x.pyc
printf 'x' >"$E"/app/sub/mod.py
printf 'a file named venv' >"$E"/other/venv
printf 'x' >"$E"/c/not-asked-for
SE=$W/stores/ex
"$SK" take --store "$SE" --name ex -C "$E" --exclude 'venv/' --exclude '__pycache__/' \
	--exclude '*.pyc' . >"$W/out" 2>"$W/err"
check_eq "take with --exclude exits 0" "$?" 0
AE=$(cat "$W/out")
check_eq "--exclude drops venv/, __pycache__/ and *.pyc" "$(members "$AE" | tr '\n' ' ')" \
	"./ ./app/ ./app/main.py ./app/sub/ ./app/sub/mod.py ./c/ ./c/not-asked-for ./other/ ./other/venv "

"$SK" take --store "$SE" --name ab -C "$E" app other >"$W/out" 2>"$W/err"
check_eq "take -C DIR a b exits 0" "$?" 0
AB=$(cat "$W/out")
check "-C DIR a b stores a/... and b/... as tar -C DIR a b does" \
	cmp -s <(members "$AB") <(tar -C "$E" -cf - app other | tar -tf - | sort)
check "-C DIR a b: no ./ prefix, nothing else" \
	test "$(members "$AB" | grep -cvE '^(app|other)(/|$)')" = 0

# ---------------------------------------------------------------------------
# failures: a missing path, a file that shrinks while read
# ---------------------------------------------------------------------------
SM=$W/stores/missing
"$SK" take --store "$SM" --name n -C "$SRC" config no-such-path >"$W/out" 2>"$W/err"
check_eq "take of a missing path exits 2" "$?" 2
check "missing path: message starts with 'snapkeep: '" grep -q '^snapkeep: ' "$W/err"
check "missing path: message names the path" grep -qF 'no-such-path' "$W/err"
check "missing path: nothing on stdout" test ! -s "$W/out"
check_eq "missing path: no archive, no temporary file" "$(store_files "$SM")" ""
# SPEC: exit 2 means "nothing was left behind"; that includes a new store directory
check "missing path: a store that did not exist is not created" test ! -e "$SM"

THP=/sys/kernel/mm/transparent_hugepage
if [ -r "$THP/enabled" ]; then
	SS=$W/stores/shrink
	"$SK" take --store "$SS" --name n -C "$THP" enabled >"$W/out" 2>"$W/err"
	check_eq "take of a file that shrinks while read exits 1" "$?" 1
	check "shrinking file: a warning on stderr names it" grep -q '^snapkeep: .*enabled' "$W/err"
	AS=$(cat "$W/out")
	check "shrinking file: the archive is kept" test -f "$AS"
	mkdir "$W/x-shrink"
	check "shrinking file: the archive extracts with tar" \
		tar --zstd -xf "$AS" -C "$W/x-shrink"
	check "shrinking file: the extracted file begins with what sysfs holds" \
		cmp -s -n "$(wc -c <"$THP/enabled")" "$THP/enabled" "$W/x-shrink/enabled"
else
	note "SKIP the shrinking-file case: no $THP/enabled"
	SKIPPED=1
fi

# ---------------------------------------------------------------------------
# a take killed with SIGKILL leaves only a hidden temporary file
# ---------------------------------------------------------------------------
B=$W/bigsrc
mkdir "$B"
head -c 300M /dev/urandom >"$B"/blob
SK9=$W/stores/killed
"$SK" take --store "$SK9" --name n -C "$B" . >"$W/out-killed" 2>&1 &
BGPID=$!
deadline=$((SECONDS + 60))
seen=
while [ $SECONDS -lt $deadline ] && kill -0 "$BGPID" 2>/dev/null; do
	seen=$(store_temps "$SK9")
	[ -n "$seen" ] && break
done
if [ -n "$seen" ]; then
	kill -9 "$BGPID"
	wait "$BGPID" 2>/dev/null
	BGPID=
	pass
	check_eq "killed take: no archive under a real name" \
		"$(store_files "$SK9" | grep -v '^\.')" ""
	check "killed take: its temporary file is still there" test -n "$(store_temps "$SK9")"
	check_eq "killed take: list shows nothing" "$("$SK" list --store "$SK9" 2>&1)" ""
	"$SK" take --store "$SK9" --name n -C "$SRC" config >"$W/out" 2>"$W/err"
	check_eq "take after a killed take exits 0" "$?" 0
	check_eq "take after a killed take removed the stale temporary file" \
		"$(store_temps "$SK9")" ""
	check_eq "take after a killed take: one archive" "$(store_files "$SK9" | wc -l)" 1
else
	wait "$BGPID" 2>/dev/null
	BGPID=
	fail "killed take: no hidden temporary file appeared before the take ended"
fi

# ---------------------------------------------------------------------------
# a write that fails (file size limit) leaves nothing and spares older archives
# ---------------------------------------------------------------------------
SF=$W/stores/full
mkdir "$W/fsrc"
head -c 1M /dev/urandom >"$W/fsrc/random"
"$SK" take --store "$SF" --name n -C "$SRC" config >"$W/out" 2>"$W/err"
check_eq "take before the failing one exits 0" "$?" 0
OLD=$(cat "$W/out")
SUM=$(sha256sum <"$OLD")
(trap '' XFSZ; ulimit -f 100; exec "$SK" take --store "$SF" --name n -C "$W/fsrc" .) \
	>"$W/out" 2>"$W/err"
check_eq "take that cannot write exits 2" "$?" 2
check "write failure: message starts with 'snapkeep: '" grep -q '^snapkeep: ' "$W/err"
[ "$(wc -l <"$W/err")" -gt 0 ] && note "write failure said: $(head -c 300 "$W/err")"
check "write failure: nothing on stdout" test ! -s "$W/out"
check_eq "write failure: only the older archive is left" "$(store_files "$SF")" \
	"$(basename -- "$OLD")"
check_eq "write failure: the older archive is unchanged" "$(sha256sum <"$OLD")" "$SUM"

# ---------------------------------------------------------------------------
# two takes in one second get two names
# ---------------------------------------------------------------------------
S2=$W/stores/twice
for attempt in 1 2 3 4 5; do
	rm -rf -- "$S2"
	t0=$(date +%s)
	"$SK" take --store "$S2" --name n -C "$SRC" config >"$W/out1" 2>&1
	r1=$?
	"$SK" take --store "$S2" --name n -C "$SRC" config >"$W/out2" 2>&1
	r2=$?
	t1=$(date +%s)
	[ "$t0" = "$t1" ] && break
done
check_eq "two takes in one second both exit 0" "$r1 $r2" "0 0"
check "two takes in one second: two different archives" \
	test -f "$(cat "$W/out1")" -a -f "$(cat "$W/out2")" -a "$(cat "$W/out1")" != "$(cat "$W/out2")"
check_eq "two takes in one second: both listed" "$("$SK" list --store "$S2" | wc -l)" 2
if [ "$t0" = "$t1" ]; then
	check_eq "two takes in one second: the second moves on one second" \
		"$(basename -- "$(cat "$W/out2")")" \
		"n-$(date -d "@$((t0 + 1))" +%Y%m%d_%H%M%S).tar.zst"
else
	note "SKIP the name step: the two takes never fell into one second"
	SKIPPED=1
fi

# two at once: the lock serialises them, neither replaces the other
S3=$W/stores/concurrent
"$SK" take --store "$S3" --name n -C "$SRC" config >"$W/out1" 2>&1 &
p1=$!
"$SK" take --store "$S3" --name n -C "$SRC" config >"$W/out2" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check_eq "two concurrent takes both exit 0" "$r1 $r2" "0 0"
check_eq "two concurrent takes: two archives" "$(store_files "$S3" | wc -l)" 2

# a socket cannot be stored: skipped with a warning (exit 1), and its second name is
# not written as a hard link to a member that is not there, which verify would fail
SOCKD=$W/sock
mkdir -p "$SOCKD/d" && echo kept >"$SOCKD/d/file"
if python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$SOCKD/d/a.sock" && ln "$SOCKD/d/a.sock" "$SOCKD/d/b.sock"; then
	A4=$("$SK" take --store "$W/stores/sock" --name s -C "$SOCKD" d 2>"$W/err")
	check_eq "take of a directory with a socket exits 1 (done with warnings)" "$?" 1
	check "the warning names both of the socket's names" \
		sh -c 'grep -q "d/a.sock.*socket" "$1" && grep -q "d/b.sock.*socket" "$1"' - "$W/err"
	check_eq "the archive holds the directory and its file only" \
		"$(tar --zstd -tvf "$A4" | awk '{ print $1, $6, $7, $8 }' | sort | tr '\n' '|')" \
		"-rw-r--r-- d/file  |drwxr-xr-x d/  |"
	"$SK" verify "$A4" >/dev/null 2>"$W/err"
	check_eq "verify passes it" "$?" 0
else
	note "SKIP socket: cannot make one here"
	SKIPPED=1
fi

# ---------------------------------------------------------------------------
# a symlink and a FIFO whose paths pass PATH_MAX (4096 bytes)
# ---------------------------------------------------------------------------
if python3 -c 'import os, sys
os.chdir(sys.argv[1])
for i in range(21):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
os.symlink("target-of-deep", "lnk")
os.mkfifo("fifo")' "$(mkdir -p "$W/deep" && echo "$W/deep")"; then
	AD=$("$SK" take --store "$W/stores/deep" --name d -C "$W/deep" . 2>"$W/err")
	check_eq "take of a symlink and a FIFO past PATH_MAX exits 0" "$?" 0
	check "the symlink is stored with its target" \
		sh -c 'zstd -dc "$1" | tar -tvf - | grep -q "/lnk -> target-of-deep\$"' - "$AD"
	check "the FIFO is stored" \
		sh -c 'zstd -dc "$1" | tar -tvf - | grep -q "^p.*/fifo\$"' - "$AD"
else
	note "SKIP paths past PATH_MAX: python3 cannot make them here"
	SKIPPED=1
fi

# ---------------------------------------------------------------------------
# names that differ only in how a character is composed stay two (tar names are bytes)
# ---------------------------------------------------------------------------
mkdir -p "$W/nfd"
if python3 -c 'import sys
open(sys.argv[1] + "/caf\u00e9", "w").write("NFC\n")
open(sys.argv[1] + "/cafe\u0301", "w").write("NFD\n")' "$W/nfd"; then
	AN=$("$SK" take --store "$W/stores/nfd" --name n -C "$W/nfd" . 2>"$W/err")
	check_eq "take of 'café' composed and decomposed exits 0" "$?" 0
	"$SK" verify "$AN" >/dev/null 2>&1
	check_eq "verify passes it" "$?" 0
	"$SK" restore "$AN" --to "$W/nfd-out" 2>"$W/err"
	check_eq "restore exits 0" "$?" 0
	check "restore gives both names, each with its own bytes" diff -r "$W/nfd" "$W/nfd-out"
else
	note "SKIP composed and decomposed names: no python3"
	SKIPPED=1
fi

# ---------------------------------------------------------------------------
# a store inside the source is left out of its own snapshots
# ---------------------------------------------------------------------------
mkdir -p "$W/inner" && echo a >"$W/inner/a"
I1=$("$SK" take --store "$W/inner/store" --name s -C "$W/inner" . 2>"$W/err")
check_eq "take into a store inside the source exits 0" "$?" 0
sleep 1.1
I2=$("$SK" take --store "$W/inner/store" --name s -C "$W/inner" . 2>"$W/err")
check_eq "the second take too (its own temporary file and the first archive lie in the source)" \
	"$?" 0
check_eq "the second archive holds the source and no store" \
	"$(members "$I2" | tr '\n' ' ')" "$(members "$I1" | tr '\n' ' ')"
check_eq "which is ./ and ./a" "$(members "$I2" | tr '\n' ' ')" "./ ./a "

# ---------------------------------------------------------------------------
# extended attribute names libarchive 3.6.2 writes URL-encoded ("user.a%20b")
# ---------------------------------------------------------------------------
mkdir -p "$W/xsrc" && : >"$W/xsrc/f" && : >"$W/xsrc/g"
if setfattr -n 'user.a b' -v 1 "$W/xsrc/f" && setfattr -n 'user.é%=' -v 2 "$W/xsrc/g" &&
	setfattr -n user.plain -v 3 "$W/xsrc/g"; then
	AX=$("$SK" take --store "$W/stores/xn" --name x -C "$W/xsrc" . 2>"$W/err")
	check_eq "take of names with a space, '%', '=' and UTF-8 exits 0" "$?" 0
	"$SK" verify "$AX" >"$W/out" 2>&1
	check_eq "verify passes the archive (its index keeps the names, the stream encodes them)" \
		"$?" 0
	"$SK" restore "$AX" --to "$W/xout" 2>"$W/err"
	check_eq "restore exits 0" "$?" 0
	xattrs_of() {
		(cd "$1" && getfattr -d f g 2>/dev/null | grep -v '^#' | sort | tr '\n' ' ')
	}
	check_eq "restore gives the names as they were" \
		"$(xattrs_of "$W/xout")" "$(xattrs_of "$W/xsrc")"
else
	note "SKIP xattr names: this file system takes no user.* attributes"
	SKIPPED=1
fi

# ---------------------------------------------------------------------------
# names from archives reach the terminal with their control characters escaped
# ---------------------------------------------------------------------------
ESCN=$(printf 'x\033[2Jy\nz')
mkdir -p "$W/esc/d" && ln -s /tmp "$W/esc/l" && : >"$W/esc/d/$ESCN"
# GNU tar stores d/NAME as l/NAME: a member written through the symlink l
tar -cf "$W/esc.tar" -C "$W/esc" --transform 's,^d/,l/,' l "d/$ESCN"
"$SK" restore "$W/esc.tar" --to "$W/esc-out" >/dev/null 2>"$W/err"
check_eq "restore of a member through a symlink exits 1 (done with warnings)" "$?" 1
check_eq "its warning is one line" "$(wc -l <"$W/err")" 1
check "the warning writes the name's escape and newline as \\x1b and \\n" \
	grep -qF "refusing 'l/x\\x1b[2Jy\\nz'" "$W/err"
check "no escape character reaches the terminal" \
	sh -c '! grep -q "$(printf "\033")" "$1"' - "$W/err"
cp "$A" "$W/$ESCN.tar.zst" &&
	printf 'damage' | dd of="$W/$ESCN.tar.zst" bs=1 seek=200 conv=notrunc 2>/dev/null
"$SK" verify "$W/$ESCN.tar.zst" >"$W/out" 2>/dev/null
check_eq "verify of a damaged archive with a newline in its name exits 1" "$?" 1
check "verify prints one FAIL line, the name escaped" \
	sh -c '[ "$(wc -l <"$1")" = 1 ] && grep -qF "x\\x1b[2Jy\\nz.tar.zst: " "$1"' - "$W/out"
mkdir -p "$W/stores/esc" && cp "$A" "$W/stores/esc/$(printf 'a\nb')-20200101_000000.tar.zst"
"$SK" list --store "$W/stores/esc" >"$W/out" 2>"$W/err"
check_eq "list of an archive with a newline in its name exits 0" "$?" 0
check "list prints it on one line, the newline as \\n" \
	sh -c '[ "$(wc -l <"$1")" = 1 ] && grep -qF "a\\nb-20200101_000000.tar.zst" "$1"' - "$W/out"

# ---------------------------------------------------------------------------
# a damaged frame costs restore only the members in it
# ---------------------------------------------------------------------------
for d in d0 d1 d2; do
	mkdir -p "$W/dmg/$d"
	for f in $(seq -w 0 39); do head -c 3000 /dev/urandom >"$W/dmg/$d/f$f"; done
done
"$SK" take --store "$W/stores/dmg" --name d --frame-size 32768 --group-size 32768 \
	-C "$W/dmg" d0 d1 d2 >"$W/out" 2>"$W/err"
DA=$(cat "$W/out")
# the middle of the file lies in a frame of small members, well before the index
printf 'damage' | dd of="$DA" bs=1 seek=$(($(stat -c %s "$DA") / 2)) conv=notrunc 2>/dev/null
"$SK" restore "$DA" --to "$W/dmg-out" >/dev/null 2>"$W/err"
check_eq "restore of an archive with a damaged frame exits 2" "$?" 2
grep -o "^snapkeep: warning: '[^']*' not restored" "$W/err" | cut -d"'" -f2 | sort >"$W/lost"
check "restore names the members it lost" test -s "$W/lost"
check "each member named is missing, and every other is restored whole" \
	sh -c 'cd "$1" && find d0 d1 d2 -type f | sort | grep -vxF -f "$2" |
	       while read -r f; do cmp -s "$f" "$3/$f" || exit 1; done &&
	       while read -r f; do [ ! -e "$3/$f" ] || exit 1; done <"$2"' - \
	"$W/dmg" "$W/lost" "$W/dmg-out"
check "the last line counts the members lost and says what to do" \
	grep -qE "^snapkeep: .* $(wc -l <"$W/lost") members? (is|are) not restored.*another snapshot" \
	<(tail -1 "$W/err")

# ---------------------------------------------------------------------------
# argument errors
# ---------------------------------------------------------------------------
"$SK" take --store "$W/stores/bad" --name '../x' -C "$SRC" config >/dev/null 2>"$W/err"
check_eq "a name with '/' is refused with exit 2" "$?" 2
check "a name with '/' leaves no store behind" test ! -e "$W/stores/bad"
"$SK" take --store "$W/stores/bad" --name n -C "$SRC" >/dev/null 2>"$W/err"
check_eq "take without a PATH exits 2" "$?" 2
check "take without a PATH: message starts with 'snapkeep: '" grep -q '^snapkeep: ' "$W/err"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ] || exit 1
[ "$SKIPPED" = 0 ] || exit 77

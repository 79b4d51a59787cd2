#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: fuzz what a damaged or hostile archive reaches.
#
# Builds the three libFuzzer targets with clang (ASan and UBSan on, the library's
# sources compiled in) in build-fuzz/, makes seeds from a small tree with every
# kind of entry (a native archive taken with 4 KiB frames, its index body, and
# the same tree as tar, tar.gz, tar.xz, tar.bz2, tar.lz4, tar.zst, zip, cpio and iso) and from
# examples/orchestrator-cc.yaml, then runs
#   fuzz_index    the index body: idx_open_blob() and every accessor over it
#   fuzz_archive  a whole archive: idx_open_fd(), then every file read through, by
#                 the reader's own decoder and through the daemon's frame cache
#   fuzz_config   snapkeep's configuration file: cfg_load()
# each for SECONDS (default 300). A crash leaves its input in build-fuzz/ and
# the script fails; turn it into a unit test before fixing it.
#
# Needs clang with libFuzzer (apt-get install -y clang libclang-rt-14-dev),
# the library's -dev packages, bsdtar, python3, and a built snapkeep (meson
# setup build && ninja -C build).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECS=${1:-300}
B=$ROOT/build-fuzz
SK=${SNAPKEEP:-$ROOT/build/tools/snapkeep}
CC=${CC:-clang}

[ -x "$SK" ] || { echo "run.sh: no snapkeep at $SK (meson setup build && ninja -C build, or SNAPKEEP=)" >&2; exit 2; }
for tool in "$CC" bsdtar python3 zstd; do
	command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is missing" >&2; exit 2; }
done
mkdir -p "$B"
W=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -rf -- "$W"' EXIT

# ---- the targets ----------------------------------------------------------------------------
LIBS=$(pkg-config --cflags --libs libzstd libarchive yaml-0.1 zlib)
# lz4, xz and bzip2 decoded and checked by decode.c, through libarchive's libraries (arlib.h)
pkg-config --exists liblz4 && LIBS="$LIBS -DSNAPFS_HAVE_LZ4 $(pkg-config --cflags liblz4)"
pkg-config --exists liblzma && LIBS="$LIBS -DSNAPFS_HAVE_LZMA $(pkg-config --cflags liblzma)"
[ -f /usr/include/bzlib.h ] && LIBS="$LIBS -DSNAPFS_HAVE_BZ2"
SRCS=("$ROOT/fs/fcache.c")	# the daemon's frame cache, which fuzz_archive reads through
for f in "$ROOT"/snapshot/*.c; do SRCS+=("$f"); done
for t in fuzz_index fuzz_archive fuzz_config; do
	# shellcheck disable=SC2086
	"$CC" -g -O1 -std=c11 -D_GNU_SOURCE -DSNAPFS_HAVE_ZLIB -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -I"$ROOT/snapshot" -I"$ROOT/fs" -o "$B/$t" \
		"$ROOT/tests/fuzz/$t.c" "${SRCS[@]}" $LIBS -lpthread -ldl
done

# ---- the seeds -------------------------------------------------------------------------------
T=$W/tree
mkdir -p "$T/d/e" "$B/seeds-index" "$B/seeds-archive" "$B/seeds-config"
cp "$ROOT/examples/orchestrator-cc.yaml" "$B/seeds-config/"
printf 'hello\n' >"$T/a.txt"
head -c 20000 /dev/urandom >"$T/d/random.bin"
{ yes 'a line of a log' || true; } | head -c 30000 >"$T/d/e/log.txt"
: >"$T/empty"
ln -s a.txt "$T/link"
ln "$T/a.txt" "$T/d/hard"
truncate -s 100000 "$T/sparse" && printf 'data' | dd of="$T/sparse" bs=1 seek=50000 conv=notrunc status=none
mkfifo "$T/fifo"
printf 'x' >"$T/name
with newline"
command -v setfattr >/dev/null && setfattr -n user.comment -v 'a value' "$T/a.txt" 2>/dev/null || true
S=$W/store
mkdir -p "$S"
"$SK" take --store "$S" --name seed --frame-size 4096 --group-size 4096 -C "$T" . >/dev/null
cp "$S"/*.tar.zst "$B/seeds-archive/native.tar.zst"
(cd "$T" && bsdtar -cf "$B/seeds-archive/plain.tar" . &&
	bsdtar -czf "$B/seeds-archive/t.tar.gz" . && bsdtar -cJf "$B/seeds-archive/t.tar.xz" . &&
	bsdtar -cjf "$B/seeds-archive/t.tar.bz2" . && bsdtar --lz4 -cf "$B/seeds-archive/t.tar.lz4" . &&
	bsdtar --zstd -cf "$B/seeds-archive/t.tar.zst" . &&
	bsdtar --format zip -cf "$B/seeds-archive/t.zip" . &&
	bsdtar --format cpio -cf "$B/seeds-archive/t.cpio" . &&
	bsdtar --format iso9660 -cf "$B/seeds-archive/t.iso" a.txt d) 2>/dev/null || true	# zip, cpio: no FIFOs
# the index body: the last frame the seek table lists is the index (skippable,
# an 8-byte frame header, a 32-byte index header, then the body as one zstd frame)
python3 - "$B/seeds-archive/native.tar.zst" "$W/index.zst" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n, desc, magic = struct.unpack('<IBI', b[-9:])
assert magic == 0x8F92EAB1, 'no seek table footer'
esz = 12 if desc & 0x80 else 8
table = 8 + n * esz + 9
ents = [struct.unpack('<II', b[len(b) - table + 8 + i * esz:][:8]) for i in range(n)]
off = sum(c for c, _ in ents[:-1])
frame = b[off:off + ents[-1][0]]
open(sys.argv[2], 'wb').write(frame[8 + 32:])
PY
zstd -q -d -c "$W/index.zst" >"$B/seeds-index/body"

# ---- the runs --------------------------------------------------------------------------------
rc=0
for t in fuzz_index fuzz_archive fuzz_config; do
	seeds=$B/seeds-${t#fuzz_}
	mkdir -p "$B/corpus-$t"
	echo "== $t for ${SECS}s"
	(cd "$B" && ASAN_OPTIONS=detect_leaks=1 "./$t" -max_total_time="$SECS" -rss_limit_mb=2048 \
		-max_len=200000 -print_final_stats=1 "corpus-$t" "$seeds" 2>&1 | tail -15) || rc=1
done
exit $rc

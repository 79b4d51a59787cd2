#!/bin/bash
#
# replicate.sh SNAPKEEP: examples/replicate-store.sh copies a store to another directory:
# every archive, none of the hidden files (a take's temporary file, the lock), modes kept,
# and the copy verifies. A second run brings new archives and drops pruned ones.
# Exit 0, 1 on a failure, 77 (SKIP) without rsync.

set -u
snapkeep=$(realpath "${1:?usage: replicate.sh SNAPKEEP}")
script=$(cd "$(dirname "$0")/../examples" && pwd)/replicate-store.sh
if ! command -v rsync >/dev/null; then
	echo "SKIP: rsync not installed"
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/replicate.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {	# check WHAT COMMAND...
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL: $what"
	fi
}

mkdir -p "$work/src/queue" && echo "id: 1" >"$work/src/queue/m1.yaml" || exit 2
take() {	# take SET: an archive in STORE/SET
	"$snapkeep" take --store "$work/store/$1" --name "$1" -C "$work/src" queue >/dev/null
}
take full && take hourly && take hourly || exit 2
: >"$work/store/full/.full-20260101_020000.tar.zst.abc123"	# a take in progress
archives() {	# the archives under a store, relative, sorted
	(cd "$1" && find . -name '*.tar.zst' ! -name '.*' | sort)
}

check "first copy succeeds" "$script" "$work/store" "$work/copy"
check "every archive is copied" [ "$(archives "$work/store")" = "$(archives "$work/copy")" ]
check "no hidden file is copied" [ -z "$(find "$work/copy" -name '.*')" ]
check "archives stay 0600, directories 0700" [ -z "$(find "$work/copy" \
	\( -type f ! -perm 0600 \) -o \( -type d ! -perm 0700 \))" ]
check "the copy verifies" "$snapkeep" verify $(find "$work/copy" -name '*.tar.zst') >/dev/null

# prune one and copy: it goes; take one and copy: it arrives
old=$(find "$work/store/hourly" -name '*.tar.zst' | sort | head -n1)
rm "$old"
check "second copy succeeds" "$script" "$work/store/" "$work/copy/"
check "the pruned archive is gone" [ ! -e "$work/copy/hourly/$(basename "$old")" ]
take full || exit 2
check "third copy succeeds" "$script" "$work/store" "$work/copy"
check "new archives arrive" [ "$(archives "$work/store")" = "$(archives "$work/copy")" ]
check "a missing store is refused" eval '! "$script" "$work/none" "$work/copy2" 2>/dev/null'
check "the script never copies hidden files and deletes last" \
	grep -q -- "--exclude '\.\*' --delay-updates" "$script"
check "... and deletes only after the transfer" grep -q -- "--delete-after" "$script"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

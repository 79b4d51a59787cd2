#!/bin/sh
# Build snapfs and run every test: once with warnings as errors, once under
# AddressSanitizer and UndefinedBehaviorSanitizer; then the tests of the code
# with threads (the writer's workers, the frame cache, the pusher, foreign
# archives handing their state over, the daemon under the mount test) under
# ThreadSanitizer, whose reports from any process, the detached daemon's too,
# go to files that fail the suite. Mount tests need /dev/fuse; without it they
# report SKIP with the reason. Ends with "N passed, M failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
passed=0 failed=0 skipped=0

suite() {	# suite BUILD_DIR [meson options...]; $TESTS: only these (default every test)
	dir=$1
	shift
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
		rm -f "$dir.setup.log"
	fi
	ninja -C "$dir" || return 1
	rm -f "$dir"/tsan-report.*
	# shellcheck disable=SC2086
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		TSAN_OPTIONS="log_path=$top/$dir/tsan-report halt_on_error=0" \
		meson test -C "$dir" --print-errorlogs ${TESTS:-} >"$dir/test-output.txt" 2>&1
	rc=$?
	cat "$dir/test-output.txt"
	for r in "$dir"/tsan-report.*; do
		[ -f "$r" ] || continue
		cat "$r"
		echo "ThreadSanitizer: a report in $r"
		failed=$((failed + 1))
		rc=1
	done
	n() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$dir/test-output.txt" | tail -n 1; }
	passed=$((passed + $(n Ok)))
	failed=$((failed + $(n Fail) + $(n Timeout) + $(n 'Unexpected Pass')))
	skipped=$((skipped + $(n Skipped)))
	return $rc
}

status=0
suite build-ci -Dwerror=true -Dbuildtype=debugoptimized || status=1
suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || status=1
TESTS="zseek writer fcache push index mount" \
	suite build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized || status=1
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1	# a build failure counts
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

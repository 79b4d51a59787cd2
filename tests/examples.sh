#!/bin/bash
#
# examples.sh SNAPKEEP: the operator's files in examples/ are valid as shipped.
#
# - orchestrator-cc.yaml loads (snapkeep list with it; tests/test_config.c checks its content);
# - the systemd units pass `systemd-analyze verify` (with snapkeep's path put in, since verify
#   wants the executables to exist), where systemd-analyze exists: otherwise that check is
#   skipped, and so is the whole test if nothing failed (exit 77, meson's SKIP);
# - the cron file's entries have five valid time fields, a user and a snapkeep command;
# - the fstab line has six fields and the snapfs type.
# Exit 0, 1 naming each failure, or 77 when a check was skipped and none failed.

set -u
snapkeep=$(realpath "${1:?usage: examples.sh SNAPKEEP}")
examples=$(cd "$(dirname "$0")/../examples" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/examples.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# ---- the configuration ----
if "$snapkeep" -c "$examples/orchestrator-cc.yaml" list >"$work/out" 2>&1; then
	ok "orchestrator-cc.yaml loads"
else
	bad "orchestrator-cc.yaml does not load: $(cat "$work/out")"
fi

# ---- systemd units ----
units=(snapkeep@.service snapkeep-daily.service snapkeep-hourly.timer snapkeep-daily.timer
	snapkeep-verify.service snapkeep-verify.timer mnt-snapshots.mount)
if command -v systemd-analyze >/dev/null; then
	mkdir "$work/units"
	for u in "${units[@]}"; do
		sed "s|/usr/local/bin/snapkeep|$snapkeep|g" "$examples/$u" >"$work/units/$u"
	done
	# the timers' Unit= and the template are found beside them
	if (cd "$work/units" && SYSTEMD_UNIT_PATH="$work/units:" \
		systemd-analyze verify --man=no "${units[@]}") >"$work/out" 2>&1 &&
		! grep -q . "$work/out"; then
		ok "systemd-analyze verify: ${units[*]}"
	else
		bad "systemd-analyze verify: $(cat "$work/out")"
	fi
else
	echo "SKIP: systemd-analyze not installed; units not verified"
	skipped=$((skipped + 1))
fi
for u in snapkeep@.service snapkeep-daily.service snapkeep-verify.service; do
	if grep -q '^ExecStart=/usr/local/bin/snapkeep -c /etc/snapkeep/orchestrator-cc.yaml ' \
		"$examples/$u"; then
		ok "$u runs snapkeep with the example configuration"
	else
		bad "$u does not run /usr/local/bin/snapkeep -c /etc/snapkeep/orchestrator-cc.yaml"
	fi
done
if grep -qx 'Type=fuse.snapfs' "$examples/mnt-snapshots.mount" &&
	grep -qx 'Options=ro,allow_other,nodev,nosuid' "$examples/mnt-snapshots.mount"; then
	ok "mnt-snapshots.mount mounts fuse.snapfs ro,allow_other,nodev,nosuid"
else
	bad "mnt-snapshots.mount: want Type=fuse.snapfs, Options=ro,allow_other,nodev,nosuid"
fi

# ---- cron ----

# field VALUE MIN MAX: a cron time field: *, N, N-M, lists of those, each with an optional /STEP.
field() {
	local item lo hi
	IFS=, read -ra items <<<"$1"
	for item in "${items[@]}"; do
		[[ $item =~ ^(\*|([0-9]+)(-([0-9]+))?)(/([1-9][0-9]*))?$ ]] || return 1
		[ "${BASH_REMATCH[1]}" = '*' ] && continue
		lo=${BASH_REMATCH[2]} hi=${BASH_REMATCH[4]:-${BASH_REMATCH[2]}}
		((10#$lo >= $2 && 10#$hi <= $3 && 10#$lo <= 10#$hi)) || return 1
	done
}

cron_ok=0 entries=0
while IFS= read -r line; do
	[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
	[[ $line =~ ^[A-Z_]+= ]] && continue	# SHELL=, PATH=, MAILTO=
	entries=$((entries + 1))
	read -r m h dom mon dow user cmd <<<"$line"
	if field "$m" 0 59 && field "$h" 0 23 && field "$dom" 1 31 && field "$mon" 1 12 &&
		field "$dow" 0 7 && [ "$user" = root ] && [[ $cmd == snapkeep\ -c\ * ]]; then
		cron_ok=$((cron_ok + 1))
	else
		bad "snapkeep.cron: not a valid /etc/cron.d entry: $line"
	fi
done <"$examples/snapkeep.cron"
if [ "$entries" -ge 3 ] && [ "$cron_ok" -eq "$entries" ]; then
	ok "snapkeep.cron: $entries valid entries"
else
	bad "snapkeep.cron: $cron_ok of $entries entries valid (want at least 3)"
fi
# the validator itself must be able to say no
for wrong in "60 * * * *" "5 24 * * *" "5 * 0 * *" "5 * * 13 *" "5 * * * 8" "*/0 * * * *" "5 *"; do
	read -r m h dom mon dow <<<"$wrong"
	if field "$m" 0 59 && field "$h" 0 23 && field "${dom:-x}" 1 31 && field "${mon:-x}" 1 12 &&
		field "${dow:-x}" 0 7; then
		bad "the cron check accepts '$wrong'"
	fi
done

# ---- fstab ----
fstab=$(grep -v '^[[:space:]]*#' "$examples/fstab" | grep .)
read -r what where type opts dump pass rest <<<"$fstab"
if [ "$(wc -l <<<"$fstab")" -eq 1 ] && [ "$type" = fuse.snapfs ] && [ -n "$pass" ] &&
	[ -z "$rest" ] && [[ ,$opts, == *,ro,* && ,$opts, == *,allow_other,* ]] &&
	[ "$where" = /mnt/snapshots ] && [ "$what" = /backup/orchestrator-cc ] && [ "$dump" = 0 ]; then
	ok "fstab: $fstab"
else
	bad "fstab: want one 'STORE MNT fuse.snapfs ro,allow_other,... 0 0' line, got: $fstab"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
[ "$skipped" -eq 0 ] || exit 77

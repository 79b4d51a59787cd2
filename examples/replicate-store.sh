#!/bin/sh
# replicate-store.sh STORE DEST: copy a snapkeep store to another disk or host with rsync.
#
#   replicate-store.sh /backup/orchestrator-cc /mnt/usb/orchestrator-cc
#   replicate-store.sh /backup/orchestrator-cc backup@offsite:/srv/orchestrator-cc
#
# The copy is a store like the original (archives 0600, directories 0700, nothing else
# needed), so it mounts and restores there unchanged. Safe to run from cron at any time:
# - hidden files are never copied: a take in progress writes a hidden temporary file, and
#   the store's lock file is hidden too (--exclude '.*');
# - new archives appear at DEST only once all of them are complete (--delay-updates), and
#   archives pruned from STORE are deleted at DEST only after that (--delete-after), so a
#   copy cut short by a crash or a full disk still holds every archive it held before;
# - a snapshot pruned from STORE while rsync runs (rsync's exit 24, "vanished") is normal.
# Extra rsync options can be given in RSYNC_OPTS (e.g. "--bwlimit=10m" or "-e 'ssh -p 2222'").
# Exit status: rsync's, with 24 mapped to 0.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: replicate-store.sh STORE DEST" >&2
	exit 2
fi
src=${1%/}
dest=${2%/}
if [ ! -d "$src" ]; then
	echo "replicate-store.sh: no store at '$src'" >&2
	exit 2
fi

rc=0
# shellcheck disable=SC2086 # RSYNC_OPTS is a list of options
rsync -a --numeric-ids --exclude '.*' --delay-updates \
	--delete-after --chmod=D0700 ${RSYNC_OPTS:-} "$src/" "$dest/" || rc=$?
if [ "$rc" -eq 24 ]; then
	echo "replicate-store.sh: some archives were pruned during the copy; the next run drops them" >&2
	rc=0
fi
exit "$rc"

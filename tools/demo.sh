#!/bin/sh
# The main job on the bundled example: snapshot examples/orchestrator-cc into a
# demo store with the example configuration, list the store, mount it with
# snapfs, browse it, restore a folder with cp -a, and unmount.
# Usage: tools/demo.sh [BUILD_DIR]   (DEMO_DIR overrides /tmp/snapfs-demo)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
demo=${DEMO_DIR:-/tmp/snapfs-demo}
snapkeep=$build/tools/snapkeep

mkdir -p "$demo"
chmod 600 "$top/examples/orchestrator-cc/.env"
# the shipped config with the store and source pointed at the demo
sed -e "s|^store: [^ ]*|store: $demo/store|" \
    -e "s|^source: [^ ]*|source: $top/examples/orchestrator-cc|" \
    "$top/examples/orchestrator-cc.yaml" >"$demo/orchestrator-cc.yaml"

echo "\$ snapkeep -c $demo/orchestrator-cc.yaml take"
"$snapkeep" -c "$demo/orchestrator-cc.yaml" take
echo
echo "\$ snapkeep -c $demo/orchestrator-cc.yaml list"
"$snapkeep" -c "$demo/orchestrator-cc.yaml" list

snapfs=$build/fs/snapfs
mnt=$demo/mnt
if [ ! -e /dev/fuse ] || [ ! -x "$snapfs" ]; then
	echo
	echo "(no /dev/fuse or no snapfs binary here: skipping the mount)"
	exit 0
fi
mkdir -p "$mnt"
fusermount3 -u "$mnt" 2>/dev/null || true
echo
echo "\$ snapfs $demo/store $mnt"
"$snapfs" "$demo/store" "$mnt"
trap 'fusermount3 -u "$mnt"' EXIT
echo
echo "\$ ls $mnt $mnt/full"
ls "$mnt" "$mnt/full"
echo
echo "\$ ls -la $mnt/full/latest/"
ls -la "$mnt/full/latest/"
echo
echo "\$ test -f $mnt/full/latest/config/cc-cluster.yaml && echo present"
test -f "$mnt/full/latest/config/cc-cluster.yaml" && echo present
echo
echo "\$ cp -a $mnt/full/latest/config $demo/restored-config && diff -r ... && echo identical"
rm -rf "$demo/restored-config"
cp -a "$mnt/full/latest/config" "$demo/restored-config"
diff -r "$top/examples/orchestrator-cc/config" "$demo/restored-config" && echo identical
echo
echo "\$ fusermount3 -u $mnt"

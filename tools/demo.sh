#!/bin/sh
# The main job on the bundled example: snapshot examples/orchestrator-cc into a
# demo store with the example configuration, then list the store.
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

#!/bin/sh
# Install what snapfs needs to build and test on Debian 12 (run as root).
# Installs nothing when every package is already there.
set -eu
pkgs="meson ninja-build pkg-config gcc libc6-dev
      libfuse3-dev fuse3 libarchive-dev libyaml-dev libzstd-dev check
      zstd tar libarchive-tools attr
      zlib1g-dev liblz4-dev liblzma-dev libbz2-dev restic jq python3 python3-cryptography xz-utils bzip2 lz4 rsync
      systemd tzdata"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing:$missing; run as root (sudo $0)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing

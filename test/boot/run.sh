#!/usr/bin/env bash
# make test-boot: builds the boot bed's guest image (cached under
# $NODEPREP_CACHE/boot) with the project's Packer plugin, then runs every
# test in test/boot against it. Extra arguments go to `go test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=$PATH:/usr/local/go/bin
SECONDS=0
if [[ $(id -u) != 0 ]]; then
  echo "test/boot/run.sh: SKIP: needs root (debootstrap and chroot build the image)"
  exit 0
fi
"$repo/test/boot/image.sh" >/dev/null
echo "[test-boot] image ready after ${SECONDS}s" >&2
cd "$repo"
NODEPREP_BOOT=1 go test -count=1 -timeout 60m -v ./test/boot/ "$@"
echo "[test-boot] took ${SECONDS}s" >&2

#!/usr/bin/env bash
# make test-arm64: the agent's unit tests built for linux/arm64 and run under
# qemu-aarch64 (user-mode emulation, Debian's qemu-user-static), so code that
# depends on word size, alignment or GOARCH-specific files is exercised as on
# Graviton. Usage: test/arm64/run.sh [PACKAGES...] (default ./agent/... ./internal/...)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS=0
log() { printf '[test-arm64 %4ds] %s\n' "$SECONDS" "$*" >&2; }
if ! command -v qemu-aarch64-static >/dev/null; then
  if [[ $(id -u) != 0 ]]; then
    echo "test/arm64/run.sh: SKIP: qemu-aarch64-static missing and not root to install qemu-user-static"
    exit 0
  fi
  . "$repo/test/packer/need.sh"
  need qemu-aarch64-static:qemu-user-static
fi
cd "$repo"
(($#)) || set -- ./agent/... ./internal/...
# qemu's user-mode netlink translation refuses NETLINK_ROUTE multicast
# subscriptions ("protocol not supported"): the one test that waits for a link
# through them is an emulator limit, not an arm64 one (it runs natively in make test).
skip='^TestWaitForMACSeesALinkThatAppearsLater$'
log "go test (GOARCH=arm64, -exec qemu-aarch64-static, -skip $skip) $*"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go test -count=1 -timeout 30m -exec qemu-aarch64-static -skip "$skip" "$@"
log "done in ${SECONDS}s"

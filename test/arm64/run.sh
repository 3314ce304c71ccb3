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
# qemu's user mode opens netlink sockets of NETLINK_ROUTE, KOBJECT_UEVENT and
# AUDIT only (linux-user/syscall.c, do_socket) and fails the others with
# EPROTONOSUPPORT, "protocol not supported"; and it answers RTM_NEWLINKPROP
# (adding an altname) with "operation not supported".
# netlink.NewHandleAt(ns) without a family opens XFRM and NETFILTER sockets
# too, so a test whose veth fixture uses such a handle fails under emulation
# before the code under test runs (the code asks for NETLINK_ROUTE only).
# These are skipped here, each named with why; they run natively in make test.
skips=(
  "TestLinkCheckThroughNetlink|internal/doctor: its fixture's netlink.NewHandleAt(ns) opens XFRM/NETFILTER sockets (protocol not supported), and with a NETLINK_ROUTE handle its LinkAddAltName is RTM_NEWLINKPROP (operation not supported)"
  "TestLinkSourceReportsANewLink|internal/watch: its fixture's netlink.NewHandleAt(ns) opens XFRM/NETFILTER sockets (protocol not supported); with NewHandleAt(ns, unix.NETLINK_ROUTE) it passes under qemu-aarch64"
)
skip=
for s in "${skips[@]}"; do
  skip+="${skip:+|}^${s%%|*}\$"
  log "SKIP ${s%%|*}: qemu-aarch64 user mode refuses it: ${s#*|}"
done
log "go test (GOARCH=arm64, -exec qemu-aarch64-static) $*"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go test -count=1 -timeout 30m -exec qemu-aarch64-static -skip "$skip" "$@"
log "done in ${SECONDS}s"

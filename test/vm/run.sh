#!/usr/bin/env bash
# Runs the real-kernel VM tests (make test-vm): every test named TestVM* in
# test/vm, test/e2e and internal/, with the bed required (NODEPREP_VM=1), so a machine
# that cannot install QEMU fails instead of silently skipping.
#
# First call: apt-get installs qemu-system-x86 busybox-static cpio kmod and
# fetches Debian's cloud kernel into ${NODEPREP_CACHE:-<repo>/.cache}/vm.
# Later calls reuse the cache and need no network.
#
# Extra arguments go to go test, e.g. ./test/vm/run.sh -v -run TestVMBind
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NODEPREP_VM=1
export NODEPREP_CACHE="${NODEPREP_CACHE:-$root/.cache}"
export PATH="$PATH:/usr/local/go/bin"
exec go test -count=1 -timeout 30m -run '^TestVM' "$@" ./test/vm/... ./test/e2e/... ./internal/...

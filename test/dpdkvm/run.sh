#!/usr/bin/env bash
# DPDK host preparation against a real kernel (QEMU, test/vm): the real
# nodeprep binary end to end, the DPDK steps with timings, and 1Gi pages.
# The bed is required (NODEPREP_VM=1): a machine that cannot install QEMU
# fails instead of skipping. Packages run one at a time (-p 1): each VM
# keeps 2 host CPUs busy, and the timings are only meaningful alone.
# Extra arguments go to go test, e.g. -v.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NODEPREP_VM=1
export NODEPREP_CACHE="${NODEPREP_CACHE:-$root/.cache}"
export PATH="$PATH:/usr/local/go/bin"
exec go test -p 1 -count=1 -timeout 30m -run '^TestVM' "$@" ./test/dpdkvm/ ./internal/bootstrap/ ./internal/hugepages/

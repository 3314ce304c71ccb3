#!/bin/sh
# Puts the SR-IOV network device plugin's tag v3.9.0 in upstream/, which
# go.mod replaces the module with: the module proxy does not serve it (its
# v3 tags lack a /v3 module path). SRIOVDP_GIT may name a local clone.
set -eu
cd "$(dirname "$0")"
[ -f upstream/go.mod ] && exit 0
src=${SRIOVDP_GIT:-https://github.com/k8snetworkplumbingwg/sriov-network-device-plugin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --quiet --depth 1 --branch v3.9.0 "$src" "$tmp/dp"
rm -rf upstream "$tmp/dp/.git" "$tmp/dp/vendor"
mv "$tmp/dp" upstream

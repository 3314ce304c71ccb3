#!/bin/sh
# Refreshes upstream/: the SR-IOV network device plugin's tag v3.9.0, cut to
# what the judge builds (LICENSE, go.mod, go.sum and pkg/'s non-test Go
# files). The copy is committed because the Go module proxy does not serve
# the plugin (its v3 tags have no /v3 module path) and CI reaches nothing
# but the package registries; go.mod replaces the module with it. Run this
# only to move to another tag (SRIOVDP_GIT may name a local clone).
set -eu
cd "$(dirname "$0")"
src=${SRIOVDP_GIT:-https://github.com/k8snetworkplumbingwg/sriov-network-device-plugin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone --quiet --depth 1 --branch v3.9.0 "$src" "$tmp/dp"
rm -rf upstream
mkdir -p upstream
cp "$tmp/dp/LICENSE" "$tmp/dp/go.mod" "$tmp/dp/go.sum" upstream/
(cd "$tmp/dp" && find pkg -name '*.go' ! -name '*_test.go') | while read -r f; do
	mkdir -p "upstream/$(dirname "$f")"
	cp "$tmp/dp/$f" "upstream/$f"
done

#!/usr/bin/env bash
# `packer validate` of packer/example/ with real Packer 1.11.2, the amazon
# plugin (built from the Go module proxy: packer init cannot reach its release
# downloads here) and this repo's nodeprep plugin. No AWS credentials needed:
# validate does not evaluate data sources. Also checks `packer fmt` and that a
# bad provisioner value fails validation naming the field.
# Usage: validate-example.sh [PLUGIN_BINARY]   (built when omitted)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}
packer=$("$repo/packer/hack/ensure-tool.sh" packer)
amazon=$("$repo/packer/hack/ensure-tool.sh" packer-plugin-amazon)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plugin=${1:-}
if [[ -z $plugin ]]; then
  plugin=$tmp/packer-plugin-nodeprep
  (cd "$repo/packer" && go build -ldflags "-X github.com/nodeprep/nodeprep/packer/version.Version=0.1.0 -X github.com/nodeprep/nodeprep/packer/version.VersionPrerelease=" \
    -o "$plugin" ./cmd/packer-plugin-nodeprep)
fi

export PACKER_PLUGIN_PATH=$tmp/plugins PACKER_CONFIG_DIR=$tmp/config CHECKPOINT_DISABLE=1
mkdir -p "$PACKER_PLUGIN_PATH" "$PACKER_CONFIG_DIR" "$tmp/in/cni"
"$packer" plugins install --path "$amazon" github.com/hashicorp/amazon >/dev/null
"$packer" plugins install --path "$plugin" github.com/nodeprep/nodeprep >/dev/null

# Stand-in inputs: validate only checks that they exist and match their sums.
printf 'agent' >"$tmp/in/nodeprep"
printf 'source' >"$tmp/in/dpdk-kmods.tar.xz"
printf 'plugin' >"$tmp/in/cni/bridge"
(cd "$tmp/in/cni" && sha256sum bridge >SHA256SUMS)
vars=(
  -var "nodeprep_binary=$tmp/in/nodeprep"
  -var "cni_bundle_dir=$tmp/in/cni" -var cni_version=v1.6.2
  -var "dpdk_kmods_tarball=$tmp/in/dpdk-kmods.tar.xz"
  -var "dpdk_kmods_sha256=$(sha256sum "$tmp/in/dpdk-kmods.tar.xz" | cut -d' ' -f1)"
  -var "dpdk_kmods_revision=0~20220829+git-3"
)
cd "$repo/packer/example"
"$packer" fmt -check -diff .
"$packer" validate "${vars[@]}" .

if out=$("$packer" validate "${vars[@]}" -var dpdk_kmods_sha256="$(printf x | sha256sum | cut -d' ' -f1)" . 2>&1); then
  echo "validate accepted a tarball whose sha256 does not match" >&2
  exit 1
fi
grep -q 'igb_uio_source: .* has sha256' <<<"$out" || { echo "unexpected validate error: $out" >&2; exit 1; }
echo "packer validate packer/example: ok"

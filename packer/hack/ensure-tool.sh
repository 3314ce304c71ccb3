#!/usr/bin/env bash
# ensure-tool.sh packer|packer-sdc|packer-plugin-amazon
# Builds the pinned tool once from the Go module proxy into $NODEPREP_CACHE/bin
# and prints its path. Both are built as a dependency of a throwaway module
# because `go install pkg@version` is refused for these modules here.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo_root/.cache}
packer_version=v1.11.2
sdk_version=v0.6.1
cty_replace='github.com/zclconf/go-cty => github.com/nywilken/go-cty v1.13.3'

# v1.3.2: the newest release the module proxy serves here (v1.3.3 is refused).
amazon_version=v1.3.2
tool=${1:?usage: ensure-tool.sh packer|packer-sdc|packer-plugin-amazon}
case $tool in
  packer) module=github.com/hashicorp/packer; version=$packer_version; pkg=github.com/hashicorp/packer ;;
  packer-sdc) module=github.com/hashicorp/packer-plugin-sdk; version=$sdk_version; pkg=github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc ;;
  packer-plugin-amazon) module=github.com/hashicorp/packer-plugin-amazon; version=$amazon_version; pkg=github.com/hashicorp/packer-plugin-amazon ;;
  *) echo "ensure-tool.sh: unknown tool $tool" >&2; exit 2 ;;
esac

bin=$cache/bin/$tool-$version
if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

src=$cache/src/$tool-$version
mkdir -p "$src" "$cache/bin"
cat >"$src/go.mod" <<MOD
module nodeprep.local/build-$tool

go 1.22

require $module $version

replace $cty_replace
MOD
cat >"$src/tools.go" <<GO
//go:build tools

package tools

import _ "$pkg"
GO
(
  cd "$src"
  export GONOSUMDB=github.com/hashicorp/hcp-sdk-go GOFLAGS=-mod=mod GOWORK=off
  go mod tidy >&2
  go build -trimpath -o "$bin.tmp" "$pkg" >&2
)
mv "$bin.tmp" "$bin"
echo "$bin"

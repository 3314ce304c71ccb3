#!/usr/bin/env bash
# Builds the CNI bundle that the AMI carries under /opt/nodeprep/cni/<version>/:
# the Multus thin plugin, the reference plugins and whereabouts, plus a
# SHA256SUMS manifest. Everything comes from the Go module proxy at exact
# versions, so tests and the demo install the same binaries a node would.
#
# Each component is built in its own throwaway module that requires only that
# component, so its dependencies resolve to the versions its own go.mod pins
# (`go install pkg@version` is avoided: the proxy can refuse a module's version
# list, while an exact `require` works).
#
# Output: <cache>/cni-bundle/<version>/ ; prints that directory on stdout.
# The bundle is cached: it is rebuilt only when its SHA256SUMS is missing.
#
# Environment:
#   NODEPREP_CACHE       cache root (default <repo>/.cache)
#   CNI_BUNDLE_NO_WHEREABOUTS=1  leave whereabouts out
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}

plugins_module=github.com/containernetworking/plugins
plugins_version=v1.6.2
multus_module=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
multus_version=v4.1.4
whereabouts_module=github.com/k8snetworkplumbingwg/whereabouts
# v0.8.0: the newest release whose go.mod the module proxy serves here (v0.9.0's is refused).
whereabouts_version=v0.8.0

with_whereabouts=1
if [[ ${CNI_BUNDLE_NO_WHEREABOUTS:-} == 1 ]]; then
	with_whereabouts=0
fi

# The bundle version names its contents, so a changed pin is a new directory.
version="plugins-${plugins_version}_multus-${multus_version}"
if [[ $with_whereabouts == 1 ]]; then
	version+="_whereabouts-${whereabouts_version}"
fi
out=$cache/cni-bundle/$version

# "current" names the version to install when several are cached; nodeprep's
# installer follows it (internal/cnibundle CurrentLink).
point_current() {
	ln -sfn "$version" "$cache/cni-bundle/.current.$$"
	mv -T "$cache/cni-bundle/.current.$$" "$cache/cni-bundle/current"
}

# One build at a time: tests and make targets may call this concurrently.
mkdir -p "$cache/cni-bundle"
exec 9>"$cache/cni-bundle/.lock"
flock 9

if [[ -s $out/SHA256SUMS ]]; then
	point_current
	echo "$out"
	exit 0
fi

work=$cache/cni-bundle-build
mkdir -p "$work"
stage=$(mktemp -d "$cache/cni-bundle/.stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
ldflags="-s -w"

# build_component NAME MODULE VERSION PKG:BINARY...
build_component() {
	local name=$1 module=$2 version=$3
	shift 3
	local dir=$work/$name
	mkdir -p "$dir"
	local gomod
	gomod=$(cd "$dir" && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	if [[ -z $gomod ]]; then
		echo "build.sh: cannot download $module@$version" >&2
		return 1
	fi
	{
		echo "module nodeprep.dev/cni-bundle-build/$name"
		echo
		echo "go 1.23"
		echo
		echo "require $module $version"
		# Replace directives do not carry over from a dependency; copy them so
		# the build resolves exactly as upstream's does.
		awk '/^replace \(/{b=1; print; next} b{print; if ($0 ~ /^\)/) b=0; next} /^replace /{print}' "$gomod"
	} >"$dir/go.mod"
	rm -f "$dir/go.sum"
	local spec pkg bin
	for spec in "$@"; do
		pkg=${spec%%:*}
		bin=${spec##*:}
		echo "build.sh: building $bin from $pkg@$version" >&2
		(cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$stage/$bin" "$pkg")
	done
}

start=$(date +%s)
build_component plugins "$plugins_module" "$plugins_version" \
	"$plugins_module/plugins/main/host-device:host-device" \
	"$plugins_module/plugins/main/ipvlan:ipvlan" \
	"$plugins_module/plugins/main/macvlan:macvlan" \
	"$plugins_module/plugins/ipam/static:static" \
	"$plugins_module/plugins/ipam/host-local:host-local"
build_component multus "$multus_module" "$multus_version" \
	"$multus_module/cmd/multus:multus"
if [[ $with_whereabouts == 1 ]]; then
	build_component whereabouts "$whereabouts_module" "$whereabouts_version" \
		"$whereabouts_module/cmd:whereabouts"
fi

# Hash into a file outside the glob: with ">SHA256SUMS" the shell may create
# the empty manifest before "*" expands, and it would list itself.
(cd "$stage" && sha256sum -- * | LC_ALL=C sort -k2 >"$stage.sums" && mv "$stage.sums" SHA256SUMS)
chmod 0755 "$stage"
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$stage" "$out"
trap - EXIT
point_current
echo "build.sh: built $out in $(($(date +%s) - start))s" >&2
echo "$out"

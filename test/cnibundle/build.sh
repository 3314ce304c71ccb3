#!/usr/bin/env bash
# Builds the CNI bundle that the AMI carries under /opt/nodeprep/cni/<version>/:
# the Multus thin plugin, the reference plugins and whereabouts, plus a
# SHA256SUMS manifest. Everything comes from the Go module proxy at exact
# versions, so tests and the demo install the same binaries a node would.
#
# Two throwaway modules, built at the same time:
#   plugins  requires only containernetworking/plugins, so its dependencies
#            resolve to the versions its own go.mod pins; one `go build`
#            makes all five binaries (one dependency graph, one compile each).
#   k8s      requires multus and whereabouts together, so the Kubernetes
#            client both import is downloaded and compiled once (minimal
#            version selection takes the newer of the two pins, 0.29.x).
# `go install pkg@version` is avoided: the proxy can refuse a module's
# version list, while an exact `require` works.
#
# nodeprep's own plugin, nodeprep-ipam (internal/ipam), is built from this
# repository on every run (the Go build cache makes an unchanged one quick)
# and added to the cached upstream plugins; the bundle version names its
# hash, so a changed plugin is a new directory and the upstream plugins are
# never rebuilt for it.
#
# Progress (each phase, and a count of compiled packages) goes to stderr.
# Output: <cache>/cni-bundle/<version>/ ; prints that directory on stdout.
# The upstream plugins are cached: rebuilt only when their SHA256SUMS is missing.
#
# Environment:
#   NODEPREP_CACHE       cache root (default <repo>/.cache)
#   CNI_BUNDLE_GOARCH    amd64 (default) or arm64 (Graviton); an arm64 bundle
#                        is its own version under <cache>/cni-bundle-arm64/
#   CNI_BUNDLE_NO_WHEREABOUTS=1  leave whereabouts out
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}

plugins_module=github.com/containernetworking/plugins
# v1.10.0: host-device returns the pod's interface in DPDK mode too (since
# v1.7.0, "host-device: Return interface name in result"); v1.6.2 returned
# none, so Multus wrote no network-status entry for a DPDK attachment.
plugins_version=v1.10.0
multus_module=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
multus_version=v4.1.4
whereabouts_module=github.com/k8snetworkplumbingwg/whereabouts
# v0.8.0: the newest release whose go.mod the module proxy serves here (v0.9.0's is refused).
whereabouts_version=v0.8.0

with_whereabouts=1
if [[ ${CNI_BUNDLE_NO_WHEREABOUTS:-} == 1 ]]; then
	with_whereabouts=0
fi

goarch=${CNI_BUNDLE_GOARCH:-amd64}
case $goarch in
amd64 | arm64) ;;
*)
	echo "build.sh: CNI_BUNDLE_GOARCH=$goarch: want amd64 or arm64" >&2
	exit 2
	;;
esac

# The bundle version names its contents, so a changed pin is a new directory.
version="plugins-${plugins_version}_multus-${multus_version}"
if [[ $with_whereabouts == 1 ]]; then
	version+="_whereabouts-${whereabouts_version}"
fi
# amd64 keeps the directory it always had; another architecture gets its own
# root, so the two "current" links never point across architectures.
bundles=$cache/cni-bundle
if [[ $goarch != amd64 ]]; then
	version+="_linux-$goarch"
	bundles=$cache/cni-bundle-$goarch
fi
out=$bundles/$version

# "current" names the version to install when several are cached; nodeprep's
# installer follows it (internal/cnibundle CurrentLink).
point_current() {
	ln -sfn "$1" "$bundles/.current.$$"
	mv -T "$bundles/.current.$$" "$bundles/current"
}

# One build at a time: tests and make targets may call this concurrently.
mkdir -p "$bundles"
exec 9>"$bundles/.lock"
flock 9

# add_nodeprep_ipam builds nodeprep-ipam and prints the bundle directory
# that holds the upstream plugins of $out and it.
add_nodeprep_ipam() {
	local tmp sum final
	tmp=$(mktemp -d "$bundles/.ipam-XXXXXX")
	(cd "$repo" && CGO_ENABLED=0 GOARCH="$goarch" GOFLAGS= GOWORK=off go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/" ./internal/ipam/cmd/nodeprep-ipam) >&2 || {
		rm -rf "$tmp"
		echo "build.sh: building nodeprep-ipam failed" >&2
		return 1
	}
	sum=$(sha256sum "$tmp/nodeprep-ipam" | cut -c1-12)
	final=$bundles/${version}_nodeprep-ipam-$sum
	if [[ ! -s $final/SHA256SUMS ]]; then
		rm -rf "$tmp/bundle"
		cp -a "$out" "$tmp/bundle"
		mv "$tmp/nodeprep-ipam" "$tmp/bundle/"
		(cd "$tmp/bundle" && rm -f SHA256SUMS && sha256sum -- * | LC_ALL=C sort -k2 >"$tmp/sums" && mv "$tmp/sums" SHA256SUMS)
		rm -rf "$final"
		mv "$tmp/bundle" "$final"
	fi
	rm -rf "$tmp"
	echo "$final"
}

if [[ -s $out/SHA256SUMS ]]; then
	final=$(add_nodeprep_ipam)
	point_current "$(basename "$final")"
	echo "$final"
	exit 0
fi

work=$cache/cni-bundle-build
[[ $goarch == amd64 ]] || work+="-$goarch"
mkdir -p "$work"
stage=$(mktemp -d "$bundles/.stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off GOOS=linux GOARCH=$goarch
ldflags="-s -w"

start=$(date +%s)
progress() { echo "build.sh: [$(($(date +%s) - start))s] $*" >&2; }

# write_module NAME MODULE@VERSION... writes a go.mod requiring each module
# at its exact version. Replace directives do not carry over from a
# dependency; each module's are copied (the first one for a path wins) so the
# build resolves as upstream's does.
write_module() {
	local name=$1 dir=$work/$1
	shift
	mkdir -p "$dir"
	local spec gomod gomods=()
	for spec in "$@"; do
		progress "$name: fetching $spec"
		gomod=$(cd "$dir" && go mod download -json "$spec" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
		if [[ -z $gomod ]]; then
			echo "build.sh: cannot download $spec" >&2
			return 1
		fi
		gomods+=("$gomod")
	done
	{
		echo "module nodeprep.dev/cni-bundle-build/$name"
		echo
		echo "go 1.23"
		echo
		for spec in "$@"; do
			echo "require ${spec%@*} ${spec#*@}"
		done
		awk '/^replace \(/{b=1; next} b && /^\)/{b=0; next} b && /^[[:space:]]*(\/\/|$)/{next} b{print "replace " $0; next} /^replace /{sub(/^replace /, ""); print "replace " $0}' "${gomods[@]}" |
			awk '!seen[$2]++'
	} >"$dir/go.mod"
	rm -f "$dir/go.sum"
}

# build_module NAME PKG:BINARY... builds every package in one `go build`,
# printing a count of compiled packages as it goes.
build_module() {
	local name=$1 dir=$work/$1 bindir=$stage/.$1
	shift
	local spec pkgs=()
	for spec in "$@"; do
		pkgs+=("${spec%%:*}")
	done
	mkdir -p "$bindir"
	progress "$name: compiling ${#pkgs[@]} binaries"
	(cd "$dir" && go build -v -trimpath -ldflags "$ldflags" -o "$bindir/" "${pkgs[@]}") 2>&1 |
		awk -v name="$name" -v start="$start" '
			/^(#|go: |[^ ]*\.go:)/ || / error/ { print > "/dev/stderr"; next }
			++n % 100 == 0 { printf "build.sh: [%ds] %s: %d packages compiled\n", systime() - start, name, n > "/dev/stderr"; fflush("/dev/stderr") }'
	[[ ${PIPESTATUS[0]} == 0 ]] || return 1
	# go build names a binary after its package's last path element.
	for spec in "$@"; do
		mv "$bindir/$(basename "${spec%%:*}")" "$stage/${spec##*:}" || return 1
	done
	rmdir "$bindir" || return 1
	progress "$name: done"
}

build_plugins() {
	write_module plugins "$plugins_module@$plugins_version" &&
		build_module plugins \
			"$plugins_module/plugins/main/host-device:host-device" \
			"$plugins_module/plugins/main/ipvlan:ipvlan" \
			"$plugins_module/plugins/main/macvlan:macvlan" \
			"$plugins_module/plugins/ipam/static:static" \
			"$plugins_module/plugins/ipam/host-local:host-local"
}

build_k8s() {
	if [[ $with_whereabouts == 1 ]]; then
		write_module k8s "$multus_module@$multus_version" "$whereabouts_module@$whereabouts_version" &&
			build_module k8s "$multus_module/cmd/multus:multus" "$whereabouts_module/cmd:whereabouts"
	else
		write_module k8s "$multus_module@$multus_version" &&
			build_module k8s "$multus_module/cmd/multus:multus"
	fi
}

# The two modules share nothing, so they build side by side: one downloads
# while the other compiles.
build_plugins &
plugins_pid=$!
build_k8s &
k8s_pid=$!
failed=0
wait "$plugins_pid" || failed=1
wait "$k8s_pid" || failed=1
if [[ $failed == 1 ]]; then
	echo "build.sh: building the bundle failed" >&2
	exit 1
fi

# Hash into a file outside the glob: with ">SHA256SUMS" the shell may create
# the empty manifest before "*" expands, and it would list itself.
(cd "$stage" && sha256sum -- * | LC_ALL=C sort -k2 >"$stage.sums" && mv "$stage.sums" SHA256SUMS)
chmod 0755 "$stage"
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$stage" "$out"
trap - EXIT
final=$(add_nodeprep_ipam)
point_current "$(basename "$final")"
echo "build.sh: built $final in $(($(date +%s) - start))s" >&2
echo "$final"

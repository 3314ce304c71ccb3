#!/usr/bin/env bash
# Runs ec2sim and a command (e.g. the nodeprep agent) together inside a
# throwaway network namespace, so the command reaches the simulated EC2 and
# IMDS on that namespace's loopback and sees each attached ENI hot-plugged
# as a veth carrying the ENI's MAC.
#
# Usage: test/ec2sim/demo.sh [ec2sim flags...] -- command [args...]
#   EC2SIM_NETNS   namespace name (default nodeprep-demo); peers go to <name>-wire
#
# The command runs with AWS_ENDPOINT_URL_EC2, AWS_EC2_METADATA_SERVICE_ENDPOINT,
# AWS_REGION, test credentials, NODEPREP_EC2_ENDPOINT, NODEPREP_IMDS_ENDPOINT
# and EC2SIM_INSTANCE_ID exported. Needs root.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$root/.cache}
ns=${EC2SIM_NETNS:-nodeprep-demo}
peer=$ns-wire

simflags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do simflags+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ]; then
	echo "usage: $0 [ec2sim flags...] -- command [args...]" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$0: needs root for network namespaces" >&2
	exit 1
fi

mkdir -p "$cache"
(cd "$root" && go build -o "$cache/ec2sim" ./test/ec2sim/cmd/ec2sim)

tmp=$(mktemp -d)
sim=""
cleanup() {
	if [ -n "$sim" ]; then kill -INT "$sim" 2>/dev/null && wait "$sim" || true; fi
	ip netns del "$ns" 2>/dev/null || true
	ip netns del "$peer" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns"
ip netns add "$peer"
ip -n "$ns" link set lo up

mkfifo "$tmp/out"
ip netns exec "$ns" "$cache/ec2sim" -hotplug-netns "$ns" -hotplug-peer-netns "$peer" "${simflags[@]}" \
	>"$tmp/out" 2> >(sed 's/^/ec2sim: /' >&2) &
sim=$!

# The simulator prints its export lines, EC2SIM_INSTANCE_ID last, once it
# is serving; reading them blocks until then.
exec 3<"$tmp/out"
while :; do
	IFS= read -r line <&3 || { echo "$0: ec2sim exited before serving" >&2; exit 1; }
	case $line in
	export\ [A-Z0-9_]*=*) eval "$line" ;;
	*) echo "$0: unexpected ec2sim output: $line" >&2; exit 1 ;;
	esac
	case $line in export\ EC2SIM_INSTANCE_ID=*) break ;; esac
done

status=0
ip netns exec "$ns" "$@" || status=$?
exit "$status"

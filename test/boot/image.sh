#!/usr/bin/env bash
# Builds the boot bed's guest image with the project's own Packer plugin, and
# caches it under $NODEPREP_CACHE/boot/image-<key>/ (disk.raw, grub.lnx,
# id_ed25519). <key> hashes every input: the agent binary, the unit, the
# plugin, the bed's guest files and template, the CNI bundle and the base
# image, so a changed agent gets a freshly provisioned image.
#
#   1. the Debian bookworm base disk from test/packer/mkimage.sh (shared with
#      `make test-packer`, built once under a lock);
#   2. boots a copy of it in QEMU with SSH on a loopback port (and a NATed
#      network: the build installs dbus from Debian's mirror);
#   3. `packer build test/boot/image.pkr.hcl`: the nodeprep provisioner (agent,
#      unit, CNI bundle, kernel arguments, modules) and the bed's stand-ins for
#      kubelet.service and nodeadm-run.service;
#   4. powers the guest off and keeps the disk.
#
# Usage: image.sh          build if needed; print the image directory
#        image.sh --check  print the image directory if it is built, exit 3 if not
# Needs root (debootstrap). QEMU runs under TCG; NODEPREP_BOOT_ACCEL=kvm uses KVM.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}
export PATH=$PATH:/usr/local/go/bin
SECONDS=0
log() { printf '[boot-image %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

check_only=0
[[ ${1:-} == --check ]] && check_only=1

mkdir -p "$cache/boot/bin"
bindir=$cache/boot/bin
# Reproducible builds (-trimpath, no VCS stamp), so the key only changes when
# the code does.
(
  cd "$repo"
  # The agent as `make build` ships it: its tags are the Makefile's AGENT_TAGS.
  tags=$(sed -n 's/^AGENT_TAGS := //p' Makefile)
  CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags "$tags" -o "$bindir/nodeprep" ./agent
  ldflags="-X github.com/nodeprep/nodeprep/packer/version.Version=0.1.0 -X github.com/nodeprep/nodeprep/packer/version.VersionPrerelease="
  if [[ -f packer/go.mod ]]; then
    (cd packer && go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bindir/packer-plugin-nodeprep" ./cmd/packer-plugin-nodeprep)
  else
    go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bindir/packer-plugin-nodeprep" ./packer/cmd/packer-plugin-nodeprep
  fi
)

base=$cache/packer-test/image
bundle=
inputs() {
  sha256sum "$bindir/nodeprep" "$bindir/packer-plugin-nodeprep" "$repo/systemd/nodeprep.service" \
    "$repo"/test/boot/guest/* "$repo/test/boot/image.pkr.hcl" "$repo/test/boot/image.sh" | cut -d' ' -f1
  cat "$base/image-rev" 2>/dev/null || echo no-base
  [[ -n $bundle ]] && sha256sum "$bundle/SHA256SUMS" | cut -d' ' -f1
  true
}

if ((check_only)); then
  # The bundle is not built in check mode: use the one build.sh last made.
  bundle=$(readlink -f "$cache/cni-bundle/current" 2>/dev/null || true)
  key=$(inputs | sha256sum | cut -c1-16)
  out=$cache/boot/image-$key
  [[ -e $out/done ]] || { echo "no boot image for this tree at $out: run make test-boot to build it" >&2; exit 3; }
  echo "$out"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot)"
. "$repo/test/packer/need.sh"
need qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils debootstrap:debootstrap mkfs.ext4:e2fsprogs \
  ssh:openssh-client python3:python3 socat:socat

log "base image (test/packer/mkimage.sh)"
mkdir -p "$cache/packer-test"
flock "$cache/packer-test/image.lock" "$repo/test/packer/mkimage.sh" "$base" >&2
log "CNI bundle (test/cnibundle/build.sh)"
bundle=$("$repo/test/cnibundle/build.sh")
key=$(inputs | sha256sum | cut -c1-16)
out=$cache/boot/image-$key
if [[ -e $out/done ]]; then
  echo "$out"
  exit 0
fi

exec 8>"$cache/boot/image.lock"
flock 8
if [[ -e $out/done ]]; then
  echo "$out"
  exit 0
fi

log "provisioning $out"
packer=$("$repo/packer/hack/ensure-tool.sh" packer)
work=$(mktemp -d "$cache/boot/build-XXXXXX")
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp --sparse=always "$base/base.raw" "$work/disk.raw"

# TCG unless asked for KVM: a /dev/kvm that opens is not enough (a nested
# "kvm-pvm" host opens fine and never runs a stock Debian kernel).
accel=(-accel tcg,thread=multi -cpu max)
if [[ ${NODEPREP_BOOT_ACCEL:-} == kvm ]]; then
  accel=(-accel kvm -cpu host)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
qemu-system-x86_64 -machine q35 "${accel[@]}" -m 2048 -smp 2 \
  -kernel "$base/vmlinuz" -initrd "$base/initrd.img" -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
  -drive file="$work/disk.raw",format=raw,if=virtio \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:"$port"-:22 -device virtio-net-pci,netdev=n0 \
  -display none -monitor none -serial file:"$work/console.log" &
qemu_pid=$!
# tail --pid ends the wait early if QEMU dies.
if ! timeout 900 grep -q -m1 'Started.*ssh.service' <(tail --pid="$qemu_pid" -n +1 -F "$work/console.log" 2>/dev/null); then
  tail -n 30 "$work/console.log" >&2
  die "guest sshd did not start"
fi

export PACKER_PLUGIN_PATH=$work/plugins PACKER_CONFIG_DIR=$work/packer-config CHECKPOINT_DISABLE=1
mkdir -p "$PACKER_PLUGIN_PATH" "$PACKER_CONFIG_DIR"
"$packer" plugins install --path "$bindir/packer-plugin-nodeprep" github.com/nodeprep/nodeprep >&2
"$packer" build -color=false \
  -var "ssh_port=$port" -var "ssh_private_key_file=$base/id_ed25519" \
  -var "nodeprep_binary=$bindir/nodeprep" -var "service_file=$repo/systemd/nodeprep.service" \
  -var "config_file=$repo/test/boot/guest/config.yaml" \
  -var "cni_bundle_dir=$bundle" -var "cni_version=$(basename "$bundle")" \
  -var "guest_dir=$repo/test/boot/guest" \
  "$repo/test/boot/image.pkr.hcl" >&2 || die "packer build failed"

ssh -i "$base/id_ed25519" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o BatchMode=yes -o LogLevel=ERROR root@127.0.0.1 'systemctl -i poweroff' || true
timeout 300 tail --pid="$qemu_pid" -f /dev/null || die "guest did not power off"
wait "$qemu_pid" || true
qemu_pid=

rm -rf "$out.tmp" && mkdir -p "$out.tmp"
mv "$work/disk.raw" "$out.tmp/disk.raw"
cp "$base/grub.lnx" "$base/id_ed25519" "$out.tmp/"
touch "$out.tmp/done"
# Older images were provisioned from older inputs; only a bed already
# running from one (another worktree's, or an older commit's) uses it still:
# each holds a shared flock on its image's in-use file (bed.go), so an image
# is removed only when nothing holds it.
for old in "$cache"/boot/image-*/; do
  old=${old%/}
  [[ $old == "$out.tmp" ]] && continue
  flock -n -x "$old/in-use" rm -rf "$old" || log "kept $old: a bed is using it"
done
mv "$out.tmp" "$out"
log "built $out"
echo "$out"

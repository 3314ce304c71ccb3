#!/usr/bin/env bash
# Acceptance test of packer-plugin-nodeprep with real Packer 1.11.2.
#
# 1. installs its tools (qemu, debootstrap, ...) and builds Packer and the plugin;
# 2. boots a Debian bookworm guest (cloud kernel + headers, sshd) in qemu/TCG with
#    SSH forwarded to a loopback port;
# 3. `packer build` with the null builder runs the nodeprep provisioner over SSH:
#    the real agent binary, a checksummed CNI bundle, igb_uio built from Debian's
#    dpdk-kmods source for the guest's installed kernel, kernel arguments...;
# 4. checks the result over SSH, runs the build again (must change nothing), then
#    reboots the guest through the GRUB config that update-grub wrote and checks
#    /proc/cmdline, the 1Gi hugepage and that igb_uio loads. The image has two
#    kernels and the build runs on the older one; the reboot comes up on the
#    newer one, so igb_uio must have been built for a kernel that was not running;
# 5. `packer validate` of packer/example/ (test/packer/validate-example.sh).
#
# Everything downloaded is cached under $NODEPREP_CACHE (default <repo>/.cache).
# Needs root (apt-get, debootstrap, chroot); skips with a message otherwise.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}
work=$cache/packer-test
SECONDS=0

log() { printf '[test-packer %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [[ $(id -u) != 0 ]]; then
  echo "test/packer/run.sh: SKIP: needs root (apt-get, debootstrap, chroot)"
  exit 0
fi

# --- tools -------------------------------------------------------------------
. "$repo/test/packer/need.sh"
need qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap mkfs.ext4:e2fsprogs \
  ssh:openssh-client ssh-keygen:openssh-client python3:python3 xz:xz-utils

mkdir -p "$work"
log "guest image"
"$repo/test/packer/mkimage.sh" "$work/image"
key=$work/image/id_ed25519

log "packer"
packer=$("$repo/packer/hack/ensure-tool.sh" packer)
"$packer" version >&2

log "plugin and agent"
bindir=$work/bin
mkdir -p "$bindir"
# The plugin is its own module under packer/; the agent is the root module.
(
  cd "$repo/packer"
  go build -ldflags "-X github.com/nodeprep/nodeprep/packer/version.Version=0.1.0 -X github.com/nodeprep/nodeprep/packer/version.VersionPrerelease=" \
    -o "$bindir/packer-plugin-nodeprep" ./cmd/packer-plugin-nodeprep
)
(cd "$repo" && CGO_ENABLED=0 go build -o "$bindir/nodeprep" ./agent)
"$bindir/packer-plugin-nodeprep" describe >&2; echo >&2

# --- inputs: dpdk-kmods source and CNI bundle, both from Debian packages -----
debs=$work/debs
mkdir -p "$debs"
fetch_deb() { # fetch_deb PACKAGE -> path of the .deb (cached)
  local f
  f=$(ls "$debs/$1"_*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $f ]]; then
    # apt-get download fails when the package lists are missing: update once then.
    (cd "$debs" && apt-get download "$1" >&2) || { apt-get update -q >&2 && (cd "$debs" && apt-get download "$1" >&2); }
    f=$(ls "$debs/$1"_*.deb | head -n1)
  fi
  echo "$f"
}

kmods_deb=$(fetch_deb dpdk-kmods-dkms)
kmods_rev=$(dpkg-deb -f "$kmods_deb" Version)
kmods_tar=$work/dpdk-kmods-$kmods_rev.tar.xz
if [[ ! -s $kmods_tar ]]; then
  x=$(mktemp -d)
  dpkg-deb -x "$kmods_deb" "$x"
  tar -C "$x/usr/src" -cJf "$kmods_tar.tmp" .
  rm -rf "$x"
  mv "$kmods_tar.tmp" "$kmods_tar"
fi
kmods_sha=$(sha256sum "$kmods_tar" | cut -d' ' -f1)

cni_deb=$(fetch_deb containernetworking-plugins)
# The agent's bundle reader takes [A-Za-z0-9._-] version names.
cni_version=debian-$(dpkg-deb -f "$cni_deb" Version | tr -c 'A-Za-z0-9._\n-' '-')
cni_dir=$work/cni-$cni_version
if [[ ! -s $cni_dir/SHA256SUMS ]]; then
  x=$(mktemp -d)
  dpkg-deb -x "$cni_deb" "$x"
  rm -rf "$cni_dir.tmp" && mkdir -p "$cni_dir.tmp"
  # The reference plugins the agent installs by default, and a few more.
  for p in host-device host-local ipvlan macvlan static bridge loopback tuning; do
    install -m 0755 "$x/usr/lib/cni/$p" "$cni_dir.tmp/$p"
  done
  (cd "$cni_dir.tmp" && sha256sum host-device host-local ipvlan macvlan static bridge loopback tuning >SHA256SUMS)
  rm -rf "$x" "$cni_dir"
  mv "$cni_dir.tmp" "$cni_dir"
fi

# --- guest -------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run=$(mktemp -d "$work/run-XXXXXX")
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true; fi
  [[ ${KEEP_RUN:-} == 1 ]] || rm -rf "$run"
}
trap cleanup EXIT
cp --sparse=always "$work/image/base.raw" "$run/disk.raw"

# boot_guest KERNEL_ARGS...: start qemu in the background on $run/disk.raw.
boot_guest() {
  : >"$run/console.log"
  qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 4096 -smp 2 \
    "$@" \
    -drive file="$run/disk.raw",format=raw,if=virtio \
    -netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:"$port"-:22 -device virtio-net-pci,netdev=n0 \
    -display none -monitor none -serial file:"$run/console.log" &
  qemu_pid=$!
}

# wait_for_sshd: block until the guest's console reports sshd started (tail -F
# follows the file with inotify), bounded by a timeout for a hung boot.
wait_for_sshd() {
  if ! timeout 900 grep -q -m1 'Started.*ssh.service' <(tail -n +1 -F "$run/console.log" 2>/dev/null); then
    tail -n 30 "$run/console.log" >&2
    die "guest sshd did not start"
  fi
}

gssh() {
  ssh -i "$key" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o LogLevel=ERROR -o ServerAliveInterval=15 -o ServerAliveCountMax=8 root@127.0.0.1 "$@"
}

# poweroff_guest: clean shutdown, then wait for qemu to exit (bounded: a guest
# that ignores the request is killed and the test fails).
poweroff_guest() {
  gssh 'systemctl -i poweroff' || true
  if ! timeout 300 tail --pid="$qemu_pid" -f /dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    die "guest did not power off"
  fi
  wait "$qemu_pid" || true
  qemu_pid=
}

log "booting guest (direct kernel boot, TCG) on 127.0.0.1:$port"
boot_guest -kernel "$work/image/vmlinuz" -initrd "$work/image/initrd.img" -append "root=/dev/vda rw console=ttyS0 net.ifnames=0"
wait_for_sshd
log "guest is up: $(gssh 'uname -r; ls /lib/modules' | tr '\n' ' ')"

# --- packer build ------------------------------------------------------------
export PACKER_PLUGIN_PATH=$work/plugins PACKER_CONFIG_DIR=$work/packer-config CHECKPOINT_DISABLE=1
rm -rf "$PACKER_PLUGIN_PATH"
mkdir -p "$PACKER_PLUGIN_PATH" "$PACKER_CONFIG_DIR"
"$packer" plugins install --path "$bindir/packer-plugin-nodeprep" github.com/nodeprep/nodeprep >&2
"$packer" plugins installed >&2

vars=(
  -var "ssh_port=$port" -var "ssh_private_key_file=$key"
  -var "nodeprep_binary=$bindir/nodeprep" -var "service_file=$repo/systemd/nodeprep.service"
  -var "config_file=$repo/configs/examples/minimal.yaml"
  -var "cni_bundle_dir=$cni_dir" -var "cni_version=$cni_version"
  -var "igb_uio_source=$kmods_tar" -var "igb_uio_sha256=$kmods_sha" -var "igb_uio_revision=$kmods_rev"
)
# Stage 5 runs a checksummed script once per installed kernel with KVER set;
# this one only records the kernels it was run for.
wc_script=$bindir/vfio-wc-record.sh
printf '#!/bin/sh\nset -eu\necho "$KVER" >>/var/lib/nodeprep-vfio-wc-kernels\n' >"$wc_script"
vars+=(-var "vfio_wc_script=$wc_script" -var "vfio_wc_script_sha256=$(sha256sum "$wc_script" | cut -d' ' -f1)")
template=$repo/test/packer/acceptance.pkr.hcl
"$packer" validate "${vars[@]}" "$template" >&2

log "packer build #1"
t0=$SECONDS
"$packer" build -color=false "${vars[@]}" "$template" 2>&1 | tee "$run/build1.log" >&2
[[ ${PIPESTATUS[0]} == 0 ]] || die "packer build #1 failed"
log "packer build #1 took $((SECONDS - t0))s"

# --- checks on the guest ------------------------------------------------------
log "checking the guest"
kernels=$(gssh 'ls /lib/modules' | sort -V | tr '\n' ' ')
newest=${kernels% }
newest=${newest##* }
running=$(gssh 'uname -r')
[[ $running != "$newest" ]] || die "guest runs its newest kernel: the test could not tell installed from running kernels"
gssh sh -s -- "$cni_version" "$kmods_rev" $kernels <<'EOF' || die "guest checks failed"
set -eu
cni=$1 rev=$2
shift 2
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
/usr/bin/nodeprep version
/usr/bin/nodeprep validate /etc/nodeprep/config.yaml
[ "$(systemctl is-enabled nodeprep.service)" = enabled ] || fail "nodeprep.service not enabled"
[ "$(systemctl is-enabled nodeprep-cni-refresh.path)" = enabled ] || fail "nodeprep-cni-refresh.path not enabled"
(cd "/opt/nodeprep/cni/$cni" && sha256sum -c --strict SHA256SUMS)
[ "$(readlink /opt/nodeprep/cni/current)" = "$cni" ] || fail "/opt/nodeprep/cni/current does not name $cni"
for k in "$@"; do
  [ -f "/lib/modules/$k/extra/igb_uio.ko" ] || fail "no igb_uio.ko for installed kernel $k"
  [ "$(modinfo -k "$k" -F vermagic igb_uio | cut -d' ' -f1)" = "$k" ] || fail "igb_uio vermagic is not $k"
  echo "igb_uio for installed kernel $k: ok (running kernel: $(uname -r))"
done
[ "$(sort /var/lib/nodeprep-vfio-wc-kernels | tr '\n' ' ')" = "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" ] ||
  fail "vfio_wc_script did not run once per installed kernel: $(cat /var/lib/nodeprep-vfio-wc-kernels)"
grep -qx 'options igb_uio wc_activate=1' /etc/modprobe.d/nodeprep-image.conf || fail "wc_activate not in modprobe.d"
grep -qx "revision=$rev" /opt/nodeprep/igb_uio/SOURCE || fail "igb_uio source revision not recorded"
grep -qx igb_uio /etc/modules-load.d/nodeprep-image.conf || fail "igb_uio not in modules-load.d"
for a in default_hugepagesz=1G hugepagesz=1G hugepages=1 intel_iommu=on iommu=pt isolcpus=1; do
  grep '^GRUB_CMDLINE_LINUX=' /etc/default/grub | grep -qwF -- "$a" || fail "$a not in /etc/default/grub"
  grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | grep -qwF -- "$a" || fail "$a not in grub.cfg"
done
[ "$(readlink /etc/udev/rules.d/99-vpc-policy-routes.rules)" = /dev/null ] || fail "udev rule not masked"
[ ! -e /tmp/packer-nodeprep ] || fail "staging dir left behind"
echo "guest checks passed"
EOF

log "packer build #2 (idempotency)"
grub_before=$(gssh 'sha256sum /etc/default/grub /lib/modules/*/extra/igb_uio.ko /etc/modules-load.d/nodeprep-image.conf')
t0=$SECONDS
"$packer" build -color=false "${vars[@]}" "$template" 2>&1 | tee "$run/build2.log" >&2
[[ ${PIPESTATUS[0]} == 0 ]] || die "packer build #2 failed"
log "packer build #2 took $((SECONDS - t0))s"
for k in $kernels; do
  grep -q "igb_uio for $k is up to date" "$run/build2.log" || die "build #2 rebuilt igb_uio for $k"
done
grep -q "already has the kernel arguments" "$run/build2.log" || die "build #2 edited /etc/default/grub again"
[[ $(gssh 'sha256sum /etc/default/grub /lib/modules/*/extra/igb_uio.ko /etc/modules-load.d/nodeprep-image.conf') == "$grub_before" ]] ||
  die "build #2 changed files"

# --- reboot through the GRUB config update-grub wrote -------------------------
log "rebooting the guest through its own grub.cfg"
gssh 'systemctl disable nodeprep.service' # the agent needs EC2; keep it out of this boot
poweroff_guest
boot_guest -kernel "$work/image/grub.lnx"
wait_for_sshd
gssh sh -s -- "$newest" <<'EOF' || die "post-reboot checks failed"
set -eu
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
[ "$(uname -r)" = "$1" ] || fail "booted $(uname -r), want the newest installed kernel $1"
cat /proc/cmdline
for a in default_hugepagesz=1G hugepagesz=1G hugepages=1 intel_iommu=on iommu=pt isolcpus=1; do
  grep -qwF -- "$a" /proc/cmdline || fail "$a not on the booted kernel command line"
done
[ "$(cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)" = 1 ] || fail "no 1Gi hugepage reserved"
grep -q '^Hugepagesize: *1048576 kB' /proc/meminfo || fail "default hugepage size is not 1Gi"
# systemd-modules-load loaded both from modules-load.d at boot.
[ -d /sys/module/igb_uio ] || fail "igb_uio was not loaded at boot"
[ -d /sys/module/vfio_pci ] || fail "vfio-pci was not loaded at boot"
echo "post-reboot checks passed: $(lsmod | grep -E '^(igb_uio|uio|vfio_pci) ' | cut -d' ' -f1 | tr '\n' ' ')"
EOF
poweroff_guest

log "packer validate of packer/example (real amazon + nodeprep plugins)"
"$repo/test/packer/validate-example.sh" "$bindir/packer-plugin-nodeprep" >&2

log "PASS: packer acceptance test in ${SECONDS}s"
echo "test-packer: 1 passed, 0 failed"

#!/usr/bin/env bash
# Acceptance test of packer-plugin-nodeprep with real Packer 1.11.2.
#
# 1. installs its tools (qemu, debootstrap, ...) and builds Packer and the plugin;
# 2. boots a Debian bookworm guest (cloud kernel + headers, sshd) in qemu/TCG with
#    SSH forwarded to a loopback port;
# 3. `packer build` with the null builder runs the nodeprep provisioner over SSH:
#    the real agent binary, a checksummed CNI bundle, igb_uio built from Debian's
#    dpdk-kmods source for the guest's installed kernels, write-combining
#    vfio-pci built for each installed kernel from its own linux-source package
#    and the project's 6.1 patch, kernel arguments...;
# 4. checks the result over SSH, runs the build again (must change nothing), and
#    once more with a patch range that serves none of the kernels (must fail
#    naming them); then regenerates the boot configuration as a kernel update
#    does (the kernel package's postinst and /etc/kernel/postinst.d, with the
#    update-grub hook of grub2-common), reboots the guest through that
#    grub.cfg, with a vIOMMU and a second virtio NIC, and checks /proc/cmdline,
#    the 1Gi hugepage, igb_uio, and that the vfio-pci loaded at boot is the
#    plugin's: the NIC bound to it and its prefetchable BAR mapped through VFIO
#    (test/vm/testdata/vfiowc) is write-combining in pat_memtype_list, and with
#    the stock modules it is not. The image has two kernels and the build runs
#    on the older one; the reboot comes up on the newer one, so the modules must
#    have been built for a kernel that was not running;
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
(cd "$repo" && CGO_ENABLED=0 go build -tags "$(sed -n 's/^AGENT_TAGS := //p' Makefile)" -o "$bindir/nodeprep" ./agent)
# The VFIO mapping program of the VM bed's write-combining test.
(cd "$repo" && CGO_ENABLED=0 go build -o "$bindir/vfiowc" ./test/vm/testdata/vfiowc)
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

# --- the bed's apt mirror: each installed kernel's linux-source ---------------
# The plugin fetches a kernel's source with apt-get download, at the version of
# the package that installed the kernel, as on a real build that reaches the
# Debian mirror. The guest reaches no network, so a local file repository in
# the guest stands in for the mirror, holding those packages (fetched on the
# host, cached).
fetch_deb_version() { # fetch_deb_version PACKAGE VERSION -> path of the .deb (cached)
  local f=$debs/${1}_${2}_all.deb
  if [[ ! -s $f ]]; then
    (cd "$debs" && apt-get download "$1=$2" >&2) || { apt-get update -q >&2 && (cd "$debs" && apt-get download "$1=$2" >&2); }
  fi
  [[ -s $f ]] || die "apt-get download $1=$2 left no $f"
  echo "$f"
}
repodir=$run/apt
mkdir -p "$repodir"
while read -r k ver; do
  series=$(echo "$k" | cut -d. -f1-2)
  ln "$(fetch_deb_version "linux-source-$series" "$ver")" "$repodir/"
  log "kernel $k is Debian $ver: linux-source-${series}_$ver in the bed's mirror"
done < <(gssh 'for k in $(ls /lib/modules); do echo "$k $(dpkg-query -W -f="\${Version}" "$(dpkg -S "/boot/vmlinuz-$k" | cut -d: -f1)")"; done')
(cd "$repodir" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
tar -C "$repodir" -cf - . | gssh 'mkdir -p /var/local/nodeprep-bed-apt && tar -C /var/local/nodeprep-bed-apt -xf -' ||
  die "copying the bed's mirror into the guest"
gssh sh -s <<'EOF' || die "pointing the guest's apt at the bed's mirror"
set -eu
mkdir -p /etc/apt/nodeprep-bed-disabled
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ ! -e "$f" ] || mv "$f" /etc/apt/nodeprep-bed-disabled/; done
echo 'deb [trusted=yes] file:/var/local/nodeprep-bed-apt ./' >/etc/apt/sources.list.d/nodeprep-bed.list
rm -f /var/lib/apt/lists/*_*
apt-get update -q >/dev/null
EOF

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
# Stage 5 builds write-combining vfio-pci for each installed kernel with the
# project's patch for Debian's 6.1 kernels (the one test/vm's PAT test uses).
wc_patch=$repo/test/vm/testdata/linux-6.1-vfio-wc.patch
wc_sha=$(sha256sum "$wc_patch" | cut -d' ' -f1)
wc_kernels=6.1-6.2
vars+=(-var "vfio_wc_patch_file=$wc_patch" -var "vfio_wc_patch_sha256=$wc_sha" -var "vfio_wc_kernels=$wc_kernels")
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
# The plugin proved at build time that modprobe loads its build (vermagic,
# marker) for every kernel, and for the running one that the loaded modules
# are the out-of-tree ones.
for k in $kernels; do
  grep -q "kernel $k: vfio-pci -> /lib/modules/$k/updates/nodeprep-vfio-wc/vfio-pci.ko (vermagic $k)" "$run/build1.log" ||
    die "build #1 did not verify write-combining vfio-pci for $k"
done
grep -q "kernel $running: loaded vfio_pci_core is the out-of-tree build" "$run/build1.log" ||
  die "build #1 did not check the loaded vfio_pci_core of the running kernel $running"
gssh sh -s -- "$cni_version" "$kmods_rev" "$wc_sha" $kernels <<'EOF' || die "guest checks failed"
set -eu
cni=$1 rev=$2 wcsum=$3
shift 3
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
for k in "$@"; do
  for m in vfio vfio-pci-core vfio-pci; do
    [ "$(modinfo -k "$k" -n "$m")" = "/lib/modules/$k/updates/nodeprep-vfio-wc/$m.ko" ] ||
      fail "modprobe $m for $k resolves to $(modinfo -k "$k" -n "$m"), not the plugin's build"
    [ "$(modinfo -k "$k" -F vermagic "$m" | cut -d' ' -f1)" = "$k" ] || fail "$m vermagic is not $k"
  done
  [ "$(modinfo -k "$k" -F nodeprep_vfio_wc vfio-pci-core)" = "$wcsum" ] || fail "vfio-pci-core for $k lacks the patch's marker"
  grep -qx "sha256=$wcsum" "/opt/nodeprep/vfio-wc/$k.source" || fail "vfio-wc source not recorded for $k"
  echo "write-combining vfio-pci for installed kernel $k: ok"
done
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
sums='sha256sum /etc/default/grub /lib/modules/*/extra/igb_uio.ko /lib/modules/*/updates/nodeprep-vfio-wc/*.ko /etc/modules-load.d/nodeprep-image.conf'
grub_before=$(gssh "$sums")
t0=$SECONDS
"$packer" build -color=false "${vars[@]}" "$template" 2>&1 | tee "$run/build2.log" >&2
[[ ${PIPESTATUS[0]} == 0 ]] || die "packer build #2 failed"
log "packer build #2 took $((SECONDS - t0))s"
for k in $kernels; do
  grep -q "igb_uio for $k is up to date" "$run/build2.log" || die "build #2 rebuilt igb_uio for $k"
  grep -q "write-combining vfio-pci for $k is up to date" "$run/build2.log" || die "build #2 rebuilt vfio-pci for $k"
done
grep -q "already has the kernel arguments" "$run/build2.log" || die "build #2 edited /etc/default/grub again"
[[ $(gssh "$sums") == "$grub_before" ]] ||
  die "build #2 changed files"

log "packer build #3: a patch range that serves none of the installed kernels"
bad_range=6.2-6.8
t0=$SECONDS
if "$packer" build -color=false "${vars[@]}" -var "vfio_wc_kernels=$bad_range" "$template" >"$run/build3.log" 2>&1; then
  cat "$run/build3.log" >&2
  die "packer build #3 passed with vfio_wc_kernels=$bad_range"
fi
log "packer build #3 failed, as it must, in $((SECONDS - t0))s:"
grep -m1 'no write-combining vfio-pci patch serves' "$run/build3.log" >&2 || { cat "$run/build3.log" >&2; die "build #3 failed for another reason"; }
for k in $kernels; do
  grep 'no write-combining vfio-pci patch serves' "$run/build3.log" | grep -qF "$k" || die "build #3's error does not name kernel $k"
done
grep 'no write-combining vfio-pci patch serves' "$run/build3.log" | grep -qF "serve $bad_range (vfio-wc.patch)" ||
  die "build #3's error does not name the supported range $bad_range"
[[ $(gssh "$sums") == "$grub_before" ]] || die "build #3 changed files"

# --- a kernel update regenerates the boot configuration ------------------------
# What installing or upgrading a kernel package does on Debian: its postinst
# runs depmod and /etc/kernel/postinst.d (initramfs-tools; grub2-common's
# zz-update-grub, which runs update-grub when a grub.cfg exists). grub.cfg is
# first replaced by a stale one without the arguments, so only a regeneration
# from /etc/default/grub can bring them back; the reboot below then boots it.
log "kernel update: the newest kernel's postinst regenerates grub.cfg"
t0=$SECONDS
gssh sh -s -- "$newest" <<'EOF' || die "boot configuration regeneration failed"
set -eu
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
k=$1
pkg=$(dpkg -S "/boot/vmlinuz-$k" | cut -d: -f1)
[ -x /etc/kernel/postinst.d/zz-update-grub ] || fail "no /etc/kernel/postinst.d/zz-update-grub"
echo '# stale grub.cfg: written before the kernel update' >/boot/grub/grub.cfg
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure "$pkg"
! grep -q '^# stale grub.cfg' /boot/grub/grub.cfg || fail "the postinst of $pkg did not regenerate grub.cfg"
n=$(grep -cE '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg)
[ "$n" -ge "$(ls /lib/modules | wc -l)" ] || fail "regenerated grub.cfg has $n linux entries"
grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | while read -r line; do
  for a in default_hugepagesz=1G hugepagesz=1G hugepages=1 intel_iommu=on iommu=pt isolcpus=1; do
    echo "$line" | grep -qwF -- "$a" || fail "$a not in regenerated entry: $line"
  done
done
[ "$(modinfo -k "$k" -n vfio-pci)" = "/lib/modules/$k/updates/nodeprep-vfio-wc/vfio-pci.ko" ] ||
  fail "after the postinst's depmod, vfio-pci for $k is $(modinfo -k "$k" -n vfio-pci)"
echo "regenerated grub.cfg: $n linux entries, each with the kernel arguments"
EOF
log "kernel update regeneration took $((SECONDS - t0))s"

# --- reboot through the regenerated grub.cfg ----------------------------------
# With a vIOMMU (interrupt remapping on: vfio_iommu_type1 needs it) so the
# stock vfio-pci, which has no no-IOMMU mode, can map the BAR too, and a second
# virtio NIC behind it (modern only, iommu_platform) for vfio-pci.
log "rebooting the guest through its own grub.cfg"
gssh 'systemctl disable nodeprep.service' # the agent needs EC2; keep it out of this boot
poweroff_guest
vfio_mac=52:54:00:6e:70:02
boot_guest -kernel "$work/image/grub.lnx" -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on \
  -netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,mac=$vfio_mac,disable-legacy=on,iommu_platform=on
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

# --- write combining, judged by the kernel's PAT list -------------------------
# The second NIC bound to the vfio-pci that loaded at boot (the plugin's build
# for this kernel, which was not running when it was built) and its
# prefetchable BAR mapped through VFIO as DPDK does; then the same with the
# kernel's own modules, loaded by path.
log "write combining: the NIC's prefetchable BAR mapped through VFIO"
gssh 'cat >/usr/local/bin/vfiowc && chmod 0755 /usr/local/bin/vfiowc' <"$bindir/vfiowc"
gssh sh -s -- "$vfio_mac" <<'EOF' >"$run/pat.log" || { cat "$run/pat.log" >&2; die "VFIO mapping in the rebooted guest failed"; }
set -eu
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
k=$(uname -r) mac=$1
mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
[ -r /sys/kernel/debug/x86/pat_memtype_list ] || fail "no /sys/kernel/debug/x86/pat_memtype_list"
bdf=
# A virtio NIC's device link names the virtio device; its parent is the PCI one.
for n in /sys/class/net/*; do [ "$(cat "$n/address")" != "$mac" ] || bdf=$(basename "$(dirname "$(readlink -f "$n/device")")"); done
[ -n "$bdf" ] || fail "no NIC with MAC $mac"
sys=/sys/bus/pci/devices/$bdf
[ -e "$sys/iommu_group" ] || fail "$bdf has no IOMMU group"
group=/dev/vfio/$(basename "$(readlink "$sys/iommu_group")")
# The prefetchable memory BAR (IORESOURCE_MEM 0x200 | IORESOURCE_PREFETCH 0x2000).
i=0 bar=
while read -r start end flags; do
  if [ $i -lt 6 ] && [ -z "$bar" ] && [ $((flags & 0x2200)) -eq $((0x2200)) ]; then bar=$i; fi
  i=$((i + 1))
done <"$sys/resource"
[ -n "$bar" ] || fail "no prefetchable BAR on $bdf"
# loaded FILE...: the loaded modules are these files: the same GNU build ID
# (the kernel exposes each module's note in sysfs) and out-of-tree (taint O)
# exactly when the file is the plugin's build.
loaded() {
  for f in "$@"; do
    m=$(basename "$f" .ko | tr - _)
    want=$(readelf -n "$f" | sed -n 's/^ *Build ID: *//p')
    got=$(od -An -tx1 -v "/sys/module/$m/notes/.note.gnu.build-id" | tr -d ' \n' | tail -c "${#want}")
    [ -n "$want" ] && [ "$got" = "$want" ] || fail "loaded $m (build ID $got) is not $f (build ID $want)"
    t=$(cat "/sys/module/$m/taint")
    case $f in
    "$u"/*) case $t in *O*) ;; *) fail "loaded $m is not the out-of-tree $f (taint '$t')" ;; esac ;;
    *) case $t in *O*) fail "loaded $m is out-of-tree, not $f" ;; esac ;;
    esac
    echo "loaded $m: $f (build ID $want, taint '$t')"
  done
}
measure() { # measure LABEL
  echo vfio-pci >"$sys/driver_override"
  [ ! -e "$sys/driver" ] || echo "$bdf" >"$sys/driver/unbind"
  echo "$bdf" >/sys/bus/pci/drivers_probe
  [ "$(basename "$(readlink "$sys/driver")")" = vfio-pci ] || fail "$bdf not bound to vfio-pci"
  echo "== $1: $bdf BAR $bar through $group"
  vfiowc "$group" "$bdf" "$bar" || fail "vfiowc with the $1 modules"
  echo "$bdf" >/sys/bus/pci/drivers/vfio-pci/unbind
  for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio; do [ ! -d "/sys/module/$m" ] || rmmod "$m"; done
}
u=/lib/modules/$k/updates/nodeprep-vfio-wc
# Loaded at boot by modules-load.d: the plugin's build.
loaded "$u/vfio.ko" "$u/vfio-pci-core.ko" "$u/vfio-pci.ko"
modprobe vfio_iommu_type1
measure patched
# The kernel's own modules: what modprobe would load without the plugin's.
stock() { find "/lib/modules/$k/kernel/drivers/vfio" -name "$1.ko*" | head -n 1; }
insmod "$(stock vfio)"
modprobe vfio_iommu_type1
modprobe --show-depends vfio-pci | sed -n 's/^insmod \([^ ]*\).*/\1/p' | while read -r f; do
  m=$(basename "$f" .ko)
  case $f in "$u"/*) f=$(stock "$m") ;; esac
  [ -d "/sys/module/$(echo "$m" | tr - _)" ] || insmod "$f"
done
loaded "$(stock vfio)" "$(stock vfio-pci-core)" "$(stock vfio-pci)"
measure stock
EOF
cat "$run/pat.log" >&2
# pat LABEL MEMTYPE: the PAT lines vfiowc printed for the BAR under LABEL that name MEMTYPE.
pat() { awk -v l="== $1:" '/^== /{on = index($0, l) == 1; next} on && /^PAT: /' "$run/pat.log" | grep -E " ($2)\$" || true; }
[[ -n $(pat patched write-combining) ]] || die "patched vfio-pci: no write-combining PAT line for the BAR"
[[ -z $(pat patched 'uncached-minus|uncached') ]] || die "patched vfio-pci: the BAR is also mapped uncached"
[[ -n $(pat stock uncached-minus) ]] || die "stock vfio-pci: no uncached-minus PAT line for the BAR"
[[ -z $(pat stock write-combining) ]] || die "stock vfio-pci mapped the BAR write-combining"
log "PAT with the plugin's vfio-pci: $(pat patched write-combining | head -n1)"
log "PAT with the stock vfio-pci:    $(pat stock uncached-minus | head -n1)"
poweroff_guest

log "packer validate of packer/example (real amazon + nodeprep plugins)"
"$repo/test/packer/validate-example.sh" "$bindir/packer-plugin-nodeprep" >&2

log "PASS: packer acceptance test in ${SECONDS}s"
echo "test-packer: 1 passed, 0 failed"

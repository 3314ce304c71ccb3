#!/usr/bin/env bash
# make test-arm64-vm: Debian's arm64 cloud kernel (what a Graviton node runs,
# same 6.1 series) boots under qemu-system-aarch64 (TCG) on the virt machine
# with an SMMUv3, and a virtio-net NIC behind the SMMU is bound to vfio-pci
# and opened through VFIO (type1 container, group, device fd) by the same
# program test/vm uses on x86 (test/vm/testdata/vfiocheck, built for arm64).
#
# Kernel and busybox come from Debian's arm64 packages, fetched with an apt
# configuration of their own (no foreign architecture added to the host) and
# cached under $NODEPREP_CACHE/arm64vm. Needs root (apt-get install).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${NODEPREP_CACHE:-$repo/.cache}/arm64vm
SECONDS=0
log() { printf '[test-arm64-vm %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
if [[ $(id -u) != 0 ]]; then
  echo "test/arm64/vm.sh: SKIP: needs root (apt-get)"
  exit 0
fi
. "$repo/test/packer/need.sh"
need qemu-system-aarch64:qemu-system-arm cpio:cpio depmod:kmod

mkdir -p "$cache/lists/partial" "$cache/cache/archives/partial" "$cache/debs"
chmod 0777 "$cache/debs" # apt downloads as _apt
src=$cache/sources.list
printf '%s\n' 'deb [arch=arm64] http://deb.debian.org/debian-security bookworm-security main' \
  'deb [arch=arm64] http://deb.debian.org/debian bookworm main' >"$src"
apt=(-o Dir::Etc::SourceList="$src" -o Dir::Etc::SourceParts=/dev/null -o APT::Architecture=arm64
  -o APT::Architectures::=arm64 -o Dir::State::Lists="$cache/lists" -o Dir::Cache="$cache/cache" -o Dir::State::Status=/dev/null)
if ! ls "$cache"/debs/linux-image-*_arm64.deb >/dev/null 2>&1 || ! ls "$cache"/debs/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  log "fetching Debian's arm64 cloud kernel and busybox-static"
  apt-get "${apt[@]}" update -q >&2
  kpkg=$(apt-cache "${apt[@]}" depends linux-image-cloud-arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
  [[ -n $kpkg ]] || die "linux-image-cloud-arm64 depends on no kernel"
  (cd "$cache/debs" && apt-get "${apt[@]}" download "$kpkg" busybox-static >&2)
fi
work=$(mktemp -d)
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
x=$work/x
dpkg-deb -x "$(ls "$cache"/debs/linux-image-*_arm64.deb | head -n1)" "$x"
dpkg-deb -x "$(ls "$cache"/debs/busybox-static_*_arm64.deb | head -n1)" "$x"
rel=$(ls "$x/lib/modules")
depmod -b "$x" "$rel"
log "kernel $rel"

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,usr/bin} "$root/lib/modules/$rel"
cp "$x/bin/busybox" "$root/bin/busybox"
m=$x/lib/modules/$rel
(cd "$m" && cp --parents -r kernel/drivers/vfio kernel/drivers/virtio kernel/drivers/net/virtio_net.ko \
  kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/virt "$root/lib/modules/$rel/" 2>/dev/null || true)
cp "$m"/modules.dep "$m"/modules.alias "$m"/modules.softdep "$m"/modules.builtin "$m"/modules.order "$root/lib/modules/$rel/"
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o "$root/usr/bin/vfiocheck" ./test/vm/testdata/vfiocheck)
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mark() { echo "@@ARM64 $*"; }
modprobe virtio_pci; modprobe virtio_net
mark arch "$(uname -m)"
mark iommu "$(ls /sys/class/iommu 2>/dev/null | tr '\n' ' ')"
bdf=
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor):$(cat $d/device)" = 0x1af4:0x1041 ] && bdf=$(basename $d)
done
mark bdf "$bdf"
sys=/sys/bus/pci/devices/$bdf
mark driver_before "$(basename $(readlink $sys/driver))"
modprobe vfio-pci; modprobe vfio_iommu_type1
group=$(basename $(readlink $sys/iommu_group))
mark group "$group"
echo vfio-pci >$sys/driver_override
echo $bdf >$sys/driver/unbind
echo $bdf >/sys/bus/pci/drivers_probe
mark driver_after "$(basename $(readlink $sys/driver))"
mark vfiocheck "$(/usr/bin/vfiocheck $group $bdf 2>&1)"
mark done
poweroff -f
INIT
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/initrd.gz"

log "booting qemu-system-aarch64 -M virt,iommu=smmuv3,gic-version=3 (TCG; the GICv3 ITS isolates MSIs, which vfio type1 requires)"
boot_start=$SECONDS
timeout 900 qemu-system-aarch64 -M virt,iommu=smmuv3,gic-version=3 -cpu max -m 1024 -smp 2 -accel tcg \
  -kernel "$x/boot/vmlinuz-$rel" -initrd "$work/initrd.gz" -append "console=ttyAMA0 panic=-1" \
  -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,disable-legacy=on,iommu_platform=on \
  -display none -serial stdio -no-reboot >"$work/console.log" 2>&1 || true
boot=$((SECONDS - boot_start))
grep '@@ARM64' "$work/console.log" >&2 || true
get() { sed -n "s/^@@ARM64 $1 //p" "$work/console.log" | tr -d '\r'; }
fail=0
check() { [[ "$(get "$1")" == $2 ]] || { log "CHECK FAILED: $1 = '$(get "$1")', want $2"; fail=1; }; }
check arch aarch64
check iommu '*smmu*'
check driver_before virtio-pci
check driver_after vfio-pci
check vfiocheck "vfiocheck: ok group=*"
if ((fail)); then
  tail -n 40 "$work/console.log" >&2
  die "arm64 VM checks"
fi
log "PASS: arm64 VM (SMMUv3) bound $(get bdf) to vfio-pci in group $(get group); boot+run ${boot}s, total ${SECONDS}s"
echo "test-arm64-vm: 1 passed, 0 failed"

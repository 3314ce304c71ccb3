#!/usr/bin/env bash
# Builds (once, cached) a bootable Debian bookworm disk image that stands in
# for the EKS AMI in the packer acceptance test: sshd, a cloud kernel with its
# matching headers, build-essential and the grub tooling update-grub needs.
# Usage: mkimage.sh CACHE_DIR  -> leaves CACHE_DIR/base.raw, vmlinuz, initrd.img,
# grub.lnx and id_ed25519.
set -euo pipefail

cache=$1
suite=bookworm
mirror=http://deb.debian.org/debian
mkdir -p "$cache"

# Bump when the guest configuration below changes: the image is rebuilt from
# the cached debootstrap tree.
image_rev=3
if [[ -s $cache/base.raw && -s $cache/grub.lnx && "$(cat "$cache/image-rev" 2>/dev/null)" == "$image_rev" ]]; then
  exit 0
fi

[[ -s $cache/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C nodeprep-packer-test -f "$cache/id_ed25519"

rootfs=$cache/rootfs
if [[ ! -e $rootfs/.debootstrap-done ]]; then
  rm -rf "$rootfs"
  debootstrap --variant=minbase \
    --include=systemd-sysv,udev,kmod,openssh-server,linux-image-cloud-amd64,linux-headers-cloud-amd64,build-essential,grub-pc-bin,grub2-common,initramfs-tools,iproute2,xz-utils,ca-certificates,procps \
    "$suite" "$rootfs" "$mirror"
  touch "$rootfs/.debootstrap-done"
fi

# A second, newer kernel (+ headers) from bookworm-security: the image then has
# two installed kernels, and the guest runs the older one during the build, so
# the test proves igb_uio is built for the kernels installed in the image and
# not for the running kernel. The reboot then comes up on the newer one.
if [[ ! -e $rootfs/.second-kernel-done ]]; then
  echo 'deb http://deb.debian.org/debian-security bookworm-security main' >"$rootfs/etc/apt/sources.list.d/security.list"
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  chroot "$rootfs" apt-get update -q
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -q --no-install-recommends \
    -t bookworm-security linux-image-cloud-amd64 linux-headers-cloud-amd64
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"
  trap - EXIT
  [[ $(ls -d "$rootfs"/lib/modules/*/ | wc -l) -ge 2 ]] || { echo "mkimage: expected two installed kernels" >&2; exit 1; }
  touch "$rootfs/.second-kernel-done"
fi

# Guest configuration: DHCP on the qemu user network, root login by key only.
echo nodeprep-target >"$rootfs/etc/hostname"
printf 'LABEL=nprootfs / ext4 defaults 0 1\n' >"$rootfs/etc/fstab"
mkdir -p "$rootfs/etc/systemd/network" "$rootfs/root/.ssh"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$rootfs/etc/systemd/network/20-wired.network"
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
install -m 0600 "$cache/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
chmod 0700 "$rootfs/root/.ssh"
# /etc/default/grub much as Debian's cloud images ship it (serial console).
# update-grub runs in the guest, under the provisioner.
mkdir -p "$rootfs/boot/grub"
cat >"$rootfs/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0 net.ifnames=0"
GRUB_TERMINAL="serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" ssh-keygen -A >/dev/null

# The direct-kernel first boot runs the OLDEST installed kernel.
kver=$(ls "$rootfs/lib/modules" | sort -V | head -n1)
cp "$rootfs/boot/vmlinuz-$kver" "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$cache/initrd.img.tmp" && mv "$cache/initrd.img.tmp" "$cache/initrd.img"

# A GRUB that qemu can start with -kernel (lnxboot.img + core.img): it reads
# /boot/grub/grub.cfg from the disk, so the second boot of the test uses the
# grub.cfg that update-grub wrote in the guest, kernel arguments included.
chroot "$rootfs" grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0)/boot/grub' \
  biosdisk ext2 part_msdos normal linux search search_fs_uuid search_label configfile \
  serial terminal echo test gzio all_video
cat "$rootfs/usr/lib/grub/i386-pc/lnxboot.img" "$rootfs/tmp/core.img" >"$cache/grub.lnx.tmp"
rm -f "$rootfs/tmp/core.img"
mv "$cache/grub.lnx.tmp" "$cache/grub.lnx"

rm -f "$cache/base.raw.tmp"
mkfs.ext4 -q -L nprootfs -d "$rootfs" "$cache/base.raw.tmp" 6G
mv "$cache/base.raw.tmp" "$cache/base.raw"
echo "$image_rev" >"$cache/image-rev"

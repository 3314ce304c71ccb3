#!/usr/bin/env bash
# Builds (once, cached) a bootable Debian bookworm disk image that stands in
# for the EKS AMI in the packer acceptance test: sshd, a cloud kernel with its
# matching headers, build-essential and the grub tooling update-grub needs.
# Usage: mkimage.sh CACHE_DIR  -> prints nothing, leaves CACHE_DIR/base.raw,
# CACHE_DIR/vmlinuz, CACHE_DIR/initrd.img and CACHE_DIR/id_ed25519.
set -euo pipefail

cache=$1
suite=bookworm
mirror=http://deb.debian.org/debian
mkdir -p "$cache"

if [[ -s $cache/base.raw && -s $cache/vmlinuz && -s $cache/initrd.img && -s $cache/id_ed25519 ]]; then
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

# Guest configuration: DHCP on the qemu user network, root login by key only.
echo nodeprep-target >"$rootfs/etc/hostname"
printf 'LABEL=nprootfs / ext4 defaults 0 1\n' >"$rootfs/etc/fstab"
mkdir -p "$rootfs/etc/systemd/network" "$rootfs/root/.ssh"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$rootfs/etc/systemd/network/20-wired.network"
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
install -m 0600 "$cache/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
chmod 0700 "$rootfs/root/.ssh"
# /etc/default/grub as a Debian cloud image ships it; update-grub runs in the guest.
mkdir -p "$rootfs/boot/grub"
if ! grep -q '^GRUB_CMDLINE_LINUX=' "$rootfs/etc/default/grub" 2>/dev/null; then
  echo 'GRUB_CMDLINE_LINUX=""' >>"$rootfs/etc/default/grub"
fi
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" ssh-keygen -A >/dev/null

kver=$(basename "$(ls -d "$rootfs"/lib/modules/*/ | head -n1)")
cp "$rootfs/boot/vmlinuz-$kver" "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$cache/initrd.img.tmp" && mv "$cache/initrd.img.tmp" "$cache/initrd.img"

rm -f "$cache/base.raw.tmp"
mkfs.ext4 -q -L nprootfs -d "$rootfs" "$cache/base.raw.tmp" 6G
mv "$cache/base.raw.tmp" "$cache/base.raw"

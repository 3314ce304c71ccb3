# vfio-pci with write combining, for one kernel (plain POSIX sh, no template
# actions: test/vm runs this same file against Debian's kernel on the host).
#
# vfio_wc_build KVER KBUILD SRC PATCH PATCH_SHA256 NOIOMMU OUT
#   KBUILD  the kernel's build tree (/lib/modules/KVER/build)
#   SRC     that kernel's source: a tarball or a directory holding drivers/vfio
#   PATCH   the write-combining patch (-p1, against drivers/vfio/...)
#   NOIOMMU 1: also rebuild vfio.ko with CONFIG_VFIO_NOIOMMU when the kernel's
#           config lacks it (amzn-drivers' get-vfio-with-wc.sh does the same)
#   OUT     where the modules go (/lib/modules/KVER/updates/nodeprep-vfio-wc);
#           depmod searches updates/ before the kernel's own tree
# Fails naming the kernel when vfio-pci is not a module of it, the patch does
# not apply, or the patched source does not map write-combining.
vfio_wc_build() {
  k=$1 kbuild=$2 src=$3 patch=$4 sum=$5 noiommu=$6 out=$7
  cfg=$kbuild/.config
  grep -qx 'CONFIG_VFIO_PCI=m' "$cfg" ||
    { echo "kernel $k: vfio-pci is not a module ($(grep '^CONFIG_VFIO_PCI=' "$cfg" || echo 'CONFIG_VFIO_PCI unset')); a rebuilt module cannot replace it" >&2; return 1; }
  work=$(mktemp -d)
  if [ -d "$src" ]; then
    d=$(find "$src" -type d -path '*/drivers/vfio' | head -n 1)
    [ -n "$d" ] || { echo "kernel $k: no drivers/vfio in $src" >&2; return 1; }
    mkdir -p "$work/tree/drivers" && cp -R "$d" "$work/tree/drivers/vfio"
  else
    tar -xf "$src" -C "$work" --wildcards '*drivers/vfio/*'
    d=$(find "$work" -type d -path '*/drivers/vfio' | head -n 1)
    [ -n "$d" ] || { echo "kernel $k: no drivers/vfio in $src" >&2; return 1; }
    mv "$(dirname "$(dirname "$d")")" "$work/tree"
  fi
  tree=$work/tree
  if ! (cd "$tree" && patch -p1 --forward --batch --no-backup-if-mismatch -i "$patch") >"$work/patch.log" 2>&1 ||
    grep -q 'FAILED' "$work/patch.log"; then
    cat "$work/patch.log" >&2
    echo "kernel $k: the write-combining patch does not apply to this kernel's vfio source" >&2
    return 1
  fi
  cat "$work/patch.log"
  # The marker: every file the patch changed that now maps write-combining
  # carries the patch's checksum in its module's modinfo.
  marked=0
  for f in $(sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$patch"); do
    case $f in *.c) ;; *) continue ;; esac
    if grep -q pgprot_writecombine "$tree/$f"; then
      printf '\nMODULE_INFO(nodeprep_vfio_wc, "%s");\n' "$sum" >>"$tree/$f"
      marked=1
    fi
  done
  [ "$marked" = 1 ] || { echo "kernel $k: after the patch no vfio source file maps with pgprot_writecombine" >&2; return 1; }
  mods="pci/vfio-pci-core.ko pci/vfio-pci.ko"
  if [ "$noiommu" = 1 ] && ! grep -qx 'CONFIG_VFIO_NOIOMMU=y' "$cfg"; then
    echo 'ccflags-y += -DCONFIG_VFIO_NOIOMMU=1' >>"$tree/drivers/vfio/Makefile"
    mods="vfio.ko $mods"
  fi
  make -C "$kbuild" M="$tree/drivers/vfio" modules
  mkdir -p "$out"
  rm -f "$out"/*.ko
  n=0
  for m in $mods; do
    [ -f "$tree/drivers/vfio/$m" ] || continue
    install -m 0644 "$tree/drivers/vfio/$m" "$out/$(basename "$m")"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "kernel $k: the build produced none of $mods" >&2; return 1; }
  rm -rf "$work"
}

# vfio_wc_verify KVER OUT PATCH_SHA256 [BASEDIR]: what modprobe will load for
# KVER is what vfio_wc_build installed in OUT, built for KVER, carrying the
# marker. For the running kernel it also loads vfio-pci and checks the loaded
# modules are these out-of-tree builds (taint O), unless a device is bound to
# it. BASEDIR (modinfo -b) is for checking a module tree that is not the host's.
vfio_wc_verify() {
  k=$1 out=$2 sum=$3 base=${4:-}
  mi() { if [ -n "$base" ]; then modinfo -b "$base" "$@"; else modinfo "$@"; fi; }
  marked=0
  for ko in "$out"/*.ko; do
    [ -f "$ko" ] || { echo "kernel $k: no module in $out" >&2; return 1; }
    m=$(basename "$ko" .ko)
    got=$(mi -k "$k" -n "$m")
    [ "$got" = "$ko" ] || { echo "kernel $k: modprobe $m resolves to $got, not $ko" >&2; return 1; }
    vm=$(mi -k "$k" -F vermagic "$m" | cut -d' ' -f1)
    [ "$vm" = "$k" ] || { echo "kernel $k: $ko has vermagic $vm" >&2; return 1; }
    if [ "$(mi -k "$k" -F nodeprep_vfio_wc "$m")" = "$sum" ]; then marked=1; fi
    echo "kernel $k: $m -> $ko (vermagic $vm)"
  done
  [ "$marked" = 1 ] || { echo "kernel $k: no module in $out carries nodeprep_vfio_wc=$sum" >&2; return 1; }
  [ -z "$base" ] && [ "$k" = "$(uname -r)" ] || return 0
  if [ -d /sys/bus/pci/drivers/vfio-pci ] && ls /sys/bus/pci/drivers/vfio-pci | grep -q '^[0-9a-f]\{4\}:'; then
    echo "kernel $k: vfio-pci has devices bound; not reloading it to check the loaded module"
    return 0
  fi
  was_loaded=0
  [ ! -d /sys/module/vfio_pci ] || was_loaded=1
  modprobe -r vfio-pci vfio-pci-core vfio_iommu_type1 vfio 2>/dev/null || true
  modprobe vfio-pci
  for ko in "$out"/*.ko; do
    m=$(basename "$ko" .ko | tr - _)
    grep -q O "/sys/module/$m/taint" ||
      { echo "kernel $k: loaded $m is not the out-of-tree build (taint '$(cat "/sys/module/$m/taint")')" >&2; return 1; }
    echo "kernel $k: loaded $m is the out-of-tree build (taint $(cat "/sys/module/$m/taint"))"
  done
  [ "$was_loaded" = 1 ] || modprobe -r vfio-pci vfio-pci-core 2>/dev/null || true
}

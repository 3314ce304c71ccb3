{{- /* Included by build_vfio_wc.sh. */ -}}
# vfio_wc_source KVER WORK: prints the path of KVER's own source tarball, from
# the source rpm of the package that installed KVER (as amzn-drivers'
# get-vfio-with-wc.sh takes it: the linux-*.tar* inside).
vfio_wc_source() {
  nevr=$(rpm -qf --qf '%{NAME}-%{VERSION}-%{RELEASE}\n' "/boot/vmlinuz-$1" | head -n 1)
  (cd "$2" && dnf download -q --source "$nevr") >&2 ||
    { echo "kernel $1: cannot fetch the source rpm of $nevr" >&2; return 1; }
  (cd "$2" && rpm2cpio ./*.src.rpm | cpio -idm --quiet) >&2
  t=$(ls "$2"/linux-*.tar* 2>/dev/null | head -n 1)
  [ -n "$t" ] || { echo "kernel $1: no linux-*.tar* in the source rpm of $nevr" >&2; return 1; }
  echo "$t"
}

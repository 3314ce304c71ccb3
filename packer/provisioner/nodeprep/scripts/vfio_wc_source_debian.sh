{{- /* Included by build_vfio_wc.sh. */ -}}
# vfio_wc_source KVER WORK: prints the path of KVER's own source tarball, from
# linux-source-<series> at the version of the package that installed KVER.
vfio_wc_source() {
  pkg=$(dpkg -S "/boot/vmlinuz-$1" | cut -d: -f1 | head -n 1)
  ver=$(dpkg-query -W -f='${Version}' "$pkg")
  series=$(echo "$1" | cut -d. -f1-2)
  t=/usr/src/linux-source-$series.tar.xz
  if [ -f "$t" ] && [ "$(dpkg-query -W -f='${Version}' "linux-source-$series" 2>/dev/null)" = "$ver" ]; then
    echo "$t"
    return 0
  fi
  chmod 0777 "$2" # apt downloads as _apt
  (cd "$2" && apt-get download -q "linux-source-$series=$ver") >&2 ||
    { echo "kernel $1: cannot fetch its source linux-source-$series=$ver (the version of $pkg)" >&2; return 1; }
  dpkg-deb -x "$2"/linux-source-"$series"_*.deb "$2/x"
  echo "$2/x/usr/src/linux-source-$series.tar.xz"
}

missing=""
for p in gcc make tar xz kmod elfutils-libelf-devel patch cpio dnf-plugins-core; do rpm -q "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then dnf install -y $missing; fi
for k in {{qall .Kernels}}; do
  [ -f "/lib/modules/$k/build/Makefile" ] && continue
  # Fedora-style kernels provide kernel-devel-uname-r; kernel6.12-devel and
  # friends are found that way too. The plain NEVRA is the fallback.
  dnf install -y "kernel-devel-uname-r = $k" || dnf install -y "kernel-devel-$k"
done
{{template "kernel_headers.sh" . -}}

{{- /* Included by build_deps_*.sh: fails naming the first installed kernel without a build tree. */ -}}
for k in {{qall .Kernels}}; do
  [ -f "/lib/modules/$k/build/Makefile" ] || { echo "no kernel build tree /lib/modules/$k/build for installed kernel $k" >&2; exit 1; }
done

{{- /*
One line per kernel installed in the image: a /lib/modules/<version> directory
with an in-tree module tree and a kernel image next to it. Leftover directories
with only extra modules do not count. Not the builder's uname -r: the image
boots its newest kernel, which may not be the one running now.
*/ -}}
for d in /lib/modules/*/; do
  k=$(basename "$d")
  [ -d "$d/kernel" ] || continue
  if [ -e "/boot/vmlinuz-$k" ] || [ -e "$d/vmlinuz" ]; then echo "$k"; fi
done

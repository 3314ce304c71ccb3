{{- /*
One stamp per kernel records the source checksum, so a re-run with the same
pinned source changes nothing and a new pin rebuilds.
*/ -}}
src={{q (.Staged "dpdk-kmods.src")}}
echo {{q .Cfg.IgbUioSHA256}}"  $src" | sha256sum -c --strict -
rec={{q .IgbUioRecord}}
mkdir -p "$rec"
for k in {{qall .Kernels}}; do
  ko="/lib/modules/$k/extra/igb_uio.ko"
  if [ -f "$ko" ] && [ "$(cat "$rec/$k.sha256" 2>/dev/null)" = {{q .Cfg.IgbUioSHA256}} ]; then
    echo "igb_uio for $k is up to date"
    continue
  fi
  work=$(mktemp -d)
  tar -xf "$src" -C "$work"
  c=$(find "$work" -type f -name igb_uio.c | head -n 1)
  [ -n "$c" ] || { echo "igb_uio.c not found in the dpdk-kmods source" >&2; exit 1; }
  d=$(dirname "$c")
  echo "building igb_uio for kernel $k"
  make -C "/lib/modules/$k/build" M="$d" modules
  install -D -m 0644 "$d/igb_uio.ko" "$ko"
  depmod -a "$k"
  echo {{q .Cfg.IgbUioSHA256}} >"$rec/$k.sha256"
  rm -rf "$work"
done
printf 'revision=%s\nsha256=%s\n' {{q .Cfg.IgbUioRevision}} {{q .Cfg.IgbUioSHA256}} >"$rec/SOURCE"

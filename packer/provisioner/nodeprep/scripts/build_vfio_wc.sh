{{- /*
Write-combining vfio-pci for each installed kernel a patch serves: that
kernel's own source, the pinned patch (checked where it landed), built against
the kernel's build tree, installed under updates/ and proven to be what
modprobe loads. A stamp per kernel makes a re-run with the same patch a no-op.
*/ -}}
{{template "vfio_wc_lib.sh" .}}
{{if eq .Family "al2023"}}{{template "vfio_wc_source_al2023.sh" .}}{{else}}{{template "vfio_wc_source_debian.sh" .}}{{end}}
rec={{q .VfioWCRecord}}
mkdir -p "$rec"
{{- range .VfioWC}}
kv={{q .Kernel}}
kpatch={{q ($.Staged .Patch.Name)}}
echo {{q .Patch.SHA256}}"  $kpatch" | sha256sum -c --strict -
kout="/lib/modules/$kv/"{{q $.VfioWCDir}}
if [ "$(cat "$rec/$kv.sha256" 2>/dev/null)" = {{q .Patch.SHA256}} ] && vfio_wc_verify "$kv" "$kout" {{q .Patch.SHA256}} >/dev/null 2>&1; then
  echo "write-combining vfio-pci for $kv is up to date"
else
  kwork=$(mktemp -d)
  echo "building write-combining vfio-pci for kernel $kv with "{{q .Patch.Name}}
  ksrc=$(vfio_wc_source "$kv" "$kwork")
  vfio_wc_build "$kv" "/lib/modules/$kv/build" "$ksrc" "$kpatch" {{q .Patch.SHA256}} {{if $.Cfg.VfioNoIOMMU}}1{{else}}0{{end}} "$kout"
  depmod -a "$kv"
  rm -rf "$kwork"
  printf 'patch=%s\nurl=%s\nrevision=%s\nsha256=%s\nkernels=%s\n' {{q .Patch.Name}} {{q .Patch.URL}} {{q .Patch.Revision}} {{q .Patch.SHA256}} {{q .Patch.Kernels.String}} >"$rec/$kv.source"
  echo {{q .Patch.SHA256}} >"$rec/$kv.sha256"
fi
vfio_wc_verify "$kv" "$kout" {{q .Patch.SHA256}}
{{- end}}

{{- /* Checks the finished image and lists every missing piece before failing. */ -}}
bad=0
miss() { echo "MISSING: $*" >&2; bad=1; }
echo {{q .BinarySHA}}"  "{{q .Cfg.BinaryPath}} | sha256sum -c --strict --quiet - || miss agent binary {{q .Cfg.BinaryPath}}
[ -x {{q .Cfg.BinaryPath}} ] && {{q .Cfg.BinaryPath}} version >/dev/null 2>&1 || miss runnable {{q .Cfg.BinaryPath}} version
echo {{q .ServiceSHA}}"  "{{q .ServicePath}} | sha256sum -c --strict --quiet - || miss unit {{q .ServicePath}}
[ "$(systemctl is-enabled {{q .ServiceName}} 2>/dev/null)" = enabled ] || miss {{q .ServiceName}} not enabled
{{- range .Units}}
echo {{q .SHA256}}"  "{{q .Path}} | sha256sum -c --strict --quiet - || miss unit {{q .Path}}
{{- end}}
[ "$(systemctl is-enabled {{q .RefreshPathName}} 2>/dev/null)" = enabled ] || miss {{q .RefreshPathName}} not enabled
{{- if .Cfg.ConfigFile}}
{{q .Cfg.BinaryPath}} validate {{q .Cfg.ConfigPath}} >/dev/null 2>&1 || miss config {{q .Cfg.ConfigPath}} that nodeprep validate accepts
{{- end}}
{{- if .Cfg.CNIBundleDir}}
(cd {{q .CNIVersionDir}} && sha256sum -c --strict --quiet {{.SumsFile}}) || miss CNI bundle {{q .CNIVersionDir}}
[ "$(readlink {{q .CNICurrentPath}})" = {{q .Cfg.CNIVersion}} ] || miss {{q .CNICurrentPath}} pointing at {{q .Cfg.CNIVersion}}
{{- end}}
{{- if not .Cfg.SkipIgbUio}}
for k in {{qall .Kernels}}; do
  [ -f "/lib/modules/$k/extra/igb_uio.ko" ] || miss "igb_uio.ko for kernel $k"
  modinfo -k "$k" -n igb_uio >/dev/null 2>&1 || miss "igb_uio in modules.dep of kernel $k"
done
[ -s {{q .IgbUioRecord}}/SOURCE ] || miss {{q .IgbUioRecord}}/SOURCE
{{- end}}
{{- if .VfioWC}}
{{template "vfio_wc_lib.sh" .}}
{{- range .VfioWC}}
vfio_wc_verify {{q .Kernel}} "/lib/modules/"{{q .Kernel}}"/"{{q $.VfioWCDir}} {{q .Patch.SHA256}} || miss write-combining vfio-pci for kernel {{q .Kernel}}
{{- end}}
{{- end}}
[ -f {{q .ModulesLoad}} ] || miss {{q .ModulesLoad}}
[ -f {{q .ModprobeConf}} ] || miss {{q .ModprobeConf}}
{{- range .Cfg.Modules}}
grep -qx {{q .}} {{q $.ModulesLoad}} || miss module {{q .}} in {{q $.ModulesLoad}}
{{- end}}
for a in {{qall .KernelArgs}}; do
  grep -E '^GRUB_CMDLINE_LINUX=' /etc/default/grub | grep -qwF -- "$a" || miss "$a in GRUB_CMDLINE_LINUX of /etc/default/grub"
done
{{- if eq .Family "debian"}}
cfg=/boot/grub/grub.cfg
n=$(grep -cE '^[[:space:]]*linux[[:space:]]' "$cfg" 2>/dev/null || true)
[ "${n:-0}" -gt 0 ] || miss "boot entries in $cfg"
for a in {{qall .KernelArgs}}; do
  if grep -E '^[[:space:]]*linux[[:space:]]' "$cfg" | grep -vqwF -- "$a"; then miss "$a on every linux line of $cfg"; fi
done
{{- else if eq .Family "al2023"}}
n=$(grubby --info=ALL | grep -c '^args=' || true)
[ "${n:-0}" -gt 0 ] || miss "boot entries in grubby --info=ALL"
for a in {{qall .KernelArgs}}; do
  if grubby --info=ALL | grep '^args=' | grep -vqwF -- "$a"; then miss "$a in every grubby entry"; fi
done
{{- end}}
{{- range .Cfg.MaskUdevRules}}
[ "$(readlink {{q (print $.UdevRulesDir "/" .)}})" = /dev/null ] || miss udev mask {{q (print $.UdevRulesDir "/" .)}}
{{- end}}
[ "$bad" = 0 ] || exit 1
echo 'nodeprep image validation passed'

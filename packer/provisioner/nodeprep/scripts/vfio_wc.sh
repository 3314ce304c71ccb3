{{- /* The user's script is checked against its pinned sum where it runs, then run once per installed kernel. */ -}}
echo {{q .Cfg.VfioWCScriptSHA256}}"  "{{q (.Staged "vfio-wc.sh")}} | sha256sum -c --strict -
for k in {{qall .Kernels}}; do
  echo "vfio-pci write-combining for kernel $k"
  KVER="$k" sh {{q (.Staged "vfio-wc.sh")}}
done

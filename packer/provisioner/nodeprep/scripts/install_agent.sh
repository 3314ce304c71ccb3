install -D -m 0755 {{q (.Staged "nodeprep")}} {{q .Cfg.BinaryPath}}
{{- /* The units open /opt/cni up for writing; it must exist before they start. */}}
install -d -m 0755 /opt/cni/bin
install -D -m 0644 {{q (.Staged "nodeprep.service")}} {{q .ServicePath}}
{{- /* A drop-in left by an earlier bake with another binary_path must not outlive it. */}}
rm -f {{q .RefreshDropIn}} {{q .WatchDropIn}}
{{- range .Units}}
install -D -m 0644 {{q ($.Staged .Name)}} {{q .Path}}
{{- end}}
{{- if .Cfg.ConfigFile}}
install -D -m 0644 {{q (.Staged "config.yaml")}} {{q .Cfg.ConfigPath}}
{{- end}}

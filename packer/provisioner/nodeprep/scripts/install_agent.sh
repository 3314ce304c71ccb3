install -D -m 0755 {{q (.Staged "nodeprep")}} {{q .Cfg.BinaryPath}}
install -D -m 0644 {{q (.Staged "nodeprep.service")}} {{q .ServicePath}}
{{- if .Cfg.ConfigFile}}
install -D -m 0644 {{q (.Staged "config.yaml")}} {{q .Cfg.ConfigPath}}
{{- end}}

{{- /* grubby replaces an existing key=value, so re-runs converge. */ -}}
grubby --update-kernel=ALL --args={{q (join .KernelArgs " ")}}

install -D -m 0644 {{q (.Staged "modules-load.conf")}} {{q .ModulesLoad}}
install -D -m 0644 {{q (.Staged "modprobe.conf")}} {{q .ModprobeConf}}

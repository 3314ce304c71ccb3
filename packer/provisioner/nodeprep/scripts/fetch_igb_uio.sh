curl -fsSL --proto =https --retry 3 -o {{q (.Staged "dpdk-kmods.src")}} {{q .Cfg.IgbUioURL}}

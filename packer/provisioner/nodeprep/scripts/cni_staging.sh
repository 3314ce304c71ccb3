mkdir -p {{q (.Staged "cni")}}

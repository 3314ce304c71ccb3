{{- /* The first edit keeps the image's own file next to ours. */ -}}
[ -e /etc/default/grub.nodeprep-orig ] || cp -p /etc/default/grub /etc/default/grub.nodeprep-orig
cat {{q (.Staged "grub")}} >/etc/default/grub

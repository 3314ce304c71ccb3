{{- /* A chroot or a stopped image has no running systemd to reload. */ -}}
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
systemctl enable {{q .ServiceName}}

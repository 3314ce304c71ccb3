{{- /* A chroot or a stopped image has no running systemd to reload. */ -}}
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
{{- /* The path unit starts the refresh service; that one is never enabled itself. */}}
systemctl enable {{q .ServiceName}} {{q .RefreshPathName}} {{q .WatchServiceName}}

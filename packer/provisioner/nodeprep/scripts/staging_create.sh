{{- /* The staging dir belongs to the SSH user; a leftover from an aborted build is replaced. */ -}}
rm -rf {{q .Cfg.StagingDir}}
mkdir -p -m 0700 {{q .Cfg.StagingDir}}

rm -rf {{q .Cfg.StagingDir}}

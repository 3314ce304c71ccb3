mkdir -p {{q .UdevRulesDir}}
for r in {{qall .Cfg.MaskUdevRules}}; do ln -sfn /dev/null {{q .UdevRulesDir}}/"$r"; done
if [ -d /run/udev ] && command -v udevadm >/dev/null; then udevadm control --reload; fi

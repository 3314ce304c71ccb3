package bootstrap

import (
	"path"
	"sort"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/state"
)

// RunLockPath serializes runs (the boot run, the CNI refresh, a person's).
const RunLockPath = "/run/nodeprep/run.lock"

// writtenDirs are the host directories a run writes files into, each
// through an atomic temp-and-rename.
func writtenDirs(cfg *api.NodePrepConfig) []string {
	m := cfg.Spec.Multus
	dirs := map[string]bool{}
	for _, d := range []string{
		m.BinDir, m.ConfDir, path.Dir(m.Kubeconfig), path.Join(m.ConfDir, multus.WhereaboutsDir),
		path.Dir(cfg.Spec.DevicePlugin.ConfigPath), nodeadm.DropInDir, path.Dir(state.Path),
		path.Dir(EffectiveConfigPath), path.Dir(kmod.ModprobeConf), path.Dir(kmod.ModulesLoadConf), link.NetworkdDir,
	} {
		dirs[d] = true
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// removeStaleTemps deletes the temp files an earlier run left when it was
// killed mid-write (an 8 MB plugin binary each, in /opt/cni/bin). The caller
// holds RunLockPath, so no other run is writing. Failing to remove one is
// logged, not fatal: it only costs disk space.
func (r *Runner) removeStaleTemps(cfg *api.NodePrepConfig) {
	for _, dir := range writtenDirs(cfg) {
		removed, err := r.Host.Root.RemoveStaleTemps(dir)
		if len(removed) > 0 {
			r.Log.Info("removed temp files an interrupted run left", logging.Step(StepConfig), "dir", dir, "files", len(removed))
		}
		if err != nil {
			r.Log.Warn("cannot remove temp files an interrupted run left", logging.Step(StepConfig), "dir", dir, "error", err)
		}
	}
}

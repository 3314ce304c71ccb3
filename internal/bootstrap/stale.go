package bootstrap

import (
	"github.com/nodeprep/nodeprep/internal/logging"
)

// RunLockPath serializes runs (the boot run, the CNI refresh, a person's).
const RunLockPath = "/run/nodeprep/run.lock"

// removeStaleTemps deletes, in the directories the steps write, the temp
// files an earlier run left when it was killed mid-write (an 8 MB plugin
// binary each, in /opt/cni/bin). The caller holds RunLockPath, so no other
// run is writing. Failing to remove one is
// logged, not fatal: it only costs disk space.
func (r *Runner) removeStaleTemps(dirs []string) {
	for _, dir := range dirs {
		removed, err := r.Host.Root.RemoveStaleTemps(dir)
		if len(removed) > 0 {
			r.Log.Info("removed temp files an interrupted run left", logging.Step(StepConfig), "dir", dir, "files", len(removed))
		}
		if err != nil {
			r.Log.Warn("cannot remove temp files an interrupted run left", logging.Step(StepConfig), "dir", dir, "error", err)
		}
	}
}

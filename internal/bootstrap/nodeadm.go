package bootstrap

import (
	"context"
	"log/slog"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// StepNodeadm writes the nodeadm drop-in that hands labels and taints to
// kubelet. It runs after every other step, whatever their outcome.
const StepNodeadm = "nodeadm"

func (n *Node) nodeadmSteps() []engine.Step {
	return []engine.Step{{Name: StepNodeadm, Finally: n.runNodeadm, Writes: []string{nodeadm.DropInDir}}}
}

func (n *Node) runNodeadm(ctx context.Context, act change.Actions, failed []string) error {
	d := nodeadm.DropIn{Root: n.Host.Root, Config: n.Config, UserData: n.NodeadmConfigs, CPU: n.cpuKubelet}
	if n.Cloud != nil && n.Cloud.EC2 != nil {
		d.MaxPods = func(ctx context.Context) (int, error) {
			return n.instanceLimits().MaxPods(ctx, n.Config.Spec.Interfaces)
		}
	}
	tainted, err := d.Apply(ctx, act, failed)
	n.tainted.Store(tainted)
	if err == nil {
		act.Log().Info("nodeadm drop-in", "path", nodeadm.DropInPath, "failedSteps", failed, "tainted", tainted)
	} else if tainted {
		act.Log().Warn("nodeadm drop-in incomplete; it carries the failure taint only", slog.Any("error", err))
	}
	return err
}

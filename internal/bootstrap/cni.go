package bootstrap

import (
	"context"
	"fmt"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// cniSteps install Multus, the reference plugins and whereabouts from the
// AMI's bundle and write their configuration, all before kubelet starts, so
// no pod can be created before 00-multus.conf exists.
func (n *Node) cniSteps() []engine.Step {
	return []engine.Step{{Name: StepCNI, After: []string{StepConfig}, Run: n.cni}}
}

func (n *Node) cni(ctx context.Context, act change.Actions) error {
	root := n.Host.Root
	m := n.Config.Spec.Multus
	if m.Install != nil && !*m.Install {
		act.Log().Info("multus install disabled by spec.multus.install")
		return nil
	}
	act.Status("cni: verifying the plugin bundle")
	bundle, err := cnibundle.Open(root, m.BundleDir)
	if err != nil {
		return err
	}
	names := cnibundle.Wanted(m)
	// Plan verifies every checksum first, so a bad bundle fails the step
	// before anything is installed, in `plan` as in `run`.
	plan, install, err := bundle.Plan(root, m.BinDir, names)
	if err != nil {
		return err
	}
	if len(install) == 0 {
		act.Log().Info("CNI plugins up to date", "bundle", bundle.Version, "plugins", plan.Unchanged)
	}
	act.Status("cni: installing %d plugins", len(plan.Installed))
	if err := change.Apply(ctx, act, install); err != nil {
		return err
	}
	files, err := multus.Files(root, m, multus.Options{KubeletKubeconfig: multus.DefaultKubeletKubeconfig})
	if err != nil {
		return err
	}
	// In order: the kubeconfigs before 00-multus.conf, which puts them to use.
	writes, err := multus.Plan(root, files)
	if err != nil {
		return err
	}
	if err := change.Apply(ctx, act, writes); err != nil {
		return err
	}
	return n.model.setFact("cni.bundle", bundle.Version)
}

// WriteNodeConfig writes the nodeadm drop-in with the node's labels and,
// under failurePolicy Taint, the failure taint. It runs after the graph,
// whatever its outcome; failed lists the failed steps.
func (n *Node) WriteNodeConfig(ctx context.Context, failed []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	inherited, err := nodeadm.Inherit(n.Host.Root, n.NodeadmConfigs)
	if err != nil {
		n.Log.Warn("cannot read the NodeConfigs before nodeprep's drop-in; it inherits nothing from them", "error", err)
	}
	cpu, err := n.cpuKubelet()
	if err != nil {
		// The kernelargs step fails with the same error; kubelet keeps its
		// default CPU management rather than a half-agreed one.
		n.Log.Warn("no CPU profile in the nodeadm drop-in", "error", err)
	}
	changed, err := nodeadm.Write(n.Host.Root, n.Config, nodeadm.Outcome{Failed: failed, Inherited: inherited, MaxPods: n.maxPods(ctx, inherited), CPU: cpu})
	if err != nil {
		return fmt.Errorf("nodeadm drop-in %s: %w", nodeadm.DropInPath, err)
	}
	n.Log.Info("nodeadm drop-in", "path", nodeadm.DropInPath, "changed", changed, "failedSteps", failed)
	return nil
}

// maxPods is kubelet's maxPods less the pod slots of nodeprep's ENIs on
// network card 0, which the VPC CNI's count would otherwise include; 0 when
// the user already set maxPods, or nodeprep adds no such ENI, or the limits
// cannot be read (then kubelet keeps nodeadm's own value).
func (n *Node) maxPods(ctx context.Context, inherited nodeadm.Inherited) int {
	if inherited.MaxPodsSet || n.Config == nil || n.Cloud == nil || n.Cloud.EC2 == nil {
		return 0
	}
	reserved := 0
	for _, in := range n.Config.Spec.Interfaces {
		if in.Managed() && in.NetworkCardIndex != nil && *in.NetworkCardIndex == 0 {
			reserved++
		}
	}
	if reserved == 0 {
		return 0
	}
	limits, err := n.instanceLimits(ctx)
	var pods int
	if err == nil {
		pods, err = limits.MaxPods(reserved)
	}
	if err != nil {
		n.Log.Warn("cannot compute maxPods; kubelet keeps nodeadm's value, which counts nodeprep's ENIs", "error", err)
		return 0
	}
	return pods
}

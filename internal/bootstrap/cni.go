package bootstrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// cniSteps install Multus, the reference plugins and whereabouts from the
// AMI's bundle and write their configuration, all before kubelet starts, so
// no pod can be created before 00-multus.conf exists.
func (n *Node) cniSteps() []engine.Step {
	return []engine.Step{{Name: StepCNI, After: []string{StepConfig}, Run: n.cni}}
}

func (n *Node) cni(ctx context.Context, act engine.Actions) error {
	m := n.Config.Spec.Multus
	if m.Install != nil && !*m.Install {
		act.Log().Info("multus install disabled by spec.multus.install")
		return nil
	}
	act.Status("cni: verifying the plugin bundle")
	bundle, err := cnibundle.Open(n.Root, m.BundleDir)
	if err != nil {
		return err
	}
	names := cnibundle.Wanted(m)
	// Plan verifies every checksum first, so a bad bundle fails the step
	// before anything is installed, in `plan` as in `run`.
	plan, err := bundle.Plan(n.Root, m.BinDir, names)
	if err != nil {
		return err
	}
	if len(plan.Installed) > 0 {
		what := fmt.Sprintf("install %s into %s from CNI bundle %s", strings.Join(plan.Installed, ", "), m.BinDir, bundle.Version)
		act.Status("cni: installing %d plugins", len(plan.Installed))
		if err := act.Do(ctx, what, func(context.Context) error {
			_, err := bundle.Install(n.Root, m.BinDir, names)
			return err
		}); err != nil {
			return err
		}
	} else {
		act.Log().Info("CNI plugins up to date", "bundle", bundle.Version, "plugins", names)
	}

	files, err := multus.Files(n.Root, m, multus.Options{KubeletKubeconfig: multus.DefaultKubeletKubeconfig})
	if err != nil {
		return err
	}
	pending, err := multus.Pending(n.Root, files)
	if err != nil {
		return err
	}
	// In order: the kubeconfigs before 00-multus.conf, which puts them to use.
	for _, f := range pending {
		f := f
		if err := act.Do(ctx, "write "+f.Path, func(context.Context) error {
			_, err := multus.Write(n.Root, []multus.File{f})
			return err
		}); err != nil {
			return err
		}
	}
	if n.State != nil && !act.DryRun() {
		if err := n.State.SetFact("cni.bundle", bundle.Version); err != nil {
			return err
		}
	}
	return nil
}

// WriteNodeConfig writes the nodeadm drop-in with the node's labels and,
// under failurePolicy Taint, the failure taint. It runs after the graph,
// whatever its outcome; failed lists the failed steps. n.Config may be nil
// when the config step itself failed.
func (n *Node) WriteNodeConfig(ctx context.Context, failed []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	inherited, err := nodeadm.Inherit(n.Root, n.NodeadmConfigs)
	if err != nil && n.Log != nil {
		n.Log.Warn("cannot read the NodeConfigs before nodeprep's drop-in; it inherits nothing from them", "error", err)
	}
	changed, err := nodeadm.Write(n.Root, n.Config, nodeadm.Outcome{Failed: failed, Inherited: inherited, MaxPods: n.maxPods(ctx, inherited)})
	if err != nil {
		return fmt.Errorf("nodeadm drop-in %s: %w", nodeadm.DropInPath, err)
	}
	if n.Log != nil {
		n.Log.Info("nodeadm drop-in", "path", nodeadm.DropInPath, "changed", changed, "failedSteps", failed)
	}
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
	pods, err := eni.MaxPods(ctx, n.Cloud.EC2, n.Cloud.Identity.InstanceType, reserved)
	if err != nil {
		if n.Log != nil {
			n.Log.Warn("cannot compute maxPods; kubelet keeps nodeadm's value, which counts nodeprep's ENIs", "error", err)
		}
		return 0
	}
	return pods
}

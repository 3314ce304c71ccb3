package bootstrap

import (
	"context"
	"fmt"
	"strings"

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
	plan, err := bundle.Plan(root, m.BinDir, names)
	if err != nil {
		return err
	}
	if len(plan.Installed) > 0 {
		what := fmt.Sprintf("install %s into %s from CNI bundle %s", strings.Join(plan.Installed, ", "), m.BinDir, bundle.Version)
		act.Status("cni: installing %d plugins", len(plan.Installed))
		if err := act.Do(ctx, what, func(context.Context) error {
			_, err := bundle.Install(root, m.BinDir, names)
			return err
		}); err != nil {
			return err
		}
	} else {
		act.Log().Info("CNI plugins up to date", "bundle", bundle.Version, "plugins", names)
	}

	files, err := multus.Files(root, m, multus.Options{KubeletKubeconfig: multus.DefaultKubeletKubeconfig})
	if err != nil {
		return err
	}
	pending, err := multus.Pending(root, files)
	if err != nil {
		return err
	}
	// In order: the kubeconfigs before 00-multus.conf, which puts them to use.
	for _, f := range pending {
		f := f
		if err := act.Do(ctx, "write "+f.Path, func(context.Context) error {
			_, err := multus.Write(root, []multus.File{f})
			return err
		}); err != nil {
			return err
		}
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
	changed, err := nodeadm.Write(n.Host.Root, n.Config, nodeadm.Outcome{Failed: failed})
	if err != nil {
		return fmt.Errorf("nodeadm drop-in %s: %w", nodeadm.DropInPath, err)
	}
	n.Log.Info("nodeadm drop-in", "path", nodeadm.DropInPath, "changed", changed, "failedSteps", failed)
	return nil
}

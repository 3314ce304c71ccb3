package bootstrap

import (
	"context"
	"path"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/multus"
)

// cniSteps install Multus, the reference plugins and whereabouts from the
// AMI's bundle and write their configuration, all before kubelet starts, so
// no pod can be created before 00-multus.conf exists.
func (n *Node) cniSteps() []engine.Step {
	m := n.Config.Spec.Multus
	return []engine.Step{{Name: StepCNI, After: []string{StepConfig}, Run: n.cni, Reads: []string{factConfig},
		Writes: []string{m.BinDir, m.ConfDir, path.Dir(m.Kubeconfig), path.Join(m.ConfDir, multus.WhereaboutsDir)}}}
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

package bootstrap

import (
	"context"
	"fmt"
	"path"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// CPU step names.
const (
	// StepCPUProfile resolves spec.cpu on the node's own topology, once;
	// every other CPU step and the nodeadm drop-in take its profile.
	StepCPUProfile = "cpu-profile"
	// StepKernelArgs makes the node boot with spec.cpu's kernel arguments,
	// rebooting at most once, before kubelet ever starts.
	StepKernelArgs = "kernelargs"
	// StepCPU confines housekeeping (systemd slices, IRQs, irqbalance, RPS)
	// to the reserved CPUs. After links and bind, so the IRQs of the ENIs
	// nodeprep attached exist and those of the NICs given to DPDK are gone.
	StepCPU = "cpu"
	// StepKubeletState removes the CPU and memory manager checkpoints a
	// changed profile makes stale (named without "kubelet": plan output
	// speaks of kubelet only when kubelet would be affected).
	StepKubeletState = "cpu-checkpoints"
)

// cpuSteps are spec.cpu's steps; each does nothing without spec.cpu.
func (n *Node) cpuSteps() []engine.Step {
	return []engine.Step{
		{Name: StepCPUProfile, After: []string{StepConfig}, Run: n.runCPUProfile,
			Reads: []string{factConfig}, Makes: []string{factCPUProfile}},
		{Name: StepKernelArgs, After: []string{StepCPUProfile}, Run: n.runKernelArgs,
			Reads: []string{factCPUProfile}, Makes: []string{factKernelArgs},
			Writes: []string{path.Dir(kernelargs.DefaultGrub), path.Dir(kernelargs.MarkerPath)}},
		{Name: StepCPU, After: []string{StepKernelArgs, StepLinks, StepBind}, Run: n.runCPU,
			Reads:  []string{factCPUProfile, factKernelArgs, factLink, factDevice},
			Writes: append([]string{path.Dir(cpuprofile.SystemdDropIn)}, irqbalanceDirs()...)},
		{Name: StepKubeletState, After: []string{StepKernelArgs}, Run: n.runKubeletState,
			Reads: []string{factCPUProfile, factKernelArgs}, Writes: []string{path.Dir(cpuprofile.Record)}},
	}
}

// runCPUProfile reads the node's CPU topology and resolves spec.cpu on it,
// the one time a run does: the steps after it and the nodeadm drop-in take
// the profile from the model, so they cannot disagree on the CPU sets.
func (n *Node) runCPUProfile(ctx context.Context, act change.Actions) error {
	if n.Config.Spec.CPU == nil {
		return nil
	}
	p, err := cpuprofile.Resolve(n.Host.Root, n.Config.Spec.CPU)
	if err != nil {
		return err
	}
	act.Log().Info("cpu partition", "reserved", p.Partition.Reserved.String(), "isolated", p.Partition.Isolated.String(),
		"numaNodes", len(p.Topology.Nodes), "threadsPerCore", p.Topology.ThreadsPerCore(), "kernelArgs", p.Kernel.String())
	n.model.recordCPUProfile(p)
	return nil
}

// cpuProfile is the profile the cpu-profile step recorded; nil without
// spec.cpu. With spec.cpu and no profile (that step failed, or the caller
// does not come after it) it is an error, never a silent "no CPU settings".
func (n *Node) cpuProfile() (*cpuprofile.Profile, error) {
	if n.Config == nil || n.Config.Spec.CPU == nil {
		return nil, nil
	}
	p, ok := n.model.cpuProfile()
	if !ok {
		return nil, fmt.Errorf("spec.cpu: no CPU profile: step %s did not succeed", StepCPUProfile)
	}
	return p, nil
}

func (n *Node) runKernelArgs(ctx context.Context, act change.Actions) error {
	p, err := n.cpuProfile()
	if err != nil || p == nil {
		return err
	}
	boot := kernelargs.Boot{
		Persist: kernelargs.Persister{Root: n.Host.Root, Run: n.Host.Commands},
		Reboot:  kernelargs.Systemctl{Run: n.Host.Commands},
	}
	d, changes, err := boot.Plan(ctx, p.Kernel)
	if err != nil {
		return err
	}
	if !d.Reboot {
		return nil
	}
	act.Status("kernel arguments missing (%s): persisting and rebooting once", d.Missing)
	if err := change.Apply(ctx, act, changes); err != nil || act.DryRun() {
		return err
	}
	// The reboot job replaces kubelet's pending start; nodeprep holds this
	// step until systemd stops it, so nothing after it runs on this kernel.
	<-ctx.Done()
	return fmt.Errorf("rebooting for kernel arguments %s: %w", d.Missing, ctx.Err())
}

func (n *Node) runCPU(ctx context.Context, act change.Actions) error {
	p, err := n.cpuProfile()
	if err != nil || p == nil {
		return err
	}
	h := cpuprofile.Host{Root: n.Host.Root, Kernel: n.Host.Kernel, Units: cpuprofile.Systemctl{Run: n.Host.Commands}}
	changes, err := h.Plan(p)
	if err != nil {
		return err
	}
	act.Status("cpu: %d changes", len(changes))
	return change.Apply(ctx, act, changes)
}

func (n *Node) runKubeletState(ctx context.Context, act change.Actions) error {
	if n.Config.Spec.CPU == nil {
		return nil
	}
	inherited, err := nodeadm.Inherit(n.Host.Root, n.NodeadmConfigs)
	if err != nil {
		return err
	}
	k, err := n.cpuKubelet(inherited)
	if err != nil || k == nil {
		return err
	}
	changes, err := cpuprofile.PlanState(n.Host.Root, *k)
	if err != nil {
		return err
	}
	return change.Apply(ctx, act, changes)
}

// cpuKubelet is the kubelet part of the profile after the user's own
// NodeConfig values took precedence; nil without spec.cpu.
func (n *Node) cpuKubelet(inherited nodeadm.Inherited) (*cpuprofile.Kubelet, error) {
	p, err := n.cpuProfile()
	if err != nil || p == nil {
		return nil, err
	}
	k, err := p.Kubelet.Respect(inherited.KubeletConfig, p.Topology.Nodes)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// StepHugepagesNICLocal reserves the hugepages placed nicLocal, after the
// links step has found each DPDK NIC's PCI device (and so its NUMA node).
// The other sizes keep their early step, when memory is least fragmented.
const StepHugepagesNICLocal = "hugepages-niclocal"

func (n *Node) nicLocalSteps() []engine.Step {
	return []engine.Step{{Name: StepHugepagesNICLocal, After: []string{StepLinks}, Run: n.runHugepagesNICLocal,
		Reads: []string{factConfig, factLink}}}
}

func (n *Node) runHugepagesNICLocal(ctx context.Context, act change.Actions) error {
	var reqs []api.Hugepages
	for _, r := range n.Config.Spec.Hugepages {
		if r.Placement == api.HugepagePlacementNICLocal && r.Count > 0 {
			reqs = append(reqs, r)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	var bdfs []string
	for _, in := range n.Config.Spec.Interfaces {
		if !in.DPDK() {
			continue
		}
		addr := in.PCIAddress
		if a := n.model.iface(in.Name).Link.PCIAddress; a != "" {
			addr = a
		}
		if addr == "" {
			return fmt.Errorf("hugepages nicLocal: no PCI device known for interface %s", in.Name)
		}
		bdfs = append(bdfs, addr)
	}
	for i := range reqs {
		p, err := hugepages.NICLocal(n.Host.Root, reqs[i].Count, bdfs)
		if err != nil {
			return err
		}
		act.Log().Info("hugepages nicLocal", "size", reqs[i].Size, "perNode", p.PerNode, "noNUMANode", p.Unknown)
		reqs[i].PerNUMANode, reqs[i].Count = p.PerNode, 0
	}
	_, changes, err := n.Host.hugepages().Plan(reqs)
	if err != nil {
		return err
	}
	return change.Apply(ctx, act, changes)
}

// factCPUProfile: cpuprofile.Profile, spec.cpu resolved on this node's
// topology (model.cpuProfile).
const factCPUProfile = "cpuprofile"

// factKernelArgs: the node runs the kernel command line spec.cpu asks for
// (or the step failed); nothing that depends on isolation runs before it.
const factKernelArgs = "kernelargs"

// irqbalanceDirs are the directories of irqbalance's EnvironmentFiles.
func irqbalanceDirs() []string {
	var out []string
	for _, f := range cpuprofile.IRQBalanceEnv() {
		out = append(out, path.Dir(f))
	}
	return out
}

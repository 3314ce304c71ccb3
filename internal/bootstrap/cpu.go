package bootstrap

import (
	"context"
	"fmt"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// CPU step names.
const (
	// StepKernelArgs makes the node boot with spec.cpu's kernel arguments,
	// rebooting at most once, before kubelet ever starts.
	StepKernelArgs = "kernelargs"
	// StepCPU confines housekeeping (systemd slices, IRQs, irqbalance, RPS)
	// to the reserved CPUs. After links and bind, so the IRQs of the ENIs
	// nodeprep attached exist and those of the NICs given to DPDK are gone.
	StepCPU = "cpu"
	// StepKubeletState removes kubelet checkpoints a changed profile makes stale.
	StepKubeletState = "kubelet-state"
)

// cpuSteps are spec.cpu's steps; each does nothing without spec.cpu.
func (n *Node) cpuSteps() []engine.Step {
	return []engine.Step{
		{Name: StepKernelArgs, After: []string{StepConfig}, Run: n.runKernelArgs},
		{Name: StepCPU, After: []string{StepKernelArgs, StepLinks, StepBind}, Run: n.runCPU},
		{Name: StepKubeletState, After: []string{StepKernelArgs}, Run: n.runKubeletState},
	}
}

// cpuProfile resolves spec.cpu on this node's topology; nil without spec.cpu.
// It is a pure function of the config and sysfs, so every step computes the
// same profile and none has to hand it to another.
func (n *Node) cpuProfile() (*cpuprofile.Profile, error) {
	if n.Config == nil || n.Config.Spec.CPU == nil {
		return nil, nil
	}
	topo, err := cpuset.ReadTopology(n.Host.Root)
	if err != nil {
		return nil, err
	}
	return cpuprofile.Build(n.Config.Spec.CPU, topo)
}

func (n *Node) runKernelArgs(ctx context.Context, act change.Actions) error {
	p, err := n.cpuProfile()
	if err != nil || p == nil {
		return err
	}
	act.Log().Info("cpu partition", "reserved", p.Partition.Reserved.String(), "isolated", p.Partition.Isolated.String(),
		"numaNodes", len(p.Topology.Nodes), "threadsPerCore", p.Topology.ThreadsPerCore(), "kernelArgs", p.Kernel.String())
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
	k, err := n.cpuKubelet()
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
func (n *Node) cpuKubelet() (*cpuprofile.Kubelet, error) {
	p, err := n.cpuProfile()
	if err != nil || p == nil {
		return nil, err
	}
	inherited, err := nodeadm.Inherit(n.Host.Root, n.NodeadmConfigs)
	if err != nil {
		return nil, err
	}
	k, err := p.Kubelet.Respect(inherited.KubeletConfig, p.Topology.Nodes)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

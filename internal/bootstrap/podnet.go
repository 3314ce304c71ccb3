package bootstrap

import (
	"context"
	"fmt"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
)

// PodNetworks pairs each interface pods attach to with the ENI the state
// records for it, the facts the conflists and device-info files are built
// from. An interface the state does not know yet is an error naming it.
func PodNetworks(cfg *api.NodePrepConfig, known map[string]state.Interface) ([]netconf.Network, error) {
	var out []netconf.Network
	for _, in := range cfg.Spec.Interfaces {
		if !nad.Attachable(in) {
			continue
		}
		s, ok := known[in.Name]
		if !ok {
			return nil, fmt.Errorf("interface %s: not in %s; nodeprep has not run it here", in.Name, state.Path)
		}
		out = append(out, netconf.Network{Config: in, Attachment: s.ENI, Resource: nad.ResourceName(cfg, in)})
	}
	return out, nil
}

// StepPodNetworks writes each attachable interface's conflist into Multus's
// confDir and, for each bound DPDK device and each whole-ENI pool's NIC,
// its device-info file.
const StepPodNetworks = "podnetworks"

// podNetSteps run once the ENIs are up (their addresses known) and DPDK
// devices bound (their PCI addresses known).
func (n *Node) podNetSteps() []engine.Step {
	return []engine.Step{{Name: StepPodNetworks, After: []string{StepLinks, StepBind}, Run: n.podNetworks,
		Reads:  []string{factConfig, factENI, factLink, factDevice},
		Writes: []string{n.Config.Spec.Multus.NetworkConfDir, devinfo.Dir}}}
}

func (n *Node) podNetworks(ctx context.Context, act change.Actions) error {
	cfg := n.Config
	// No early return without attachable interfaces: the files an earlier
	// config had nodeprep write must still go.
	dir := cfg.Spec.Multus.NetworkConfDir
	nets, err := PodNetworks(cfg, n.model.known(cfg.Spec.Interfaces))
	var conflists []change.Change
	if err == nil {
		conflists, err = netconf.Plan(n.Host.Root, dir, nets, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion})
	}
	if err != nil && act.DryRun() {
		// Under plan the ENIs (and their addresses) may not exist yet.
		act.Plan("write the conflists of the attachable interfaces into " + dir)
		return nil
	}
	if err != nil {
		return err
	}
	var devices []devinfo.Device
	for _, e := range nets {
		addr := n.devicePCIAddress(e.Config)
		if addr == "" {
			continue
		}
		if !e.Subnet.IsValid() {
			act.Log().Info("no device-info for an interface nodeprep did not get from EC2", "interface", e.Name())
			continue
		}
		devices = append(devices, devinfo.Device{PCIAddress: addr, Network: e})
	}
	infos, err := devinfo.Plan(n.Host.Root, devinfo.Dir, devices)
	if err != nil {
		return err
	}
	// Only what differs is a change, so a re-run reports none.
	return change.Apply(ctx, act, append(conflists, infos...))
}

// devicePCIAddress is the PCI address the device plugin hands a pod for
// the interface, the key of its device-info file: a DPDK interface's bound
// device, a whole-ENI pool member's NIC (which stays on ena); "" for an
// interface pods do not get through the device plugin, or not recorded.
func (n *Node) devicePCIAddress(in api.Interface) string {
	rec := n.model.iface(in.Name)
	switch {
	case in.DPDK():
		if dev, ok := boundDevice(rec); ok {
			return dev.Address
		}
	case in.Pooled():
		return rec.Link.PCIAddress
	}
	return ""
}

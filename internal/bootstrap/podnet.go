package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
)

// PodNetworks turns what the state knows of each interface pods attach to
// into the ENI facts the conflists and device-info files are built from.
// An interface the state does not know yet is an error naming it.
func PodNetworks(cfg *api.NodePrepConfig, known []state.Interface) ([]netconf.ENI, error) {
	byName := make(map[string]state.Interface, len(known))
	for _, s := range known {
		byName[s.Name] = s
	}
	var out []netconf.ENI
	for _, in := range cfg.Spec.Interfaces {
		if !nad.Attachable(in) {
			continue
		}
		s, ok := byName[in.Name]
		if !ok {
			return nil, fmt.Errorf("interface %s: not in %s; nodeprep has not run it here", in.Name, state.Path)
		}
		e, err := podNetwork(in, s)
		e.ResourceName = nad.ResourceName(cfg, in)
		if err != nil {
			return nil, fmt.Errorf("interface %s: state: %w", in.Name, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func podNetwork(in api.Interface, s state.Interface) (netconf.ENI, error) {
	e := netconf.ENI{Name: in.Name, ENIID: s.ENIID, MAC: s.MAC, DPDK: in.DPDK(), MTU: in.MTU}
	var errs []error
	one := func(field, v string, dst any) {
		if v == "" {
			return
		}
		var err error
		switch d := dst.(type) {
		case *netip.Prefix:
			*d, err = netip.ParsePrefix(v)
		case *netip.Addr:
			*d, err = netip.ParseAddr(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	one("subnetCIDR", s.SubnetCIDR, &e.Subnet)
	one("ipv6SubnetCIDR", s.IPv6SubnetCIDR, &e.IPv6Subnet)
	one("privateIP", s.PrivateIP, &e.PrimaryIP)
	e.SecondaryIPs = parseEach("secondaryIPs", s.SecondaryIPs, netip.ParseAddr, &errs)
	e.IPv6Addresses = parseEach("ipv6Addresses", s.IPv6Addresses, netip.ParseAddr, &errs)
	e.IPv4Prefixes = parseEach("ipv4Prefixes", s.IPv4Prefixes, netip.ParsePrefix, &errs)
	e.IPv6Prefixes = parseEach("ipv6Prefixes", s.IPv6Prefixes, netip.ParsePrefix, &errs)
	return e, errors.Join(errs...)
}

func parseEach[T any](field string, vs []string, parse func(string) (T, error), errs *[]error) []T {
	var out []T
	for _, v := range vs {
		x, err := parse(v)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		out = append(out, x)
	}
	return out
}

// StepPodNetworks writes each attachable interface's conflist into Multus's
// confDir and, for each bound DPDK device, its device-info file.
const StepPodNetworks = "podnetworks"

// podNetSteps run once the ENIs are up (their addresses known) and DPDK
// devices bound (their PCI addresses known).
func (n *Node) podNetSteps() []engine.Step {
	return []engine.Step{{Name: StepPodNetworks, After: []string{StepLinks, StepBind}, Run: n.podNetworks}}
}

func (n *Node) podNetworks(ctx context.Context, act change.Actions) error {
	cfg := n.Config
	// No early return without attachable interfaces: the files an earlier
	// config had nodeprep write must still go.
	var known []state.Interface
	for _, in := range cfg.Spec.Interfaces {
		if rec, ok := n.model.store.Interface(in.Name); ok {
			known = append(known, rec)
		}
	}
	dir := cfg.Spec.Multus.NetworkConfDir
	enis, err := PodNetworks(cfg, known)
	var conflists []change.Change
	if err == nil {
		conflists, err = netconf.Plan(n.Host.Root, dir, enis, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion})
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
	for _, e := range enis {
		s := n.model.iface(e.Name)
		if !e.DPDK || s.PCIAddress == "" {
			continue
		}
		if !e.Subnet.IsValid() {
			act.Log().Info("no device-info for an interface nodeprep did not get from EC2", "interface", e.Name)
			continue
		}
		devices = append(devices, devinfo.Device{PCIAddress: s.PCIAddress, ENI: e})
	}
	infos, err := devinfo.Plan(n.Host.Root, devinfo.Dir, devices)
	if err != nil {
		return err
	}
	// Only what differs is a change, so a re-run reports none.
	return change.Apply(ctx, act, append(conflists, infos...))
}

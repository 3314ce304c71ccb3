package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/dirsync"
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

func (n *Node) podNetworks(ctx context.Context, act engine.Actions) error {
	cfg := n.Config
	attachable := false
	for _, in := range cfg.Spec.Interfaces {
		attachable = attachable || nad.Attachable(in)
	}
	if !attachable {
		return nil
	}
	enis, err := PodNetworks(cfg, n.State.Interfaces())
	if err != nil {
		if act.DryRun() {
			// Plan runs before any ENI exists: say what run would write.
			return act.Do(ctx, "write the conflists of the attachable interfaces into "+cfg.Spec.Multus.NetworkConfDir, nil)
		}
		return err
	}
	dir := cfg.Spec.Multus.NetworkConfDir
	conflists, err := netconf.Plan(n.Root, dir, enis, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion})
	if err != nil {
		return err
	}
	var devices []devinfo.Device
	for _, e := range enis {
		s, _ := n.State.Interface(e.Name)
		if !e.DPDK || s.PCIAddress == "" {
			continue
		}
		if !e.Subnet.IsValid() {
			act.Log().Info("no device-info for an interface nodeprep did not get from EC2", "interface", e.Name)
			continue
		}
		devices = append(devices, devinfo.Device{PCIAddress: s.PCIAddress, ENI: e})
	}
	infos, err := devinfo.Plan(n.Root, devinfo.Dir, devices)
	if err != nil {
		return err
	}
	// Only what differs is an action, so a re-run reports no change.
	for _, c := range []struct {
		dir     string
		changes []dirsync.Change
	}{{dir, conflists}, {devinfo.Dir, infos}} {
		if len(c.changes) == 0 {
			continue
		}
		if err := act.Do(ctx, "update "+strings.Join(dirsync.Paths(c.changes), ", "), func(context.Context) error {
			return dirsync.Apply(n.Root, c.dir, c.changes)
		}); err != nil {
			return err
		}
	}
	return nil
}

// PodNetworkSteps is the conflist and device-info step alone, for tests
// that run it after ENISteps.
func (n *Node) PodNetworkSteps() []engine.Step { return n.podNetSteps() }

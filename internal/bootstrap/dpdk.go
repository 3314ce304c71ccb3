package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/state"
)

// dpdkSteps are DPDK host preparation: huge pages, the DPDK kernel
// drivers, binding the DPDK interfaces, and the device plugin config.
func (n *Node) dpdkSteps() []engine.Step {
	return []engine.Step{
		{Name: StepHugepages, After: []string{StepConfig}, Run: n.runHugepages, Reads: []string{factConfig}},
		{Name: StepModules, After: []string{StepConfig}, Run: n.runModules, Reads: []string{factConfig}, Makes: []string{factModules}, Writes: []string{path.Dir(kmod.ModprobeConf), path.Dir(kmod.ModulesLoadConf)}},
		// After links: the ENI step must have attached (and recorded the
		// MAC of) managed ENIs; unmanaged NICs need no EC2 at all.
		{Name: StepBind, After: []string{StepLinks, StepModules}, Run: n.runBind,
			Reads: []string{factConfig, factENI, factLink, factModules}, Makes: []string{factDevice}},
		{Name: StepDevicePlugin, After: []string{StepBind}, Run: n.runDevicePlugin, Reads: []string{factConfig, factDevice, factLink}, Writes: []string{path.Dir(n.Config.Spec.DevicePlugin.ConfigPath)}},
	}
}

func (n *Node) runHugepages(ctx context.Context, act change.Actions) error {
	var reqs []api.Hugepages
	for _, r := range n.Config.Spec.Hugepages {
		if r.Placement != api.HugepagePlacementNICLocal {
			reqs = append(reqs, r) // nicLocal waits for the NICs: StepHugepagesNICLocal
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	pools, changes, err := n.Host.hugepages().Plan(reqs)
	if err != nil {
		return err
	}
	for _, p := range pools {
		act.Log().Info("hugepages observed", "size", p.Size, "requested", p.Requested, "total", p.Total, "perNode", p.PerNode)
	}
	act.Status("hugepages: %d changes", len(changes))
	return change.Apply(ctx, act, changes)
}

func (n *Node) runModules(ctx context.Context, act change.Actions) error {
	spec := kmod.SpecFor(n.Config.Spec)
	st, changes, err := n.Host.modules().Plan(spec)
	if err != nil {
		return err
	}
	if spec.VFIO || spec.IGBUIO {
		act.Log().Info("modules observed", "iommu", st.IOMMU, "noiommu", st.NoIOMMU, "loaded", st.Loaded)
	}
	act.Status("modules: %d changes", len(changes))
	return change.Apply(ctx, act, changes)
}

// dpdkTargets are the configured DPDK interfaces. A managed ENI is found by
// the MAC the ENI step recorded; an unmanaged NIC by its mac/pciAddress.
func (n *Node) dpdkTargets() ([]pci.Target, error) {
	var out []pci.Target
	for i, in := range n.Config.Spec.Interfaces {
		if !in.DPDK() {
			continue
		}
		rec := n.model.iface(in.Name)
		t := pci.Target{Name: in.Name, MAC: in.MAC, PCIAddress: in.PCIAddress, Driver: in.Driver, DeviceIndex: in.DeviceIndex, Previous: rec.Device}
		if in.Managed() {
			if t.MAC = rec.ENI.MAC; t.MAC == "" {
				return nil, fmt.Errorf("spec.interfaces[%d] (%s): the ENI step recorded no MAC for it", i, in.Name)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func (n *Node) runBind(ctx context.Context, act change.Actions) error {
	targets, err := n.dpdkTargets()
	if err != nil || len(targets) == 0 {
		return err
	}
	b := n.Host.binder(n.model.recordBinding)
	var errs []error
	for i, t := range targets {
		res, changes, err := b.Plan(ctx, t)
		switch {
		case err != nil && act.DryRun() && errors.Is(err, pci.ErrNoDriver):
			// The modules step would load the driver first.
			act.Plan(fmt.Sprintf("bind %s (PCI %s, %s) from %s to %s after the modules step loads it", t.Name, res.Device.Address, res.Device.ID(), driverOrNone(res.Device.Driver), t.Driver))
		case err != nil:
			errs = append(errs, err)
			continue
		case len(changes) == 0:
			act.Log().Info("already bound", logging.Interface(t.Name), logging.PCIAddress(res.Device.Address), "driver", res.Device.Driver)
		default:
			act.Status("binding %s %d/%d to %s", t.Name, i+1, len(targets), t.Driver)
			act.Log().Info("binding", logging.Interface(t.Name), logging.PCIAddress(res.Device.Address), logging.MAC(res.MAC), logging.IfName(res.IfName))
			if err := change.Apply(ctx, act, changes); err != nil {
				errs = append(errs, err)
				continue
			}
			if !act.DryRun() {
				continue // the binder recorded the bound device
			}
		}
		// Bound already, or (under plan) as it would be bound: the device
		// plugin step reads the device from the model.
		if err := n.model.recordBinding(res); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && !act.DryRun() {
		errs = n.checkGroups(b, targets)
	}
	return errors.Join(errs...)
}

// checkGroups runs once every target is bound, since two targets may share
// an IOMMU group: each vfio-pci device's group must be free of host drivers.
func (n *Node) checkGroups(b *pci.Binder, targets []pci.Target) []error {
	var errs []error
	for _, t := range targets {
		if t.Driver != api.DriverVFIOPCI {
			continue
		}
		dev, ok := n.model.device(t.Name)
		if !ok {
			continue
		}
		addr := dev.Address
		blockers, err := b.Sysfs.GroupBlockers(addr)
		if err != nil {
			errs = append(errs, err)
		} else if len(blockers) > 0 {
			errs = append(errs, fmt.Errorf("interface %s: PCI %s is on vfio-pci, but its IOMMU group also holds %s on host drivers, so DPDK cannot open it: %w",
				t.Name, addr, strings.Join(blockers, ", "), pci.ErrGroupInUse))
		}
	}
	return errs
}

func (n *Node) runDevicePlugin(ctx context.Context, act change.Actions) error {
	list, err := DevicePluginResources(n.Config, n.model.known(n.Config.Spec.Interfaces))
	if err != nil || len(list) == 0 {
		return err
	}
	dp := n.Config.Spec.DevicePlugin
	changes, err := deviceplugin.Plan(n.Host.Root, dp.ConfigPath, dp.ResourcePrefix, list)
	if err != nil {
		return err
	}
	return change.Apply(ctx, act, changes)
}

// DevicePluginResources are the device plugin's pools as the state records
// them, sorted by name: each DPDK interface's bound device, and each
// whole-ENI pool member's NIC on its kernel driver (ena), found by the PCI
// address the links step recorded under its netdev. The run writes them
// and the doctor compares the file with them.
func DevicePluginResources(cfg *api.NodePrepConfig, known map[string]state.Interface) ([]deviceplugin.Resource, error) {
	resources := map[string]*deviceplugin.Resource{}
	var errs []error
	for _, in := range cfg.Spec.Interfaces {
		if !in.DPDK() && !in.Pooled() {
			continue
		}
		rec := known[in.Name]
		var dev deviceplugin.Device
		if in.DPDK() {
			d, ok := boundDevice(rec)
			if !ok {
				errs = append(errs, fmt.Errorf("interface %s: the bind step recorded no PCI device for it", in.Name))
				continue
			}
			dev = deviceplugin.Device{Address: d.Address, Vendor: d.Vendor, Device: d.Device, Driver: string(in.Driver)}
		} else {
			if rec.Link.PCIAddress == "" {
				errs = append(errs, fmt.Errorf("interface %s: the links step recorded no PCI address for its NIC (whole-ENI pool %s)", in.Name, in.ResourceName))
				continue
			}
			dev = deviceplugin.Device{Address: rec.Link.PCIAddress, Driver: deviceplugin.DriverENA}
		}
		r := resources[in.ResourceName]
		if r == nil {
			r = &deviceplugin.Resource{Name: in.ResourceName}
			resources[in.ResourceName] = r
		}
		r.Devices = append(r.Devices, dev)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	names := make([]string, 0, len(resources))
	for name := range resources {
		names = append(names, name)
	}
	sort.Strings(names)
	list := make([]deviceplugin.Resource, 0, len(names))
	for _, name := range names {
		list = append(list, *resources[name])
	}
	return list, nil
}

func driverOrNone(s string) string {
	if s == "" {
		return "no driver"
	}
	return s
}

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// dpdkHost is what the DPDK steps act through: real sysfs, modprobe,
// mount(2) and netlink on a node; emulations in tests.
type dpdkHost struct {
	hugepages *hugepages.Manager
	modules   *kmod.Manager
	kernel    pci.Kernel
	links     pci.Links
}

func (n *Node) realDPDKHost() dpdkHost {
	return dpdkHost{
		hugepages: hugepages.New(n.Root),
		modules:   kmod.New(n.Root),
		kernel:    n.Root,
		links:     pci.NetlinkLinks{},
	}
}

// dpdkSteps are DPDK host preparation: huge pages, the DPDK kernel
// drivers, binding the DPDK interfaces, and the device plugin config.
func (n *Node) dpdkSteps() []engine.Step { return n.dpdkStepsWith(n.realDPDKHost()) }

func (n *Node) dpdkStepsWith(h dpdkHost) []engine.Step {
	d := &dpdkRun{n: n, h: h}
	return []engine.Step{
		{Name: StepHugepages, After: []string{StepConfig}, Run: d.hugepages},
		{Name: StepModules, After: []string{StepConfig}, Run: d.modules},
		// After links: the ENI step must have attached (and recorded the
		// MAC of) managed ENIs; unmanaged NICs need no EC2 at all.
		{Name: StepBind, After: []string{StepLinks, StepModules}, Run: d.bind},
		{Name: StepDevicePlugin, After: []string{StepBind}, Run: d.devicePlugin},
	}
}

// dpdkRun carries the bind results to the device plugin step; the engine
// orders the two, the mutex keeps the race detector honest.
type dpdkRun struct {
	n     *Node
	h     dpdkHost
	mu    sync.Mutex
	bound map[string]pci.Binding
}

func (d *dpdkRun) binder() *pci.Binder {
	return &pci.Binder{Sysfs: pci.Sysfs{Root: d.n.Root}, Kernel: d.h.kernel, Links: d.h.links, State: d.n.State}
}

func (d *dpdkRun) hugepages(ctx context.Context, act engine.Actions) error {
	reqs := d.n.Config.Spec.Hugepages
	if len(reqs) == 0 {
		return nil
	}
	pools, changes, err := d.h.hugepages.Plan(reqs)
	if err != nil {
		return err
	}
	for _, p := range pools {
		act.Log().Info("hugepages observed", "size", p.Size, "requested", p.Requested, "total", p.Total, "perNode", p.PerNode)
	}
	for i, c := range changes {
		act.Status("hugepages %d/%d: %s", i+1, len(changes), c.What)
		if err := act.Do(ctx, c.What, c.Apply); err != nil {
			return err
		}
	}
	return nil
}

func (d *dpdkRun) modules(ctx context.Context, act engine.Actions) error {
	spec := kmod.SpecFor(d.n.Config.Spec)
	st, changes, err := d.h.modules.Plan(spec)
	if err != nil {
		return err
	}
	if spec.VFIO || spec.IGBUIO {
		act.Log().Info("modules observed", "iommu", st.IOMMU, "noiommu", st.NoIOMMU, "loaded", st.Loaded)
	}
	for _, c := range changes {
		act.Status("modules: %s", c.What)
		if err := act.Do(ctx, c.What, c.Apply); err != nil {
			return err
		}
	}
	return nil
}

// targets are the configured DPDK interfaces. A managed ENI is found by
// the MAC the ENI step recorded; an unmanaged NIC by its mac/pciAddress.
func (d *dpdkRun) targets() ([]pci.Target, error) {
	var out []pci.Target
	for i, in := range d.n.Config.Spec.Interfaces {
		if !in.DPDK() {
			continue
		}
		t := pci.Target{Name: in.Name, MAC: in.MAC, PCIAddress: in.PCIAddress, Driver: in.Driver, DeviceIndex: in.DeviceIndex}
		if in.Managed() {
			rec, ok := d.n.State.Interface(in.Name)
			if !ok || rec.MAC == "" {
				return nil, fmt.Errorf("spec.interfaces[%d] (%s): the ENI step recorded no MAC for it", i, in.Name)
			}
			t.MAC = rec.MAC
		}
		out = append(out, t)
	}
	return out, nil
}

func (d *dpdkRun) bind(ctx context.Context, act engine.Actions) error {
	targets, err := d.targets()
	if err != nil || len(targets) == 0 {
		return err
	}
	b := d.binder()
	bound := map[string]pci.Binding{}
	var errs []error
	for i, t := range targets {
		res, c, err := b.Plan(ctx, t)
		switch {
		case err != nil && act.DryRun() && errors.Is(err, pci.ErrNoDriver):
			// The modules step would load the driver first.
			what := fmt.Sprintf("bind %s (PCI %s, %s) from %s to %s after the modules step loads it", t.Name, res.Device.Address, res.Device.ID(), driverOrNone(res.Device.Driver), t.Driver)
			_ = act.Do(ctx, what, nil)
			bound[t.Name] = res
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		case c == nil:
			act.Log().Info("already bound", "interface", t.Name, "pci", res.Device.Address, "driver", res.Device.Driver)
			if !act.DryRun() {
				if err := b.Record(res, ""); err != nil {
					errs = append(errs, err)
					continue
				}
			}
		default:
			act.Status("binding %s %d/%d to %s", t.Name, i+1, len(targets), t.Driver)
			if err := act.Do(ctx, c.What, c.Apply); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		bound[t.Name] = res
	}
	if len(errs) == 0 && !act.DryRun() {
		errs = d.checkGroups(b, targets)
	}
	d.mu.Lock()
	d.bound = bound
	d.mu.Unlock()
	return errors.Join(errs...)
}

// checkGroups runs once every target is bound, since two targets may share
// an IOMMU group: each vfio-pci device's group must be free of host drivers.
func (d *dpdkRun) checkGroups(b *pci.Binder, targets []pci.Target) []error {
	var errs []error
	for _, t := range targets {
		if t.Driver != api.DriverVFIOPCI {
			continue
		}
		rec, ok := d.n.State.Interface(t.Name)
		if !ok || rec.PCIAddress == "" {
			continue
		}
		blockers, err := b.Sysfs.GroupBlockers(rec.PCIAddress)
		if err != nil {
			errs = append(errs, err)
		} else if len(blockers) > 0 {
			errs = append(errs, fmt.Errorf("interface %s: PCI %s is on vfio-pci, but its IOMMU group also holds %s on host drivers, so DPDK cannot open it: %w",
				t.Name, rec.PCIAddress, strings.Join(blockers, ", "), pci.ErrGroupInUse))
		}
	}
	return errs
}

func (d *dpdkRun) devicePlugin(ctx context.Context, act engine.Actions) error {
	targets, err := d.targets()
	if err != nil || len(targets) == 0 {
		return err
	}
	d.mu.Lock()
	bound := d.bound
	d.mu.Unlock()
	resources := map[string]*deviceplugin.Resource{}
	for _, in := range d.n.Config.Spec.Interfaces {
		if !in.DPDK() {
			continue
		}
		res, ok := bound[in.Name]
		if !ok {
			return fmt.Errorf("interface %s was not bound", in.Name)
		}
		r := resources[in.ResourceName]
		if r == nil {
			r = &deviceplugin.Resource{Name: in.ResourceName}
			resources[in.ResourceName] = r
		}
		r.Devices = append(r.Devices, deviceplugin.Device{Address: res.Device.Address, Vendor: res.Device.Vendor, Device: res.Device.Device, Driver: string(in.Driver)})
	}
	names := make([]string, 0, len(resources))
	for n := range resources {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]deviceplugin.Resource, 0, len(names))
	summary := make([]string, 0, len(names))
	for _, n := range names {
		list = append(list, *resources[n])
		summary = append(summary, fmt.Sprintf("%s (%d)", n, len(resources[n].Devices)))
	}
	dp := d.n.Config.Spec.DevicePlugin
	data, err := deviceplugin.Render(dp.ResourcePrefix, list)
	if err != nil {
		return err
	}
	need, err := deviceplugin.Plan(d.n.Root, dp.ConfigPath, data)
	if err != nil || !need {
		return err
	}
	what := fmt.Sprintf("write %s: %s/%s", dp.ConfigPath, dp.ResourcePrefix, strings.Join(summary, ", "))
	return act.Do(ctx, what, func(context.Context) error {
		_, err := deviceplugin.Write(d.n.Root, dp.ConfigPath, data)
		return err
	})
}

func driverOrNone(s string) string {
	if s == "" {
		return "no driver"
	}
	return s
}

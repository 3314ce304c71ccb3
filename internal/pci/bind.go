package pci

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
)

// Usage is how the node uses an interface.
type Usage struct {
	// DefaultRoute: some routing table sends the default route out of it.
	DefaultRoute bool
	// Addresses are its global-scope addresses.
	Addresses []string
}

// String says how the node uses the interface, e.g. "it carries a default route".
func (u Usage) String() string { return describe(u) }

// InUse reports whether taking the interface away would cut the node off.
func (u Usage) InUse() bool { return u.DefaultRoute || len(u.Addresses) > 0 }

// Links is the netlink side: who uses a link, and taking it down.
type Links interface {
	Usage(ctx context.Context, ifname string) (Usage, error)
	SetDown(ctx context.Context, ifname string) error
}

// Target is one interface to hand to a DPDK driver.
type Target struct {
	// Name is the configured interface name, the state key.
	Name string
	// MAC and/or PCIAddress pick the device. For EC2-managed ENIs the MAC
	// comes from the ENI step's record.
	MAC        string
	PCIAddress string
	Driver     api.Driver
	// DeviceIndex is the EC2 device index when known; 0 is the primary ENI.
	DeviceIndex *int32
	// Previous is the binding an earlier run recorded, so a re-run finds
	// the device after its netdev is gone: it keeps the MAC ↔ PCI function
	// link and the vendor:device that was at that address.
	Previous Binding
}

// Binding is the observed or resulting state of one target: the one home
// of what nodeprep knows of a DPDK device. The state file stores it as is.
type Binding struct {
	// Name is the configured interface name.
	Name string `json:"name"`
	// MAC and IfName are the netdev's before the device left its kernel
	// driver; IfName is "" once the netdev is gone.
	MAC    string     `json:"mac,omitempty"`
	IfName string     `json:"ifName,omitempty"`
	Device Device     `json:"device"`
	Driver api.Driver `json:"driver"`
}

// Binder binds targets on one host.
type Binder struct {
	Sysfs  Sysfs
	Kernel change.Kernel
	Links  Links
	// Remember is told what is known of a device before its netdev goes
	// away on unbind, and again once it is bound. The caller keeps it
	// (nodeprep's state file), so that a run that dies between the two
	// still finds the device; see Target.Previous.
	Remember func(Binding) error
}

// Plan resolves a target and checks it is safe to take. It only reads. It
// returns no change when the device is already on the driver.
func (b *Binder) Plan(ctx context.Context, t Target) (Binding, []change.Change, error) {
	res := Binding{Name: t.Name, Driver: t.Driver}
	if err := validateTarget(t); err != nil {
		return res, nil, err
	}
	if t.DeviceIndex != nil && *t.DeviceIndex == 0 {
		return res, nil, fmt.Errorf("interface %s: device index 0 is the primary ENI, which the node needs: %w", t.Name, ErrInUse)
	}
	bdf, ifname, err := b.resolve(t)
	if err != nil {
		return res, nil, err
	}
	dev, err := b.Sysfs.Device(bdf)
	if err != nil {
		return res, nil, err
	}
	res.Device, res.IfName, res.MAC = dev, ifname, strings.ToLower(t.MAC)
	if !dev.IsNetwork() {
		return res, nil, fmt.Errorf("interface %s: PCI %s (%s) is class %s, not a network controller: %w", t.Name, bdf, dev.ID(), dev.Class, ErrInvalid)
	}
	// Every netdev of the function must be unused, not only the one the
	// config named.
	for _, n := range dev.Netdevs {
		u, err := b.Links.Usage(ctx, n)
		if err != nil {
			return res, nil, fmt.Errorf("interface %s: inspect %s: %w", t.Name, n, err)
		}
		if u.InUse() {
			return res, nil, fmt.Errorf("interface %s: refusing to take %s (PCI %s): %s: %w", t.Name, n, bdf, describe(u), ErrInUse)
		}
		if res.MAC == "" {
			if mac, err := b.Sysfs.MAC(n); err == nil {
				res.MAC = mac
			}
		}
		if res.IfName == "" {
			res.IfName = n
		}
	}
	want := string(t.Driver)
	if dev.Driver == want {
		return res, nil, nil
	}
	if !b.Sysfs.DriverLoaded(want) {
		return res, nil, fmt.Errorf("interface %s: %s: %w (the modules step loads it)", t.Name, want, ErrNoDriver)
	}
	from := dev.Driver
	if from == "" {
		from = "no driver"
	}
	c := change.Change{
		What: fmt.Sprintf("bind %s (PCI %s, %s, %s) from %s to %s", t.Name, bdf, dev.ID(), orNone(res.IfName), from, want),
		Apply: func(ctx context.Context) error {
			return b.bind(ctx, res)
		},
	}
	return res, []change.Change{c}, nil
}

func validateTarget(t Target) error {
	if t.Driver != api.DriverVFIOPCI && t.Driver != api.DriverIGBUIO {
		return fmt.Errorf("interface %s: driver %q: %w: want vfio-pci or igb_uio", t.Name, t.Driver, ErrInvalid)
	}
	if t.PCIAddress != "" {
		if err := ValidAddress(t.PCIAddress); err != nil {
			return fmt.Errorf("interface %s: %w", t.Name, err)
		}
	}
	if t.MAC != "" && !api.MACPattern.MatchString(strings.ToLower(t.MAC)) {
		return fmt.Errorf("interface %s: MAC %q: %w", t.Name, t.MAC, ErrInvalid)
	}
	if t.MAC == "" && t.PCIAddress == "" {
		return fmt.Errorf("interface %s: neither MAC nor PCI address known: %w", t.Name, ErrNotFound)
	}
	return nil
}

// resolve finds the PCI function: by MAC through its netdev while the
// netdev exists, else through what an earlier run recorded.
func (b *Binder) resolve(t Target) (bdf, ifname string, err error) {
	if t.MAC != "" {
		ifname, err = b.Sysfs.NetdevByMAC(t.MAC)
		if err != nil {
			return "", "", err
		}
		if ifname != "" {
			bdf, err = b.Sysfs.AddressOf(ifname)
			if err != nil {
				return "", "", err
			}
			if t.PCIAddress != "" && t.PCIAddress != bdf {
				return "", "", fmt.Errorf("interface %s: MAC %s is on PCI %s, not the configured %s: %w", t.Name, t.MAC, bdf, t.PCIAddress, ErrInvalid)
			}
			return bdf, ifname, nil
		}
		if t.PCIAddress != "" {
			return t.PCIAddress, "", nil
		}
		// The netdev is gone: an earlier run (or crash) unbound it.
		rec := t.Previous
		if rec.Device.Address == "" || !strings.EqualFold(rec.MAC, t.MAC) {
			return "", "", fmt.Errorf("interface %s: no interface has MAC %s and no earlier run recorded its PCI address: %w", t.Name, t.MAC, ErrNotFound)
		}
		if err := ValidAddress(rec.Device.Address); err != nil {
			return "", "", fmt.Errorf("recorded PCI address of %s: %w", t.Name, err)
		}
		dev, err := b.Sysfs.Device(rec.Device.Address)
		if err != nil {
			return "", "", fmt.Errorf("interface %s: recorded PCI %s: %w", t.Name, rec.Device.Address, err)
		}
		// Only trust the record while the device is still a network
		// function on a DPDK driver or no driver; on any kernel driver it
		// would have a netdev, and it does not have one with this MAC.
		if !dev.IsNetwork() || (rec.Device.Vendor != "" && rec.Device.ID() != dev.ID()) ||
			(dev.Driver != "" && dev.Driver != string(api.DriverVFIOPCI) && dev.Driver != string(api.DriverIGBUIO)) {
			return "", "", fmt.Errorf("interface %s: recorded PCI %s is now %s on %q, not the device with MAC %s: %w", t.Name, rec.Device.Address, dev.ID(), dev.Driver, t.MAC, ErrNotFound)
		}
		return rec.Device.Address, "", nil
	}
	return t.PCIAddress, "", nil
}

// bind runs the driver_override sequence and verifies it; on failure it
// puts the device back on its original driver.
func (b *Binder) bind(ctx context.Context, res Binding) error {
	dev := res.Device
	bdf, want := dev.Address, string(res.Driver)
	// Remember first: after the unbind the netdev, and with it the MAC ↔
	// device link, is gone.
	if err := b.remember(res); err != nil {
		return fmt.Errorf("record %s before unbinding: %w", res.Name, err)
	}
	for _, n := range dev.Netdevs {
		if err := b.Links.SetDown(ctx, n); err != nil {
			return fmt.Errorf("set %s down: %w", n, err)
		}
	}
	devDir := SysDevices + "/" + bdf
	if err := b.Kernel.WriteAttr(devDir+"/driver_override", want); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBind, bdf, err)
	}
	if dev.Driver != "" {
		if err := b.Kernel.WriteAttr(SysDrivers+"/"+dev.Driver+"/unbind", bdf); err != nil {
			return errors.Join(fmt.Errorf("%w: unbind %s from %s: %w", ErrBind, bdf, dev.Driver, err), b.restore(dev))
		}
	}
	bindErr := b.Kernel.WriteAttr(SysDrivers+"/"+want+"/bind", bdf)
	if bindErr != nil {
		// drivers_probe matches through driver_override, which some
		// drivers need instead of a direct bind. The kernel reports
		// success even when nothing bound, so verify decides.
		if perr := b.Kernel.WriteAttr(SysBusPCI+"/drivers_probe", bdf); perr != nil {
			bindErr = errors.Join(bindErr, perr)
		}
	}
	if err := b.verify(bdf, want); err != nil {
		return errors.Join(fmt.Errorf("%w: %s to %s: %w", ErrBind, bdf, want, errors.Join(bindErr, err)), b.restore(dev))
	}
	after, err := b.Sysfs.Device(bdf)
	if err != nil {
		return err
	}
	res.Device = after
	return b.remember(res)
}

func (b *Binder) remember(res Binding) error {
	if b.Remember == nil {
		return nil
	}
	return b.Remember(res)
}

// verify checks the driver link and the device node a DPDK application opens.
func (b *Binder) verify(bdf, want string) error {
	dev, err := b.Sysfs.Device(bdf)
	if err != nil {
		return err
	}
	if dev.Driver != want {
		return fmt.Errorf("driver link is %q, want %q", dev.Driver, want)
	}
	switch api.Driver(want) {
	case api.DriverVFIOPCI:
		if dev.IOMMUGroup == "" {
			return errors.New("vfio-pci bound but the device has no iommu_group")
		}
		if !b.Sysfs.Root.Exists(DevVFIO+"/"+dev.IOMMUGroup) && !b.Sysfs.Root.Exists(DevVFIO+"/noiommu-"+dev.IOMMUGroup) {
			return fmt.Errorf("no %s/%s or %s/noiommu-%s", DevVFIO, dev.IOMMUGroup, DevVFIO, dev.IOMMUGroup)
		}
	case api.DriverIGBUIO:
		uio, err := b.Sysfs.Root.ReadDirNames(SysDevices + "/" + bdf + "/uio")
		if err != nil || len(uio) == 0 {
			return errors.New("igb_uio bound but the device has no uio node")
		}
		if err := validName("uio", uio[0]); err != nil {
			return err
		}
		if !b.Sysfs.Root.Exists("/dev/" + uio[0]) {
			return fmt.Errorf("no /dev/%s", uio[0])
		}
	}
	return nil
}

// restore clears the override and binds the original driver again.
func (b *Binder) restore(orig Device) error {
	bdf := orig.Address
	var errs []error
	if err := b.Kernel.WriteAttr(SysDevices+"/"+bdf+"/driver_override", "\n"); err != nil {
		errs = append(errs, err)
	}
	now, err := b.Sysfs.Device(bdf)
	if err != nil {
		return fmt.Errorf("restore %s: %w", bdf, err)
	}
	if now.Driver == orig.Driver {
		return errors.Join(errs...)
	}
	if now.Driver != "" {
		if err := b.Kernel.WriteAttr(SysDrivers+"/"+now.Driver+"/unbind", bdf); err != nil {
			errs = append(errs, err)
		}
	}
	if orig.Driver != "" {
		if err := b.Kernel.WriteAttr(SysDrivers+"/"+orig.Driver+"/bind", bdf); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("restore %s to %q: %w", bdf, orig.Driver, errors.Join(errs...))
	}
	return nil
}

func describe(u Usage) string {
	var parts []string
	if u.DefaultRoute {
		parts = append(parts, "it carries a default route")
	}
	if len(u.Addresses) > 0 {
		parts = append(parts, "it has the node's address(es) "+strings.Join(u.Addresses, ", "))
	}
	return strings.Join(parts, " and ")
}

func orNone(s string) string {
	if s == "" {
		return "no netdev"
	}
	return s
}

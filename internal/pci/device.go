// Package pci hands network interfaces to a DPDK driver (vfio-pci or
// igb_uio) through sysfs: it resolves an interface to its PCI function,
// refuses any interface the node itself uses, binds with driver_override and
// verifies the result, the way sriov-network-operator's pkg/host does.
//
// Every path is built under a hostfs.Root and every kernel write goes
// through a change.Kernel, so the whole sequence runs against an emulated sysfs in
// tests (see pcitest).
package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Host paths.
const (
	SysBusPCI   = "/sys/bus/pci"
	SysDevices  = SysBusPCI + "/devices"
	SysDrivers  = SysBusPCI + "/drivers"
	SysClassNet = "/sys/class/net"
	DevVFIO     = "/dev/vfio"
)

// Errors callers match with errors.Is.
var (
	// ErrInvalid: a name or address from config or sysfs is malformed.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no device matches the target.
	ErrNotFound = errors.New("not found")
	// ErrInUse: the node uses the interface (primary ENI, default route,
	// address); binding it away would cut the node off.
	ErrInUse = errors.New("interface is in use by the node")
	// ErrBind: the kernel did not bind the device as asked.
	ErrBind = errors.New("bind failed")
	// ErrNoDriver: the target driver is not loaded.
	ErrNoDriver = errors.New("driver not loaded")
	// ErrGroupInUse: another device of the IOMMU group is on a host driver.
	ErrGroupInUse = errors.New("IOMMU group shared with a host driver")
)

var (
	// Names read from sysfs before they become path elements.
	reSysName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	reHexID   = regexp.MustCompile(`^[0-9a-f]{4}$`)
)

// ValidAddress checks a PCI BDF such as 0000:00:06.0.
func ValidAddress(bdf string) error {
	if !api.PCIAddressPattern.MatchString(bdf) {
		return fmt.Errorf("PCI address %q: %w: want the form 0000:00:06.0", bdf, ErrInvalid)
	}
	return nil
}

// validName checks a name read from sysfs (driver, netdev, group) before it
// is used as a path element.
func validName(kind, name string) error {
	if !reSysName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%s name %q: %w", kind, name, ErrInvalid)
	}
	return nil
}

// Device is what sysfs says about one PCI function.
type Device struct {
	Address string `json:"address"`
	Vendor  string `json:"vendor"`          // e.g. 1d0f
	Device  string `json:"device"`          // e.g. ec20
	Class   string `json:"class,omitempty"` // e.g. 020000
	// Driver is the bound driver, "" when none.
	Driver string `json:"driver,omitempty"`
	// Override is driver_override, "" when unset.
	Override string `json:"override,omitempty"`
	// IOMMUGroup is the iommu_group number, "" when the device has none.
	IOMMUGroup string `json:"iommuGroup,omitempty"`
	NUMANode   int    `json:"numaNode"`
	// Netdevs are the kernel interfaces the device had when it was read.
	Netdevs []string `json:"netdevs,omitempty"`
}

// ID is vendor:device, e.g. 1d0f:ec20.
func (d Device) ID() string { return d.Vendor + ":" + d.Device }

// IsNetwork reports PCI class 02 (network controller).
func (d Device) IsNetwork() bool { return strings.HasPrefix(d.Class, "02") }

// Sysfs reads PCI and net state under a root.
type Sysfs struct{ Root hostfs.Root }

// Device reads one PCI function.
func (s Sysfs) Device(bdf string) (Device, error) {
	if err := ValidAddress(bdf); err != nil {
		return Device{}, err
	}
	dir := SysDevices + "/" + bdf
	if !s.Root.Exists(dir) {
		return Device{}, fmt.Errorf("PCI device %s: %w", bdf, ErrNotFound)
	}
	d := Device{Address: bdf, NUMANode: -1}
	var err error
	if d.Vendor, err = s.hexID(dir + "/vendor"); err != nil {
		return d, err
	}
	if d.Device, err = s.hexID(dir + "/device"); err != nil {
		return d, err
	}
	if b, err := s.Root.ReadFile(dir + "/class"); err == nil {
		d.Class = strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
	}
	if b, err := s.Root.ReadFile(dir + "/numa_node"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			d.NUMANode = n
		}
	}
	if d.Driver, err = s.linkName(dir+"/driver", "driver"); err != nil {
		return d, err
	}
	if b, err := s.Root.ReadFile(dir + "/driver_override"); err == nil {
		if o := strings.TrimSpace(string(b)); o != "(null)" {
			d.Override = o
		}
	}
	if d.IOMMUGroup, err = s.linkName(dir+"/iommu_group", "iommu group"); err != nil {
		return d, err
	}
	if d.IOMMUGroup != "" {
		if _, err := strconv.Atoi(d.IOMMUGroup); err != nil {
			return d, fmt.Errorf("iommu group %q: %w", d.IOMMUGroup, ErrInvalid)
		}
	}
	d.Netdevs, err = s.netdevs(bdf)
	return d, err
}

func (s Sysfs) hexID(p string) (string, error) {
	b, err := s.Root.ReadFile(p)
	if err != nil {
		return "", err
	}
	id := strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
	if !reHexID.MatchString(id) {
		return "", fmt.Errorf("%s: %q: %w", p, id, ErrInvalid)
	}
	return id, nil
}

// linkName is the validated base name of a symlink's target, "" if absent.
func (s Sysfs) linkName(hostPath, kind string) (string, error) {
	p, err := s.Root.Path(hostPath)
	if err != nil {
		return "", err
	}
	target, err := os.Readlink(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	name := path.Base(target)
	if err := validName(kind, name); err != nil {
		return "", err
	}
	return name, nil
}

// netdevs lists the interfaces of a PCI function: net/<if> for drivers such
// as ena, virtio<N>/net/<if> for virtio-net, whose netdev hangs off the
// virtio device that is the PCI function's child.
func (s Sysfs) netdevs(bdf string) ([]string, error) {
	dir := SysDevices + "/" + bdf
	var out []string
	names, err := s.Root.ReadDirNames(dir + "/net")
	if err != nil {
		return nil, err
	}
	out = append(out, names...)
	children, err := s.Root.ReadDirNames(dir)
	if err != nil {
		return nil, err
	}
	for _, c := range children {
		if !strings.HasPrefix(c, "virtio") {
			continue
		}
		names, err := s.Root.ReadDirNames(dir + "/" + c + "/net")
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
	}
	for _, n := range out {
		if err := validName("netdev", n); err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// NetdevByMAC finds the interface with this MAC, "" when none has it.
func (s Sysfs) NetdevByMAC(mac string) (string, error) {
	mac = strings.ToLower(mac)
	if !api.MACPattern.MatchString(mac) {
		return "", fmt.Errorf("MAC %q: %w", mac, ErrInvalid)
	}
	names, err := s.Root.ReadDirNames(SysClassNet)
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		if validName("netdev", n) != nil {
			continue
		}
		b, err := s.Root.ReadFile(SysClassNet + "/" + n + "/address")
		if err != nil {
			continue // a link vanishing under us is not ours
		}
		if strings.TrimSpace(string(b)) == mac {
			return n, nil
		}
	}
	return "", nil
}

// MAC reads an interface's address.
func (s Sysfs) MAC(ifname string) (string, error) {
	if err := validName("netdev", ifname); err != nil {
		return "", err
	}
	b, err := s.Root.ReadFile(SysClassNet + "/" + ifname + "/address")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// AddressOf resolves an interface to its PCI function. For ENA the
// interface's device link is the PCI function; for virtio-net it is the
// virtio device, whose parent directory is the PCI function.
func (s Sysfs) AddressOf(ifname string) (string, error) {
	if err := validName("netdev", ifname); err != nil {
		return "", err
	}
	link, err := s.Root.Path(SysClassNet + "/" + ifname + "/device")
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("interface %s has no device: %w", ifname, ErrNotFound)
	}
	rootDir := s.Root.Dir()
	if rootDir != "/" && !strings.HasPrefix(resolved, rootDir+string(filepath.Separator)) {
		return "", fmt.Errorf("interface %s: device link leaves the host root: %w", ifname, ErrInvalid)
	}
	for _, cand := range []string{filepath.Base(resolved), filepath.Base(filepath.Dir(resolved))} {
		if api.PCIAddressPattern.MatchString(cand) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("interface %s: device %s is not a PCI function or a child of one: %w", ifname, filepath.Base(resolved), ErrNotFound)
}

// DriverLoaded reports whether /sys/bus/pci/drivers/<name> exists.
func (s Sysfs) DriverLoaded(name string) bool {
	if validName("driver", name) != nil {
		return false
	}
	return s.Root.Exists(SysDrivers + "/" + name)
}

// vfioGroupDrivers may share an IOMMU group with a device DPDK opens:
// vfio itself, pci-stub and PCIe port (bridge) drivers.
var vfioGroupDrivers = map[string]bool{"": true, "vfio-pci": true, "pci-stub": true, "pcieport": true}

// GroupBlockers lists the other devices of bdf's IOMMU group that sit on a
// host driver, as "BDF (driver)". VFIO only lets an application open a
// device when its whole group is out of host hands, so a non-empty list
// means the binding exists but DPDK cannot use it.
func (s Sysfs) GroupBlockers(bdf string) ([]string, error) {
	dev, err := s.Device(bdf)
	if err != nil || dev.IOMMUGroup == "" {
		return nil, err
	}
	members, err := s.Root.ReadDirNames("/sys/kernel/iommu_groups/" + dev.IOMMUGroup + "/devices")
	if err != nil {
		return nil, err
	}
	sort.Strings(members)
	var out []string
	for _, m := range members {
		if m == bdf {
			continue
		}
		if err := ValidAddress(m); err != nil {
			return nil, err
		}
		drv, err := s.linkName(SysDevices+"/"+m+"/driver", "driver")
		if err != nil {
			return nil, err
		}
		if !vfioGroupDrivers[drv] {
			out = append(out, m+" ("+drv+")")
		}
	}
	return out, nil
}

// Package ipam is nodeprep's CNI plugin for the addresses of a whole ENI
// handed to a pod: the pod gets exactly the addresses EC2 assigned to the ENI
// behind the device the device plugin allocated it, read from the
// device-info file nodeprep wrote for that device at boot (internal/devinfo),
// so no EC2 or IMDS call happens at pod start.
//
// The one binary, nodeprep-ipam, has two roles, told apart by the plugin
// entry it is given (the stdin of a CNI call):
//
//   - IPAM (the entry's ipam.type is nodeprep-ipam and its type is another
//     plugin, e.g. host-device, which execs it): the device is the entry's
//     runtimeConfig.deviceID, else deviceID, else pciBusID, which Multus sets
//     from the device plugin's allocation. ADD returns the ENI's primary
//     address with the subnet's prefix length and the VPC router as gateway,
//     and, when asked, its secondary addresses and its delegated prefixes;
//     its IPv6 addresses with the VPC's IPv6 router, fe80:ec2::1 (and, when
//     asked, its /80 prefixes). DEL releases nothing: the addresses are the
//     ENI's, not a pool's.
//   - Device guard (the entry's type is nodeprep-ipam): an attachment that
//     needs an allocated device. Without one (a pod that forgot the NAD's
//     resource request) ADD fails naming the resource and DEL succeeds, so
//     the sandbox can always be torn down; with one it runs the delegate
//     plugin (host-device) on the same entry, whose IPAM is this plugin.
//     host-device cannot do this itself: it rejects a config without a
//     device on DEL too (plugins v1.10.0 loadConf).
//   - Whole-ENI pool guard (the device guard with wholeENIPool): the
//     allocated device is a kernel ENI of a pool the device plugin hands
//     out; host-device moves its netdev in by the PCI address, and this
//     plugin's IPAM role gives it that ENI's primary address. ADD without a
//     device fails naming the resource; DEL runs the delegate only while
//     the pod holds the link, as for the whole kernel ENI guard below.
//   - Whole kernel ENI guard (type nodeprep-ipam with hwaddr, podAttachment
//     hostDevice): no device plugin; ADD runs the delegate (host-device,
//     with its static IPAM of the ENI's primary address), and DEL runs it
//     only while the pod's namespace holds the link, since host-device's
//     DEL fails when it does not (a second pod's failed ADD, a repeated
//     DEL), and that sandbox's teardown would fail forever.
package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodeprep/nodeprep/internal/devinfo"
)

// PluginType is the binary's name in the CNI bin directory.
const PluginType = "nodeprep-ipam"

// Conf is the part of a plugin entry this plugin reads.
type Conf struct {
	types.NetConf
	// DeviceID and PCIBusID are what Multus adds to each plugin entry from
	// the device plugin's allocation (both the same PCI address).
	DeviceID      string `json:"deviceID,omitempty"`
	PCIBusID      string `json:"pciBusID,omitempty"`
	RuntimeConfig struct {
		DeviceID string `json:"deviceID,omitempty"`
		// CNIDeviceInfoFile is where Multus reads the device-info it copies
		// into network-status; the device plugin may have written it.
		CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	} `json:"runtimeConfig"`
	// Delegate is the plugin the device guard runs (host-device).
	Delegate string `json:"delegate,omitempty"`
	// HWAddr is a whole kernel ENI's MAC (podAttachment hostDevice): the
	// guard runs its delegate on that link, with no device plugin, and
	// makes DEL succeed when there is nothing to give back.
	HWAddr string `json:"hwaddr,omitempty"`
	// WholeENIPool is the guard of a whole-ENI pool: the allocated device
	// is a kernel ENI that the delegate (host-device, by pciBusID) moves
	// into the pod, so, as for HWAddr, DEL runs the delegate only while the
	// pod holds the link.
	WholeENIPool bool `json:"wholeENIPool,omitempty"`
	// ResourceName is the device plugin resource the NAD names, for the
	// guard's error.
	ResourceName string   `json:"resourceName,omitempty"`
	IPAM         IPAMConf `json:"ipam"`
}

// IPAMConf is the ipam object.
type IPAMConf struct {
	Type string `json:"type"`
	// Dir holds the device-info files; devinfo.Dir when empty.
	Dir string `json:"dir,omitempty"`
	// SecondaryIPs also returns the ENI's secondary IPv4 addresses.
	SecondaryIPs bool `json:"secondaryIPs,omitempty"`
	// Prefixes also returns the ENI's delegated prefixes (IPv4 /28s, IPv6
	// /80s), each as one entry whose address is the prefix itself, the
	// first address with the prefix's length: a block the pod's app hands
	// out (an IPv6 /80 cannot be listed address by address). Multus's
	// network-status shows the entry's address without its length.
	Prefixes bool `json:"prefixes,omitempty"`
	// Routes the pod reaches through this interface; a route without gw
	// goes through the VPC router of its family.
	Routes []*types.Route `json:"routes,omitempty"`
}

// ParseConf reads a plugin entry.
func ParseConf(stdin []byte) (*Conf, error) {
	var c Conf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, fmt.Errorf("%s: parse network config: %w", PluginType, err)
	}
	if c.IPAM.Dir == "" {
		c.IPAM.Dir = devinfo.Dir
	}
	return &c, nil
}

// Guard reports whether the entry asks for the device guard role.
func (c *Conf) Guard() bool { return c.Type == PluginType }

// WholeENI reports whether the guard hands a whole kernel ENI, picked by
// its MAC, to the pod.
func (c *Conf) WholeENI() bool { return c.Guard() && c.HWAddr != "" }

// Device is the allocated device's PCI address, "" when none was passed.
func (c *Conf) Device() string {
	for _, d := range []string{c.RuntimeConfig.DeviceID, c.DeviceID, c.PCIBusID} {
		if d != "" {
			return d
		}
	}
	return ""
}

// ErrNoDevice is an ADD with no allocated device.
var ErrNoDevice = errors.New("no device allocated")

// NoDeviceError is an attachment ADD without the device it needs.
type NoDeviceError struct {
	Network, Resource string
}

func (e *NoDeviceError) Error() string {
	if e.Resource == "" {
		return fmt.Sprintf("network %s: %v: Multus passed no deviceID; the NAD needs a k8s.v1.cni.cncf.io/resourceName annotation and the pod a request for that resource", e.Network, ErrNoDevice)
	}
	return fmt.Sprintf("network %s: %v: the pod must request resource %s (resources.requests and limits of a container: %s: 1), the NAD's k8s.v1.cni.cncf.io/resourceName", e.Network, ErrNoDevice, e.Resource, e.Resource)
}

func (e *NoDeviceError) Unwrap() error { return ErrNoDevice }

// DeviceError is a device whose ENI facts cannot be read.
type DeviceError struct {
	Device, File string
	Err          error
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("device %s: ENI addresses from %s: %v", e.Device, e.File, e.Err)
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Lookup reads the device-info document nodeprep wrote for a device.
func Lookup(dir, device string) (devinfo.Document, []byte, error) {
	var doc devinfo.Document
	file := filepath.Join(dir, devinfo.FileName(device))
	if device == "" || filepath.Base(device) != device {
		return doc, nil, &DeviceError{Device: device, File: file, Err: errors.New("not a PCI address")}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return doc, nil, &DeviceError{Device: device, File: file, Err: fmt.Errorf("%w (nodeprep writes one file per device it bound or handed to pods)", err)}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return doc, nil, &DeviceError{Device: device, File: file, Err: err}
	}
	if doc.PCI.Address != device {
		return doc, nil, &DeviceError{Device: device, File: file, Err: fmt.Errorf("the file is for device %q", doc.PCI.Address)}
	}
	return doc, data, nil
}

// Result is the IPAM result for the ENI of a device-info document.
func Result(doc devinfo.Document, c IPAMConf, cniVersion string) (*current.Result, error) {
	e := doc.ENI
	if !e.Subnet.IsValid() || !e.PrimaryIP.IsValid() || !e.Gateway.IsValid() {
		return nil, errors.New("the document has no subnetCIDR, primaryIP or gateway")
	}
	r := &current.Result{CNIVersion: cniVersion}
	v6gw := e.Attachment.IPv6Gateway()
	add := func(ip netip.Addr, bits int, gw netip.Addr) {
		r.IPs = append(r.IPs, &current.IPConfig{
			Address: net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, ip.BitLen())},
			Gateway: gw.AsSlice(),
		})
	}
	add(e.PrimaryIP, e.Subnet.Bits(), e.Gateway)
	if c.SecondaryIPs {
		for _, a := range e.SecondaryIPs {
			add(a, e.Subnet.Bits(), e.Gateway)
		}
	}
	if c.Prefixes {
		for _, p := range e.IPv4Prefixes {
			add(p.Masked().Addr(), p.Bits(), e.Gateway)
		}
	}
	if (len(e.IPv6Addresses) > 0 || c.Prefixes && len(e.IPv6Prefixes) > 0) && !e.IPv6Subnet.IsValid() {
		return nil, errors.New("IPv6 addresses without ipv6SubnetCIDR")
	}
	for _, a := range e.IPv6Addresses {
		add(a, e.IPv6Subnet.Bits(), v6gw)
	}
	if c.Prefixes {
		for _, p := range e.IPv6Prefixes {
			add(p.Masked().Addr(), p.Bits(), v6gw)
		}
	}
	for _, rt := range c.Routes {
		rt := *rt
		if rt.GW == nil {
			rt.GW = e.Gateway.AsSlice()
			if rt.Dst.IP.To4() == nil {
				rt.GW = v6gw.AsSlice()
			}
		}
		r.Routes = append(r.Routes, &rt)
	}
	return r, nil
}

// PublishDeviceInfo writes the device's document where Multus reads the
// device-info for network-status, unless the device plugin already did.
// Multus removes the file on DEL.
func PublishDeviceInfo(path string, doc []byte) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Package deviceplugin writes the config file of the SR-IOV network device
// plugin (k8snetworkplumbingwg/sriov-network-device-plugin) from the devices
// nodeprep actually bound (and the NICs of whole-ENI pools, which stay on
// ena), instead of a hand-written ConfigMap with PCI addresses. The plugin
// DaemonSet reads the file from a hostPath. test/judges/sriovdp reads it
// with the plugin's own code.
package deviceplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// ENA's PCI IDs: Amazon's vendor ID and the ENA functions with and without
// LLQ. They are always selectable so the file does not depend on which
// variant an instance type has.
const (
	VendorAmazon = "1d0f"
	DeviceENA    = "ec20"
	DeviceENALLQ = "ec21"
)

// DriverENA is the kernel driver of an ENI's netdev: the selector of a
// whole-ENI pool, whose devices stay on it (host-device moves the netdev).
const DriverENA = "ena"

// DeviceTypeNet is the plugin's "netDevice" device type.
const DeviceTypeNet = "netDevice"

// The types below carry the JSON names of the plugin's pkg/types:
// ResourceConfList, ResourceConfig and the NetDeviceSelectors fields
// (DeviceSelectors, GenericPciDeviceSelectors). The plugin reads
// "selectors" as one object or, since v3.7, a list of objects; nodeprep
// writes one object, which every plugin version reads.

// ResourceConfList is the whole file.
type ResourceConfList struct {
	ResourceList []ResourceConfig `json:"resourceList"`
}

// ResourceConfig is one resource pool.
type ResourceConfig struct {
	ResourcePrefix string              `json:"resourcePrefix,omitempty"`
	ResourceName   string              `json:"resourceName"`
	DeviceType     string              `json:"deviceType,omitempty"`
	Selectors      *NetDeviceSelectors `json:"selectors,omitempty"`
}

// NetDeviceSelectors picks the devices of a pool; lists are ORed within a
// field and fields are ANDed.
type NetDeviceSelectors struct {
	Vendors      []string `json:"vendors,omitempty"`
	Devices      []string `json:"devices,omitempty"`
	Drivers      []string `json:"drivers,omitempty"`
	PciAddresses []string `json:"pciAddresses,omitempty"`
}

// Device is one bound PCI function.
type Device struct {
	Address string // BDF
	Vendor  string // e.g. 1d0f
	Device  string // e.g. ec20
	Driver  string // vfio-pci or igb_uio; ena for a whole-ENI pool's NIC
}

// Resource is one configured resource name and the devices bound for it.
type Resource struct {
	Name    string
	Devices []Device
}

// Build makes the file's document. Interfaces sharing a resource name form
// one pool; everything is sorted so the output is byte-stable.
func Build(prefix string, resources []Resource) (ResourceConfList, error) {
	byName := map[string]*NetDeviceSelectors{}
	var names []string
	for _, r := range resources {
		if !api.ResourceNamePattern.MatchString(r.Name) {
			return ResourceConfList{}, fmt.Errorf("resource name %q: must be 1-63 characters of A-Z, a-z, 0-9 and '_'", r.Name)
		}
		sel, ok := byName[r.Name]
		if !ok {
			sel = &NetDeviceSelectors{Vendors: []string{VendorAmazon}, Devices: []string{DeviceENA, DeviceENALLQ}}
			byName[r.Name] = sel
			names = append(names, r.Name)
		}
		for _, d := range r.Devices {
			if !api.PCIAddressPattern.MatchString(d.Address) {
				return ResourceConfList{}, fmt.Errorf("resource %s: PCI address %q is not a BDF", r.Name, d.Address)
			}
			sel.PciAddresses = append(sel.PciAddresses, d.Address)
			if d.Vendor != "" {
				sel.Vendors = append(sel.Vendors, d.Vendor)
			}
			if d.Device != "" {
				sel.Devices = append(sel.Devices, d.Device)
			}
			if d.Driver != "" {
				sel.Drivers = append(sel.Drivers, d.Driver)
			}
		}
	}
	sort.Strings(names)
	out := ResourceConfList{ResourceList: []ResourceConfig{}}
	for _, n := range names {
		sel := byName[n]
		sel.Vendors, sel.Devices = uniq(sel.Vendors), uniq(sel.Devices)
		sel.Drivers, sel.PciAddresses = uniq(sel.Drivers), uniq(sel.PciAddresses)
		out.ResourceList = append(out.ResourceList, ResourceConfig{
			ResourcePrefix: prefix, ResourceName: n, DeviceType: DeviceTypeNet, Selectors: sel,
		})
	}
	return out, nil
}

// Render is Build, marshalled as indented JSON with a trailing newline.
func Render(prefix string, resources []Resource) ([]byte, error) {
	doc, err := Build(prefix, resources)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// FileMode is the config file's mode: the plugin runs as root, and the
// file holds nothing secret.
const FileMode = 0o644

// Plan renders the config for resources and returns the write of hostPath,
// or no change when the file already holds it. It only reads.
func Plan(root hostfs.Root, hostPath, prefix string, resources []Resource) ([]change.Change, error) {
	data, err := Render(prefix, resources)
	if err != nil {
		return nil, err
	}
	differs, err := root.Differs(hostPath, data, FileMode)
	if err != nil || !differs {
		return nil, err
	}
	summary := make([]string, 0, len(resources))
	for _, r := range resources {
		summary = append(summary, fmt.Sprintf("%s (%d)", r.Name, len(r.Devices)))
	}
	return []change.Change{{
		What: fmt.Sprintf("write %s: %s/%s", hostPath, prefix, strings.Join(summary, ", ")),
		Apply: func(context.Context) error {
			_, err := root.WriteFile(hostPath, data, FileMode)
			return err
		},
	}}, nil
}

func uniq(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

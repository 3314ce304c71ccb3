// Package devinfo publishes, for each PCI device bound to a DPDK driver,
// the facts of the ENI behind it, so the pod that was allocated the device
// learns its addresses. A device on vfio-pci or igb_uio has no netdev and
// no kernel address, and host-device in DPDK mode returns no interface, so
// nothing else tells the pod which ENI (and which addresses) it got.
//
// Each file is <Dir>/<PCI address>.json. A pod mounts Dir read-only
// (hostPath) and opens the file named by each PCI address in its
// PCIDEVICE_<RESOURCE> variable, which the SR-IOV network device plugin
// sets (comma-separated when it allocated several).
//
// The document is a device-info spec document (k8snetworkplumbingwg
// device-info-spec v1.1.0: type "pci", version, pci.pci-address) with one
// extra top-level object, "aws-eni". The spec has no place for addresses;
// readers of the spec ignore the extra key.
package devinfo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/dirsync"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// Dir is where the files live on the node.
const Dir = "/run/nodeprep/devinfo"

// Device-info spec values.
const (
	SpecVersion = "1.1.0"
	TypePCI     = "pci"
)

// VPCDefaultMTU is the MTU published for an ENI whose interface sets no
// mtu: the VPC's jumbo-frame MTU. Neither the EC2 API (no MTU in
// DescribeNetworkInterfaces, DescribeSubnets or DescribeInstanceTypes) nor
// IMDS (network/interfaces/macs/<mac>/ has no MTU) states it; on a kernel
// ENI it arrives as DHCP option 26 from the VPC's DHCP server. A DPDK ENI
// never runs DHCP (nodeprep keeps networkd off it), and its netdev before
// binding holds only the ena driver's default of 1500, so neither is a
// source. All current-generation instance types support 9001 inside the
// VPC. Where the path is smaller (1300 in a Wavelength Zone or
// from an Outpost to the Region, 1500 through an internet gateway or VPN,
// per the EC2 User Guide's "Network maximum transmission unit" page) the
// interface's mtu in the config says so.
const VPCDefaultMTU = 9001

// Document is one device's file.
type Document struct {
	Type    string `json:"type"`
	Version string `json:"version"`
	PCI     PCI    `json:"pci"`
	ENI     ENI    `json:"aws-eni"`
}

// PCI is the device-info spec's pci object.
type PCI struct {
	Address string `json:"pci-address"`
}

// ENI is what EC2 assigned to the ENI behind the device.
type ENI struct {
	// Interface is the logical name in the nodeprep config (the NAD's name).
	Interface      string   `json:"interface"`
	ID             string   `json:"eniID"`
	MAC            string   `json:"mac"`
	PrimaryIP      string   `json:"primaryIP"`
	SecondaryIPs   []string `json:"secondaryIPs"`
	IPv4Prefixes   []string `json:"ipv4Prefixes"`
	IPv6Addresses  []string `json:"ipv6Addresses"`
	IPv6Prefixes   []string `json:"ipv6Prefixes"`
	SubnetCIDR     string   `json:"subnetCIDR"`
	IPv6SubnetCIDR string   `json:"ipv6SubnetCIDR,omitempty"`
	Gateway        string   `json:"gateway"`
	MTU            int      `json:"mtu"`
}

// Device is one bound PCI device and the ENI behind it.
type Device struct {
	PCIAddress string
	ENI        netconf.ENI
}

// FileName of a device's document.
func FileName(pciAddress string) string { return pciAddress + ".json" }

// Build returns a device's document.
func Build(d Device) ([]byte, error) {
	e := d.ENI
	if d.PCIAddress == "" {
		return nil, fmt.Errorf("device-info for interface %s: no PCI address", e.Name)
	}
	if !e.Subnet.IsValid() || !e.PrimaryIP.IsValid() {
		return nil, fmt.Errorf("device-info for interface %s (%s): subnet and primary address unknown", e.Name, d.PCIAddress)
	}
	mtu := e.MTU
	if mtu == 0 {
		mtu = VPCDefaultMTU
	}
	doc := Document{
		Type: TypePCI, Version: SpecVersion, PCI: PCI{Address: d.PCIAddress},
		ENI: ENI{
			Interface: e.Name, ID: e.ENIID, MAC: e.MAC, PrimaryIP: e.PrimaryIP.String(),
			SecondaryIPs: sortedStrings(e.SecondaryIPs), IPv4Prefixes: sortedStrings(e.IPv4Prefixes),
			IPv6Addresses: sortedStrings(e.IPv6Addresses), IPv6Prefixes: sortedStrings(e.IPv6Prefixes),
			SubnetCIDR: e.Subnet.Masked().String(), Gateway: e.Gateway().String(), MTU: mtu,
		},
	}
	if e.IPv6Subnet.IsValid() {
		doc.ENI.IPv6SubnetCIDR = e.IPv6Subnet.Masked().String()
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// sortedStrings renders addresses or prefixes in address order, and an
// empty list as [] so a reader never has to tell null from none.
func sortedStrings[T interface {
	Compare(T) int
	String() string
}](in []T) []string {
	c := slices.Clone(in)
	slices.SortFunc(c, func(a, b T) int { return a.Compare(b) })
	out := make([]string, 0, len(c))
	for _, v := range c {
		out = append(out, v.String())
	}
	return out
}

// Plan returns the changes that publish one file per device under dir and
// remove the files of devices no longer bound.
func Plan(root hostfs.Root, dir string, devices []Device) ([]change.Change, error) {
	want, err := dirsync.Build(devices, func(d Device) string { return FileName(d.PCIAddress) }, Build)
	if err != nil {
		return nil, err
	}
	// The directory is nodeprep's alone.
	return dirsync.Plan(root, dir, want, func(name string, _ []byte) bool { return strings.HasSuffix(name, ".json") })
}

// Write applies Plan at once (tools and tests) and reports the changes.
func Write(root hostfs.Root, dir string, devices []Device) ([]string, error) {
	changes, err := Plan(root, dir, devices)
	if err != nil {
		return nil, err
	}
	return dirsync.Apply(context.Background(), changes)
}

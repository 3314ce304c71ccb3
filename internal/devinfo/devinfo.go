// Package devinfo publishes, for each PCI device bound to a DPDK driver,
// the facts of the ENI behind it, so the pod that was allocated the device
// learns its addresses. A device on vfio-pci or igb_uio has no netdev and
// no kernel address, and host-device in DPDK mode returns no interface, so
// nothing else tells the pod which ENI (and which addresses) it got.
//
// A whole-ENI pool's NIC (podAttachment hostDevice with a resourceName)
// stays on ena, but the device plugin allocates it by PCI address just the
// same, so it gets a file too: nodeprep-ipam reads it to give the pod that
// ENI's primary address.
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
	"net/netip"
	"slices"
	"strings"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/dirsync"
	"github.com/nodeprep/nodeprep/internal/eni"
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

// ENI is what EC2 assigned to the ENI behind the device: the ENI step's
// own record (interface, eniID, mac, primaryIP, secondaryIPs, ipv4Prefixes,
// ipv6Addresses, ipv6Prefixes, subnetCIDR, ipv6SubnetCIDR, ...), with the
// gateway and MTU a pod needs to configure the device.
type ENI struct {
	eni.Attachment
	Gateway netip.Addr `json:"gateway"`
	MTU     int        `json:"mtu"`
}

// Device is one bound PCI device and the network behind it.
type Device struct {
	PCIAddress string
	Network    netconf.Network
}

// FileName of a device's document.
func FileName(pciAddress string) string { return pciAddress + ".json" }

// Build returns a device's document.
func Build(d Device) ([]byte, error) {
	n := d.Network
	if d.PCIAddress == "" {
		return nil, fmt.Errorf("device-info for interface %s: no PCI address", n.Name())
	}
	if !n.Subnet.IsValid() || !n.PrimaryIP.IsValid() {
		return nil, fmt.Errorf("device-info for interface %s (%s): subnet and primary address unknown", n.Name(), d.PCIAddress)
	}
	mtu := n.Config.MTU
	if mtu == 0 {
		mtu = VPCDefaultMTU
	}
	a := n.Attachment
	a.Interface = n.Name()
	// How this run came by the ENI, and when it passed each stage, change
	// from run to run (created, then adopted); the pod needs none of it, and
	// the file must not churn.
	a.How, a.Stages = "", eni.Stages{}
	a.Subnet = a.Subnet.Masked()
	if a.IPv6Subnet.IsValid() {
		a.IPv6Subnet = a.IPv6Subnet.Masked()
	}
	a.SecondaryIPs, a.IPv4Prefixes = sorted(a.SecondaryIPs), sorted(a.IPv4Prefixes)
	a.IPv6Addresses, a.IPv6Prefixes = sorted(a.IPv6Addresses), sorted(a.IPv6Prefixes)
	doc := Document{
		Type: TypePCI, Version: SpecVersion, PCI: PCI{Address: d.PCIAddress},
		ENI: ENI{Attachment: a, Gateway: n.Gateway(), MTU: mtu},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// sorted orders addresses or prefixes, and makes an empty list [] in JSON,
// so a reader never has to tell null from none.
func sorted[T interface{ Compare(T) int }](in []T) []T {
	c := append(make([]T, 0, len(in)), in...)
	slices.SortFunc(c, func(a, b T) int { return a.Compare(b) })
	return c
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

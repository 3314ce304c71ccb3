// Package netconf builds each Multus interface's node-local CNI conflist,
// the file Multus reads from its confDir when a NetworkAttachmentDefinition
// has no spec.config: the NAD (a cluster object, the same on every node)
// names the network, and the node says what that network is here.
//
//   - A kernel ENI is an ipvlan in L2 mode whose master is the interface's
//     logical name, the altname the links step sets.
//   - A kernel ENI with podAttachment hostDevice is a host-device that
//     moves the ENI's own link (by MAC) into one pod, with static IPAM of
//     the ENI's primary address: a CNF that owns its interface. It runs
//     under nodeprep-ipam's guard, which makes its DEL idempotent.
//   - A whole-ENI pool (hostDevice interfaces sharing a resourceName) is
//     one conflist, named like the pool, with no device and no address:
//     the device plugin allocates one of the pool's ENIs by its kernel
//     driver, host-device moves that netdev in by its PCI address, and
//     nodeprep-ipam returns its ENI's primary address, as for DPDK below.
//   - A DPDK ENI is a host-device with no device in it: Multus adds the
//     device plugin's pick as deviceID/pciBusID, so the pod gets whichever
//     device of the pool it was allocated. Its addresses are that device's
//     ENI's, which the nodeprep-ipam plugin (internal/ipam) reads by PCI
//     address from the file the devinfo package publishes, so the conflist
//     names no address and Multus's network-status carries the ENI's. The
//     entry's type is nodeprep-ipam in its device-guard role, which runs
//     host-device when a device was allocated and otherwise fails ADD
//     naming the resource the pod forgot (and lets DEL succeed).
//
// The IPAM of a kernel ENI is host-local, whose ranges are exactly the
// addresses EC2 assigned to this node's ENI (secondary addresses and
// delegated prefixes) minus the ENI's primary address: the VPC delivers
// every one of them to this ENI, and no other node can hand them out.
package netconf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/dirsync"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// DefaultCNIVersion of the conflists; Multus converts results to its own.
const DefaultCNIVersion = "1.0.0"

// FileName is the conflist of one interface in Multus's confDir. Multus
// matches the file by the "name" inside it, not by the file name.
func FileName(name string) string { return name + ".conflist" }

// Path is the conflist of one interface under confDir.
func Path(confDir, name string) string { return path.Join(confDir, FileName(name)) }

// Network is one attachable interface as this node has it: the interface
// as configured (its logical name, the link altname, the network name in
// the conflist and the NAD's metadata.name; its driver and pod-side options)
// and the ENI the ENI step attached for it, the producer's own record.
type Network struct {
	Config api.Interface
	eni.Attachment
	// Resource is the device plugin resource (prefix/name) a DPDK
	// interface's pods request, which its NAD names; the conflist's error
	// for a pod without it names it.
	Resource string
}

// Name is the interface's logical name.
func (n Network) Name() string { return n.Config.Name }

// NetworkName is the network's name in the conflist and the conflist's
// file: the interface's, or its whole-ENI pool's (api.Interface.NetworkName).
func (n Network) NetworkName() string { return n.Config.NetworkName() }

// Error is a conflist that cannot be built for one interface.
type Error struct {
	Interface string
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("conflist for interface %s: %v", e.Interface, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNoPodAddresses means a kernel ENI has no address for pods: EC2
// assigned it nothing beyond its primary, which the host holds.
var ErrNoPodAddresses = errors.New("the ENI has no secondary addresses or prefixes for pods (set secondaryIPCount, ipv4PrefixCount, ipv6PrefixCount or ipv6AddressCount)")

// Range is one contiguous run of pod addresses, both ends included.
type Range struct {
	Start, End netip.Addr
}

// PodRanges are the addresses of the ENI pods may take, per family, as
// sorted, merged runs: secondary addresses and prefixes less the primary.
func (e Network) PodRanges() (v4, v6 []Range, err error) {
	var v4in, v6in []Range
	for _, a := range e.SecondaryIPs {
		v4in = append(v4in, Range{a, a})
	}
	for _, p := range e.IPv4Prefixes {
		v4in = append(v4in, prefixRange(p))
	}
	for _, a := range e.IPv6Addresses {
		v6in = append(v6in, Range{a, a})
	}
	for _, p := range e.IPv6Prefixes {
		v6in = append(v6in, prefixRange(p))
	}
	for _, r := range v4in {
		if !r.Start.Is4() || !e.Subnet.Contains(r.Start) || !e.Subnet.Contains(r.End) {
			return nil, nil, fmt.Errorf("IPv4 pod address %s-%s is not in subnet %s", r.Start, r.End, e.Subnet)
		}
	}
	for _, r := range v6in {
		if !r.Start.Is6() || !e.IPv6Subnet.IsValid() || !e.IPv6Subnet.Contains(r.Start) || !e.IPv6Subnet.Contains(r.End) {
			return nil, nil, fmt.Errorf("IPv6 pod address %s-%s is not in the subnet's IPv6 CIDR %s", r.Start, r.End, e.IPv6Subnet)
		}
	}
	v4 = merge(v4in)
	if e.PrimaryIP.IsValid() {
		v4 = without(v4, e.PrimaryIP)
	}
	return v4, merge(v6in), nil
}

func prefixRange(p netip.Prefix) Range {
	p = p.Masked()
	return Range{p.Addr(), lastAddr(p)}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// merge sorts runs and joins the ones that overlap or touch.
func merge(in []Range) []Range {
	if len(in) == 0 {
		return nil
	}
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(a, b Range) int { return a.Start.Compare(b.Start) })
	out := []Range{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if next := last.End.Next(); r.Start.Compare(next) <= 0 && next.IsValid() {
			if r.End.Compare(last.End) > 0 {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// without cuts one address out of sorted runs.
func without(rs []Range, a netip.Addr) []Range {
	var out []Range
	for _, r := range rs {
		if a.Compare(r.Start) < 0 || a.Compare(r.End) > 0 {
			out = append(out, r)
			continue
		}
		if a != r.Start {
			out = append(out, Range{r.Start, a.Prev()})
		}
		if a != r.End {
			out = append(out, Range{a.Next(), r.End})
		}
	}
	return out
}

// Options tune the conflists.
type Options struct {
	// CNIVersion of the conflist; DefaultCNIVersion when empty.
	CNIVersion string
}

// Marker is the key nodeprep sets in each conflist it writes, so a re-run
// can tell its own files from an operator's. libcni keeps unknown keys.
const Marker = `"nodeprepManaged": true`

// conflist and the plugin types below are the JSON nodeprep writes; field
// names follow the reference plugins' NetConf types.
type conflist struct {
	CNIVersion string   `json:"cniVersion"`
	Name       string   `json:"name"`
	Plugins    []plugin `json:"plugins"`
	Managed    bool     `json:"nodeprepManaged"`
}

type plugin struct {
	Type   string `json:"type"`
	Master string `json:"master,omitempty"`
	// HWAddr is host-device's pick of the link to move: the ENI's MAC.
	HWAddr string `json:"hwaddr,omitempty"`
	Mode   string `json:"mode,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	// Delegate and ResourceName are nodeprep-ipam's device guard's.
	Delegate     string `json:"delegate,omitempty"`
	ResourceName string `json:"resourceName,omitempty"`
	// WholeENIPool tells the guard the allocated device is a kernel ENI the
	// delegate moves into the pod (internal/ipam Conf.WholeENIPool).
	WholeENIPool bool            `json:"wholeENIPool,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	IPAM         *ipam           `json:"ipam,omitempty"`
}

type ipam struct {
	Type   string        `json:"type"`
	Ranges [][]ipamRange `json:"ranges,omitempty"`
	// Addresses are the static plugin's (plugins/ipam/static).
	Addresses []staticAddress `json:"addresses,omitempty"`
	// Routes are returned as given by both static and host-local; the
	// main plugin's ConfigureIface adds each in the pod with its own gw.
	Routes []route `json:"routes,omitempty"`
}

type staticAddress struct {
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
}

// route is a CNI route (containernetworking/cni types.Route).
type route struct {
	Dst      string `json:"dst"`
	GW       string `json:"gw,omitempty"`
	Priority int    `json:"priority,omitempty"`
}

// HostDeviceRouteMetric is the metric of a whole-ENI pod's default route
// via the VPC router. The pod's eth0 already has the cluster network's
// default route (the VPC CNI's, metric 0); the ENI's comes after it, so
// cluster and Service traffic stays on eth0 while the ENI's own subnet is
// reached on the ENI (its connected route), and the ENI's default takes
// over only in a pod without another one.
const HostDeviceRouteMetric = 1000

// secondaryDefaultMetric is the metric of a Multus network's IPv6 default
// route: one above the kernel's default (1024, which the VPC CNI's own pod
// routes get), because ConfigureIface adds routes without NLM_F_EXCL and
// the kernel joins same-metric IPv6 gateway routes into one ECMP route.
const secondaryDefaultMetric = 1025

// DeviceIPAM is the plugin that returns the addresses of the ENI behind
// the allocated device (internal/ipam's binary; the name is kept here so
// this package does not import the plugin's CNI dependencies).
const DeviceIPAM = "nodeprep-ipam"

type ipamRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway,omitempty"`
}

// Build returns the conflist of one interface, indented, with a stable
// order: the same facts give the same bytes, so a re-run rewrites nothing
// and host-local's leases stay inside the ranges.
func Build(e Network, opts Options) ([]byte, error) {
	name := e.Name()
	if name == "" {
		return nil, &Error{Interface: "?", Err: errors.New("no interface name")}
	}
	version := opts.CNIVersion
	if version == "" {
		version = DefaultCNIVersion
	}
	c := conflist{CNIVersion: version, Name: e.NetworkName(), Managed: true}
	if e.Config.Pooled() {
		c.Plugins = []plugin{wholeENIPool(e)}
		return marshal(c)
	}
	if e.Config.DPDK() {
		// No device and no address: Multus sets deviceID and pciBusID from
		// the device plugin's allocation (and, with the capability, the
		// runtimeConfig deviceID and the CNIDeviceInfoFile it reads back);
		// host-device in DPDK mode leaves the device alone and asks the IPAM
		// for the device's ENI addresses.
		c.Plugins = []plugin{{
			Type: DeviceIPAM, Delegate: "host-device", ResourceName: e.Resource,
			Capabilities: map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true},
			IPAM:         &ipam{Type: DeviceIPAM},
		}}
		return marshal(c)
	}
	if !e.Subnet.IsValid() || !e.Subnet.Addr().Is4() || e.Subnet.Bits() > 28 {
		return nil, &Error{Interface: name, Err: fmt.Errorf("subnet %q is not an IPv4 VPC subnet (/16 to /28)", e.Subnet)}
	}
	e.Subnet = e.Subnet.Masked()
	if e.Config.HostDevice() {
		p, err := hostDevice(e)
		if err != nil {
			return nil, &Error{Interface: name, Err: err}
		}
		c.Plugins = []plugin{p}
		return marshal(c)
	}
	v4, v6, err := e.PodRanges()
	if err != nil {
		return nil, &Error{Interface: name, Err: err}
	}
	if len(v4) == 0 && len(v6) == 0 {
		return nil, &Error{Interface: name, Err: ErrNoPodAddresses}
	}
	var ranges [][]ipamRange
	var routes []route
	if len(v4) > 0 {
		ranges = append(ranges, rangeSet(v4, e.Subnet.String(), e.Gateway().String()))
	}
	if len(v6) > 0 {
		// The VPC's IPv6 router is link-local, which host-local refuses as
		// a range gateway ("not in network") and, given none, replaces by
		// the subnet's ::1, which is no router. So the range keeps that
		// and the router is the gw of the pod's IPv6 default route, which
		// host-local passes through and ConfigureIface adds as given, as
		// the VPC CNI routes a branch ENI's pod (setupVlan): default via
		// fe80:ec2::1 on the pod's own link. A pod without IPv6 on its
		// primary network gets its IPv6 there; with it (an IPv6 cluster),
		// the higher metric leaves the primary network's default first
		// rather than making the two an ECMP pair.
		ranges = append(ranges, rangeSet(v6, e.IPv6Subnet.Masked().String(), ""))
		routes = append(routes, route{Dst: "::/0", GW: e.IPv6Gateway().String(), Priority: secondaryDefaultMetric})
	}
	im := &ipam{Type: "host-local", Ranges: ranges, Routes: routes}
	c.Plugins = []plugin{{Type: "ipvlan", Master: name, Mode: "l2", MTU: e.Config.MTU, IPAM: im}}
	return marshal(c)
}

// hostDevice is a whole-ENI attachment: host-device moves the link with
// the ENI's MAC into the pod (renamed to the pod's ifname, its host name
// kept in the link alias, which its DEL renames it back from), and static
// IPAM gives it the ENI's primary address on the subnet's prefix. There is
// no mtu key: the link keeps the MTU the links step set across the netns
// move, as it keeps its MAC and altname. nodeprep-ipam's guard runs
// host-device and makes DEL succeed when the pod holds no such link (a
// second pod's failed ADD, a repeated DEL), which host-device v1.10.0's
// own DEL fails, so that pod's teardown would fail forever.
func hostDevice(e Network) (plugin, error) {
	if e.MAC == "" {
		return plugin{}, errors.New("the ENI has no MAC recorded: host-device cannot find its link")
	}
	if !e.PrimaryIP.Is4() || !e.Subnet.Contains(e.PrimaryIP) {
		return plugin{}, fmt.Errorf("primary address %s is not an IPv4 address in subnet %s", e.PrimaryIP, e.Subnet)
	}
	gw := e.Gateway().String()
	return plugin{Type: DeviceIPAM, Delegate: "host-device", HWAddr: e.MAC, IPAM: &ipam{
		Type:      "static",
		Addresses: []staticAddress{{Address: netip.PrefixFrom(e.PrimaryIP, e.Subnet.Bits()).String(), Gateway: gw}},
		Routes:    []route{{Dst: "0.0.0.0/0", GW: gw, Priority: HostDeviceRouteMetric}},
	}}, nil
}

// wholeENIPool is the one conflist of a whole-ENI pool: like a DPDK
// interface's, it names no device (Multus adds the device plugin's pick as
// deviceID/pciBusID) and no address. host-device finds the kernel netdev
// under the PCI address (/sys/bus/pci/devices/<addr>/net) and moves it
// into the pod; nodeprep-ipam, keyed by the same address, returns that
// device's ENI's primary address and the VPC router as the gateway of a
// default route behind the pod's eth0 (HostDeviceRouteMetric). The guard
// fails ADD naming the resource when a pod forgot its request, and runs
// host-device's DEL only while the pod holds the link.
func wholeENIPool(e Network) plugin {
	return plugin{
		Type: DeviceIPAM, Delegate: "host-device", ResourceName: e.Resource, WholeENIPool: true,
		Capabilities: map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true},
		IPAM:         &ipam{Type: DeviceIPAM, Routes: []route{{Dst: "0.0.0.0/0", Priority: HostDeviceRouteMetric}}},
	}
}

// rangeSet is one host-local range set: alternatives of one family, of
// which host-local takes one address per ADD.
func rangeSet(rs []Range, subnet, gw string) []ipamRange {
	out := make([]ipamRange, len(rs))
	for i, r := range rs {
		out[i] = ipamRange{Subnet: subnet, RangeStart: r.Start.String(), RangeEnd: r.End.String(), Gateway: gw}
	}
	return out
}

func marshal(c conflist) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Plan builds the conflist of every interface and returns the changes that
// bring confDir to them: conflists that differ, and conflists nodeprep
// wrote earlier for interfaces no longer given (a removed interface's
// network is gone from the node). An operator's files are left alone.
func Plan(root hostfs.Root, confDir string, nets []Network, opts Options) ([]change.Change, error) {
	// A whole-ENI pool's members build the same conflist, one file.
	want, err := dirsync.Build(nets, func(e Network) string { return FileName(e.NetworkName()) }, func(e Network) ([]byte, error) { return Build(e, opts) })
	if err != nil {
		return nil, err
	}
	return dirsync.Plan(root, confDir, want, func(name string, data []byte) bool {
		return strings.HasSuffix(name, ".conflist") && bytes.Contains(data, []byte(Marker))
	})
}

// Write applies Plan at once (tools and tests) and reports the changes.
func Write(root hostfs.Root, confDir string, nets []Network, opts Options) ([]string, error) {
	changes, err := Plan(root, confDir, nets, opts)
	if err != nil {
		return nil, err
	}
	return dirsync.Apply(context.Background(), changes)
}

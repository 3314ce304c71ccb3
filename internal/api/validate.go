package api

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Bounds on numbers in the config.
const (
	MinMTU              = 68
	MaxMTU              = 9216
	MaxDeviceIndex      = 31
	MaxNetworkCardIndex = 15
	// MaxSecondaryIPs bounds every pod address count (secondary IPs, /28 and
	// /80 prefixes, IPv6 addresses): the largest per-ENI limit of any instance
	// type less the primary. The instance type's own limit is checked at run time.
	MaxSecondaryIPs = 49
	MaxInterfaces   = 32
	MaxNUMANode     = 63
	// MaxHugepageBytes is a ceiling no EC2 DPDK node reaches; the hugepages
	// step also checks the node's own memory at run time.
	MaxHugepageBytes = 2 << 40
	maxTags          = 40
)

var (
	reSubnetID      = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	reSecurityGroup = regexp.MustCompile(`^sg-[0-9a-f]{8}([0-9a-f]{9})?$`)
	// Interface names become file names, link altnames and NAD names.
	reInterfaceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	// reKernelName matches the names the kernel and udev give links (lo,
	// eth0, and systemd's predictable ens5, enp0s6, eno1, enx<MAC>, enP...): as
	// an interface's name and altname it would clash with a link of the node.
	reKernelName = regexp.MustCompile(`^(lo|eth[0-9]+|en[osp][0-9].*|enx[0-9a-f]+|enP[0-9].*|wl.*|ww.*)$`)
	// The device plugin accepts only these characters in a resource name.
	// ResourceNamePattern is a device plugin resource name, without its prefix.
	ResourceNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)
	// MACPattern is a MAC address in the lower-case form sysfs shows.
	MACPattern = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	// PCIAddressPattern is the only BDF form accepted anywhere.
	PCIAddressPattern = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	reSafePath        = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	rePluginName      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	reCNIVersion      = regexp.MustCompile(`^(0\.[34]\.[0-9]|1\.[01]\.[0-9])$`)
)

// FieldError is one problem with one field.
type FieldError struct {
	Path   string
	Value  any
	Reason string
}

func (e FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", DisplayPath(e.Path), e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", DisplayPath(e.Path), DisplayValue(fmt.Sprint(e.Value)), e.Reason)
}

// Longest path and value echoed in a message; user input can be up to the
// 1 MiB document limit, and a message should fit on a screen.
const (
	maxShownPath  = 200
	maxShownValue = 80
)

// DisplayPath makes a field path safe to print on one line: a map key can
// hold a newline or a terminal escape, which is shown escaped, and a huge
// key is cut short.
func DisplayPath(p string) string {
	return clip(escapeControls(p), maxShownPath)
}

// DisplayValue quotes a value for a message, cut short when long.
func DisplayValue(v string) string {
	if len(v) <= maxShownValue {
		return fmt.Sprintf("%q", v)
	}
	cut := v[:maxShownValue]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return fmt.Sprintf("%q… (%d bytes)", cut, len(v))
}

func escapeControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := s[:n]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return fmt.Sprintf("%s… (%d bytes)", cut, len(s))
}

// ValidationError lists every problem found, not just the first.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Fields lists the paths that have problems.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Path
	}
	return out
}

type validator struct{ errs []FieldError }

func (v *validator) add(path string, value any, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Value: value, Reason: fmt.Sprintf(format, args...)})
}

// Validate checks a defaulted config and returns a *ValidationError with
// every problem, or nil.
func Validate(c *NodePrepConfig) error {
	v := &validator{}
	if c.APIVersion != APIVersion {
		v.add("apiVersion", c.APIVersion, "unsupported; this build reads %s", APIVersion)
	}
	if c.Kind != Kind {
		v.add("kind", c.Kind, "must be %s", Kind)
	}
	v.interfaces(c.Spec.Interfaces, c.Spec.DevicePlugin.ResourcePrefix)
	v.hugepages(c.Spec.Hugepages)
	v.cpu(c.Spec.CPU, c.Spec.Hugepages, c.Spec.Interfaces)
	v.kernelModules(c.Spec.KernelModules)
	v.multus(c.Spec.Multus)
	v.devicePlugin(c.Spec.DevicePlugin, c.Spec.Interfaces)
	v.node(c.Spec.Node)
	switch c.Spec.FailurePolicy {
	case FailurePolicyBlock, FailurePolicyTaint:
	default:
		v.add("spec.failurePolicy", c.Spec.FailurePolicy, "must be Block or Taint")
	}
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs}
}

func (v *validator) interfaces(ifs []Interface, prefix string) {
	if len(ifs) > MaxInterfaces {
		v.add("spec.interfaces", nil, "%d interfaces; at most %d", len(ifs), MaxInterfaces)
		return // one error, not one per interface past the cap
	}
	names := map[string]int{}
	slots := map[[2]int32]int{}
	macs := map[string]int{}
	for i, in := range ifs {
		p := fmt.Sprintf("spec.interfaces[%d]", i)
		if !reInterfaceName.MatchString(in.Name) {
			v.add(p+".name", in.Name, "must be 1-15 characters of a-z, 0-9 and '-', starting and ending with a letter or digit")
		} else if reKernelName.MatchString(in.Name) {
			v.add(p+".name", in.Name, "is a kernel or udev link name (lo, eth0, ens5, ...); it would clash with a link of the node: pick a name of your own such as n2 or dpdk0")
		} else if j, dup := names[in.Name]; dup {
			v.add(p+".name", in.Name, "duplicate of spec.interfaces[%d].name", j)
		} else {
			names[in.Name] = i
		}
		switch in.Driver {
		case DriverKernel, DriverVFIOPCI, DriverIGBUIO:
		default:
			v.add(p+".driver", in.Driver, "must be kernel, vfio-pci or igb_uio")
		}
		v.podAttachment(p, in)
		if in.DPDK() || in.Pooled() {
			for _, reason := range ResourceNameProblems(prefix, in.ResourceName) {
				v.add(p+".resourceName", in.ResourceName, "%s", reason)
			}
		} else if in.ResourceName != "" {
			v.add(p+".resourceName", in.ResourceName, "only DPDK interfaces (driver vfio-pci or igb_uio) and podAttachment hostDevice ones (a whole-ENI pool) are device plugin resources")
		}
		if in.MTU != 0 && (in.MTU < MinMTU || in.MTU > MaxMTU) {
			v.add(p+".mtu", in.MTU, "must be between %d and %d", MinMTU, MaxMTU)
		}
		if in.RPFilter != nil && (*in.RPFilter < 0 || *in.RPFilter > 2) {
			v.add(p+".rpFilter", *in.RPFilter, "must be 0, 1 or 2")
		}
		// A DPDK interface's mtu is not set on any link (a bound device has
		// none): it is published in device-info for the DPDK application.
		if in.DPDK() && in.RPFilter != nil {
			v.add(p+".driver", in.Driver, "rpFilter applies to kernel interfaces only")
		}
		if in.MAC != "" {
			if !MACPattern.MatchString(in.MAC) {
				v.add(p+".mac", in.MAC, "not a lower-case MAC address like 0a:1b:2c:3d:4e:5f")
			} else if j, dup := macs[in.MAC]; dup {
				v.add(p+".mac", in.MAC, "duplicate of spec.interfaces[%d].mac", j)
			} else {
				macs[in.MAC] = i
			}
		}
		if in.PCIAddress != "" && !PCIAddressPattern.MatchString(in.PCIAddress) {
			v.add(p+".pciAddress", in.PCIAddress, "not a PCI address like 0000:00:06.0")
		}
		if !in.Managed() {
			if in.MAC == "" && in.PCIAddress == "" {
				v.add(p+".subnetID", nil, "required, unless mac or pciAddress picks an already-present NIC")
			}
			v.unmanagedHasNoEC2Fields(p, in)
			continue
		}
		if in.MAC != "" || in.PCIAddress != "" {
			v.add(p, nil, "subnetID (an EC2-managed ENI) and mac/pciAddress (an already-present NIC) are exclusive")
		}
		v.managedInterface(p, in, slots, i)
	}
	v.pools(ifs, names)
}

// pools checks the interfaces that share a resource name with a whole-ENI
// pool's member. The device plugin hands a pod any device of the pool and
// the pool has one conflist, so every member must be a whole kernel ENI
// of the same subnet (the pod's address is on the subnet its ENI was
// allocated from, and the same network must mean the same subnet) and
// MTU; and the pool's network name must not be another interface's.
func (v *validator) pools(ifs []Interface, names map[string]int) {
	first := map[string]int{}
	for i, in := range ifs {
		if in.ResourceName == "" || (!in.Pooled() && !in.DPDK()) {
			continue
		}
		j, seen := first[in.ResourceName]
		if !seen {
			first[in.ResourceName] = i
			if in.Pooled() {
				v.poolName(ifs, i, names)
			}
			continue
		}
		head := ifs[j]
		if !head.Pooled() && !in.Pooled() {
			continue // DPDK interfaces sharing a resource: a DPDK pool
		}
		p := fmt.Sprintf("spec.interfaces[%d]", i)
		if head.Pooled() != in.Pooled() {
			v.add(p+".resourceName", in.ResourceName, "shared by spec.interfaces[%d] (%s) and this one (%s); a whole-ENI pool's members must all be podAttachment hostDevice kernel interfaces", j, describeAttachment(head), describeAttachment(in))
			continue
		}
		if in.SubnetID != head.SubnetID {
			v.add(p+".subnetID", in.SubnetID, "whole-ENI pool %s: spec.interfaces[%d] has subnet %q; a pool's members must share a subnet", in.ResourceName, j, head.SubnetID)
		}
		if in.MTU != head.MTU {
			v.add(p+".mtu", in.MTU, "whole-ENI pool %s: spec.interfaces[%d] has mtu %d; a pool's members must share an MTU", in.ResourceName, j, head.MTU)
		}
	}
}

func (v *validator) poolName(ifs []Interface, i int, names map[string]int) {
	in := ifs[i]
	p := fmt.Sprintf("spec.interfaces[%d].resourceName", i)
	name := PoolNetworkName(in.ResourceName)
	for _, reason := range validation.IsDNS1123Label(name) {
		v.add(p, in.ResourceName, "names the pool's NAD %q, which must be a DNS label: %s", name, reason)
	}
	// A member's own name is no network (the pool's NAD replaces it).
	if j, taken := names[name]; taken && !ifs[j].Pooled() {
		v.add(p, in.ResourceName, "names the pool's NAD %q, which is spec.interfaces[%d].name's network", name, j)
	}
}

func describeAttachment(in Interface) string {
	if in.DPDK() {
		return "driver " + string(in.Driver)
	}
	return "podAttachment " + string(in.PodAttachment)
}

// podAttachment checks a kernel interface's attachment mode. A whole-ENI
// pod takes the ENI's primary address, so the pod-address counts (which
// only ipvlan pods use) would ask EC2 for addresses nothing hands out.
func (v *validator) podAttachment(p string, in Interface) {
	switch in.PodAttachment {
	case PodAttachmentIPVLAN, PodAttachmentHostDevice:
	case "":
		return // a DPDK interface's, by the defaults
	default:
		v.add(p+".podAttachment", in.PodAttachment, "must be ipvlan or hostDevice")
		return
	}
	if in.DPDK() {
		v.add(p+".podAttachment", in.PodAttachment, "applies to kernel interfaces only; a device bound to %s reaches its pod through the device plugin", in.Driver)
		return
	}
	if !in.HostDevice() {
		return
	}
	if !in.Managed() {
		// A NIC picked by mac or pciAddress has no EC2 facts to give its pod.
		v.add(p+".podAttachment", in.PodAttachment, "needs subnetID: the pod's address is the ENI's EC2 primary address, which nodeprep learns only for an ENI it creates or adopts")
	}
	for _, f := range in.podAddressCounts() {
		if f.value != 0 {
			v.add(p+"."+f.field, f.value, "podAttachment hostDevice gives the pod the ENI's primary address; pod address counts are for ipvlan pods")
		}
	}
}

func (v *validator) unmanagedHasNoEC2Fields(p string, in Interface) {
	if len(in.SecurityGroupIDs) > 0 || in.PodAddresses() || in.SourceDestCheck != nil || len(in.Tags) > 0 || in.PrivateIP != (PrivateIP{}) || in.DeviceIndex != nil || in.NetworkCardIndex != nil {
		v.add(p, nil, "securityGroupIDs, privateIP, secondaryIPCount, ipv4PrefixCount, ipv6PrefixCount, ipv6AddressCount, sourceDestCheck, tags, deviceIndex and networkCardIndex need subnetID")
	}
}

func (v *validator) managedInterface(p string, in Interface, slots map[[2]int32]int, i int) {
	if !reSubnetID.MatchString(in.SubnetID) {
		v.add(p+".subnetID", in.SubnetID, "not a subnet ID")
	}
	if len(in.SecurityGroupIDs) > 5 {
		v.add(p+".securityGroupIDs", nil, "at most 5 security groups per ENI")
	}
	for j, sg := range in.SecurityGroupIDs {
		if !reSecurityGroup.MatchString(sg) {
			v.add(fmt.Sprintf("%s.securityGroupIDs[%d]", p, j), sg, "not a security group ID")
		}
	}
	if in.DeviceIndex != nil {
		if *in.DeviceIndex < 1 || *in.DeviceIndex > MaxDeviceIndex {
			v.add(p+".deviceIndex", *in.DeviceIndex, "must be between 1 and %d; 0 is the primary ENI", MaxDeviceIndex)
		}
	}
	if in.NetworkCardIndex != nil && (*in.NetworkCardIndex < 0 || *in.NetworkCardIndex > MaxNetworkCardIndex) {
		v.add(p+".networkCardIndex", *in.NetworkCardIndex, "must be between 0 and %d", MaxNetworkCardIndex)
	}
	if in.DeviceIndex != nil && in.NetworkCardIndex != nil {
		slot := [2]int32{*in.NetworkCardIndex, *in.DeviceIndex}
		if j, dup := slots[slot]; dup {
			v.add(p+".deviceIndex", *in.DeviceIndex, "spec.interfaces[%d] already uses this device index on network card %d", j, slot[0])
		} else {
			slots[slot] = i
		}
	}
	switch in.PrivateIP.Mode {
	case PrivateIPDHCP, PrivateIPFromStartOfSubnet:
		if in.PrivateIP.Address != "" {
			v.add(p+".privateIP.address", in.PrivateIP.Address, "only with mode static")
		}
	case PrivateIPStatic:
		if a, err := netip.ParseAddr(in.PrivateIP.Address); err != nil || !a.Is4() {
			v.add(p+".privateIP.address", in.PrivateIP.Address, "mode static needs an IPv4 address")
		}
	default:
		v.add(p+".privateIP.mode", in.PrivateIP.Mode, "must be dhcp, fromStartOfSubnet or static")
	}
	v.podAddresses(p, in)
	if len(in.Tags) > maxTags {
		v.add(p+".tags", nil, "at most %d tags", maxTags)
	}
	for _, k := range sortedKeys(in.Tags) {
		tp := fmt.Sprintf("%s.tags[%s]", p, k)
		switch {
		case k == "" || len(k) > 128:
			v.add(tp, k, "tag keys are 1-128 characters")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			v.add(tp, k, "the aws: prefix is reserved by AWS")
		case strings.HasPrefix(k, "nodeprep.dev/") || k == "node.k8s.amazonaws.com/no_manage":
			v.add(tp, k, "set by nodeprep itself")
		}
		if len(in.Tags[k]) > 256 {
			v.add(tp, nil, "tag values are at most 256 characters")
		}
	}
}

// podAddressCount is one of an interface's pod address counts, with its
// field name for errors.
type podAddressCount struct {
	field string
	value int32
}

// podAddressCounts are the counts of addresses EC2 assigns the ENI for pods.
func (in Interface) podAddressCounts() []podAddressCount {
	return []podAddressCount{
		{"secondaryIPCount", in.SecondaryIPCount},
		{"ipv4PrefixCount", in.IPv4PrefixCount},
		{"ipv6PrefixCount", in.IPv6PrefixCount},
		{"ipv6AddressCount", in.IPv6AddressCount},
	}
}

// podAddresses checks the address capacity counts. EC2's
// CreateNetworkInterface takes a count of IPv4 prefixes or of secondary
// IPv4 addresses, not both, and the same for IPv6.
func (v *validator) podAddresses(p string, in Interface) {
	for _, f := range in.podAddressCounts() {
		if f.value < 0 || f.value > MaxSecondaryIPs {
			v.add(p+"."+f.field, f.value, "must be between 0 and %d", MaxSecondaryIPs)
		}
	}
	if in.SecondaryIPCount > 0 && in.IPv4PrefixCount > 0 {
		v.add(p+".ipv4PrefixCount", in.IPv4PrefixCount, "give secondaryIPCount or ipv4PrefixCount, not both")
	}
	if in.IPv6PrefixCount > 0 && in.IPv6AddressCount > 0 {
		v.add(p+".ipv6PrefixCount", in.IPv6PrefixCount, "give ipv6PrefixCount or ipv6AddressCount, not both")
	}
}

func (v *validator) hugepages(hps []Hugepages) {
	seen := map[string]int{}
	var total int64
	for i, h := range hps {
		p := fmt.Sprintf("spec.hugepages[%d]", i)
		size := HugepageBytes(h.Size)
		if size == 0 {
			v.add(p+".size", h.Size, "must be 2Mi or 1Gi")
			continue
		}
		if j, dup := seen[h.Size]; dup {
			v.add(p+".size", h.Size, "duplicate of spec.hugepages[%d]", j)
		}
		seen[h.Size] = i
		if h.Count < 0 {
			v.add(p+".count", h.Count, "must not be negative")
		}
		if len(h.PerNUMANode) > 0 && h.Count != 0 {
			v.add(p+".count", h.Count, "give count or perNUMANode, not both")
		}
		// Each count is bounded on its own before anything is added or
		// multiplied, so no sum or product below can overflow.
		maxPages := MaxHugepageBytes / size
		bounded := h.Count >= 0 && int64(h.Count) <= maxPages
		if int64(h.Count) > maxPages {
			v.add(p+".count", h.Count, "%d × %s exceeds the %d GiB ceiling", h.Count, h.Size, MaxHugepageBytes>>30)
		}
		for _, node := range sortedIntKeys(h.PerNUMANode) {
			np := fmt.Sprintf("%s.perNUMANode[%d]", p, node)
			if node < 0 || node > MaxNUMANode {
				v.add(np, node, "NUMA node must be between 0 and %d", MaxNUMANode)
				bounded = false
			}
			switch c := h.PerNUMANode[node]; {
			case c < 0:
				v.add(np, c, "must not be negative")
				bounded = false
			case int64(c) > maxPages:
				v.add(np, c, "%d × %s exceeds the %d GiB ceiling", c, h.Size, MaxHugepageBytes>>30)
				bounded = false
			}
		}
		if !bounded {
			continue
		}
		// At most MaxNUMANode+1 nodes of at most maxPages each: no overflow.
		n := int64(h.Total())
		if n > maxPages {
			v.add(p+".perNUMANode", nil, "%d × %s in all exceeds the %d GiB ceiling", n, h.Size, MaxHugepageBytes>>30)
			continue
		}
		total += n * size
	}
	if total > MaxHugepageBytes {
		v.add("spec.hugepages", nil, "%d GiB in all exceeds the %d GiB ceiling", total>>30, MaxHugepageBytes>>30)
	}
}

func (v *validator) kernelModules(k KernelModules) {
	switch k.VFIO.NoIOMMU {
	case NoIOMMUAuto, NoIOMMUOn, NoIOMMUOff:
	default:
		v.add("spec.kernelModules.vfio.noiommu", k.VFIO.NoIOMMU, "must be auto, on or off")
	}
}

func (v *validator) multus(m Multus) {
	seen := map[string]bool{}
	for i, pl := range m.Plugins {
		p := fmt.Sprintf("spec.multus.plugins[%d]", i)
		if !rePluginName.MatchString(pl) {
			v.add(p, pl, "not a CNI plugin binary name")
		} else if seen[pl] {
			v.add(p, pl, "listed twice")
		}
		seen[pl] = true
	}
	for _, f := range []struct{ path, value string }{
		{"spec.multus.clusterNetwork", m.ClusterNetwork},
		{"spec.multus.readinessIndicatorFile", m.ReadinessIndicatorFile},
		{"spec.multus.kubeconfig", m.Kubeconfig},
		{"spec.multus.binDir", m.BinDir},
		{"spec.multus.confDir", m.ConfDir},
		{"spec.multus.networkConfDir", m.NetworkConfDir},
		{"spec.multus.bundleDir", m.BundleDir},
	} {
		v.safePath(f.path, f.value)
	}
	if m.CNIVersion != "" && !reCNIVersion.MatchString(m.CNIVersion) {
		v.add("spec.multus.cniVersion", m.CNIVersion, "must be a CNI spec version such as 0.4.0 or 1.0.0")
	}
}

func (v *validator) devicePlugin(d DevicePlugin, ifs []Interface) {
	v.safePath("spec.devicePlugin.configPath", d.ConfigPath)
	for _, reason := range validation.IsDNS1123Subdomain(d.ResourcePrefix) {
		v.add("spec.devicePlugin.resourcePrefix", d.ResourcePrefix, "must be a DNS subdomain such as amazon.com: %s", reason)
	}
}

func (v *validator) node(n Node) {
	for _, k := range sortedKeys(n.Labels) {
		for _, reason := range LabelProblems(k, n.Labels[k]) {
			v.add(fmt.Sprintf("spec.node.labels[%s]", k), n.Labels[k], "%s", reason)
		}
	}
	// The API server takes a node's taints unique by key and effect; a
	// second one would be collapsed or refused, never both registered.
	seen := map[[2]string]int{}
	for i, t := range n.Taints {
		p := fmt.Sprintf("spec.node.taints[%d]", i)
		key, value, effect := TaintProblems(t)
		for _, reason := range key {
			v.add(p+".key", t.Key, "%s", reason)
		}
		for _, reason := range value {
			v.add(p+".value", t.Value, "%s", reason)
		}
		for _, reason := range effect {
			v.add(p+".effect", t.Effect, "%s", reason)
		}
		id := [2]string{t.Key, t.Effect}
		if j, dup := seen[id]; dup {
			v.add(p, nil, "duplicate of spec.node.taints[%d]: taints must be unique by key and effect", j)
		} else {
			seen[id] = i
		}
	}
}

func (v *validator) safePath(field, p string) {
	if !reSafePath.MatchString(p) || path.Clean(p) != p || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		v.add(field, p, "must be a clean absolute path of A-Z, a-z, 0-9, '.', '_', '-' and '/'")
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedIntKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// Package api is nodeprep's versioned configuration API, nodeprep.dev/v1alpha1.
package api

import (
	"math"
	"strings"
)

const (
	// APIVersion is the only version this build reads.
	APIVersion = "nodeprep.dev/v1alpha1"
	// Kind is the only kind this build reads.
	Kind = "NodePrepConfig"
)

// NodePrepConfig is the whole configuration of one node.
type NodePrepConfig struct {
	// Must be nodeprep.dev/v1alpha1.
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	// Must be NodePrepConfig.
	Kind string `yaml:"kind" json:"kind"`
	// What the node should look like.
	Spec Spec `yaml:"spec" json:"spec"`
}

// Spec is what the node should look like before kubelet starts.
type Spec struct {
	// Interfaces are the Multus ENIs, in device-index order by default.
	Interfaces []Interface `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	// Hugepages are reserved before kubelet starts, since kubelet reads them only once.
	Hugepages []Hugepages `yaml:"hugepages,omitempty" json:"hugepages,omitempty"`
	// DPDK kernel module options.
	KernelModules KernelModules `yaml:"kernelModules,omitempty" json:"kernelModules,omitempty"`
	// The Multus CNI install and configuration.
	Multus Multus `yaml:"multus,omitempty" json:"multus,omitempty"`
	// The SR-IOV network device plugin config file.
	DevicePlugin DevicePlugin `yaml:"devicePlugin,omitempty" json:"devicePlugin,omitempty"`
	// Labels and taints the node registers with.
	Node Node `yaml:"node,omitempty" json:"node,omitempty"`
	// CPU partitions the CPUs into reserved and isolated sets; absent, nodeprep leaves the CPUs alone.
	CPU *CPU `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	// FailurePolicy decides what kubelet does when a step fails.
	FailurePolicy FailurePolicy `yaml:"failurePolicy,omitempty" json:"failurePolicy,omitempty"`
}

// Interface is one Multus ENI. It is either managed through EC2 (subnetID set)
// or an already-present NIC picked by mac or pciAddress, which makes no EC2 calls.
type Interface struct {
	// Name is the logical name: the link altname, the file names, the NAD name.
	Name string `yaml:"name" json:"name"`
	// The ENI's subnet; makes the interface EC2-managed (created or adopted).
	SubnetID string `yaml:"subnetID,omitempty" json:"subnetID,omitempty"`
	// Security groups of a created ENI (at most 5); empty means the VPC default.
	SecurityGroupIDs []string `yaml:"securityGroupIDs,omitempty" json:"securityGroupIDs,omitempty"`
	// DeviceIndex defaults to the next free index after 0, in list order.
	DeviceIndex *int32 `yaml:"deviceIndex,omitempty" json:"deviceIndex,omitempty"`
	// Network card of the attachment; defaults to 0.
	NetworkCardIndex *int32 `yaml:"networkCardIndex,omitempty" json:"networkCardIndex,omitempty"`
	// How a created ENI gets its primary address.
	PrivateIP PrivateIP `yaml:"privateIP,omitempty" json:"privateIP,omitempty"`
	// Secondary private addresses to assign, for ipvlan pods (0-49); exclusive with ipv4PrefixCount.
	SecondaryIPCount int32 `yaml:"secondaryIPCount,omitempty" json:"secondaryIPCount,omitempty"`
	// IPv4 /28 prefixes to delegate to the ENI for pods, 16 addresses each (0-49); exclusive with secondaryIPCount.
	IPv4PrefixCount int32 `yaml:"ipv4PrefixCount,omitempty" json:"ipv4PrefixCount,omitempty"`
	// IPv6 /80 prefixes to delegate to the ENI for pods (0-49); the subnet needs an IPv6 CIDR. Exclusive with ipv6AddressCount.
	IPv6PrefixCount int32 `yaml:"ipv6PrefixCount,omitempty" json:"ipv6PrefixCount,omitempty"`
	// IPv6 addresses to assign to the ENI for pods (0-49); the subnet needs an IPv6 CIDR. Exclusive with ipv6PrefixCount.
	IPv6AddressCount int32 `yaml:"ipv6AddressCount,omitempty" json:"ipv6AddressCount,omitempty"`
	// SourceDestCheck unset leaves EC2's default (enabled).
	SourceDestCheck *bool `yaml:"sourceDestCheck,omitempty" json:"sourceDestCheck,omitempty"`
	// Extra tags on created ENIs; nodeprep adds its own and no_manage=true.
	Tags map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// MTU of a kernel interface's link; 0 leaves it as the driver set it. For DPDK, the MTU published in device-info (default 9001, the VPC's).
	MTU int `yaml:"mtu,omitempty" json:"mtu,omitempty"`
	// RPFilter sets net.ipv4.conf.<if>.rp_filter for kernel interfaces: 0, 1 or 2.
	RPFilter *int `yaml:"rpFilter,omitempty" json:"rpFilter,omitempty"`
	// kernel (stays on ena), vfio-pci or igb_uio.
	Driver Driver `yaml:"driver,omitempty" json:"driver,omitempty"`
	// PodAttachment of a kernel interface: ipvlan (default) gives each pod one of the ENI's pod addresses; hostDevice moves the whole ENI into one pod, with the ENI's primary address, a default route via the VPC router and its MTU, and back to the node on DEL. Needs subnetID; not for DPDK drivers.
	PodAttachment PodAttachment `yaml:"podAttachment,omitempty" json:"podAttachment,omitempty"`
	// ResourceName is the device plugin resource; defaults from Name for DPDK drivers. On podAttachment hostDevice interfaces it makes a pool: the interfaces sharing it are one resource whose pods each get one whole ENI of the pool, through one NAD named like the resource (lower case, '_' as '-').
	ResourceName string `yaml:"resourceName,omitempty" json:"resourceName,omitempty"`
	// MAC picks an already-present NIC instead of an EC2-managed ENI.
	MAC string `yaml:"mac,omitempty" json:"mac,omitempty"`
	// PCIAddress picks an already-present NIC by its PCI BDF, e.g. 0000:00:06.0.
	PCIAddress string `yaml:"pciAddress,omitempty" json:"pciAddress,omitempty"`
	// Remove: true, given with only name in a later part, deletes the interface of that name set by earlier parts or the baked config.
	Remove bool `yaml:"remove,omitempty" json:"remove,omitempty"`
}

// PodAddresses reports whether the interface asks EC2 for addresses beyond its primary one.
func (i Interface) PodAddresses() bool {
	return i.SecondaryIPCount > 0 || i.IPv4PrefixCount > 0 || i.IPv6PrefixCount > 0 || i.IPv6AddressCount > 0
}

// Managed reports whether nodeprep creates or adopts this interface through EC2.
func (i Interface) Managed() bool { return i.SubnetID != "" }

// DPDK reports whether the interface is handed to a userspace driver.
func (i Interface) DPDK() bool { return i.Driver == DriverVFIOPCI || i.Driver == DriverIGBUIO }

// HostDevice reports whether pods take the whole ENI (host-device) instead
// of ipvlan slaves of it.
func (i Interface) HostDevice() bool { return i.PodAttachment == PodAttachmentHostDevice }

// Pooled reports whether the interface is a member of a whole-ENI pool:
// a hostDevice interface with a resourceName, which the device plugin
// hands out (by its kernel driver) instead of one NAD picking it by MAC.
func (i Interface) Pooled() bool { return i.HostDevice() && i.ResourceName != "" }

// NetworkName is the network pods attach to for this interface: the NAD's
// metadata.name and the conflist's name. It is the interface's own name,
// except for a whole-ENI pool's member, whose network is the pool's.
func (i Interface) NetworkName() string {
	if i.Pooled() {
		return PoolNetworkName(i.ResourceName)
	}
	return i.Name
}

// PoolNetworkName is the network of the whole-ENI pool of a resource: the
// resource name in lower case with '-' for '_', as a NAD's name must be a
// DNS label while a resource name may not hold '-'.
func PoolNetworkName(resourceName string) string {
	return strings.ReplaceAll(strings.ToLower(resourceName), "_", "-")
}

// PodAttachment is how pods attach to a kernel interface.
type PodAttachment string

const (
	// PodAttachmentIPVLAN: each pod gets an ipvlan L2 slave with one of the
	// addresses EC2 assigned to the ENI for pods.
	PodAttachmentIPVLAN PodAttachment = "ipvlan"
	// PodAttachmentHostDevice: one pod gets the ENI's link itself, with the
	// ENI's primary address (a CNF that owns its interface).
	PodAttachmentHostDevice PodAttachment = "hostDevice"
)

// Driver is the kernel driver an interface ends up bound to.
type Driver string

const (
	// DriverKernel keeps the NIC on ena, for ipvlan, macvlan or host-device.
	DriverKernel  Driver = "kernel"
	DriverVFIOPCI Driver = "vfio-pci"
	DriverIGBUIO  Driver = "igb_uio"
)

// PrivateIP chooses how an ENI's primary private address is picked.
type PrivateIP struct {
	// dhcp (default), fromStartOfSubnet or static.
	Mode PrivateIPMode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// The IPv4 address, for mode static.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
}

// PrivateIPMode is how a created ENI gets its primary address.
type PrivateIPMode string

const (
	// PrivateIPDHCP lets EC2 pick.
	PrivateIPDHCP PrivateIPMode = "dhcp"
	// PrivateIPFromStartOfSubnet takes one of the lowest free addresses after
	// the reserved ones (at random among the lowest 256, so nodes booting
	// together rarely race for one), so nodes fill the subnet from the bottom
	// and pods from the top.
	PrivateIPFromStartOfSubnet PrivateIPMode = "fromStartOfSubnet"
	PrivateIPStatic            PrivateIPMode = "static"
)

// Hugepages is one page size to reserve, as a total or per NUMA node.
type Hugepages struct {
	// 2Mi or 1Gi.
	Size string `yaml:"size" json:"size"`
	// Pages in total, spread by the kernel across NUMA nodes.
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// PerNUMANode maps a NUMA node number to its count; it replaces Count.
	PerNUMANode map[int]int `yaml:"perNUMANode,omitempty" json:"perNUMANode,omitempty"`
	// Placement of count: kernel (default) spreads it, nicLocal splits it over the NUMA nodes of the DPDK NICs (all nodes when a NIC reports none).
	Placement string `yaml:"placement,omitempty" json:"placement,omitempty"`
	// Remove: true, given with only size in a later part, deletes that page size set by earlier parts or the baked config.
	Remove bool `yaml:"remove,omitempty" json:"remove,omitempty"`
}

// Hugepage sizes nodeprep understands.
const (
	HugepageSize2Mi = "2Mi"
	HugepageSize1Gi = "1Gi"
)

// HugepageBytes is the size in bytes of a valid page size, or 0.
func HugepageBytes(size string) int64 {
	switch size {
	case HugepageSize2Mi:
		return 2 << 20
	case HugepageSize1Gi:
		return 1 << 30
	}
	return 0
}

// Total is the number of pages asked for, summing NUMA nodes when given.
// The sum saturates at math.MaxInt instead of wrapping, so counts that
// validation has not yet bounded can never add up to a small or negative total.
func (h Hugepages) Total() int {
	if len(h.PerNUMANode) == 0 {
		return h.Count
	}
	n := 0
	for _, c := range h.PerNUMANode {
		n = saturatingAdd(n, c)
	}
	return n
}

func saturatingAdd(a, b int) int {
	switch {
	case b > 0 && a > math.MaxInt-b:
		return math.MaxInt
	case b < 0 && a < math.MinInt-b:
		return math.MinInt
	}
	return a + b
}

// KernelModules configures the DPDK drivers.
type KernelModules struct {
	// vfio-pci options.
	VFIO VFIO `yaml:"vfio,omitempty" json:"vfio,omitempty"`
	// igb_uio options.
	IGBUIO IGBUIO `yaml:"igbUIO,omitempty" json:"igbUIO,omitempty"`
}

// VFIO configures vfio-pci.
type VFIO struct {
	// NoIOMMU: auto enables unsafe no-IOMMU mode only when the node has no IOMMU.
	NoIOMMU NoIOMMU `yaml:"noiommu,omitempty" json:"noiommu,omitempty"`
}

// NoIOMMU is the vfio unsafe no-IOMMU policy.
type NoIOMMU string

const (
	NoIOMMUAuto NoIOMMU = "auto"
	NoIOMMUOn   NoIOMMU = "on"
	NoIOMMUOff  NoIOMMU = "off"
)

// IGBUIO configures the igb_uio module from dpdk-kmods.
type IGBUIO struct {
	// WCActivate loads igb_uio with wc_activate=1 (write combining), which ENA needs for LLQ.
	WCActivate *bool `yaml:"wcActivate,omitempty" json:"wcActivate,omitempty"`
}

// Multus configures the Multus CNI install.
type Multus struct {
	// Install Multus and the plugins from the AMI's bundle; default true.
	Install *bool `yaml:"install,omitempty" json:"install,omitempty"`
	// Plugins are the reference plugins installed from the bundle besides multus.
	Plugins []string `yaml:"plugins,omitempty" json:"plugins,omitempty"`
	// ClusterNetwork is the default delegate: the VPC CNI's conflist.
	ClusterNetwork string `yaml:"clusterNetwork,omitempty" json:"clusterNetwork,omitempty"`
	// ReadinessIndicatorFile makes multus wait until the default network is up.
	ReadinessIndicatorFile string `yaml:"readinessIndicatorFile,omitempty" json:"readinessIndicatorFile,omitempty"`
	// Where the Multus kubeconfig is written; it uses kubelet's credentials.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	// cniVersion of 00-multus.conf; defaults to the cluster network's.
	CNIVersion string `yaml:"cniVersion,omitempty" json:"cniVersion,omitempty"`
	// Where CNI plugins are installed.
	BinDir string `yaml:"binDir,omitempty" json:"binDir,omitempty"`
	// Where CNI configs are written.
	ConfDir string `yaml:"confDir,omitempty" json:"confDir,omitempty"`
	// NetworkConfDir is Multus's confDir: each interface's node-local conflist, which a NAD without spec.config names.
	NetworkConfDir string `yaml:"networkConfDir,omitempty" json:"networkConfDir,omitempty"`
	// BundleDir holds <version>/SHA256SUMS and the plugin binaries baked into the AMI.
	BundleDir string `yaml:"bundleDir,omitempty" json:"bundleDir,omitempty"`
	// The whereabouts IPAM plugin.
	Whereabouts Whereabouts `yaml:"whereabouts,omitempty" json:"whereabouts,omitempty"`
}

// Whereabouts configures the cluster-wide IPAM plugin.
type Whereabouts struct {
	// Install whereabouts and write its config.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// DevicePlugin configures the SR-IOV network device plugin's config file.
type DevicePlugin struct {
	// The device plugin's config file, read from a hostPath by its DaemonSet.
	ConfigPath string `yaml:"configPath,omitempty" json:"configPath,omitempty"`
	// Prefix of resource names, e.g. amazon.com/dpdk_n3.
	ResourcePrefix string `yaml:"resourcePrefix,omitempty" json:"resourcePrefix,omitempty"`
}

// Node is what the node registers with.
type Node struct {
	// Node labels, passed to kubelet through a nodeadm drop-in.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Node taints, passed the same way.
	Taints []Taint `yaml:"taints,omitempty" json:"taints,omitempty"`
}

// Taint is a Kubernetes node taint.
type Taint struct {
	// Taint key.
	Key string `yaml:"key" json:"key"`
	// Taint value.
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// NoSchedule, PreferNoSchedule or NoExecute.
	Effect string `yaml:"effect" json:"effect"`
}

// FailurePolicy is what happens to kubelet when nodeprep fails.
type FailurePolicy string

const (
	// FailurePolicyBlock keeps kubelet from starting.
	FailurePolicyBlock FailurePolicy = "Block"
	// FailurePolicyTaint lets kubelet start with a NoSchedule taint.
	FailurePolicyTaint FailurePolicy = "Taint"
)

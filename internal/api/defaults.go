package api

import "strings"

// Default paths and values, applied by SetDefaults and nowhere else.
const (
	DefaultClusterNetwork     = "/etc/cni/net.d/10-aws.conflist"
	DefaultReadinessIndicator = "/etc/cni/net.d/10-aws.conflist"
	DefaultMultusKubeconfig   = "/etc/cni/net.d/multus.d/multus.kubeconfig"
	DefaultCNIBinDir          = "/opt/cni/bin"
	DefaultCNIConfDir         = "/etc/cni/net.d"
	// DefaultNetworkConfDir is Multus's own default confDir.
	DefaultNetworkConfDir      = "/etc/cni/multus/net.d"
	DefaultCNIBundleDir        = "/opt/nodeprep/cni"
	DefaultDevicePluginConfig  = "/etc/pcidp/config.json"
	DefaultResourcePrefix      = "amazon.com"
	DefaultBakedConfigPath     = "/etc/nodeprep/config.yaml"
	firstMultusDeviceIndex     = 1
	defaultNetworkCardIndex    = 0
	defaultIGBUIOWriteCombined = true
)

// DefaultPlugins are the reference plugins the Multus guides rely on.
func DefaultPlugins() []string {
	return []string{"host-device", "ipvlan", "macvlan", "static", "host-local"}
}

// SetDefaults fills every unset field. It is the only place defaults live.
func SetDefaults(c *NodePrepConfig) {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = Kind
	}
	s := &c.Spec
	setCPUDefaults(s.CPU)
	setHugepagePlacementDefaults(s.Hugepages)
	taken := map[int32]bool{0: true}
	for _, in := range s.Interfaces {
		if in.DeviceIndex != nil {
			taken[*in.DeviceIndex] = true
		}
	}
	next := int32(firstMultusDeviceIndex)
	for i := range s.Interfaces {
		in := &s.Interfaces[i]
		if in.Driver == "" {
			in.Driver = DriverKernel
		}
		if in.Managed() {
			if in.PrivateIP.Mode == "" {
				in.PrivateIP.Mode = PrivateIPDHCP
			}
			if in.DeviceIndex == nil {
				for taken[next] {
					next++
				}
				idx := next
				taken[idx] = true
				in.DeviceIndex = &idx
			}
			if in.NetworkCardIndex == nil {
				card := int32(defaultNetworkCardIndex)
				in.NetworkCardIndex = &card
			}
		}
		// A DPDK device goes to a pod through the device plugin, whole by
		// nature; the attachment mode is a kernel interface's.
		if in.PodAttachment == "" && !in.DPDK() {
			in.PodAttachment = PodAttachmentIPVLAN
		}
		if in.ResourceName == "" && in.DPDK() {
			in.ResourceName = strings.ReplaceAll(in.Name, "-", "_")
		}
	}
	if s.KernelModules.VFIO.NoIOMMU == "" {
		s.KernelModules.VFIO.NoIOMMU = NoIOMMUAuto
	}
	if s.KernelModules.IGBUIO.WCActivate == nil {
		wc := defaultIGBUIOWriteCombined
		s.KernelModules.IGBUIO.WCActivate = &wc
	}
	m := &s.Multus
	if m.Install == nil {
		install := true
		m.Install = &install
	}
	if m.Plugins == nil {
		m.Plugins = DefaultPlugins()
	}
	setString(&m.ClusterNetwork, DefaultClusterNetwork)
	setString(&m.ReadinessIndicatorFile, DefaultReadinessIndicator)
	setString(&m.Kubeconfig, DefaultMultusKubeconfig)
	setString(&m.BinDir, DefaultCNIBinDir)
	setString(&m.ConfDir, DefaultCNIConfDir)
	setString(&m.NetworkConfDir, DefaultNetworkConfDir)
	setString(&m.BundleDir, DefaultCNIBundleDir)
	setString(&s.DevicePlugin.ConfigPath, DefaultDevicePluginConfig)
	setString(&s.DevicePlugin.ResourcePrefix, DefaultResourcePrefix)
	if s.FailurePolicy == "" {
		s.FailurePolicy = FailurePolicyBlock
	}
}

func setString(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

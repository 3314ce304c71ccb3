package nodeprep

import (
	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/systemd"
)

// Remote locations that are not configurable: they are the contract with the
// agent and its unit. Those the agent names itself are taken from its
// packages, so the image and the agent cannot disagree.
const (
	// The agent installs its CNI plugins from here (multus.bundleDir default),
	// from the version the "current" link names, checked against the manifest.
	cniRoot    = api.DefaultCNIBundleDir
	cniCurrent = cnibundle.CurrentLink
	sumsFile   = cnibundle.ManifestName
	// The agent reads a config baked into the image from here.
	defaultConfigPath = api.DefaultBakedConfigPath

	// The units the agent module ships, and the binary their ExecStart runs.
	defaultBinaryPath  = systemd.BinaryPath
	serviceName        = systemd.AgentService
	servicePath        = systemd.UnitDir + "/" + serviceName
	refreshPathName    = systemd.CNIRefreshPath
	refreshPath        = systemd.UnitDir + "/" + refreshPathName
	refreshServiceName = systemd.CNIRefreshService
	refreshServicePath = systemd.UnitDir + "/" + refreshServiceName
	watchServiceName   = systemd.WatchService
	watchServicePath   = systemd.UnitDir + "/" + watchServiceName
	// Points the refresh and watch services at binary_path when that is not the default.
	refreshDropInName = "nodeprep-binary-path.conf"
	refreshDropIn     = refreshServicePath + ".d/" + refreshDropInName
	watchDropIn       = watchServicePath + ".d/" + refreshDropInName

	// Image-only records: the agent writes its own modules-load.d and
	// modprobe.d files (nodeprep.conf) at boot, so these use other names.
	igbUioRecord = "/opt/nodeprep/igb_uio"
	// Write-combining vfio-pci: per-kernel records, and the modules'
	// directory under /lib/modules/<kernel>/ (updates/ wins over kernel/).
	vfioWCRecord = "/opt/nodeprep/vfio-wc"
	vfioWCDir    = "updates/nodeprep-vfio-wc"
	modulesLoad  = "/etc/modules-load.d/nodeprep-image.conf"
	modprobeConf = "/etc/modprobe.d/nodeprep-image.conf"
	udevRulesDir = "/etc/udev/rules.d"
	// GRUB_CMDLINE_LINUX lives here on both families.
	grubDefault = kernelargs.DefaultGrub
)

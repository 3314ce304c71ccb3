package nodeprep

import (
	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
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

	// systemd/nodeprep.service runs ExecStart=/usr/bin/nodeprep; the agent
	// module has no name for either, so they are spelled here.
	defaultBinaryPath = "/usr/bin/nodeprep"
	serviceName       = "nodeprep.service"
	servicePath       = "/etc/systemd/system/" + serviceName

	// Image-only records: the agent writes its own modules-load.d and
	// modprobe.d files (nodeprep.conf) at boot, so these use other names.
	igbUioRecord = "/opt/nodeprep/igb_uio"
	modulesLoad  = "/etc/modules-load.d/nodeprep-image.conf"
	modprobeConf = "/etc/modprobe.d/nodeprep-image.conf"
	udevRulesDir = "/etc/udev/rules.d"
)

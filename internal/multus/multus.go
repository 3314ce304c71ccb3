// Package multus writes the Multus thin-plugin configuration that makes the
// VPC CNI the default delegate, before kubelet starts:
//
//   - <confDir>/00-multus.conf, which sorts before the VPC CNI's 10-aws.conflist
//     so the container runtime picks Multus from the very first pod;
//   - a Multus kubeconfig that reuses kubelet's own credential (exec plugin or
//     client certificate files), so nothing static is written that expires;
//   - for whereabouts, <confDir>/whereabouts.d/whereabouts.conf and its kubeconfig.
//
// Field names follow Multus v4 (docs/configuration.md, pkg/types/types.go) and
// whereabouts v0.8 (script/install-cni.sh, pkg/types/types.go).
package multus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

const (
	// ConfName sorts before 10-aws.conflist: runtimes use the first config.
	ConfName = "00-multus.conf"
	// NetworkName is the name Multus's own installer gives its network.
	NetworkName = "multus-cni-network"
	// WhereaboutsDir holds whereabouts' flat config, under the CNI conf dir;
	// whereabouts looks for /etc/cni/net.d/whereabouts.d/whereabouts.conf.
	WhereaboutsDir = "whereabouts.d"
	// WhereaboutsConfName is the file whereabouts reads for defaults.
	WhereaboutsConfName = "whereabouts.conf"
	// WhereaboutsKubeconfigName is whereabouts' own kubeconfig.
	WhereaboutsKubeconfigName = "whereabouts.kubeconfig"
	// WhereaboutsNamespace is where whereabouts keeps IP pools and its lease;
	// whereabouts takes it from the kubeconfig's context namespace.
	WhereaboutsNamespace = "kube-system"
	// DefaultCNIVersion is used when the cluster network has no readable
	// cniVersion yet; the VPC CNI writes 0.4.0.
	DefaultCNIVersion = "0.4.0"
)

// ErrClusterNetwork is returned when the cluster network config cannot be read.
var ErrClusterNetwork = errors.New("cluster network config")

// NetConf is the part of Multus's NetConf nodeprep writes. Every name matches
// multus-cni v4 pkg/types NetConf and the CNI spec.
type NetConf struct {
	CNIVersion   string          `json:"cniVersion"`
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	// BinDir is where Multus looks for the delegate plugins.
	BinDir string `json:"binDir,omitempty"`
	// ConfDir is where Multus reads the network of a NAD without
	// spec.config: nodeprep's per-interface conflists. Set explicitly so the
	// path never depends on Multus's built-in default.
	ConfDir        string `json:"confDir,omitempty"`
	Kubeconfig     string `json:"kubeconfig"`
	ClusterNetwork string `json:"clusterNetwork"`
	// ReadinessIndicatorFile: Multus refuses pod ADDs until it exists, so a pod
	// never gets its networks before aws-node has written its config.
	ReadinessIndicatorFile string `json:"readinessindicatorfile,omitempty"`
	LogToStderr            bool   `json:"logToStderr"`
	LogLevel               string `json:"logLevel,omitempty"`
}

// ClusterNetwork is what nodeprep learns from the default network's config.
type ClusterNetwork struct {
	// CNIVersion is the conflist's cniVersion, "" if it does not exist yet.
	CNIVersion string
	// Capabilities is the union of its plugins' capabilities (portMappings
	// for the VPC CNI's portmap), which Multus must advertise for the runtime
	// to pass them on.
	Capabilities map[string]bool
}

// ReadClusterNetwork parses the default network's config with libcni. A
// missing file is not an error: on first boot aws-node has not written it
// yet, and nodeprep assumes what the VPC CNI will write (FirstBootCapabilities).
func ReadClusterNetwork(root hostfs.Root, confPath string) (ClusterNetwork, error) {
	data, err := root.ReadFile(confPath)
	if errors.Is(err, fs.ErrNotExist) {
		return ClusterNetwork{Capabilities: FirstBootCapabilities()}, nil
	}
	if err != nil {
		return ClusterNetwork{}, fmt.Errorf("%w %s: %w", ErrClusterNetwork, confPath, err)
	}
	var cn ClusterNetwork
	if path.Ext(confPath) == ".conflist" {
		list, err := libcni.ConfListFromBytes(data)
		if err != nil {
			return ClusterNetwork{}, fmt.Errorf("%w %s: %w", ErrClusterNetwork, confPath, err)
		}
		cn.CNIVersion = list.CNIVersion
		for _, p := range list.Plugins {
			for k, v := range p.Network.Capabilities {
				if v {
					if cn.Capabilities == nil {
						cn.Capabilities = map[string]bool{}
					}
					cn.Capabilities[k] = true
				}
			}
		}
		return cn, nil
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return ClusterNetwork{}, fmt.Errorf("%w %s: %w", ErrClusterNetwork, confPath, err)
	}
	cn.CNIVersion = conf.Network.CNIVersion
	for k, v := range conf.Network.Capabilities {
		if v {
			if cn.Capabilities == nil {
				cn.Capabilities = map[string]bool{}
			}
			cn.Capabilities[k] = true
		}
	}
	return cn, nil
}

// FirstBootCapabilities are the capabilities of the VPC CNI's 10-aws.conflist
// (amazon-vpc-cni-k8s misc/10-aws.conflist since v1.20.0: aws-cni with
// io.kubernetes.cri.pod-annotations, portmap with portMappings, at
// cniVersion 0.4.0, DefaultCNIVersion). nodeprep runs before aws-node has
// written that file on a node's first boot; without them Multus would
// advertise no capabilities, the runtime would pass no port mappings and
// hostPort would stay broken until the next boot. When the real file appears
// and differs, nodeprep-cni-refresh.path renders 00-multus.conf again.
func FirstBootCapabilities() map[string]bool {
	return map[string]bool{"io.kubernetes.cri.pod-annotations": true, "portMappings": true}
}

// NewNetConf builds 00-multus.conf's content. The cniVersion follows the
// cluster network's, then the configured one, then DefaultCNIVersion.
func NewNetConf(m api.Multus, cn ClusterNetwork) NetConf {
	version := cn.CNIVersion
	if version == "" {
		version = m.CNIVersion
	}
	if version == "" {
		version = DefaultCNIVersion
	}
	return NetConf{
		CNIVersion:             version,
		Name:                   NetworkName,
		Type:                   "multus",
		Capabilities:           cn.Capabilities,
		BinDir:                 m.BinDir,
		ConfDir:                m.NetworkConfDir,
		Kubeconfig:             m.Kubeconfig,
		ClusterNetwork:         m.ClusterNetwork,
		ReadinessIndicatorFile: m.ReadinessIndicatorFile,
		LogToStderr:            true,
	}
}

// Marshal renders a config file as indented JSON with a final newline.
func Marshal(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// WhereaboutsConf is whereabouts' flat file; the names are those its
// installer writes and its IPAMConfig reads.
type WhereaboutsConf struct {
	Datastore  string                `json:"datastore"`
	Kubernetes WhereaboutsKubernetes `json:"kubernetes"`
	// LogLevel: whereabouts logs at debug to stderr by default, which the
	// runtime passes to its journal on every pod; a NAD can still raise it.
	LogLevel string `json:"log_level,omitempty"`
}

// WhereaboutsLogLevel is the default whereabouts.conf sets.
const WhereaboutsLogLevel = "error"

// WhereaboutsKubernetes is whereabouts' "kubernetes" block.
type WhereaboutsKubernetes struct {
	Kubeconfig string `json:"kubeconfig"`
}

// File is one file to write on the host.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// Options are the inputs Files needs besides the config.
type Options struct {
	// KubeletKubeconfig is the host path of kubelet's kubeconfig, whose
	// credential Multus and whereabouts reuse.
	KubeletKubeconfig string
}

// Files computes every file for the config, reading the cluster network and
// kubelet's kubeconfig through root. It writes nothing.
func Files(root hostfs.Root, m api.Multus, opts Options) ([]File, error) {
	cn, err := ReadClusterNetwork(root, m.ClusterNetwork)
	if err != nil {
		return nil, err
	}
	kubelet, err := root.ReadFile(opts.KubeletKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKubeletKubeconfig, opts.KubeletKubeconfig, err)
	}
	multusKC, err := DeriveKubeconfig(kubelet, opts.KubeletKubeconfig, "")
	if err != nil {
		return nil, err
	}
	conf, err := Marshal(NewNetConf(m, cn))
	if err != nil {
		return nil, err
	}
	files := []File{
		// Credentials first: the conf makes the runtime start using them.
		{Path: m.Kubeconfig, Data: multusKC, Mode: 0o600},
	}
	if m.Whereabouts.Enabled {
		dir := path.Join(m.ConfDir, WhereaboutsDir)
		kcPath := path.Join(dir, WhereaboutsKubeconfigName)
		wkc, err := DeriveKubeconfig(kubelet, opts.KubeletKubeconfig, WhereaboutsNamespace)
		if err != nil {
			return nil, err
		}
		wconf, err := Marshal(WhereaboutsConf{Datastore: "kubernetes", Kubernetes: WhereaboutsKubernetes{Kubeconfig: kcPath}, LogLevel: WhereaboutsLogLevel})
		if err != nil {
			return nil, err
		}
		files = append(files,
			File{Path: kcPath, Data: wkc, Mode: 0o600},
			File{Path: path.Join(dir, WhereaboutsConfName), Data: wconf, Mode: 0o600},
		)
	}
	files = append(files, File{Path: path.Join(m.ConfDir, ConfName), Data: conf, Mode: 0o644})
	return files, nil
}

// Plan returns the writes of the files whose content or mode differ from
// the host's, in the order given. It only reads.
func Plan(root hostfs.Root, files []File) ([]change.Change, error) {
	var out []change.Change
	for _, f := range files {
		differs, err := root.Differs(f.Path, f.Data, f.Mode)
		if err != nil {
			return nil, err
		}
		if differs {
			out = append(out, change.Change{What: "write " + f.Path, Apply: func(context.Context) error {
				_, err := root.WriteFile(f.Path, f.Data, f.Mode)
				return err
			}})
		}
	}
	return out, nil
}

// Package nad renders the NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1)
// of a config's interfaces. A NAD is a cluster object, applied once per
// cluster, so it carries nothing that differs between nodes: it has no
// spec.config, and Multus reads the network from the node-local conflist of
// the same name in its confDir (see internal/netconf), which nodeprep
// writes on each node from what EC2 assigned to that node's ENI.
//
// A DPDK interface's NAD, and the one NAD of a whole-ENI pool (hostDevice
// interfaces sharing a resourceName), name the device plugin resource in
// the k8s.v1.cni.cncf.io/resourceName annotation, so Multus hands the
// host-device plugin the device the pod was allocated.
//
// Rendering needs the config only: no node, no state, no network.
package nad

import (
	"bytes"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
)

const (
	// APIVersion and Kind of a NetworkAttachmentDefinition.
	APIVersion = "k8s.cni.cncf.io/v1"
	Kind       = "NetworkAttachmentDefinition"
	// ResourceNameAnnotation ties a NAD to a device plugin resource.
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
)

// Options tune a render.
type Options struct {
	// Namespace for metadata.namespace; empty leaves it to kubectl.
	Namespace string
}

// NetworkAttachmentDefinition is the object as Multus reads it.
type NetworkAttachmentDefinition struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	// Spec is empty: Multus then loads the conflist named like the NAD.
	Spec Spec `yaml:"spec"`
}

// Metadata is the object metadata a NAD needs.
type Metadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Spec is a NAD's spec; nodeprep leaves config empty on purpose.
type Spec struct {
	Config string `yaml:"config,omitempty"`
}

// Render returns one YAML document per interface that pods can attach to,
// in config order.
func Render(cfg *api.NodePrepConfig, opts Options) ([]byte, error) {
	var buf bytes.Buffer
	for i, n := range Build(cfg, opts) {
		if i > 0 {
			buf.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&n); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// Build returns the NADs of every interface pods can attach to: DPDK
// interfaces, whole-ENI (hostDevice) interfaces, and kernel interfaces
// that ask EC2 for pod addresses.
func Build(cfg *api.NodePrepConfig, opts Options) []NetworkAttachmentDefinition {
	var out []NetworkAttachmentDefinition
	seen := map[string]bool{}
	for _, in := range cfg.Spec.Interfaces {
		// A whole-ENI pool's members share one network, rendered once
		// where its first member is.
		if !Attachable(in) || seen[in.NetworkName()] {
			continue
		}
		seen[in.NetworkName()] = true
		meta := Metadata{Name: in.NetworkName(), Namespace: opts.Namespace}
		if r := ResourceName(cfg, in); r != "" {
			meta.Annotations = map[string]string{ResourceNameAnnotation: r}
		}
		out = append(out, NetworkAttachmentDefinition{APIVersion: APIVersion, Kind: Kind, Metadata: meta})
	}
	return out
}

// ResourceName is the device plugin resource (prefix/name) the pods of a
// DPDK interface or of a whole-ENI pool request, "" for an interface
// without a device pool.
func ResourceName(cfg *api.NodePrepConfig, in api.Interface) string {
	if !(in.DPDK() || in.Pooled()) || in.ResourceName == "" {
		return ""
	}
	return cfg.Spec.DevicePlugin.ResourcePrefix + "/" + in.ResourceName
}

// Attachable reports whether pods can attach to the interface: a DPDK
// interface is handed whole to a pod, and so is a hostDevice one, with its
// ENI's primary address; an ipvlan interface needs addresses EC2 assigned
// for pods, since the VPC delivers no others.
func Attachable(in api.Interface) bool { return in.DPDK() || in.HostDevice() || in.PodAddresses() }

// Unattachable lists the ipvlan interfaces that get no NAD because they ask
// for no pod addresses.
func Unattachable(cfg *api.NodePrepConfig) []string {
	var out []string
	for _, in := range cfg.Spec.Interfaces {
		if !Attachable(in) {
			out = append(out, in.Name)
		}
	}
	return out
}

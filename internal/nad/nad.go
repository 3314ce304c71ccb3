// Package nad renders NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1) for
// a node's configured interfaces, so the pods that use them need nothing but
// the network annotation.
//
//   - A DPDK interface (vfio-pci, igb_uio) is a host-device by pciBusID: the
//     plugin sees the userspace driver and leaves the netns alone, and the
//     resourceName annotation lets Multus hand it the device plugin's pick.
//     Its IPAM is the ENI's own address: EC2 delivers only that.
//   - A kernel interface is an ipvlan (L2) whose master is the interface's
//     logical name, the altname the links step sets, which stays stable
//     whatever the kernel called the device.
//
// Shared interfaces take pod addresses from the top half of the subnet, since
// nodes take theirs from the bottom (privateIP.mode fromStartOfSubnet); the
// gateway is the VPC router, the subnet's first host address.
package nad

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
)

const (
	// APIVersion and Kind of a NetworkAttachmentDefinition.
	APIVersion = "k8s.cni.cncf.io/v1"
	Kind       = "NetworkAttachmentDefinition"
	// ResourceNameAnnotation ties a NAD to a device plugin resource.
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
	// DefaultCNIVersion of the rendered configs; Multus converts results to
	// its own version.
	DefaultCNIVersion = "1.0.0"
)

// ErrMissingState is returned when a value only a run can know (a PCI
// address, a subnet) is not in the state and placeholders were not asked for.
var ErrMissingState = errors.New("not known until nodeprep has run on the node")

// Options tune a render.
type Options struct {
	// Namespace for metadata.namespace; empty leaves it to kubectl.
	Namespace string
	// Placeholders writes a marked placeholder for values not in the state
	// instead of failing, for documentation before a node exists.
	Placeholders bool
}

// NetworkAttachmentDefinition is the object as Multus reads it.
type NetworkAttachmentDefinition struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata is the object metadata a NAD needs.
type Metadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Spec holds the CNI config as a JSON string.
type Spec struct {
	Config string `yaml:"config"`
}

// Interface is what a run found out about one configured interface that
// its NAD needs.
type Interface struct {
	Name       string
	PCIAddress string
	PrivateIP  string
	SubnetCIDR string
}

// Render returns one YAML document per configured interface, in config order.
func Render(cfg *api.NodePrepConfig, ifaces []Interface, opts Options) ([]byte, error) {
	nads, err := Build(cfg, ifaces, opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, n := range nads {
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

// Build returns the NADs for every configured interface.
func Build(cfg *api.NodePrepConfig, ifaces []Interface, opts Options) ([]NetworkAttachmentDefinition, error) {
	known := make(map[string]Interface, len(ifaces))
	for _, in := range ifaces {
		known[in.Name] = in
	}
	version := cfg.Spec.Multus.CNIVersion
	if version == "" {
		version = DefaultCNIVersion
	}
	r := renderer{opts: opts, whereabouts: cfg.Spec.Multus.Whereabouts.Enabled}
	var out []NetworkAttachmentDefinition
	for i, in := range cfg.Spec.Interfaces {
		st := known[in.Name]
		field := fmt.Sprintf("spec.interfaces[%d] (%s)", i, in.Name)
		var plugin map[string]any
		meta := Metadata{Name: in.Name, Namespace: opts.Namespace}
		if in.DPDK() {
			plugin = r.hostDevice(field, in, st)
			if in.ResourceName != "" {
				meta.Annotations = map[string]string{ResourceNameAnnotation: cfg.Spec.DevicePlugin.ResourcePrefix + "/" + in.ResourceName}
			}
		} else {
			plugin = r.ipvlan(field, in, st)
		}
		plugin["cniVersion"] = version
		plugin["name"] = in.Name
		conf, err := marshalConfig(plugin)
		if err != nil {
			return nil, err
		}
		out = append(out, NetworkAttachmentDefinition{APIVersion: APIVersion, Kind: Kind, Metadata: meta, Spec: Spec{Config: conf}})
	}
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	return out, nil
}

type renderer struct {
	opts        Options
	whereabouts bool
	errs        []error
}

func (r *renderer) missing(field, what string) string {
	if r.opts.Placeholders {
		return fmt.Sprintf("<%s: run nodeprep on the node>", what)
	}
	r.errs = append(r.errs, fmt.Errorf("%s: %s %w", field, what, ErrMissingState))
	return ""
}

func (r *renderer) hostDevice(field string, in api.Interface, st Interface) map[string]any {
	pci := st.PCIAddress
	if pci == "" {
		pci = in.PCIAddress
	}
	if pci == "" {
		pci = r.missing(field, "PCI address")
	}
	plugin := map[string]any{"type": "host-device", "pciBusID": pci}
	// The pod owns the whole ENI: its address is the ENI's primary one.
	prefix, gw, ok := r.subnet(field, st)
	addr := st.PrivateIP
	if addr == "" && in.PrivateIP.Mode == api.PrivateIPStatic {
		addr = in.PrivateIP.Address
	}
	if addr == "" {
		addr = r.missing(field, "private IP")
	}
	if ok && addr != "" && !strings.HasPrefix(addr, "<") {
		a, err := netip.ParseAddr(addr)
		if err != nil || !prefix.Contains(a) {
			r.errs = append(r.errs, fmt.Errorf("%s: private IP %q is not in subnet %s", field, addr, prefix))
		}
		addr = netip.PrefixFrom(a, prefix.Bits()).String()
	}
	static := map[string]any{"address": addr}
	if ok {
		static["gateway"] = gw
	}
	plugin["ipam"] = map[string]any{"type": "static", "addresses": []any{static}}
	return plugin
}

func (r *renderer) ipvlan(field string, in api.Interface, st Interface) map[string]any {
	plugin := map[string]any{"type": "ipvlan", "master": in.Name, "mode": "l2"}
	if in.MTU != 0 {
		plugin["mtu"] = in.MTU
	}
	prefix, gw, ok := r.subnet(field, st)
	if !ok {
		// gw holds the placeholder, or "" after an error was recorded.
		if r.whereabouts {
			plugin["ipam"] = map[string]any{"type": "whereabouts", "range": gw}
		} else {
			plugin["ipam"] = map[string]any{"type": "host-local", "ranges": []any{[]any{map[string]any{"subnet": gw}}}}
		}
		return plugin
	}
	start, end, err := TopHalf(prefix)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %w", field, err))
		return plugin
	}
	if r.whereabouts {
		// whereabouts v0.8 IPAMConfig: range, range_start, range_end, gateway.
		plugin["ipam"] = map[string]any{
			"type": "whereabouts", "range": prefix.String(),
			"range_start": start.String(), "range_end": end.String(), "gateway": gw,
		}
		return plugin
	}
	// host-local keeps its allocations on this node only; the same NAD on
	// two nodes of one subnet hands out the same addresses.
	plugin["ipam"] = map[string]any{
		"type": "host-local",
		"ranges": []any{[]any{map[string]any{
			"subnet": prefix.String(), "rangeStart": start.String(), "rangeEnd": end.String(), "gateway": gw,
		}}},
	}
	return plugin
}

// subnet returns the interface's subnet and its gateway; without state it
// returns a placeholder (or records an error) in gw and ok false.
func (r *renderer) subnet(field string, st Interface) (netip.Prefix, string, bool) {
	if st.SubnetCIDR == "" {
		return netip.Prefix{}, r.missing(field, "subnet CIDR"), false
	}
	p, err := netip.ParsePrefix(st.SubnetCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		r.errs = append(r.errs, fmt.Errorf("%s: subnet %q from the state is not an IPv4 VPC subnet (/16 to /28)", field, st.SubnetCIDR))
		return netip.Prefix{}, "", false
	}
	p = p.Masked()
	return p, p.Addr().Next().String(), true
}

// TopHalf is the pod range of a VPC subnet: its upper half, less the
// broadcast address AWS reserves.
func TopHalf(p netip.Prefix) (start, end netip.Addr, err error) {
	if !p.Addr().Is4() || p.Bits() > 28 || p.Bits() < 1 {
		return start, end, fmt.Errorf("subnet %s: need an IPv4 /1 to /28", p)
	}
	base := p.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint32(1) << (32 - p.Bits())
	return addr4(n + size/2), addr4(n + size - 2), nil
}

func addr4(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// marshalConfig renders the CNI config with fixed key order, indented, so
// the rendered YAML is stable and readable.
func marshalConfig(plugin map[string]any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(plugin); err != nil {
		return "", err
	}
	return buf.String(), nil
}

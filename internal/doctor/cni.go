package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
)

func stateFile() string { return state.Path }

// known is a copy of the state's interfaces, which a check may change.
func (n *Node) known() map[string]state.Interface {
	out := map[string]state.Interface{}
	if n.State == nil {
		return out
	}
	for name, in := range n.State.Interfaces {
		in.Name = name
		out[name] = in
	}
	return out
}

// conflistDrift compares each interface's conflist on disk with the one
// nodeprep renders from known; it returns a finding per interface.
func (n *Node) conflistDrift(known map[string]state.Interface, source string) []Finding {
	enis, err := bootstrap.PodNetworks(n.Config, known)
	if err != nil {
		return []Finding{fail("", err.Error(), "nodeprep run")}
	}
	var out []Finding
	m := n.Config.Spec.Multus
	for _, e := range enis {
		want, err := netconf.Build(e, netconf.Options{CNIVersion: m.CNIVersion})
		if err != nil {
			out = append(out, fail(e.Name(), err.Error(), "nodeprep run"))
			continue
		}
		p := netconf.Path(m.NetworkConfDir, e.NetworkName())
		have, err := n.Root.ReadFile(p)
		switch {
		case err != nil:
			out = append(out, fail(e.Name(), p+": "+err.Error(), "nodeprep run rewrites it (nodeprep watch does too)"))
		case string(have) != string(want):
			out = append(out, fail(e.Name(), p+" differs from the conflist for "+source+": "+rangeDiff(have, want), "nodeprep run rewrites it (nodeprep watch does too)"))
		default:
			out = append(out, ok(e.Name(), p+" matches "+source))
		}
	}
	return out
}

// rangeDiff names the IPAM ranges that differ between two conflists.
func rangeDiff(have, want []byte) string {
	h, w := ranges(have), ranges(want)
	var missing, extra []string
	for r := range w {
		if !h[r] {
			missing = append(missing, r)
		}
	}
	for r := range h {
		if !w[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) == 0 && len(extra) == 0 {
		return "same ranges, other fields differ"
	}
	return "ranges missing: " + join(missing) + "; ranges not assigned: " + join(extra)
}

// ranges collects every "subnet"/"rangeStart"-"rangeEnd" value and every
// string in an "addresses" list, wherever the plugin chain puts them.
func ranges(conflist []byte) map[string]bool {
	var doc any
	out := map[string]bool{}
	if json.Unmarshal(conflist, &doc) != nil {
		return out
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if s, ok := t["rangeStart"].(string); ok {
				e, _ := t["rangeEnd"].(string)
				out[s+"-"+e] = true
			} else if s, ok := t["subnet"].(string); ok {
				out[s] = true
			}
			if a, ok := t["address"].(string); ok {
				out[a] = true
			}
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

// checkConflists: each pod-network conflist on disk is the one nodeprep
// renders from the last run's record.
func checkConflists(_ context.Context, n *Node) []Finding {
	if n.Config == nil || n.State == nil {
		return nil
	}
	return n.conflistDrift(n.known(), "the last run's record")
}

// checkDevicePlugin: the SR-IOV device plugin config lists exactly the
// bound DPDK devices and the whole-ENI pools' NICs, as the run renders it.
func checkDevicePlugin(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	list, err := bootstrap.DevicePluginResources(n.Config, n.known())
	if err != nil {
		return []Finding{fail("", err.Error(), "nodeprep run")}
	}
	if len(list) == 0 {
		return nil
	}
	var bound []string
	for _, r := range list {
		for _, d := range r.Devices {
			bound = append(bound, d.Address)
		}
	}
	dp := n.Config.Spec.DevicePlugin
	want, err := deviceplugin.Render(dp.ResourcePrefix, list)
	if err != nil {
		return []Finding{fail("", err.Error(), "")}
	}
	have, err := n.Root.ReadFile(dp.ConfigPath)
	if err != nil {
		return []Finding{fail(dp.ConfigPath, err.Error(), "nodeprep run writes it; the device plugin advertises nothing without it")}
	}
	if string(have) == string(want) {
		return []Finding{ok(dp.ConfigPath, "lists exactly the bound devices "+join(bound))}
	}
	var doc deviceplugin.ResourceConfList
	var listed []string
	if err := json.Unmarshal(have, &doc); err == nil {
		for _, r := range doc.ResourceList {
			if r.Selectors != nil {
				for _, a := range r.Selectors.PciAddresses {
					listed = append(listed, r.ResourceName+"="+a)
				}
			}
		}
	}
	sort.Strings(bound)
	return []Finding{fail(dp.ConfigPath, fmt.Sprintf("lists %s; bound: %s", join(listed), join(bound)),
		"nodeprep run rewrites it; then restart the device plugin pod so it re-reads it")}
}

// checkCNIBinaries: each installed CNI binary has the bundle's checksum.
func checkCNIBinaries(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	m := n.Config.Spec.Multus
	if m.Install != nil && !*m.Install {
		return nil
	}
	bundle, err := cnibundle.Open(n.Root, m.BundleDir)
	if err != nil {
		return []Finding{fail(m.BundleDir, err.Error(), "the AMI lacks nodeprep's CNI bundle: rebuild it with the Packer plugin")}
	}
	bundle.Hashes = n.CNIHashes
	res, _, err := bundle.Plan(n.Root, m.BinDir, cnibundle.Wanted(m))
	if err != nil {
		return []Finding{fail(m.BundleDir, err.Error(), "the AMI's CNI bundle is damaged: rebuild the AMI")}
	}
	var out []Finding
	for _, name := range res.Installed {
		out = append(out, fail(name, path.Join(m.BinDir, name)+" is missing or differs from bundle "+bundle.Version+"'s checksum (or is not mode 0755)", "nodeprep run reinstalls it from the bundle"))
	}
	if len(res.Unchanged) > 0 {
		out = append(out, ok(m.BinDir, join(res.Unchanged)+" match bundle "+bundle.Version))
	}
	return out
}

// checkMultusConf: 00-multus.conf is what nodeprep renders from the VPC
// CNI's current conflist (its delegate, its cniVersion).
func checkMultusConf(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	m := n.Config.Spec.Multus
	if m.Install != nil && !*m.Install {
		return nil
	}
	files, err := multus.Files(n.Root, m, multus.Options{KubeletKubeconfig: multus.DefaultKubeletKubeconfig})
	if err != nil {
		return []Finding{fail(multus.ConfName, err.Error(), "check the VPC CNI's conflist and kubelet's kubeconfig")}
	}
	var out []Finding
	for _, f := range files {
		if path.Base(f.Path) != multus.ConfName {
			continue
		}
		differs, err := n.Root.Differs(f.Path, f.Data, f.Mode)
		switch {
		case err != nil:
			out = append(out, fail(f.Path, err.Error(), ""))
		case differs:
			out = append(out, fail(f.Path, "differs from what the VPC CNI's conflist "+m.ClusterNetwork+" gives now", "nodeprep run (the CNI refresh path unit does it when the VPC CNI rewrites its conflist)"))
		default:
			out = append(out, ok(f.Path, "matches the VPC CNI's conflist "+m.ClusterNetwork))
		}
	}
	return out
}

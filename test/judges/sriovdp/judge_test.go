// Package sriovdp judges the SR-IOV network device plugin config nodeprep
// writes with the plugin's own code (k8snetworkplumbingwg/
// sriov-network-device-plugin v3.9.0, committed in upstream/: the module proxy does not serve it).
// It lives in a module of its own so that the plugin's dependencies never
// reach the agent's build.
//
// The file is read the way the plugin's resourceManager.readConfig does
// (cmd/sriovdp/manager.go, package main, so its steps are repeated here:
// json.Unmarshal into types.ResourceConfList, the deviceType check against
// types.SupportedDevices, the factory's GetDeviceFilter), and each pool's
// selectors are run by the netDevice provider's GetFilteredDevices over
// the PCI functions of a node: the primary ENI, two DPDK ENIs on vfio-pci,
// two ENIs of a whole-ENI pool on ena, and a single whole ENI on ena
// outside any pool. Each resource must select exactly its devices.
package sriovdp

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"

	"github.com/k8snetworkplumbingwg/sriov-network-device-plugin/pkg/factory"
	"github.com/k8snetworkplumbingwg/sriov-network-device-plugin/pkg/netdevice"
	"github.com/k8snetworkplumbingwg/sriov-network-device-plugin/pkg/types"
	"github.com/k8snetworkplumbingwg/sriov-network-device-plugin/pkg/types/mocks"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/state"
)

// nodeDevice is one PCI function of the node as the plugin sees it.
type nodeDevice struct {
	addr, vendor, device, driver string
}

var node = []nodeDevice{
	{"0000:00:05.0", "1d0f", "ec20", "ena"},      // the primary ENI, ens5
	{"0000:00:06.0", "1d0f", "ec20", "vfio-pci"}, // dpdk0
	{"0000:00:07.0", "1d0f", "ec21", "vfio-pci"}, // dpdk1
	{"0000:00:08.0", "1d0f", "ec20", "ena"},      // upf0, pool upf_pool
	{"0000:00:09.0", "1d0f", "ec20", "ena"},      // upf1, pool upf_pool
	{"0000:00:0a.0", "1d0f", "ec20", "ena"},      // oam, a single whole ENI
}

// config is a node with DPDK interfaces and a whole-ENI pool, and the
// state its run recorded.
func config(t *testing.T) (*api.NodePrepConfig, map[string]state.Interface) {
	t.Helper()
	cfg, err := api.Load(api.Source{Name: "judge", Data: []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
  - {name: dpdk0, subnetID: subnet-0123456789abcdef0, driver: vfio-pci, resourceName: dpdk}
  - {name: dpdk1, subnetID: subnet-0123456789abcdef0, driver: vfio-pci, resourceName: dpdk}
  - {name: upf0, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: upf_pool}
  - {name: upf1, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: upf_pool}
  - {name: oam, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice}
`)})
	if err != nil {
		t.Fatal(err)
	}
	bound := func(d nodeDevice) state.Interface {
		return state.Interface{Device: pci.Binding{Device: pci.Device{Address: d.addr, Vendor: d.vendor, Device: d.device, Driver: d.driver}}}
	}
	onLink := func(d nodeDevice) state.Interface {
		return state.Interface{Link: link.Info{IfName: "ens", PCIAddress: d.addr}}
	}
	return cfg, map[string]state.Interface{
		"dpdk0": bound(node[1]), "dpdk1": bound(node[2]),
		"upf0": onLink(node[3]), "upf1": onLink(node[4]), "oam": onLink(node[5]),
	}
}

func TestPluginSelectsExactlyEachPoolsDevices(t *testing.T) {
	cfg, known := config(t)
	resources, err := bootstrap.DevicePluginResources(cfg, known)
	if err != nil {
		t.Fatal(err)
	}
	file, err := deviceplugin.Render(cfg.Spec.DevicePlugin.ResourcePrefix, resources)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("config:\n%s", file)

	// resourceManager.readConfig, step by step.
	var list types.ResourceConfList
	if err := json.Unmarshal(file, &list); err != nil {
		t.Fatalf("the plugin cannot read the file: %v", err)
	}
	rf := factory.NewResourceFactory("amazon.com", "sock", false, false)
	selected := map[string][]string{}
	for i := range list.ResourceList {
		rc := &list.ResourceList[i]
		if _, ok := types.SupportedDevices[rc.DeviceType]; !ok {
			t.Fatalf("%s: unsupported deviceType %q", rc.ResourceName, rc.DeviceType)
		}
		if rc.SelectorObjs, err = rf.GetDeviceFilter(rc); err != nil {
			t.Fatalf("%s: the plugin would drop this resource: %v", rc.ResourceName, err)
		}
		if rc.ResourcePrefix != "amazon.com" {
			t.Errorf("%s: prefix %q", rc.ResourceName, rc.ResourcePrefix)
		}
		provider := netdevice.NewNetDeviceProvider(rf)
		for s := range rc.SelectorObjs {
			devs, err := provider.GetFilteredDevices(hostDevices(), rc, s)
			if err != nil {
				t.Fatalf("%s: %v", rc.ResourceName, err)
			}
			for _, d := range devs {
				selected[rc.ResourceName] = append(selected[rc.ResourceName], d.(types.PciDevice).GetPciAddr())
			}
		}
	}
	want := map[string][]string{
		"dpdk":     {"0000:00:06.0", "0000:00:07.0"},
		"upf_pool": {"0000:00:08.0", "0000:00:09.0"},
	}
	if len(selected) != len(want) {
		t.Errorf("resources %v, want %v", selected, want)
	}
	for name, addrs := range want {
		got := selected[name]
		sort.Strings(got)
		if !slices.Equal(got, addrs) {
			t.Errorf("%s selects %v, want exactly %v", name, got, addrs)
		}
	}
}

// hostDevices are the node's PCI functions as the plugin's own mock of a
// PCI network device, answering what its selectors ask.
func hostDevices() []types.HostDevice {
	out := make([]types.HostDevice, len(node))
	for i, d := range node {
		m := &mocks.PciNetDevice{}
		m.On("GetVendor").Return(d.vendor).
			On("GetDeviceCode").Return(d.device).
			On("GetDriver").Return(d.driver).
			On("GetPciAddr").Return(d.addr).
			On("GetPfNetName").Return("").
			On("GetPfPciAddr").Return(d.addr).
			On("GetLinkType").Return("ether").
			On("GetDDPProfiles").Return("").
			On("GetFuncID").Return(-1).
			On("IsRdma").Return(false).
			On("GetVdpaDevice").Return(nil)
		out[i] = m
	}
	return out
}

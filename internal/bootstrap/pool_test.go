package bootstrap

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
)

// TestWholeENIPoolStepsWriteTheDevicePluginPoolAndDeviceInfo: for a
// whole-ENI pool whose ENIs the enis and links steps recorded (each NIC's
// PCI address found under its netdev), the device plugin step writes one
// resource selecting the members' PCI addresses on ena, and the pod-network
// step one conflist for the pool and a device-info file per member's PCI
// address with that member's ENI, which nodeprep-ipam reads at pod start.
func TestWholeENIPoolStepsWriteTheDevicePluginPoolAndDeviceInfo(t *testing.T) {
	f := newDPDKFixture(t, []api.Interface{
		{Name: "upf0", SubnetID: "subnet-0123456789abcdef0", PodAttachment: api.PodAttachmentHostDevice, ResourceName: "upf_pool"},
		{Name: "upf1", SubnetID: "subnet-0123456789abcdef0", PodAttachment: api.PodAttachmentHostDevice, ResourceName: "upf_pool"},
	}, 8)
	store, err := state.Open(f.h.Root, "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	subnet := netip.MustParsePrefix("10.0.16.0/20")
	for i, m := range []struct{ name, bdf, mac, ip string }{
		{"upf0", "0000:00:06.0", "0a:00:00:00:00:06", "10.0.17.6"},
		{"upf1", "0000:00:07.0", "0a:00:00:00:00:07", "10.0.17.7"},
	} {
		if err := store.UpdateInterface(m.name, func(s *state.Interface) {
			s.ENI = eni.Attachment{Interface: m.name, ENIID: "eni-" + m.name, MAC: m.mac, Subnet: subnet, PrimaryIP: netip.MustParseAddr(m.ip), DeviceIndex: int32(i + 1)}
			s.Link = link.Info{IfName: "ens" + m.bdf[9:10], MAC: m.mac, PCIAddress: m.bdf}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runGraph(t, f.h, f.cfg, false, StepDevicePlugin, StepPodNetworks); err != nil {
		t.Fatal(err)
	}

	raw, err := f.h.Root.ReadFile(f.cfg.Spec.DevicePlugin.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var dp deviceplugin.ResourceConfList
	if err := json.Unmarshal(raw, &dp); err != nil || len(dp.ResourceList) != 1 {
		t.Fatalf("device plugin config %s (%v), want one resource", raw, err)
	}
	r := dp.ResourceList[0]
	if r.ResourceName != "upf_pool" || strings.Join(r.Selectors.Drivers, ",") != "ena" || strings.Join(r.Selectors.PciAddresses, ",") != "0000:00:06.0,0000:00:07.0" {
		t.Errorf("resource %s selects drivers %v at %v, want upf_pool on ena at both members' PCI addresses", r.ResourceName, r.Selectors.Drivers, r.Selectors.PciAddresses)
	}
	for bdf, want := range map[string]string{"0000:00:06.0": "10.0.17.6", "0000:00:07.0": "10.0.17.7"} {
		raw, err := f.h.Root.ReadFile(devinfo.Dir + "/" + devinfo.FileName(bdf))
		if err != nil {
			t.Fatalf("device-info of %s: %v", bdf, err)
		}
		var doc devinfo.Document
		if err := json.Unmarshal(raw, &doc); err != nil || doc.PCI.Address != bdf || doc.ENI.PrimaryIP.String() != want || doc.ENI.Gateway.String() != "10.0.16.1" {
			t.Errorf("device-info of %s: %s (%v), want its ENI's %s via 10.0.16.1", bdf, raw, err, want)
		}
	}
	dir := f.cfg.Spec.Multus.NetworkConfDir
	names, err := f.h.Root.ReadDirNames(dir)
	if err != nil || strings.Join(names, ",") != netconf.FileName("upf-pool") {
		t.Errorf("conflists in %s: %v (%v), want the pool's one, %s", dir, names, err, netconf.FileName("upf-pool"))
	}
}

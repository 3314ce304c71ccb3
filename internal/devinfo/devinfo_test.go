package devinfo

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

func n3() Device {
	return Device{PCIAddress: "0000:00:07.0", Network: netconf.Network{Config: api.Interface{Name: "n3", Driver: api.DriverVFIOPCI}, Attachment: eni.Attachment{
		ENIID: "eni-0123456789abcdef0", MAC: "0a:1b:2c:3d:4e:5f",
		Subnet:       netip.MustParsePrefix("10.0.4.0/24"),
		PrimaryIP:    netip.MustParseAddr("10.0.4.10"),
		SecondaryIPs: []netip.Addr{netip.MustParseAddr("10.0.4.99"), netip.MustParseAddr("10.0.4.11")},
		IPv4Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.4.48/28")},
	}}}
}

// deviceInfoSpec is the device-info spec v1.1.0 document (as the NAD client
// declares v1.DeviceInfo) a reader of the spec decodes.
type deviceInfoSpec struct {
	Type    string `json:"type"`
	Version string `json:"version"`
	Pci     *struct {
		PciAddress string `json:"pci-address"`
	} `json:"pci"`
}

func TestDocumentIsADeviceInfoSpecDocumentWithTheENIFacts(t *testing.T) {
	data, err := Build(n3())
	if err != nil {
		t.Fatal(err)
	}
	var spec deviceInfoSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Type != "pci" || spec.Version != "1.1.0" || spec.Pci == nil || spec.Pci.PciAddress != "0000:00:07.0" {
		t.Errorf("spec part %+v", spec)
	}
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	e := doc.ENI
	if e.ENIID != "eni-0123456789abcdef0" || e.MAC != "0a:1b:2c:3d:4e:5f" || e.PrimaryIP.String() != "10.0.4.10" ||
		fmt.Sprint(e.SecondaryIPs) != "[10.0.4.11 10.0.4.99]" || fmt.Sprint(e.IPv4Prefixes) != "[10.0.4.48/28]" ||
		e.Subnet.String() != "10.0.4.0/24" || e.Gateway.String() != "10.0.4.1" || e.MTU != VPCDefaultMTU || e.Interface != "n3" {
		t.Errorf("ENI facts %+v", e)
	}
	if !strings.Contains(string(data), `"ipv6Prefixes": []`) {
		t.Errorf("empty lists must be [], not null:\n%s", data)
	}
}

func TestWriteOneFilePerDeviceAndDropUnbound(t *testing.T) {
	root := hostfs.New(t.TempDir())
	other := n3()
	other.PCIAddress = "0000:00:08.0"
	if _, err := Write(root, Dir, []Device{n3(), other}); err != nil {
		t.Fatal(err)
	}
	changed, err := Write(root, Dir, []Device{n3()})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != "remove "+Dir+"/0000:00:08.0.json" {
		t.Errorf("second write changed %v, want only the unbound device's file removed", changed)
	}
	if !root.Exists(Dir + "/0000:00:07.0.json") {
		t.Error("the bound device's file is gone")
	}
	if _, err := Build(Device{Network: netconf.Network{Config: api.Interface{Name: "x"}}}); err == nil || !strings.Contains(err.Error(), "interface x") {
		t.Errorf("no PCI address: %v", err)
	}
}

package deviceplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
)

// Shapes of k8snetworkplumbingwg/sriov-network-device-plugin pkg/types
// (ResourceConfig.Selectors is a *json.RawMessage decoded per device type
// into NetDeviceSelectors, which embeds these structs).
type upstreamConfList struct {
	ResourceList []upstreamResourceConfig `json:"resourceList"`
}

type upstreamResourceConfig struct {
	ResourcePrefix  string           `json:"resourcePrefix,omitempty"`
	ResourceName    string           `json:"resourceName"`
	DeviceType      string           `json:"deviceType,omitempty"`
	ExcludeTopology bool             `json:"excludeTopology,omitempty"`
	Selectors       *json.RawMessage `json:"selectors,omitempty"`
}

type upstreamDeviceSelectors struct {
	Vendors []string `json:"vendors,omitempty"`
	Devices []string `json:"devices,omitempty"`
	Drivers []string `json:"drivers,omitempty"`
}

type upstreamGenericPciDeviceSelectors struct {
	PciAddresses []string `json:"pciAddresses,omitempty"`
}

type upstreamGenericNetDeviceSelectors struct {
	PfNames     []string `json:"pfNames,omitempty"`
	RootDevices []string `json:"rootDevices,omitempty"`
	LinkTypes   []string `json:"linkTypes,omitempty"`
	IsRdma      bool
	AcpiIndexes []string `json:"acpiIndexes,omitempty"`
}

type upstreamNetDeviceSelectors struct {
	upstreamDeviceSelectors
	upstreamGenericPciDeviceSelectors
	upstreamGenericNetDeviceSelectors
	DDPProfiles  []string `json:"ddpProfiles,omitempty"`
	NeedVhostNet bool
	VdpaType     string   `json:"vdpaType,omitempty"`
	PKeys        []string `json:"pKeys,omitempty"`
}

// parseObjectOrSlice decodes selectors as the current plugin does: one
// object, else a non-empty list of objects.
func parseObjectOrSlice(raw json.RawMessage) ([]upstreamNetDeviceSelectors, error) {
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields() // stricter than the plugin: catches a misspelt key
		return d.Decode(v)
	}
	one := upstreamNetDeviceSelectors{}
	if err := dec(&one); err == nil {
		return []upstreamNetDeviceSelectors{one}, nil
	}
	var many []upstreamNetDeviceSelectors
	return many, dec(&many)
}

var twoPools = []Resource{
	{Name: "dpdk_b", Devices: []Device{{Address: "0000:00:08.0", Vendor: "1d0f", Device: "ec20", Driver: "igb_uio"}}},
	{Name: "dpdk_a", Devices: []Device{{Address: "0000:00:07.0", Vendor: "1d0f", Device: "ec21", Driver: "vfio-pci"}}},
	{Name: "dpdk_a", Devices: []Device{{Address: "0000:00:06.0", Vendor: "1d0f", Device: "ec20", Driver: "vfio-pci"}}},
}

const golden = `{
  "resourceList": [
    {
      "resourcePrefix": "amazon.com",
      "resourceName": "dpdk_a",
      "deviceType": "netDevice",
      "selectors": {
        "vendors": [
          "1d0f"
        ],
        "devices": [
          "ec20",
          "ec21"
        ],
        "drivers": [
          "vfio-pci"
        ],
        "pciAddresses": [
          "0000:00:06.0",
          "0000:00:07.0"
        ]
      }
    },
    {
      "resourcePrefix": "amazon.com",
      "resourceName": "dpdk_b",
      "deviceType": "netDevice",
      "selectors": {
        "vendors": [
          "1d0f"
        ],
        "devices": [
          "ec20",
          "ec21"
        ],
        "drivers": [
          "igb_uio"
        ],
        "pciAddresses": [
          "0000:00:08.0"
        ]
      }
    }
  ]
}
`

func TestRenderGolden(t *testing.T) {
	b, err := Render("amazon.com", twoPools)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != golden {
		t.Fatalf("got:\n%s", b)
	}
	// Any input order gives the same bytes.
	rev := []Resource{twoPools[2], twoPools[0], twoPools[1]}
	if b2, _ := Render("amazon.com", rev); !bytes.Equal(b, b2) {
		t.Fatal("output depends on input order")
	}
}

func TestPluginReadsIt(t *testing.T) {
	b, err := Render("amazon.com", twoPools)
	if err != nil {
		t.Fatal(err)
	}
	var list upstreamConfList
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list.ResourceList) != 2 {
		t.Fatalf("%d resources", len(list.ResourceList))
	}
	rc := list.ResourceList[0]
	if rc.DeviceType != "netDevice" || rc.ResourceName != "dpdk_a" || rc.ResourcePrefix != "amazon.com" {
		t.Fatalf("%+v", rc)
	}
	sels, err := parseObjectOrSlice(*rc.Selectors)
	if err != nil || len(sels) != 1 {
		t.Fatalf("selectors: %v %v", sels, err)
	}
	s := sels[0]
	if len(s.PciAddresses) != 2 || s.PciAddresses[0] != "0000:00:06.0" || s.Drivers[0] != "vfio-pci" || s.Vendors[0] != "1d0f" {
		t.Fatalf("%+v", s)
	}
}

func TestObservedIDsAreAdded(t *testing.T) {
	doc, err := Build("amazon.com", []Resource{{Name: "v", Devices: []Device{{Address: "0000:00:10.0", Vendor: "1af4", Device: "1041", Driver: "vfio-pci"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := doc.ResourceList[0].Selectors
	if len(s.Vendors) != 2 || s.Vendors[0] != "1af4" || s.Devices[0] != "1041" {
		t.Fatalf("%+v", s)
	}
}

func TestBadInput(t *testing.T) {
	for _, r := range []Resource{
		{Name: "../etc", Devices: nil},
		{Name: "ok", Devices: []Device{{Address: "0000:00:06.0/../../x"}}},
	} {
		if _, err := Render("amazon.com", []Resource{r}); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestWriteOnlyOnChange(t *testing.T) {
	root := hostfs.New(t.TempDir())
	const p = "/etc/pcidp/config.json"
	apply := func() int {
		t.Helper()
		changes, err := Plan(root, p, "amazon.com", twoPools)
		if err != nil {
			t.Fatal(err)
		}
		if err := change.Apply(context.Background(), &changetest.Actions{}, changes); err != nil {
			t.Fatal(err)
		}
		return len(changes)
	}
	if n := apply(); n != 1 {
		t.Fatalf("%d changes planned for a missing file", n)
	}
	want, _ := Render("amazon.com", twoPools)
	if got, _ := root.ReadFile(p); string(got) != string(want) {
		t.Fatalf("file:\n%s", got)
	}
	info1, _ := os.Stat(hostfstest.Path(t, root, p))
	if n := apply(); n != 0 {
		t.Fatal("change planned for the same content")
	}
	info2, _ := os.Stat(hostfstest.Path(t, root, p))
	if !info1.ModTime().Equal(info2.ModTime()) {
		t.Fatal("rewritten")
	}
}

func BenchmarkRender(b *testing.B) {
	for b.Loop() {
		if _, err := Render("amazon.com", twoPools); err != nil {
			b.Fatal(err)
		}
	}
}

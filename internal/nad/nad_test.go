package nad

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
)

var update = flag.Bool("update", false, "rewrite configs/nad/*.yaml from configs/examples")

const repo = "../.."

// fakeSubnets gives each example subnet ID a fixed CIDR.
var fakeSubnets = map[string]string{
	"subnet-0a1b2c3d4e5f60718": "10.0.2.0/24",
	"subnet-0f1e2d3c4b5a69788": "10.0.4.0/24",
}

// FakeState is what a run on a fixed node would record: PCI 0000:00:(5+index).0
// and addresses from the bottom of the subnet.
func FakeState(t testing.TB, cfg *api.NodePrepConfig) []Interface {
	t.Helper()
	var out []Interface
	for _, in := range cfg.Spec.Interfaces {
		st := Interface{Name: in.Name}
		idx := int32(1)
		if in.DeviceIndex != nil {
			idx = *in.DeviceIndex
		}
		st.PCIAddress = fmt.Sprintf("0000:00:%02x.0", 5+idx)
		if cidr, ok := fakeSubnets[in.SubnetID]; ok {
			st.SubnetCIDR = cidr
			p := netip.MustParsePrefix(cidr)
			a := p.Addr()
			for i := int32(0); i < 4+idx; i++ {
				a = a.Next()
			}
			st.PrivateIP = a.String()
			if in.PrivateIP.Mode == api.PrivateIPStatic {
				st.PrivateIP = in.PrivateIP.Address
			}
		}
		out = append(out, st)
	}
	return out
}

func loadExample(t *testing.T, path string) *api.NodePrepConfig {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := api.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	api.SetDefaults(cfg)
	if err := api.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGolden renders every example and compares with configs/nad/. Run
// `go test ./internal/nad -update` after an intended change.
func TestGolden(t *testing.T) {
	examples, err := filepath.Glob(filepath.Join(repo, "configs/examples/*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, ex := range examples {
		name := filepath.Base(ex)
		t.Run(name, func(t *testing.T) {
			cfg := loadExample(t, ex)
			got, err := Render(cfg, FakeState(t, cfg), Options{})
			if err != nil {
				t.Fatal(err)
			}
			header := fmt.Sprintf("# Rendered by `go test ./internal/nad -update` from configs/examples/%s\n# with fixed fake state (subnets %s, %s). Do not edit.\n", name, fakeSubnets["subnet-0a1b2c3d4e5f60718"], fakeSubnets["subnet-0f1e2d3c4b5a69788"])
			got = append([]byte(header), got...)
			golden := filepath.Join(repo, "configs/nad", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/nad -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is out of date; run go test ./internal/nad -update\n--- got\n%s", golden, got)
			}
		})
	}
}

// TestConfigsLoadWithLibcni parses each rendered NAD's config with libcni and
// checks the fields the plugins read.
func TestConfigsLoadWithLibcni(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/dpdk-vfio.yaml"))
	nads, err := Build(cfg, FakeState(t, cfg), Options{Namespace: "upf"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nads) != 3 {
		t.Fatalf("%d NADs", len(nads))
	}
	for _, n := range nads {
		conf, err := libcni.ConfFromBytes([]byte(n.Spec.Config))
		if err != nil {
			t.Fatalf("%s: libcni: %v", n.Metadata.Name, err)
		}
		if conf.Network.Name != n.Metadata.Name || conf.Network.CNIVersion != DefaultCNIVersion || n.Metadata.Namespace != "upf" {
			t.Fatalf("%s: %+v", n.Metadata.Name, conf.Network)
		}
	}
	var n2, n3 map[string]any
	mustJSON(t, nads[0].Spec.Config, &n2)
	mustJSON(t, nads[1].Spec.Config, &n3)

	// n2: kernel ENI, ipvlan on its stable name, host-local at the top of 10.0.2.0/24.
	if n2["type"] != "ipvlan" || n2["master"] != "n2" || n2["mode"] != "l2" {
		t.Fatalf("n2: %v", n2)
	}
	rng := n2["ipam"].(map[string]any)["ranges"].([]any)[0].([]any)[0].(map[string]any)
	if rng["subnet"] != "10.0.2.0/24" || rng["rangeStart"] != "10.0.2.128" || rng["rangeEnd"] != "10.0.2.254" || rng["gateway"] != "10.0.2.1" {
		t.Fatalf("n2 range: %v", rng)
	}
	// n3: DPDK, host-device by BDF, the ENI's own static address, device plugin resource.
	if n3["type"] != "host-device" || n3["pciBusID"] != "0000:00:07.0" {
		t.Fatalf("n3: %v", n3)
	}
	addr := n3["ipam"].(map[string]any)["addresses"].([]any)[0].(map[string]any)
	if addr["address"] != "10.0.4.10/24" || addr["gateway"] != "10.0.4.1" {
		t.Fatalf("n3 address: %v", addr)
	}
	if nads[1].Metadata.Annotations[ResourceNameAnnotation] != "amazon.com/dpdk_n3" {
		t.Fatalf("n3 annotations: %v", nads[1].Metadata.Annotations)
	}
}

func TestWhereaboutsIPAM(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/multus-ipvlan.yaml"))
	nads, err := Build(cfg, FakeState(t, cfg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var media map[string]any
	mustJSON(t, nads[1].Spec.Config, &media)
	ipam := media["ipam"].(map[string]any)
	want := map[string]any{"type": "whereabouts", "range": "10.0.4.0/24", "range_start": "10.0.4.128", "range_end": "10.0.4.254", "gateway": "10.0.4.1"}
	for k, v := range want {
		if ipam[k] != v {
			t.Errorf("ipam.%s = %v, want %v", k, ipam[k], v)
		}
	}
	if media["mtu"] != float64(9001) {
		t.Errorf("mtu %v", media["mtu"])
	}
}

func TestMissingStateIsAClearError(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/dpdk-vfio.yaml"))
	_, err := Render(cfg, nil, Options{})
	if !errors.Is(err, ErrMissingState) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"spec.interfaces[0] (n2): subnet CIDR", "spec.interfaces[2] (n6): PCI address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	// With placeholders it renders, and says where values are missing.
	out, err := Render(cfg, nil, Options{Placeholders: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "<PCI address: run nodeprep on the node>") {
		t.Fatalf("no placeholder:\n%s", out)
	}
	var doc NetworkAttachmentDefinition
	if err := yaml.Unmarshal(out[:bytes.Index(out, []byte("---"))], &doc); err != nil || doc.Kind != Kind {
		t.Fatalf("first document: %v %+v", err, doc)
	}
}

func TestBadStateSubnet(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/minimal.yaml"))
	for _, cidr := range []string{"10.0.0.0/29", "fd00::/64", "nonsense"} {
		_, err := Render(cfg, []Interface{{Name: "multus1", SubnetCIDR: cidr}}, Options{})
		if err == nil || !strings.Contains(err.Error(), "multus1") {
			t.Errorf("%s: got %v", cidr, err)
		}
	}
}

func TestTopHalf(t *testing.T) {
	for cidr, want := range map[string][2]string{
		"10.0.4.0/24":   {"10.0.4.128", "10.0.4.254"},
		"10.0.4.77/24":  {"10.0.4.128", "10.0.4.254"},
		"10.1.0.0/16":   {"10.1.128.0", "10.1.255.254"},
		"10.0.0.16/28":  {"10.0.0.24", "10.0.0.30"},
		"172.16.0.0/20": {"172.16.8.0", "172.16.15.254"},
	} {
		s, e, err := TopHalf(netip.MustParsePrefix(cidr))
		if err != nil || s.String() != want[0] || e.String() != want[1] {
			t.Errorf("%s: %s-%s %v, want %s-%s", cidr, s, e, err, want[0], want[1])
		}
	}
	if _, _, err := TopHalf(netip.MustParsePrefix("10.0.0.0/30")); err == nil {
		t.Error("/30 accepted")
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatal(err)
	}
}

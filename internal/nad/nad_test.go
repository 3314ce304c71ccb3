package nad

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
)

var update = flag.Bool("update", false, "rewrite configs/nad/*.yaml from configs/examples")

const repo = "../.."

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

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repo, "configs/examples/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	return files
}

// TestGolden renders every example and compares with configs/nad/. Run
// `go test ./internal/nad -update` after an intended change.
func TestGolden(t *testing.T) {
	for _, ex := range examples(t) {
		name := filepath.Base(ex)
		t.Run(name, func(t *testing.T) {
			got, err := Render(loadExample(t, ex), Options{})
			if err != nil {
				t.Fatal(err)
			}
			header := fmt.Sprintf("# Rendered by `go test ./internal/nad -update` from configs/examples/%s\n# (no node state: NADs are cluster objects). Do not edit.\n", name)
			got = append([]byte(header), got...)
			golden := filepath.Join(repo, "configs/nad", name)
			if *update {
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

// multusNAD is the part of the NAD client's type (k8s.cni.cncf.io/v1
// NetworkAttachmentDefinition) Multus reads: GetCNIConfig takes the
// conflist from confDir when Spec equals the empty spec.
type multusNAD struct {
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Config string `yaml:"config"`
	} `yaml:"spec"`
}

var (
	reIPv4 = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)
	reBDF  = regexp.MustCompile(`[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]`)
)

// TestEveryExampleRendersNodeIndependent renders each example with no
// node, no state and no network, and checks the output holds nothing that
// differs between nodes: no spec.config, no PCI address, no address.
func TestEveryExampleRendersNodeIndependent(t *testing.T) {
	for _, ex := range examples(t) {
		cfg := loadExample(t, ex)
		out, err := Render(cfg, Options{Namespace: "upf"})
		if err != nil {
			t.Fatalf("%s: %v", ex, err)
		}
		for _, bad := range []string{"pciBusID", "config", "ipam", "subnet", "master"} {
			if bytes.Contains(out, []byte(bad)) {
				t.Errorf("%s: output holds %q:\n%s", ex, bad, out)
			}
		}
		if m := reIPv4.Find(out); m != nil {
			t.Errorf("%s: output holds address %s", ex, m)
		}
		if m := reBDF.Find(out); m != nil {
			t.Errorf("%s: output holds PCI address %s", ex, m)
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		var names []string
		for {
			var n multusNAD
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			if n.Spec.Config != "" {
				t.Errorf("%s: %s has a spec.config", ex, n.Metadata.Name)
			}
			names = append(names, n.Metadata.Name)
		}
		var want []string
		for _, in := range cfg.Spec.Interfaces {
			// A whole-ENI pool's members share the pool's one NAD.
			name := in.Name
			if in.PodAttachment == api.PodAttachmentHostDevice && in.ResourceName != "" {
				name = strings.ReplaceAll(strings.ToLower(in.ResourceName), "_", "-")
			}
			if (in.DPDK() || in.PodAttachment == api.PodAttachmentHostDevice || in.PodAddresses()) && !slices.Contains(want, name) {
				want = append(want, name)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: NADs %v, want %v", ex, names, want)
		}
	}
}

func TestDPDKNADNamesTheDevicePluginResource(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/dpdk-vfio.yaml"))
	nads := Build(cfg, Options{Namespace: "upf"})
	if len(nads) != 3 {
		t.Fatalf("%d NADs", len(nads))
	}
	if nads[0].Metadata.Annotations != nil {
		t.Errorf("kernel n2 has annotations %v", nads[0].Metadata.Annotations)
	}
	if got := nads[1].Metadata.Annotations[ResourceNameAnnotation]; got != "amazon.com/dpdk_n3" {
		t.Errorf("n3 resource %q", got)
	}
	if nads[2].Metadata.Namespace != "upf" {
		t.Errorf("namespace %q", nads[2].Metadata.Namespace)
	}
}

// The minimal example says "one Multus ENI for ipvlan pods": it must give
// one NAD, for an interface EC2 gives pod addresses.
func TestMinimalExampleGivesIpvlanPods(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/minimal.yaml"))
	nads := Build(cfg, Options{})
	if len(nads) != 1 || nads[0].Metadata.Name != "multus1" || nads[0].Metadata.Annotations != nil {
		t.Fatalf("NADs %+v, want one for multus1 (ipvlan, no device pool)", nads)
	}
	if in := cfg.Spec.Interfaces[0]; in.DPDK() || !in.PodAddresses() {
		t.Errorf("multus1: DPDK %v, pod addresses %v; want a kernel ENI with pod addresses", in.DPDK(), in.PodAddresses())
	}
}

func TestKernelInterfaceWithoutPodAddressesGetsNoNAD(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/minimal.yaml"))
	cfg.Spec.Interfaces[0].IPv4PrefixCount = 0
	if n := Build(cfg, Options{}); len(n) != 0 {
		t.Errorf("NADs %+v for an interface EC2 gives no pod address", n)
	}
	if got := Unattachable(cfg); !slices.Equal(got, []string{"multus1"}) {
		t.Errorf("unattachable %v", got)
	}
	if strings.Contains(fmt.Sprint(Unattachable(loadExample(t, filepath.Join(repo, "configs/examples/dpdk-vfio.yaml")))), "n") {
		t.Error("dpdk-vfio example has an unattachable interface")
	}
}

// A whole-ENI interface asks EC2 for no pod addresses (its pod takes the
// ENI's primary) and still gets a NAD, with no device plugin resource.
func TestWholeENIInterfaceGetsANAD(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/whole-eni.yaml"))
	nads := Build(cfg, Options{Namespace: "upf"})
	var names []string
	for _, n := range nads {
		names = append(names, n.Metadata.Name)
		if n.Metadata.Annotations != nil {
			t.Errorf("%s has annotations %v; a whole ENI is no device plugin resource", n.Metadata.Name, n.Metadata.Annotations)
		}
	}
	if want := []string{"n6"}; !slices.Equal(names, want) {
		t.Errorf("NADs %v, want %v", names, want)
	}
	if in := cfg.Spec.Interfaces[0]; !in.HostDevice() || in.PodAddresses() {
		t.Errorf("n6: hostDevice %v, pod addresses %v; want a whole ENI without pod address counts", in.HostDevice(), in.PodAddresses())
	}
	if got := Unattachable(cfg); len(got) != 0 {
		t.Errorf("unattachable %v", got)
	}
}

// A whole-ENI pool is one NAD, named like its resource, that names the
// device plugin resource its pods request; a hostDevice interface outside
// the pool keeps its own NAD without one.
func TestWholeENIPoolGetsOneNADWithItsResource(t *testing.T) {
	cfg := loadExample(t, filepath.Join(repo, "configs/examples/whole-eni-pool.yaml"))
	nads := Build(cfg, Options{})
	var got []string
	for _, n := range nads {
		got = append(got, n.Metadata.Name+"="+n.Metadata.Annotations[ResourceNameAnnotation])
	}
	if want := []string{"upf-pool=amazon.com/upf_pool", "oam="}; !slices.Equal(got, want) {
		t.Errorf("NADs %v, want %v", got, want)
	}
}

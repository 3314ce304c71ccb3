package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
)

// TestRenderNADOfflineForEveryExample runs `nodeprep render nad` on every
// example with an empty root: no state, no effective config, no network.
func TestRenderNADOfflineForEveryExample(t *testing.T) {
	files, _ := filepath.Glob("../configs/examples/*.yaml")
	if len(files) < 4 {
		t.Fatalf("%d examples", len(files))
	}
	for _, f := range files {
		code, out, stderr := runCLI(t, "", "render", "nad", "--root", t.TempDir(), "--config", f)
		if code != exitOK {
			t.Errorf("%s: code %d: %s", f, code, stderr)
			continue
		}
		for _, bad := range []string{"pciBusID", "config:", "10.0.", "0000:"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: output holds node-specific %q:\n%s", f, bad, out)
			}
		}
	}
	_, out, _ := runCLI(t, "", "render", "nad", "--root", t.TempDir(), "--config", "../configs/examples/dpdk-vfio.yaml")
	if !strings.Contains(out, "k8s.v1.cni.cncf.io/resourceName: amazon.com/dpdk_n3") || strings.Count(out, "kind: NetworkAttachmentDefinition") != 3 {
		t.Errorf("dpdk-vfio NADs:\n%s", out)
	}
}

func TestRenderConflistsFromState(t *testing.T) {
	dir := t.TempDir()
	root := hostfs.New(dir)
	cfgData, err := os.ReadFile("../configs/examples/multus-ipvlan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.MkdirAll("/etc/nodeprep", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := root.WriteFile(bootstrap.EffectiveConfigPath, cfgData, 0o644); err != nil {
		t.Fatal(err)
	}
	// Without a state file there is nothing to say about this node.
	if code, _, stderr := runCLI(t, "", "render", "conflists", "--root", dir); code == exitOK {
		t.Fatalf("rendered without state: %s", stderr)
	}
	st, err := state.Open(root, "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]state.Interface{
		"signaling": {ENI: eni.Attachment{ENIID: "eni-1", PrimaryIP: netip.MustParseAddr("10.0.2.5"), Subnet: netip.MustParsePrefix("10.0.2.0/24"),
			SecondaryIPs: []netip.Addr{netip.MustParseAddr("10.0.2.6"), netip.MustParseAddr("10.0.2.77")}}},
		"media": {ENI: eni.Attachment{ENIID: "eni-2", PrimaryIP: netip.MustParseAddr("10.0.4.5"), Subnet: netip.MustParsePrefix("10.0.4.0/24"),
			IPv4Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.4.16/28"), netip.MustParsePrefix("10.0.4.48/28")}}},
	} {
		in := in
		if err := st.UpdateInterface(name, func(s *state.Interface) { *s = in }); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, "", "render", "conflists", "--root", dir)
	if code != exitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	parts := strings.Split(out, "# /etc/cni/multus/net.d/")
	if len(parts) != 3 {
		t.Fatalf("want two conflists under /etc/cni/multus/net.d:\n%s", out)
	}
	for _, p := range parts[1:] {
		file, body, _ := strings.Cut(p, "\n")
		l, err := libcni.ConfListFromBytes([]byte(body))
		if err != nil || file != l.Name+".conflist" {
			t.Errorf("%s: %v", file, err)
		}
		if !strings.Contains(body, `"rangeStart": "10.0.`) {
			t.Errorf("%s has no ranges:\n%s", file, body)
		}
	}
}

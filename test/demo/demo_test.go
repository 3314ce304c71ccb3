package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s program, with the real agent binary, and checks
// what a person watching it would: ENIs tagged and attached, NICs named,
// files written, and a second run that changes nothing.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the demo needs root for its network namespace")
	}
	bundle := filepath.Join(repoCache(t), "cni-bundle")
	if _, err := os.Stat(bundle); err != nil {
		t.Skipf("no CNI bundle at %s: run make cni-bundle (make test does)", bundle)
	}
	dir := t.TempDir()
	for pkg, out := range map[string]string{"../../agent": "nodeprep", ".": "demo"} {
		if b, err := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	cmd := exec.Command(filepath.Join(dir, "demo"), "--nodeprep", filepath.Join(dir, "nodeprep"),
		"--user-data", "../../configs/userdata/demo.txt", "--cni-bundle", bundle, "--latency", "none")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"nodeprep.dev/interface=signaling", "nodeprep.dev/interface=media", "nodeprep.dev/interface=oam",
		"altnames [signaling]", "mtu 9001",
		"/etc/cni/net.d/00-multus.conf", "/etc/eks/nodeadm.d/90-nodeprep.yaml", "/opt/cni/bin/multus",
		"No changes: the node already matches its config.",
		"0 mutating",
		"per ENI: create → visible → attach → attached → nic up; * critical: ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if n := strings.Count(s, "node.k8s.amazonaws.com/no_manage=true"); n != 3 {
		t.Errorf("%d ENIs tagged no_manage, want 3", n)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", s)
	}
}

func repoCache(t *testing.T) string {
	if d := os.Getenv("NODEPREP_CACHE"); d != "" {
		return d
	}
	abs, err := filepath.Abs("../../.cache")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// TestValidateCPUOnATopology: offline, validate cannot know that 0-1
// splits two cores of an SMT node; with --root it resolves spec.cpu on that
// node's topology and names the field and the CPUs, and on a fitting list
// prints the two sets.
func TestValidateCPUOnATopology(t *testing.T) {
	h := pcitest.New(t)
	h.SetCPUs(pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 0) // core n: CPUs n and n+4
	cfg := func(reserved string) string {
		p := filepath.Join(t.TempDir(), "cpu.yaml")
		doc := "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu:\n    reserved: \"" + reserved + "\"\n"
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	split := cfg("0-1")
	if code, _, stderr := runCLI(t, "", "validate", split); code != exitOK {
		t.Fatalf("offline, 0-1 passes (no topology to judge it on): code %d: %s", code, stderr)
	}
	code, _, stderr := runCLI(t, "", "validate", "--root", h.Root.Dir(), split)
	if code != exitInvalid || !strings.Contains(stderr, "spec.cpu.reserved") || !strings.Contains(stderr, "CPUs") {
		t.Errorf("--root on an SMT node, reserved 0-1: code %d, want %d naming spec.cpu.reserved and the CPUs:\n%s", code, exitInvalid, stderr)
	}
	t.Logf("validate --root, reserved 0-1:\n%s", stderr)
	code, stdout, stderr := runCLI(t, "", "validate", "--root", h.Root.Dir(), cfg("0,4"))
	if code != exitOK || !strings.Contains(stdout, "reserved 0,4, isolated 1-3,5-7") {
		t.Errorf("--root, reserved 0,4: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// planConfig reserves huge pages and labels the node: steps that act on
// sysfs and on files.
const planConfig = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, count: 8}]
  multus: {install: false}
  node: {labels: {team: telco}}
`

// planRoot is a host root with the sysfs and procfs files the hugepages
// step reads, and the user data file.
func planRoot(t *testing.T) (root, userData string) {
	t.Helper()
	root = t.TempDir()
	for p, content := range map[string]string{
		"proc/meminfo": "MemTotal:       16000000 kB\nHugepagesize:       2048 kB\n",
		"sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages":                 "0\n",
		"sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages": "0\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	userData = filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(userData, []byte(planConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, userData
}

// `nodeprep plan` leaves the host root byte-identical (every file, its
// content and mode), on a fresh node and after a run, whose record in
// /run/nodeprep/state.json it must not replace.
func TestPlanLeavesTheRootByteIdentical(t *testing.T) {
	root, ud := planRoot(t)
	before := pcitest.Snapshot(t, root)
	code, out, stderr := runCLI(t, "", "plan", "--root", root, "--user-data", ud)
	if code != exitOK || !strings.Contains(out, "reserve 8 × 2Mi") {
		t.Fatalf("plan on a fresh node: code %d\n%s%s", code, out, stderr)
	}
	if d := pcitest.Diff(before, pcitest.Snapshot(t, root)); len(d) > 0 {
		t.Errorf("plan on a fresh node changed %v", d)
	}

	if code, _, stderr := runCLI(t, "", "run", "--root", root, "--user-data", ud); code != exitOK {
		t.Fatalf("run: code %d: %s", code, stderr)
	}
	before = pcitest.Snapshot(t, root)
	code, out, stderr = runCLI(t, "", "plan", "--root", root, "--user-data", ud)
	if code != exitOK || !strings.Contains(out, "No changes: the node already matches its config.") {
		t.Fatalf("plan after run: code %d\n%s%s", code, out, stderr)
	}
	if d := pcitest.Diff(before, pcitest.Snapshot(t, root)); len(d) > 0 {
		t.Errorf("plan after run changed %v", d)
	}
	if code, out, _ := runCLI(t, "", "status", "--root", root); code != exitOK || !strings.Contains(out, "last run: succeeded") {
		t.Errorf("status after plan: code %d\n%s", code, out)
	}
}

// A step plan cannot plan is named, the exit code says so, and plan does
// not claim the node matches its config or speak of kubelet.
func TestPlanNamesTheStepsItCouldNotPlan(t *testing.T) {
	root, ud := planRoot(t)
	if err := os.Remove(filepath.Join(root, "proc/meminfo")); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "", "plan", "--root", root, "--user-data", ud)
	if code != exitFailed {
		t.Errorf("code %d, want %d", code, exitFailed)
	}
	if !strings.Contains(out, "Could not plan 1 step(s):") || !strings.Contains(out, "hugepages") || strings.Contains(out, "No changes: the node already matches") {
		t.Errorf("summary:\n%s", out)
	}
	if strings.Contains(stderr, "kubelet") {
		t.Errorf("plan spoke of kubelet:\n%s", stderr)
	}
}

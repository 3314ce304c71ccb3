// Package systemd_test checks the shipped unit with systemd's own verifier.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "../../systemd/nodeprep.service"

func TestUnitVerifies(t *testing.T) { verifyUnits(t, "nodeprep.service") }

// verifyUnits runs systemd-analyze verify on units from systemd/, with their
// ExecStart pointed at a freshly built nodeprep (verify checks it exists).
func verifyUnits(t *testing.T, names ...string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (make test installs it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nodeprep")
	if out, err := exec.Command("go", "build", "-o", bin, "../../agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var units []string
	for _, name := range names {
		unit, err := os.ReadFile(filepath.Join("../../systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		patched := strings.ReplaceAll(string(unit), "ExecStart=/usr/bin/nodeprep", "ExecStart="+bin)
		if strings.HasSuffix(name, ".service") && patched == string(unit) {
			t.Fatalf("%s has no ExecStart=/usr/bin/nodeprep", name)
		}
		target := filepath.Join(dir, name)
		if err := os.WriteFile(target, []byte(patched), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, target)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		// kubelet and nodeadm-run are not installed on a build machine.
		if line == "" || strings.Contains(line, "kubelet.service") || strings.Contains(line, "nodeadm-run.service") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
	if err != nil && t.Failed() {
		t.Fatalf("systemd-analyze verify: %v", err)
	}
}

// The unit must make kubelet wait for, and depend on, nodeprep.
func TestUnitWiresKubeletDependency(t *testing.T) {
	keys := parseUnit(t)
	want := map[string][]string{
		"Unit.Before":          {"kubelet.service", "nodeadm-run.service"},
		"Unit.After":           {"network-online.target"},
		"Install.RequiredBy":   {"kubelet.service", "nodeadm-run.service"},
		"Service.Type":         {"notify"},
		"Service.NotifyAccess": {"main"},
	}
	for key, values := range want {
		for _, v := range values {
			if !strings.Contains(" "+keys[key]+" ", " "+v+" ") {
				t.Errorf("%s = %q, want it to include %s", key, keys[key], v)
			}
		}
	}
	if keys["Service.TimeoutStartSec"] == "" || keys["Service.TimeoutStartSec"] == "infinity" {
		t.Errorf("TimeoutStartSec = %q, want a finite bound", keys["Service.TimeoutStartSec"])
	}
}

func parseUnit(t *testing.T) map[string]string { return parseUnitFile(t, unitPath) }

func parseUnitFile(t *testing.T, unitPath string) map[string]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			key := section + "." + k
			keys[key] = strings.TrimSpace(keys[key] + " " + v)
		}
	}
	return keys
}

// The watch unit, with the boot unit it requires, passes systemd's verifier
// (StateDirectory= of a nested path, the sandbox settings).
func TestWatchUnitVerifies(t *testing.T) {
	verifyUnits(t, "nodeprep.service", "nodeprep-watch.service")
}

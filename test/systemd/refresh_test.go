package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
)

// On first boot 10-aws.conflist appears after nodeprep ran: the path unit
// must watch exactly the file nodeprep reads the cluster network from and
// start a unit that runs nodeprep again, only after nodeprep's boot run.
func TestCNIRefreshUnitsWatchTheClusterNetwork(t *testing.T) {
	path := parseUnitFile(t, "../../systemd/nodeprep-cni-refresh.path")
	if path["Path.PathChanged"] != api.DefaultClusterNetwork {
		t.Errorf("PathChanged = %q, want %s", path["Path.PathChanged"], api.DefaultClusterNetwork)
	}
	if path["Path.Unit"] != "nodeprep-cni-refresh.service" || path["Install.WantedBy"] == "" {
		t.Errorf("path unit: %v", path)
	}
	svc := parseUnitFile(t, "../../systemd/nodeprep-cni-refresh.service")
	if svc["Service.ExecStart"] != "/usr/bin/nodeprep run" || svc["Service.Type"] != "oneshot" {
		t.Errorf("service: %v", svc)
	}
	if svc["Unit.Requisite"] != "nodeprep.service" || !strings.Contains(svc["Unit.After"], "nodeprep.service") {
		t.Errorf("the refresh must only follow a successful boot run: %v", svc)
	}

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
	for _, name := range []string{"nodeprep.service", "nodeprep-cni-refresh.service", "nodeprep-cni-refresh.path"} {
		data, err := os.ReadFile(filepath.Join("../../systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, name)
		if err := os.WriteFile(target, []byte(strings.ReplaceAll(string(data), "ExecStart=/usr/bin/nodeprep", "ExecStart="+bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, target)
	}
	out, _ := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.Contains(line, "kubelet.service") || strings.Contains(line, "nodeadm-run.service") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
}

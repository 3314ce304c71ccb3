package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/systemd"
)

// TestShippedUnitsBootWithoutOrderingCycle enables every shipped unit the way
// the Packer plugin does and lets systemd build the boot transaction for
// multi-user.target. An ordering cycle makes systemd delete a job to break it
// (on a real boot it was paths.target, and with it the start of units kubelet
// and nodeprep depend on), so any cycle fails the test.
func TestShippedUnitsBootWithoutOrderingCycle(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (make test installs it)")
	}
	dir := t.TempDir()
	wants := filepath.Join(dir, "multi-user.target.wants")
	if err := os.Mkdir(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	shipped := []string{systemd.AgentService, systemd.CNIRefreshService, systemd.CNIRefreshPath}
	for _, name := range shipped {
		unit, err := os.ReadFile(filepath.Join("../../systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// Any executable will do: systemd only checks that it exists.
		patched := strings.ReplaceAll(string(unit), "ExecStart="+systemd.BinaryPath, "ExecStart=/bin/true")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(patched), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What the plugin enables (the refresh service is started by its path unit).
	for _, name := range []string{systemd.AgentService, systemd.CNIRefreshPath} {
		if err := os.Symlink("../"+name, filepath.Join(wants, name)); err != nil {
			t.Fatal(err)
		}
	}
	// kubelet and nodeadm-run, as on an AL2023 node, so RequiredBy= resolves.
	for _, name := range []string{"kubelet.service", "nodeadm-run.service", "nodeadm-config.service"} {
		stub := "[Unit]\nDescription=" + name + " stand-in\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(stub), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../"+name, filepath.Join(wants, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(analyze, "verify", "multi-user.target")
	// The trailing colon keeps systemd's own unit directories after ours.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "ordering cycle") {
		t.Fatalf("the shipped units form an ordering cycle at boot:\n%s", out)
	}
}

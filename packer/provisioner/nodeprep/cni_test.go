package nodeprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// TestInstalledCNIBundleIsWhatTheAgentOpens runs the real install script into
// a temporary root and lets the agent's own bundle reader judge the result:
// after a bake of v1.6.2 and then one of v1.7.0 into the same image, the agent
// must pick v1.7.0 (not refuse two versions as ambiguous) and every file must
// match its manifest.
func TestInstalledCNIBundleIsWhatTheAgentOpens(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	for _, version := range []string{"v1.6.2", "v1.6.2", "v1.7.0"} {
		raw := f.raw()
		raw["cni_version"] = version
		raw["staging_dir"] = "/tmp/packer-nodeprep"
		p := &Provisioner{}
		if err := p.Prepare(raw); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		// The script addresses the image by absolute paths; point them into root.
		cfg := p.config
		cfg.StagingDir = filepath.Join(root, cfg.StagingDir)
		data := newScriptData(&cfg, target{family: FamilyDebian}, p.bundle, "", "")
		data.CNIRoot = filepath.Join(root, cniRoot)
		staged := data.Staged("cni")
		if err := os.MkdirAll(staged, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, name := range append(data.Bundle, sumsFile) {
			b, err := os.ReadFile(filepath.Join(f.bundleDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(staged, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		script, err := renderScript("install_cni.sh", data)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-c", "set -eu\n"+script).CombinedOutput(); err != nil {
			t.Fatalf("install_cni.sh for %s: %v\n%s", version, err, out)
		}

		host := hostfs.New(root)
		b, err := cnibundle.Open(host, cniRoot)
		if err != nil {
			t.Fatalf("after installing %s the agent cannot open the bundle: %v", version, err)
		}
		if b.Version != version {
			t.Errorf("after installing %s the agent picks %s", version, b.Version)
		}
		if err := b.Verify(host, data.Bundle); err != nil {
			t.Errorf("after installing %s: %v", version, err)
		}
	}
}

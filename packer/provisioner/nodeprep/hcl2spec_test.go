package nodeprep

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHCL2SpecIsGenerated regenerates config.hcl2spec.go with the pinned
// packer-sdc into a temp dir and fails when the committed file drifted.
// packer-sdc is found in $PACKER_SDC or built by packer/hack/ensure-tool.sh.
func TestHCL2SpecIsGenerated(t *testing.T) {
	sdc := os.Getenv("PACKER_SDC")
	if sdc == "" {
		if testing.Short() {
			t.Skip("-short: not building packer-sdc")
		}
		out, err := exec.Command("../../hack/ensure-tool.sh", "packer-sdc").Output()
		if err != nil {
			t.Fatalf("building packer-sdc: %v (%s)", err, exitStderr(err))
		}
		sdc = strings.TrimSpace(string(out))
	}
	tmp := t.TempDir()
	gen := exec.Command(sdc, "mapstructure-to-hcl2", "-type", "Config")
	// packer-sdc writes <GOFILE minus .go>.hcl2spec.go; point GOFILE into tmp
	// so the committed file is never touched.
	gen.Env = append(os.Environ(), "GOFILE="+filepath.Join(tmp, "config.go"), "GOPACKAGE=nodeprep")
	var stderr bytes.Buffer
	gen.Stderr = &stderr
	if err := gen.Run(); err != nil {
		t.Fatalf("packer-sdc: %v: %s", err, stderr.String())
	}
	want, err := os.ReadFile(filepath.Join(tmp, "config.hcl2spec.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("config.hcl2spec.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("config.hcl2spec.go is stale: run `go generate ./...` in packer/ (needs packer-sdc v0.6.1 on PATH, see packer/hack/ensure-tool.sh)")
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

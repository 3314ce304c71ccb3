package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
)

// TestDescribeReportsLdflagsVersionAndDefaultProvisioner builds the plugin the
// way a release does and checks what `describe` tells Packer.
func TestDescribeReportsLdflagsVersionAndDefaultProvisioner(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "packer-plugin-nodeprep")
	const pkg = "github.com/nodeprep/nodeprep/packer/version"
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=9.8.7 -X "+pkg+".VersionPrerelease=",
		".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "describe").Output()
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	var d struct {
		Version      string   `json:"version"`
		SDKVersion   string   `json:"sdk_version"`
		Provisioners []string `json:"provisioners"`
		Builders     []string `json:"builders"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("describe output %q: %v", out, err)
	}
	if d.Version != "9.8.7" {
		t.Errorf("version = %q, want the ldflags value 9.8.7", d.Version)
	}
	if d.SDKVersion != "0.6.1" {
		t.Errorf("sdk_version = %q, want 0.6.1", d.SDKVersion)
	}
	if len(d.Provisioners) != 1 || d.Provisioners[0] != plugin.DEFAULT_NAME || len(d.Builders) != 0 {
		t.Errorf("components = provisioners %v builders %v, want only the default provisioner", d.Provisioners, d.Builders)
	}
}

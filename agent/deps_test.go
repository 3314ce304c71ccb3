package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// The Packer plugin lives in its own module (packer/go.mod) so that building
// the agent neither compiles nor downloads anything of Packer's. These checks
// ask the go command itself, so a stray import or a re-added requirement fails
// here rather than in a review.

// isPackerPath reports whether a package or module path belongs to Packer.
func isPackerPath(p string) bool { return strings.HasPrefix(p, "github.com/hashicorp/packer") }

// goCmd runs the go command in this package's directory and returns stdout.
func goCmd(t *testing.T, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func TestAgentBuildHasNoPackerPackage(t *testing.T) {
	deps := strings.Fields(string(goCmd(t, "list", "-deps", ".")))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed nothing")
	}
	for _, p := range deps {
		if isPackerPath(p) {
			t.Errorf("the agent depends on Packer package %s", p)
		}
	}
}

func TestAgentModuleHasNoPackerRequirement(t *testing.T) {
	var mod struct {
		Require []struct{ Path string }
		Replace []struct{ Old struct{ Path string } }
	}
	if err := json.Unmarshal(goCmd(t, "mod", "edit", "-json"), &mod); err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	for _, r := range mod.Require {
		if isPackerPath(r.Path) {
			t.Errorf("go.mod requires %s: it belongs in packer/go.mod", r.Path)
		}
	}
	for _, r := range mod.Replace {
		// The go-cty fork is something only the Packer SDK needs.
		if r.Old.Path == "github.com/zclconf/go-cty" {
			t.Errorf("go.mod replaces %s: it belongs in packer/go.mod", r.Old.Path)
		}
	}
	// The module graph is what a build may download, indirect requirements included.
	for _, m := range strings.Fields(string(goCmd(t, "list", "-m", "-f", "{{.Path}}", "all"))) {
		if isPackerPath(m) {
			t.Errorf("the agent module's graph holds %s", m)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
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

// agentTags are the build tags `make build` gives the agent (the
// Makefile's AGENT_TAGS line, their one home).
func agentTags(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "AGENT_TAGS := "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no AGENT_TAGS line in the Makefile")
	return ""
}

// A linked text/template (html/template, golang.org/x/net/trace) calls
// methods by a name known only at run time, so the linker keeps every
// exported method of every type that reaches an interface: the EC2 client's
// hundreds of operations and their serializers among them. grpc pulled it
// in through x/net/trace, and the agent grew from 23 to 56 MB.
func TestAgentBuildLinksNoTemplateEngine(t *testing.T) {
	tags := agentTags(t)
	deps := strings.Fields(string(goCmd(t, "list", "-deps", "-tags", tags, ".")))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed nothing")
	}
	for _, p := range deps {
		switch p {
		case "text/template", "html/template", "golang.org/x/net/trace":
			t.Errorf("the agent built with tags %q links %s: the linker then keeps every exported method (see the Makefile's AGENT_TAGS)", tags, p)
		}
	}
}

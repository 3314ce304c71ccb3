package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/imds/aemmtest"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// bakedConfig is what a Packer build leaves in /etc/nodeprep/config.yaml;
// its label in the nodeadm drop-in shows that a run applied it.
const bakedConfig = "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  multus: {install: false}\n  node: {labels: {nodeprep.dev/baked: \"yes\"}}\n"

const nodeadmOnly = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\nContent-Type: application/node.eks.aws\n\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster: {name: telco}\n--//--\n"

// The baked config applies whenever it is present, and an instance with no
// user data and no baked config has nothing to do (exit 0, so kubelet is not
// blocked). IMDS is AWS's ec2-metadata-mock.
func TestBakedConfigAndAbsentUserDataAgainstAEMM(t *testing.T) {
	noUserData := aemmtest.Config{UserData: aemmtest.Section{Paths: map[string]string{"userdata": "/latest/user-data-elsewhere"}}}
	nodeadmUserData := aemmtest.Config{UserData: aemmtest.Section{Values: map[string]any{"userdata": aemmtest.B64(nodeadmOnly)}}}
	for _, c := range []struct {
		name       string
		imds       aemmtest.Config
		baked      bool
		wantStatus string
	}{
		{"no user data, no baked config", noUserData, false, "no-config"},
		{"no user data, baked config", noUserData, true, "succeeded"},
		{"nodeadm-only user data, baked config", nodeadmUserData, true, "succeeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			endpoint := aemmtest.Start(t, c.imds, 0)
			root := t.TempDir()
			if c.baked {
				p := filepath.Join(root, api.DefaultBakedConfigPath)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(bakedConfig), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("NODEPREP_USER_DATA", "")
			code, _, stderr := runCLI(t, "", "run", "--root", root, "--imds-endpoint", endpoint, "--timeout", (2 * time.Minute).String())
			if code != exitOK {
				t.Fatalf("run: code %d, want 0:\n%s", code, stderr)
			}
			dropIn, _ := os.ReadFile(filepath.Join(root, nodeadm.DropInPath))
			if applied := strings.Contains(string(dropIn), "nodeprep.dev/baked=yes"); applied != c.baked {
				t.Errorf("baked config applied: %v, want %v\n%s", applied, c.baked, stderr)
			}
			if _, out, _ := runCLI(t, "", "status", "--root", root); !strings.Contains(out, c.wantStatus) {
				t.Errorf("status lacks %q:\n%s", c.wantStatus, out)
			}
		})
	}
}

package bootstrap

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// A run killed while installing a plugin leaves its temp file; the next run
// removes it before it does anything else, and leaves other files alone.
func TestRunRemovesStaleTempFiles(t *testing.T) {
	root := hostfs.New(t.TempDir())
	stale := []string{"/opt/cni/bin/.multus.nodeprep-3051957921", "/etc/cni/net.d/.00-multus.conf.tmp-42", "/etc/eks/nodeadm.d/.90-nodeprep.yaml.tmp-7"}
	kept := []string{"/opt/cni/bin/multus", "/opt/cni/bin/.keep", "/etc/cni/net.d/10-aws.conflist"}
	for _, p := range append(append([]string(nil), stale...), kept...) {
		if _, err := root.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{Host: Host{Root: root}, Log: slog.New(slog.DiscardHandler), UserData: func(context.Context) ([]byte, error) {
		return []byte(strings.Replace(failingConfig, "%s", "Taint", 1)), nil
	}}
	_, _ = r.Run(context.Background())
	for _, p := range stale {
		if root.Exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
	for _, p := range kept {
		if !root.Exists(p) {
			t.Errorf("%s removed", p)
		}
	}
}

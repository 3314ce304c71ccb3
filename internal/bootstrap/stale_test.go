package bootstrap

import (
	"context"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/devinfo"
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

// filesUnder lists every regular file under the root, by host path.
func filesUnder(t *testing.T, root hostfs.Root) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root.Dir(), p)
		out["/"+filepath.ToSlash(rel)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// plantAndRerun plants a stale temp file in every directory the first run
// wrote a file into, runs again and reports the temps left behind. The
// directories come from what the run really wrote, not from any list the
// code keeps, so a writer that forgets to declare its directory fails here.
func plantAndRerun(t *testing.T, root hostfs.Root, before map[string]bool, rerun func()) {
	t.Helper()
	dirs := map[string]bool{}
	for p := range filesUnder(t, root) {
		if !before[p] && !strings.HasPrefix(p, "/sys/") && !strings.HasPrefix(p, "/proc/") && !strings.HasPrefix(p, "/dev/") {
			dirs[path.Dir(p)] = true
		}
	}
	var planted []string
	for d := range dirs {
		p := d + "/.killed-write.tmp-4242"
		if _, err := root.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
		planted = append(planted, p)
	}
	sort.Strings(planted)
	if len(planted) == 0 {
		t.Fatal("the run wrote nothing")
	}
	rerun()
	for _, p := range planted {
		if root.Exists(p) {
			t.Errorf("stale temp %s left behind", p)
		}
	}
}

// TestStaleTempsInEveryWrittenDirAreRemoved covers the DPDK and pod-network
// side (conflists in Multus's confDir, device-info files, the device plugin
// config, modules, networkd) on the simulated node, and the CNI side
// (plugins, 00-multus.conf, kubeconfigs, whereabouts) on a CNI host.
func TestStaleTempsInEveryWrittenDirAreRemoved(t *testing.T) {
	t.Run("dpdk and pod networks", func(t *testing.T) {
		n := newSimNode(t, "c5.4xlarge")
		one := int32(1)
		n.cfg.Spec.Interfaces = []api.Interface{{Name: "n3", SubnetID: n.subnet.ID, DeviceIndex: &one, Driver: api.DriverVFIOPCI, IPv4PrefixCount: 1}}
		api.SetDefaults(n.cfg)
		if err := api.Validate(n.cfg); err != nil {
			t.Fatal(err)
		}
		before := filesUnder(t, n.h.Root)
		n.run(t)
		for _, want := range []string{n.cfg.Spec.Multus.NetworkConfDir, devinfo.Dir} {
			if names, _ := n.h.Root.ReadDirNames(want); len(names) == 0 {
				t.Fatalf("the run wrote nothing into %s; the test would not cover it", want)
			}
		}
		plantAndRerun(t, n.h.Root, before, func() { n.run(t) })
	})
	t.Run("cni", func(t *testing.T) {
		cfg, root := cniHost(t, true)
		before := filesUnder(t, root)
		if _, err := runGraph(t, Host{Root: root}, cfg, false); err != nil {
			t.Fatal(err)
		}
		plantAndRerun(t, root, before, func() {
			if _, err := runGraph(t, Host{Root: root}, cfg, false); err != nil {
				t.Fatal(err)
			}
		})
	})
}

package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/multus/multustest"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/state"
)

// cniHost is a node root with a bundle, kubelet's kubeconfig, the VPC CNI's
// conflist and a VPC CNI plugin already in the bin dir.
func cniHost(t *testing.T, whereabouts bool) (*api.NodePrepConfig, hostfs.Root) {
	t.Helper()
	root := hostfs.New(t.TempDir())
	files := map[string]string{
		"/etc/cni/net.d/10-aws.conflist": `{"cniVersion":"0.4.0","name":"aws-cni","plugins":[{"type":"aws-cni"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		multus.DefaultKubeletKubeconfig:  multustest.KubeletKubeconfig(multustest.Server, multustest.CAFile, "aws-iam-authenticator", multustest.ClusterArgs...),
		"/opt/cni/bin/aws-cni":           "vpc-cni",
	}
	for p, c := range files {
		if _, err := root.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var sums []string
	for _, name := range []string{"multus", "nodeprep-ipam", "host-device", "ipvlan", "macvlan", "static", "host-local", "whereabouts"} {
		content := "binary " + name
		if _, err := root.WriteFile("/opt/nodeprep/cni/test-1/"+name, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		sums = append(sums, hex.EncodeToString(sum[:])+"  "+name)
	}
	if _, err := root.WriteFile("/opt/nodeprep/cni/test-1/SHA256SUMS", []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &api.NodePrepConfig{}
	cfg.Spec.Multus.Whereabouts.Enabled = whereabouts
	api.SetDefaults(cfg)
	if err := api.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, root
}

func runCNI(t *testing.T, cfg *api.NodePrepConfig, root hostfs.Root, dryRun bool) (engine.Report, error) {
	t.Helper()
	out, err := runGraph(t, Host{Root: root}, cfg, dryRun, StepCNI)
	return out.Report, err
}

func cniChanges(r engine.Report) []string {
	var out []string
	for _, s := range r.Steps {
		if s.Name == StepCNI {
			for _, c := range s.Changes {
				out = append(out, c.What)
			}
		}
	}
	return out
}

func TestCNIStepInstallsAndConfigures(t *testing.T) {
	cfg, root := cniHost(t, true)
	dir := root.Dir()

	// plan: reports, changes nothing.
	report, err := runCNI(t, cfg, root, true)
	if err != nil {
		t.Fatal(err)
	}
	planned := cniChanges(report)
	if len(planned) != 5 || !strings.HasPrefix(planned[0], "install multus, nodeprep-ipam, host-device, ipvlan, macvlan, static, host-local, whereabouts into /opt/cni/bin") {
		t.Fatalf("plan: %q", planned)
	}
	if root.Exists("/opt/cni/bin/multus") || root.Exists("/etc/cni/net.d/00-multus.conf") {
		t.Fatal("plan changed the host")
	}

	report, err = runCNI(t, cfg, root, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := cniChanges(report); strings.Join(got, "\n") != strings.Join(planned, "\n") {
		t.Fatalf("run did %q, plan said %q", got, planned)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "etc/cni/net.d/00-multus.conf"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := libcni.ConfFromBytes(conf)
	if err != nil || nc.Network.Type != "multus" || nc.Network.CNIVersion != "0.4.0" {
		t.Fatalf("00-multus.conf: %v %+v", err, nc)
	}
	for _, p := range []string{"/opt/cni/bin/whereabouts", "/etc/cni/net.d/multus.d/multus.kubeconfig", "/etc/cni/net.d/whereabouts.d/whereabouts.conf", "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"} {
		if !root.Exists(p) {
			t.Errorf("%s missing", p)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "opt/cni/bin/aws-cni")); string(data) != "vpc-cni" {
		t.Fatal("the VPC CNI's plugin was touched")
	}
	if f, err := state.Read(root); err != nil || f.Facts["cni.bundle"] != "test-1" {
		t.Fatalf("state %+v, %v", f, err)
	}

	// Second run: nothing to do.
	report, err = runCNI(t, cfg, root, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := cniChanges(report); len(got) != 0 {
		t.Fatalf("second run changed %q", got)
	}
}

func TestCNIStepBadBundleInstallsNothing(t *testing.T) {
	cfg, root := cniHost(t, false)
	dir := root.Dir()
	if err := os.WriteFile(filepath.Join(dir, "opt/nodeprep/cni/test-1/ipvlan"), []byte("corrupt"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := runCNI(t, cfg, root, false)
	if !errors.Is(err, cnibundle.ErrChecksum) || !strings.Contains(err.Error(), "ipvlan") {
		t.Fatalf("got %v", err)
	}
	for _, p := range []string{"/opt/cni/bin/multus", "/etc/cni/net.d/00-multus.conf"} {
		if root.Exists(p) {
			t.Errorf("%s written despite the bad bundle", p)
		}
	}
}

func TestCNIStepDisabled(t *testing.T) {
	cfg, root := cniHost(t, false)
	off := false
	cfg.Spec.Multus.Install = &off
	report, err := runCNI(t, cfg, root, false)
	if err != nil || len(cniChanges(report)) != 0 || root.Exists("/opt/cni/bin/multus") {
		t.Fatalf("disabled step acted: %v %q", err, cniChanges(report))
	}
}

func TestWriteNodeConfig(t *testing.T) {
	cfg, root := cniHost(t, false)
	cfg.Spec.FailurePolicy = api.FailurePolicyTaint
	n := &Node{Host: Host{Root: root}, Log: slog.New(slog.DiscardHandler), Config: cfg}
	if err := n.runNodeadm(context.Background(), &changetest.Actions{}, []string{StepCNI}); err != nil {
		t.Fatal(err)
	}
	data, err := root.ReadFile(nodeadm.DropInPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "--register-with-taints=nodeprep.dev/failed=true:NoSchedule") {
		t.Fatalf("drop-in:\n%s", data)
	}
}

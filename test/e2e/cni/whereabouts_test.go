package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nad"
)

// TestWhereaboutsWithGeneratedConfig runs the real whereabouts plugin with the
// whereabouts.conf and kubeconfig nodeprep generates and the IPAM block of a
// rendered NAD: it must take the first address of the subnet's top half from
// a pool in kube-system, release it on DEL, and make only requests the
// shipped RBAC (plus the Node authorizer) allows.
func TestWhereaboutsWithGeneratedConfig(t *testing.T) {
	requireRoot(t)
	built := bundleDir(t)
	if _, err := os.Stat(filepath.Join(built, "whereabouts")); err != nil {
		t.Skip("bundle built without whereabouts")
	}
	binDir := installBundle(t, built)
	tmp := t.TempDir()

	addVeth(t, prefix+"wb0", prefix+"wb1")
	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-w%d", prefix, os.Getpid()))

	kube := newFakeKube()
	srv := httptest.NewTLSServer(kube)
	t.Cleanup(srv.Close)
	kubeletKC := writeKubeletKubeconfig(t, tmp, srv)

	clusterNetwork := filepath.Join(tmp, "etc/cni/net.d/10-aws.conflist")
	cfg := nodeprepConfig(t, tmp, binDir, clusterNetwork)
	cfg.Spec.Multus.Whereabouts.Enabled = true
	cfg.Spec.Interfaces[0].Name = prefix + "wb0"
	files, err := multus.Files(hostfs.New("/"), cfg.Spec.Multus, multus.Options{KubeletKubeconfig: kubeletKC})
	if err != nil {
		t.Fatal(err)
	}
	writeMultusFiles(t, files)

	nads, err := nad.Build(cfg, []nad.Interface{{Name: prefix + "wb0", SubnetCIDR: "198.51.100.0/24"}}, nad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var plugin map[string]any
	if err := json.Unmarshal([]byte(nads[0].Spec.Config), &plugin); err != nil {
		t.Fatal(err)
	}
	// No ipvlan in this kernel: macvlan on the same master, IPAM as rendered.
	plugin["type"], plugin["mode"] = "macvlan", "bridge"
	ipam := plugin["ipam"].(map[string]any)
	if ipam["type"] != "whereabouts" {
		t.Fatalf("rendered IPAM %v", ipam)
	}
	// On a node whereabouts finds /etc/cni/net.d/whereabouts.d/whereabouts.conf
	// itself; here the file lives under tmp.
	ipam["configuration_path"] = filepath.Join(cfg.Spec.Multus.ConfDir, multus.WhereaboutsDir, multus.WhereaboutsConfName)
	confBytes, _ := json.Marshal(plugin)
	conf, err := libcni.ConfFromBytes(confBytes)
	if err != nil {
		t.Fatal(err)
	}

	var stderr strings.Builder
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: &stderr}})
	rt := &libcni.RuntimeConf{
		ContainerID: prefix + "-wb", NetNS: nsPath, IfName: "net1",
		Args: [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "wpod"}},
	}
	ctx := context.Background()
	if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("ADD: %v\n%s", err, confBytes)
	}
	t.Cleanup(func() { _ = cniConfig.DelNetwork(context.Background(), conf, rt) })
	// whereabouts.conf's log_level keeps debug lines out of the runtime's journal.
	if strings.Contains(stderr.String(), "[debug]") {
		t.Errorf("whereabouts logged debug lines despite log_level error:\n%s", stderr.String())
	}
	if _, addrs, err := linkInNS(t, ns, "net1"); err != nil || len(addrs) != 1 || addrs[0] != "198.51.100.128/24" {
		t.Fatalf("net1: %v %v, want the first address of the top half", addrs, err)
	}
	const pool = "/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools/198.51.100.0-24"
	allocations := func() map[string]any {
		obj := kube.object(pool)
		if obj == nil {
			t.Fatalf("no IPPool %s", pool)
		}
		a, _ := obj["spec"].(map[string]any)["allocations"].(map[string]any)
		return a
	}
	if a := allocations(); len(a) != 1 || a["128"] == nil {
		t.Fatalf("pool allocations %v, want offset 128", a)
	}

	if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if a := allocations(); len(a) != 0 {
		t.Fatalf("allocations after DEL: %v", a)
	}
	if kube.unauth != 0 {
		t.Errorf("%d requests without the exec credential's token", kube.unauth)
	}
	checkAuthorized(t, kube.requests(), "../../../configs/manifests/multus-whereabouts-rbac.yaml")
}

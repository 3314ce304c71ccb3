package cni

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/multus/multustest"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

const execToken = "nodeprep-exec-token"

// fakeAPI is the slice of kube-apiserver the Multus thin plugin talks to:
// the pod, its NetworkAttachmentDefinition and the pod status update that
// carries the network-status annotation. Every request must carry the token
// the kubeconfig's exec credential produced.
type fakeAPI struct {
	t      *testing.T
	pod    map[string]any
	nad    map[string]any
	mu     sync.Mutex
	status []string // pod status updates, as sent
	unauth int
	events int
	reqs   []request
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+execToken {
		f.mu.Lock()
		f.unauth++
		f.mu.Unlock()
		writeStatus(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, parseRequest(r))
	f.mu.Unlock()
	const podPath = "/api/v1/namespaces/default/pods/mpod"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == podPath:
		writeJSON(w, http.StatusOK, f.pod)
	case r.Method == http.MethodPut && r.URL.Path == podPath+"/status":
		// Multus sends protobuf; the annotation's JSON value is in it verbatim.
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.status = append(f.status, string(body))
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, f.pod)
	case r.Method == http.MethodGet && r.URL.Path == "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/"+f.nadName():
		writeJSON(w, http.StatusOK, f.nad)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/default/events":
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.events++
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"apiVersion": "v1", "kind": "Event", "metadata": map[string]any{"name": "e", "namespace": "default"}})
	default:
		writeStatus(w, http.StatusNotFound, r.Method+" "+r.URL.Path+" not found")
	}
}

// nadName is the name of the NAD the fake serves.
func (f *fakeAPI) nadName() string {
	if md, ok := f.nad["metadata"].(map[string]any); ok {
		if name, ok := md["name"].(string); ok {
			return name
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, msg string) {
	reason := map[int]string{400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 409: "AlreadyExists", 422: "Invalid"}[code]
	writeJSON(w, code, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": msg, "reason": reason, "code": code})
}

// TestMultusDelegatesWithGeneratedConfig runs the real Multus thin plugin on
// the 00-multus.conf and kubeconfig nodeprep generates (from a kubelet
// kubeconfig with an exec credential), with a rendered NAD: Multus must
// reach the API with the exec token, run the cluster network and the NAD's
// plugin, and report network-status.
func TestMultusDelegatesWithGeneratedConfig(t *testing.T) {
	requireRoot(t)
	built := bundleDir(t)
	binDir := installBundle(t, built)
	tmp := t.TempDir()
	// Multus keeps its delegate cache in its default cniDir, as on a node;
	// remove it afterwards unless it was already there.
	for _, dir := range []string{"/var/lib/cni", "/var/lib/cni/multus"} {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			break
		}
	}

	// Links: one stands in for the VPC CNI's eth0, one is the Multus ENI,
	// known by its logical name (altname) as the links step leaves it.
	addVeth(t, prefix+"cn0", prefix+"cn1")
	media := addVeth(t, prefix+"md0", prefix+"md1")
	if err := netlink.LinkAddAltName(media, "media"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDelAltName(media, "media") })
	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-m%d", prefix, os.Getpid()))

	// The "cluster network": macvlan+static in place of aws-cni, which
	// needs the aws-node daemon.
	api, cfg, confDir := multusNode(t, tmp, binDir, "macvlan", prefix+"cn0")

	// The NAD as `nodeprep render nad` writes it: no spec.config, so Multus
	// reads the network from the conflist of the same name in its confDir,
	// which nodeprep writes from the ENI's EC2-assigned addresses. This
	// kernel has no ipvlan, so the test swaps in macvlan; master (the
	// altname) and the host-local IPAM stay as written.
	nads := nad.Build(cfg, nad.Options{Namespace: "default"})
	if len(nads) != 1 || nads[0].Spec.Config != "" {
		t.Fatalf("rendered NADs %+v", nads)
	}
	eniFacts := mediaNetwork(eni.Attachment{
		Subnet:       netip.MustParsePrefix("198.51.100.0/24"),
		PrimaryIP:    netip.MustParseAddr("198.51.100.10"),
		SecondaryIPs: []netip.Addr{netip.MustParseAddr("198.51.100.77")},
		IPv4Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.32/28")},
	})
	conflist, err := netconf.Build(eniFacts, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]any
	if err := json.Unmarshal(conflist, &list); err != nil {
		t.Fatal(err)
	}
	plugin := list["plugins"].([]any)[0].(map[string]any)
	plugin["type"], plugin["mode"] = "macvlan", "bridge"
	plugin["ipam"].(map[string]any)["dataDir"] = filepath.Join(tmp, "host-local")
	swapped, _ := json.Marshal(list)
	writeFile(t, netconf.Path(cfg.Spec.Multus.NetworkConfDir, "media"), string(swapped), 0o644)
	api.nad, api.pod = configLessNAD("media"), mpod("media")

	conf := multusConf(t, confDir)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	rt := podRuntime(prefix+"-multus", nsPath)
	ctx := context.Background()
	if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus ADD: %v\n%s", err, conf.Bytes)
	}
	t.Cleanup(func() { _ = cniConfig.DelNetwork(context.Background(), conf, rt) })

	if _, addrs, err := linkInNS(t, ns, "eth0"); err != nil || len(addrs) != 1 || addrs[0] != "192.0.2.50/24" {
		t.Fatalf("cluster network eth0: %v %v", addrs, err)
	}
	l, addrs, err := linkInNS(t, ns, "net1")
	if err != nil || len(addrs) != 1 || addrs[0] != "198.51.100.32/24" {
		t.Fatalf("NAD net1: %v %v (want the first address EC2 assigned for pods, from the node-local conflist)", addrs, err)
	}
	if l.Attrs().ParentIndex != media.Attrs().Index {
		t.Fatalf("net1 is not on the media ENI")
	}
	api.mu.Lock()
	status, unauth, events, reqs := strings.Join(api.status, "\n"), api.unauth, api.events, api.reqs
	api.mu.Unlock()
	checkAuthorized(t, reqs, "../../../configs/manifests/multus-rbac.yaml")
	if events == 0 {
		t.Error("Multus posted no AddedInterface event")
	}
	if unauth != 0 {
		t.Errorf("%d requests without the exec credential's token", unauth)
	}
	if !strings.Contains(status, `"default/media"`) || !strings.Contains(status, "198.51.100.32") {
		t.Fatalf("network-status not reported: %q", status)
	}

	if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus DEL: %v", err)
	}
	for _, ifName := range []string{"eth0", "net1"} {
		if _, _, err := linkInNS(t, ns, ifName); err == nil {
			t.Errorf("%s still in the namespace after DEL", ifName)
		}
	}
}

// configLessNAD is a NAD as `nodeprep render nad` writes it: no spec.config.
func configLessNAD(name string) map[string]any {
	return map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": name, "namespace": "default", "uid": "nad-uid"},
	}
}

// mpod is the pod the fake API serves, asking for one network.
func mpod(network string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{
			"name": "mpod", "namespace": "default", "uid": "pod-uid", "resourceVersion": "1",
			"annotations": map[string]string{"k8s.v1.cni.cncf.io/networks": network},
		},
		"spec": map[string]any{"nodeName": "node-1", "containers": []any{map[string]any{"name": "c", "image": "i"}}},
	}
}

// podRuntime is what kubelet's runtime hands Multus for mpod's sandbox.
func podRuntime(id, nsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: id, NetNS: nsPath, IfName: "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "mpod"},
			{"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", "pod-uid"},
		},
	}
}

// nodeprepConfig is a defaulted config whose Multus paths live under tmp.
func nodeprepConfig(t *testing.T, tmp, binDir, clusterNetwork string) *api.NodePrepConfig {
	t.Helper()
	cfg := &api.NodePrepConfig{Spec: api.Spec{
		Interfaces: []api.Interface{{Name: "media", SubnetID: "subnet-0a1b2c3d4e5f60718", IPv4PrefixCount: 1}},
		Multus: api.Multus{
			ClusterNetwork:         clusterNetwork,
			ReadinessIndicatorFile: clusterNetwork,
			Kubeconfig:             filepath.Join(tmp, "etc/cni/net.d/multus.d/multus.kubeconfig"),
			BinDir:                 binDir,
			ConfDir:                filepath.Dir(clusterNetwork),
			NetworkConfDir:         filepath.Join(tmp, "etc/cni/multus/net.d"),
			BundleDir:              filepath.Join(tmp, "bundle"),
		},
	}}
	api.SetDefaults(cfg)
	if err := api.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// multusNode sets up what a node has when Multus runs: a cluster network
// conflist (plugin kind on master, static 192.0.2.50/24) in confDir under
// tmp, kubelet's kubeconfig for a fake API server (TLS: client-go applies a
// kubeconfig's credentials only over TLS), and the Multus files nodeprep's
// own code writes, every path under tmp.
func multusNode(t *testing.T, tmp, binDir, kind, master string) (kube *fakeAPI, cfg *api.NodePrepConfig, confDir string) {
	t.Helper()
	confDir = filepath.Join(tmp, "etc/cni/net.d")
	clusterNetwork := filepath.Join(confDir, "10-aws.conflist")
	mode := map[string]string{"macvlan": "bridge", "ipvlan": "l2"}[kind]
	writeFile(t, clusterNetwork, `{"cniVersion": "1.0.0", "name": "aws-cni", "plugins": [
		{"type": "`+kind+`", "master": "`+master+`", "mode": "`+mode+`",
		 "ipam": {"type": "static", "addresses": [{"address": "192.0.2.50/24"}]}}]}`, 0o644)
	kube = &fakeAPI{t: t}
	srv := httptest.NewTLSServer(kube)
	t.Cleanup(srv.Close)
	kubeletKC := writeKubeletKubeconfig(t, tmp, srv)
	cfg = nodeprepConfig(t, tmp, binDir, clusterNetwork)
	files, err := multus.Files(hostfs.New("/"), cfg.Spec.Multus, multus.Options{KubeletKubeconfig: kubeletKC})
	if err != nil {
		t.Fatal(err)
	}
	writeMultusFiles(t, files)
	return kube, cfg, confDir
}

// writeMultusFiles writes the files the way the cni step does.
func writeMultusFiles(t *testing.T, files []multus.File) {
	t.Helper()
	changes, err := multus.Plan(hostfs.New("/"), files)
	if err != nil {
		t.Fatal(err)
	}
	if err := change.Apply(context.Background(), &changetest.Actions{}, changes); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// writeKubeletKubeconfig writes what nodeadm leaves for kubelet: the cluster
// CA (here the fake API server's), an exec credential that prints execToken,
// and /var/lib/kubelet/kubeconfig pointing at both. It returns the kubeconfig.
func writeKubeletKubeconfig(t *testing.T, tmp string, srv *httptest.Server) string {
	t.Helper()
	caFile := filepath.Join(tmp, "etc/kubernetes/pki/ca.crt")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), 0o644)
	cred := filepath.Join(tmp, "cred.sh")
	writeFile(t, cred, "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\""+execToken+"\"}}'\n", 0o755)
	kubeletKC := filepath.Join(tmp, "var/lib/kubelet/kubeconfig")
	writeFile(t, kubeletKC, multustest.KubeletKubeconfig(srv.URL, caFile, cred), 0o644)
	return kubeletKC
}

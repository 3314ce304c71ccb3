package multus

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/multus/multustest"
)

// A conflist shaped like the one aws-node writes (aws-cni, egress, portmap).
const awsConflist = `{
  "cniVersion": "1.0.0",
  "name": "aws-cni",
  "disableCheck": true,
  "plugins": [
    {"name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001", "podSGEnforcingMode": "strict", "pluginLogFile": "/var/log/aws-routed-eni/plugin.log", "pluginLogLevel": "DEBUG", "capabilities": {"io.kubernetes.cri.pod-annotations": true}},
    {"name": "egress-cni", "type": "egress-cni", "mtu": "9001", "enabled": "false", "randomizeSNAT": "prng", "nodeIP": "", "ipam": {"type": "host-local", "ranges": [[{"subnet": "fd00::ac:00/118"}]], "routes": [{"dst": "::/0"}], "dataDir": "/run/cni/v4pd/egress-v6-ipam"}, "pluginLogFile": "/var/log/aws-routed-eni/egress-v6-plugin.log", "pluginLogLevel": "DEBUG"},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}`

// The shape nodeadm writes to /var/lib/kubelet/kubeconfig on AL2023.
var nodeadmKubeconfig = multustest.KubeletKubeconfig(multustest.Server, multustest.CAFile, "aws-iam-authenticator", multustest.ClusterArgs...)

func defaulted(t *testing.T, whereabouts bool) api.Multus {
	t.Helper()
	c := &api.NodePrepConfig{}
	c.Spec.Multus.Whereabouts.Enabled = whereabouts
	api.SetDefaults(c)
	if err := api.Validate(c); err != nil {
		t.Fatal(err)
	}
	return c.Spec.Multus
}

func hostWith(t *testing.T, files map[string]string) hostfs.Root {
	t.Helper()
	root := hostfs.New(t.TempDir())
	for p, content := range files {
		if _, err := root.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestMultusConfLoadsWithLibcni(t *testing.T) {
	m := defaulted(t, false)
	root := hostWith(t, map[string]string{api.DefaultClusterNetwork: awsConflist, DefaultKubeletKubeconfig: nodeadmKubeconfig})
	files, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	conf := find(t, files, "/etc/cni/net.d/00-multus.conf")
	if conf.Mode != 0o644 {
		t.Fatalf("mode %v", conf.Mode)
	}
	nc, err := libcni.ConfFromBytes(conf.Data)
	if err != nil {
		t.Fatalf("libcni rejects 00-multus.conf: %v\n%s", err, conf.Data)
	}
	if nc.Network.Type != "multus" || nc.Network.Name != NetworkName {
		t.Fatalf("type %q name %q", nc.Network.Type, nc.Network.Name)
	}
	// cniVersion follows the master conflist, and its capabilities are advertised.
	if nc.Network.CNIVersion != "1.0.0" {
		t.Fatalf("cniVersion %q, want the conflist's 1.0.0", nc.Network.CNIVersion)
	}
	if !nc.Network.Capabilities["portMappings"] || !nc.Network.Capabilities["io.kubernetes.cri.pod-annotations"] {
		t.Fatalf("capabilities %v", nc.Network.Capabilities)
	}
	// The Multus-specific fields, by the names Multus's NetConf reads.
	var raw map[string]any
	if err := json.Unmarshal(conf.Data, &raw); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]any{
		"clusterNetwork":         "/etc/cni/net.d/10-aws.conflist",
		"readinessindicatorfile": "/etc/cni/net.d/10-aws.conflist",
		"kubeconfig":             "/etc/cni/net.d/multus.d/multus.kubeconfig",
		"binDir":                 "/opt/cni/bin",
		"logToStderr":            true,
	} {
		if raw[field] != want {
			t.Errorf("%s = %v, want %v", field, raw[field], want)
		}
	}
	if _, ok := raw["delegates"]; ok {
		t.Error("delegates set alongside clusterNetwork; Multus ignores one of them")
	}
}

func TestCNIVersionFallbacks(t *testing.T) {
	m := defaulted(t, false)
	// No conflist yet (aws-node not started): the configured version, then the default.
	root := hostWith(t, map[string]string{DefaultKubeletKubeconfig: nodeadmKubeconfig})
	cn, err := ReadClusterNetwork(root, m.ClusterNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if v := NewNetConf(m, cn).CNIVersion; v != DefaultCNIVersion {
		t.Fatalf("got %s", v)
	}
	m.CNIVersion = "0.3.1"
	if v := NewNetConf(m, cn).CNIVersion; v != "0.3.1" {
		t.Fatalf("got %s", v)
	}
	// A conflist without cniVersion: libcni leaves it empty, the config decides.
	root = hostWith(t, map[string]string{m.ClusterNetwork: `{"name":"aws-cni","plugins":[{"type":"aws-cni"}]}`})
	cn, err = ReadClusterNetwork(root, m.ClusterNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if v := NewNetConf(m, cn).CNIVersion; v != "0.3.1" {
		t.Fatalf("got %s", v)
	}
	// A single .conf as cluster network.
	m.ClusterNetwork = "/etc/cni/net.d/10-flannel.conf"
	root = hostWith(t, map[string]string{m.ClusterNetwork: `{"cniVersion":"0.4.0","name":"cbr0","type":"flannel","capabilities":{"portMappings":true}}`})
	cn, err = ReadClusterNetwork(root, m.ClusterNetwork)
	if err != nil {
		t.Fatal(err)
	}
	if cn.CNIVersion != "0.4.0" || !cn.Capabilities["portMappings"] {
		t.Fatalf("got %+v", cn)
	}
}

func TestBrokenClusterNetworkIsAnError(t *testing.T) {
	m := defaulted(t, false)
	root := hostWith(t, map[string]string{m.ClusterNetwork: `{"cniVersion": "0.4.0", "plugins": [`, DefaultKubeletKubeconfig: nodeadmKubeconfig})
	if _, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig}); !errors.Is(err, ErrClusterNetwork) {
		t.Fatalf("got %v", err)
	}
}

func TestKubeconfigReusesKubeletExecCredential(t *testing.T) {
	m := defaulted(t, false)
	root := hostWith(t, map[string]string{DefaultKubeletKubeconfig: nodeadmKubeconfig})
	files, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	kc := find(t, files, m.Kubeconfig)
	if kc.Mode != 0o600 {
		t.Fatalf("kubeconfig mode %v, want 0600", kc.Mode)
	}
	var got Kubeconfig
	if err := yaml.Unmarshal(kc.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.APIVersion != "v1" || got.Kind != "Config" || got.CurrentContext != "nodeprep" || len(got.Contexts) != 1 {
		t.Fatalf("header %+v", got)
	}
	if got.Clusters[0].Cluster["server"] != "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com" ||
		got.Clusters[0].Cluster["certificate-authority"] != "/etc/kubernetes/pki/ca.crt" {
		t.Fatalf("cluster %v", got.Clusters[0].Cluster)
	}
	exec, ok := got.Users[0].User["exec"].(map[string]any)
	if !ok || exec["command"] != "aws-iam-authenticator" || exec["apiVersion"] != "client.authentication.k8s.io/v1beta1" {
		t.Fatalf("user %v", got.Users[0].User)
	}
	if args, _ := exec["args"].([]any); len(args) != 5 || args[2] != "my-cluster" {
		t.Fatalf("exec args %v", exec["args"])
	}
	if strings.Contains(string(kc.Data), "token:") {
		t.Fatal("a static token was written")
	}
}

func TestKubeconfigCertificateFilesMadeAbsolute(t *testing.T) {
	kubeadm := `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://10.0.0.1:6443
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
users:
- name: default-auth
  user:
    client-certificate: pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
`
	out, err := DeriveKubeconfig([]byte(kubeadm), "/etc/kubernetes/kubelet.conf", WhereaboutsNamespace)
	if err != nil {
		t.Fatal(err)
	}
	var got Kubeconfig
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Users[0].User["client-certificate"] != "/etc/kubernetes/pki/kubelet-client-current.pem" {
		t.Fatalf("relative cert path not resolved: %v", got.Users[0].User)
	}
	if got.Clusters[0].Cluster["certificate-authority-data"] != "Q0EK" {
		t.Fatalf("cluster %v", got.Clusters[0].Cluster)
	}
	if got.Contexts[0].Context.Namespace != WhereaboutsNamespace {
		t.Fatalf("namespace %q", got.Contexts[0].Context.Namespace)
	}
}

func TestKubeconfigRejectsStaticAndBroken(t *testing.T) {
	for name, kc := range map[string]string{
		"token":      strings.Replace(nodeadmKubeconfig, "      exec:", "      token: abc\n      exec:", 1),
		"no context": strings.Replace(nodeadmKubeconfig, "current-context: kubelet", "current-context: other", 1),
		"no cred":    "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://x}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: k, context: {cluster: c, user: u}}]\ncurrent-context: k\n",
		"no server":  "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {}}]\nusers: [{name: u, user: {tokenFile: /t}}]\ncontexts: [{name: k, context: {cluster: c, user: u}}]\ncurrent-context: k\n",
		"not yaml":   "{{{",
	} {
		_, err := DeriveKubeconfig([]byte(kc), DefaultKubeletKubeconfig, "")
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if name == "token" && !errors.Is(err, ErrStaticCredential) {
			t.Errorf("token: got %v", err)
		}
		if name != "token" && !errors.Is(err, ErrKubeletKubeconfig) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestMissingKubeletKubeconfigWritesNothing(t *testing.T) {
	m := defaulted(t, false)
	root := hostWith(t, map[string]string{m.ClusterNetwork: awsConflist})
	files, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
	if !errors.Is(err, ErrKubeletKubeconfig) || files != nil {
		t.Fatalf("got %v, %d files", err, len(files))
	}
}

func TestWhereaboutsFiles(t *testing.T) {
	m := defaulted(t, true)
	root := hostWith(t, map[string]string{m.ClusterNetwork: awsConflist, DefaultKubeletKubeconfig: nodeadmKubeconfig})
	files, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	wc := find(t, files, "/etc/cni/net.d/whereabouts.d/whereabouts.conf")
	dec := json.NewDecoder(strings.NewReader(string(wc.Data)))
	dec.DisallowUnknownFields()
	var conf WhereaboutsConf
	if err := dec.Decode(&conf); err != nil {
		t.Fatal(err)
	}
	if conf.Datastore != "kubernetes" || conf.Kubernetes.Kubeconfig != "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig" || conf.LogLevel != "error" {
		t.Fatalf("got %+v", conf)
	}
	kc := find(t, files, conf.Kubernetes.Kubeconfig)
	if kc.Mode != 0o600 || !strings.Contains(string(kc.Data), "namespace: kube-system") {
		t.Fatalf("whereabouts kubeconfig: %v\n%s", kc.Mode, kc.Data)
	}
	// 00-multus.conf comes last: once it exists the runtime uses Multus,
	// so everything it refers to must already be there.
	if last := files[len(files)-1].Path; last != "/etc/cni/net.d/00-multus.conf" {
		t.Fatalf("last file %s", last)
	}
}

func TestWriteIsIdempotent(t *testing.T) {
	m := defaulted(t, true)
	root := hostWith(t, map[string]string{m.ClusterNetwork: awsConflist, DefaultKubeletKubeconfig: nodeadmKubeconfig})
	files, err := Files(root, m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	apply := func() int {
		t.Helper()
		changes, err := Plan(root, files)
		if err != nil {
			t.Fatal(err)
		}
		if err := change.Apply(context.Background(), &changetest.Actions{}, changes); err != nil {
			t.Fatal(err)
		}
		return len(changes)
	}
	if n := apply(); n != 4 {
		t.Fatalf("first run wrote %d files, want 4", n)
	}
	if n := apply(); n != 0 {
		t.Fatalf("second run wrote %d files", n)
	}
	info, err := os.Stat(filepath.Join(root.Dir(), m.Kubeconfig))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig on disk: %v %v", info.Mode(), err)
	}
}

func find(t *testing.T, files []File, p string) File {
	t.Helper()
	for _, f := range files {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("no file %s among %d", p, len(files))
	return File{}
}

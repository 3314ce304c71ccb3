// Package kubelet is the judge of the kubelet configuration a nodeprep CPU
// profile produces. It lives in a module of its own so that kubelet's code
// (k8s.io/kubernetes) never reaches the agent's build, the way packer/ keeps
// Packer's SDK out.
//
// Each case goes the way a node goes: nodeprep's drop-in is merged over the
// user data NodeConfig as nodeadm merges NodeConfigs (mergo.WithOverride
// over the JSON documents, nodeadm internal/api/merge.go and
// internal/util/DocumentMerge), nodeadm writes the merged kubelet.config as
// the kubelet drop-in 40-nodeadm.conf beside its generated config.json
// (testdata/nodeadm-config.json, the shape nodeadm's
// defaultKubeletSubConfig and withDefaultReservedResources produce), and
// kubelet loads both the way cmd/kubelet/app mergeKubeletConfigurations
// does (JSON merge patch, v1beta1 defaulting, conversion). Then kubelet's
// own code judges the result: ValidateKubeletConfiguration, and the CPU and
// memory managers' constructors on a machine of the same topology, which
// check reservedSystemCPUs against full-pcpus-only and reservedMemory
// against kube + system reserved + hard eviction.
package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dario.cat/mergo"
	cadvisorapi "github.com/google/cadvisor/lib/model"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"gopkg.in/yaml.v3"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletconfigv1beta1conversion "k8s.io/kubernetes/pkg/kubelet/apis/config/v1beta1"
	"k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/cm/cpumanager"
	"k8s.io/kubernetes/pkg/kubelet/cm/memorymanager"
	"k8s.io/kubernetes/pkg/kubelet/cm/topologymanager"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
	"k8s.io/utils/cpuset"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	npcpuset "github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// userDataNodeConfig is an AL2023 user data NodeConfig; kubelet.config here
// is what the user set, which the drop-in must respect.
const userDataNodeConfig = `apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: telco
    apiServerEndpoint: https://example.eks.amazonaws.com
    certificateAuthority: Q0E=
    cidr: 10.100.0.0/16
  kubelet:
    config:
      maxPods: 58
`

// shapes are the instance shapes every profile is judged on.
var shapes = map[string]pcitest.CPUShape{
	"c6i.2xlarge (8 vCPU, SMT, 1 node)":    {CPUs: 8, Nodes: 1, Threads: 2},
	"c7g.16xlarge (64 vCPU, no SMT)":       {CPUs: 64, Nodes: 1, Threads: 1},
	"m7i.48xlarge (192 vCPU, SMT, 2 node)": {CPUs: 192, Nodes: 2, Threads: 2},
}

// profiles are the spec.cpu blocks of every example config that has one,
// and the topology policies a user can choose.
func profiles(t *testing.T) map[string]*api.CPU {
	t.Helper()
	out := map[string]*api.CPU{}
	files, err := filepath.Glob("../../../configs/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := api.Load(api.Source{Name: f, Data: data})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if cfg.Spec.CPU != nil {
			out[filepath.Base(f)] = cfg.Spec.CPU
		}
	}
	for _, policy := range []string{"none", "best-effort", "restricted", "single-numa-node"} {
		c := &api.NodePrepConfig{Spec: api.Spec{CPU: &api.CPU{TopologyManagerPolicy: policy}}}
		api.SetDefaults(c)
		out["topologyManagerPolicy "+policy] = c.Spec.CPU
	}
	return out
}

func TestKubeletAcceptsEveryProfile(t *testing.T) {
	ps := profiles(t)
	if len(ps) < 5 {
		t.Fatalf("only %d profiles: the examples lost their spec.cpu", len(ps))
	}
	for pname, cpu := range ps {
		for sname, shape := range shapes {
			t.Run(pname+"/"+sname, func(t *testing.T) {
				h := pcitest.New(t)
				h.SetCPUs(shape, 0)
				topo, err := npcpuset.ReadTopology(h.Root)
				if err != nil {
					t.Fatal(err)
				}
				prof, err := cpuprofile.Build(cpu, topo)
				if err != nil {
					t.Fatal(err)
				}
				kc := effectiveKubelet(t, prof)
				judge(t, kc, topo, prof)
			})
		}
	}
}

// TestJudgeRejects proves the judge can fail: a profile kubelet would
// refuse is refused here too.
func TestJudgeRejects(t *testing.T) {
	h := pcitest.New(t)
	h.SetCPUs(pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 0)
	topo, err := npcpuset.ReadTopology(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	c := &api.NodePrepConfig{Spec: api.Spec{CPU: &api.CPU{TopologyManagerPolicy: "single-numa-node"}}}
	api.SetDefaults(c)
	prof, err := cpuprofile.Build(c.Spec.CPU, topo)
	if err != nil {
		t.Fatal(err)
	}
	// A profile spoiled before rendering: what reaches kubelet is wrong.
	for name, spoil := range map[string]func(*cpuprofile.Kubelet){
		// nodeadm's /runtime and /system cgroups left in place.
		"reserved cgroups kept": func(k *cpuprofile.Kubelet) { k.KubeReservedCgroup, k.SystemReservedCgroup = nil, nil },
	} {
		t.Run(name, func(t *testing.T) {
			p := *prof
			spoil(&p.Kubelet)
			mustRefuse(t, effectiveKubelet(t, &p), topo, &p)
		})
	}
	// The effective config spoiled after rendering: the drop-in derives
	// these (reservedMemory is recomputed from the reservations), so only a
	// hand edit of kubelet's config could make them wrong; kubelet's own
	// managers must still refuse them. (A reserved set that splits a core is
	// not here: kubelet 1.37's static policy accepts it and reserves the
	// whole cores; nodeprep refuses it itself, in cpuset.Partition.)
	for name, spoil := range map[string]func(*kubeletconfig.KubeletConfiguration){
		// reservedMemory that does not add up to kube + system reserved + hard eviction.
		"memory sum": func(kc *kubeletconfig.KubeletConfiguration) {
			kc.ReservedMemory[0].Limits[v1.ResourceMemory] = resource.MustParse("1Gi")
		},
		// a reserved CPU the machine does not have.
		"reserved CPU offline": func(kc *kubeletconfig.KubeletConfiguration) { kc.ReservedSystemCPUs += ",64" },
	} {
		t.Run(name, func(t *testing.T) {
			kc := effectiveKubelet(t, prof)
			spoil(kc)
			mustRefuse(t, kc, topo, prof)
		})
	}
}

// mustRefuse fails the test unless kubelet's code refuses kc.
func mustRefuse(t *testing.T, kc *kubeletconfig.KubeletConfiguration, topo npcpuset.Topology, prof *cpuprofile.Profile) {
	t.Helper()
	if err := verdict(kc, topo, prof); err == nil {
		t.Fatal("kubelet's code accepted a profile kubelet refuses")
	} else {
		t.Logf("refused as kubelet would: %v", err)
	}
}

// dropIn is nodeprep's nodeadm drop-in for the profile.
func dropIn(t *testing.T, prof *cpuprofile.Profile, user map[string]any) []byte {
	t.Helper()
	k, err := prof.Kubelet.Respect(user, prof.Topology.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig",
		"spec": map[string]any{"kubelet": map[string]any{"config": k}}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// effectiveKubelet is the configuration kubelet runs with on the node.
func effectiveKubelet(t *testing.T, prof *cpuprofile.Profile) *kubeletconfig.KubeletConfiguration {
	t.Helper()
	var ud map[string]any
	if err := yaml.Unmarshal([]byte(userDataNodeConfig), &ud); err != nil {
		t.Fatal(err)
	}
	userKubelet := toJSONMap(t, dig(ud, "spec", "kubelet", "config"))
	var di map[string]any
	if err := yaml.Unmarshal(dropIn(t, prof, userKubelet), &di); err != nil {
		t.Fatal(err)
	}
	// nodeadm: transformKubeletConfig, DocumentMerge(dst, src, mergo.WithOverride).
	merged := userKubelet
	src := toJSONMap(t, dig(di, "spec", "kubelet", "config"))
	if err := mergo.Merge(&merged, &src, mergo.WithOverride); err != nil {
		t.Fatal(err)
	}
	// nodeadm writes it as a kubelet drop-in with the type metadata merged in.
	merged["apiVersion"], merged["kind"] = "kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"
	dir := t.TempDir()
	dropinDir := filepath.Join(dir, "config.json.d")
	if err := os.MkdirAll(dropinDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(dropinDir, "40-nodeadm.conf"), merged)
	base, err := os.ReadFile("testdata/nodeadm-config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), base, 0o644); err != nil {
		t.Fatal(err)
	}
	// kubelet: load config.json, then each drop-in as a JSON merge patch.
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := loader.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	versioned := &kubeletconfigv1beta1.KubeletConfiguration{}
	if err := kubeletconfigv1beta1conversion.Convert_config_KubeletConfiguration_To_v1beta1_KubeletConfiguration(kc, versioned, nil); err != nil {
		t.Fatal(err)
	}
	baseJSON, err := json.Marshal(versioned)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, filepath.Join(dropinDir, "40-nodeadm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dropinJSON, _, err := dl.LoadIntoJSON()
	if err != nil {
		t.Fatal(err)
	}
	mergedJSON, err := jsonpatch.MergePatch(baseJSON, dropinJSON)
	if err != nil {
		t.Fatal(err)
	}
	versioned = &kubeletconfigv1beta1.KubeletConfiguration{}
	if err := json.Unmarshal(mergedJSON, versioned); err != nil {
		t.Fatal(err)
	}
	kubeletconfigv1beta1conversion.SetDefaults_KubeletConfiguration(versioned)
	out := &kubeletconfig.KubeletConfiguration{}
	if err := kubeletconfigv1beta1conversion.Convert_v1beta1_KubeletConfiguration_To_config_KubeletConfiguration(versioned, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func judge(t *testing.T, kc *kubeletconfig.KubeletConfiguration, topo npcpuset.Topology, prof *cpuprofile.Profile) {
	t.Helper()
	if err := verdict(kc, topo, prof); err != nil {
		t.Fatal(err)
	}
	// What kubelet runs with is what the rest of the node was told.
	if got := kc.ReservedSystemCPUs; got != prof.Partition.Reserved.String() {
		t.Errorf("kubelet reservedSystemCPUs %q, the kernel and systemd were given %s", got, prof.Partition.Reserved)
	}
	if kc.CPUManagerPolicy != "static" || kc.MaxPods != 58 {
		t.Errorf("cpuManagerPolicy %q, maxPods %d (the user's 58 must survive)", kc.CPUManagerPolicy, kc.MaxPods)
	}
	if !strings.EqualFold(kc.TopologyManagerPolicy, prof.Kubelet.TopologyManagerPolicy) {
		t.Errorf("topologyManagerPolicy %q, want %q", kc.TopologyManagerPolicy, prof.Kubelet.TopologyManagerPolicy)
	}
}

// verdict is kubelet's own judgement of kc on a machine with topo.
func verdict(kc *kubeletconfig.KubeletConfiguration, topo npcpuset.Topology, prof *cpuprofile.Profile) error {
	// The validation's OS part asks the machine it runs on whether it is on
	// cgroup v2 (failCgroupV1). That is a fact of this test host, not of the
	// config: an EKS AL2023 node is cgroup v2, a CI box may be v1. Judge the
	// config as the node would, on a copy.
	onNode := *kc
	onNode.FailCgroupV1 = false
	if err := validation.ValidateKubeletConfiguration(&onNode, utilfeature.DefaultFeatureGate); err != nil {
		return fmt.Errorf("ValidateKubeletConfiguration: %w", err)
	}
	reserved, err := cpuset.Parse(kc.ReservedSystemCPUs)
	if err != nil {
		return err
	}
	// cmd/kubelet/app: --reserved-cpus replaces the cpu of kubeReserved and systemReserved.
	sysReserved := map[string]string{}
	for k, v := range kc.SystemReserved {
		sysReserved[k] = v
	}
	kubeReserved := map[string]string{}
	for k, v := range kc.KubeReserved {
		kubeReserved[k] = v
	}
	if reserved.Size() > 0 {
		delete(kubeReserved, "cpu")
		sysReserved["cpu"] = fmt.Sprint(reserved.Size())
	}
	alloc, err := allocatableReservation(kubeReserved, sysReserved, kc.EvictionHard)
	if err != nil {
		return err
	}
	mi := machineInfo(topo)
	logger := klog.Background()
	if _, err := cpumanager.NewManager(logger, kc.CPUManagerPolicy, kc.CPUManagerPolicyOptions, 10*time.Second, mi, reserved, alloc, tempDir(), topologymanager.NewFakeManager(logger)); err != nil {
		return fmt.Errorf("cpumanager: %w", err)
	}
	if _, err := topologymanager.NewManager(logger, mi.Topology, kc.TopologyManagerPolicy, kc.TopologyManagerScope, kc.TopologyManagerPolicyOptions); err != nil {
		return fmt.Errorf("topologymanager: %w", err)
	}
	if kc.MemoryManagerPolicy != "" {
		if _, err := memorymanager.NewManager(logger, kc.MemoryManagerPolicy, mi, alloc, kc.ReservedMemory, tempDir(), topologymanager.NewFakeManager(logger)); err != nil {
			return fmt.Errorf("memorymanager: %w", err)
		}
	}
	return nil
}

// allocatableReservation is kubelet's node allocatable reservation: kube
// and system reserved plus the hard eviction thresholds given as
// quantities (pkg/kubelet/cm GetNodeAllocatableReservation).
func allocatableReservation(kube, sys, eviction map[string]string) (v1.ResourceList, error) {
	out := v1.ResourceList{}
	for _, m := range []map[string]string{kube, sys} {
		for k, v := range m {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return nil, err
			}
			cur := out[v1.ResourceName(k)]
			cur.Add(q)
			out[v1.ResourceName(k)] = cur
		}
	}
	if v, ok := eviction["memory.available"]; ok && !strings.HasSuffix(v, "%") {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, err
		}
		cur := out[v1.ResourceMemory]
		cur.Add(q)
		out[v1.ResourceMemory] = cur
	}
	return out, nil
}

// machineInfo is cadvisor's view of the same topology, 64 GiB per node.
func machineInfo(topo npcpuset.Topology) *cadvisorapi.MachineInfo {
	mi := &cadvisorapi.MachineInfo{NumCores: topo.Online.Len(), NumSockets: len(topo.Nodes)}
	for _, n := range topo.Nodes {
		node := cadvisorapi.Node{Id: n, Memory: 64 << 30}
		for _, core := range topo.Cores() {
			first := core.List()[0]
			if topo.Node(first) != n {
				continue
			}
			node.Cores = append(node.Cores, cadvisorapi.Core{Id: first, Threads: core.List(), SocketID: n})
			mi.NumPhysicalCores++
		}
		mi.Topology = append(mi.Topology, node)
		mi.MemoryCapacity += node.Memory
	}
	return mi
}

var tempDirs []string

func tempDir() string {
	d, err := os.MkdirTemp("", "kubelet-judge-")
	if err != nil {
		panic(err)
	}
	tempDirs = append(tempDirs, d)
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func toJSONMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if string(b) != "null" {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var _ = context.Background

package nodeadm

import (
	"reflect"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/nodeadm/nodeadmtest"
)

// karpenterNodeConfig is shaped like the NodeConfig Karpenter adds to an
// AL2023 node's user data: its startup taint in the kubelet config, labels
// as a flag, maxPods computed by Karpenter. Karpenter appends it after the
// EC2NodeClass's own parts (karpenter-provider-aws PR #6664,
// pkg/providers/amifamily/bootstrap/nodeadm.go: append(customEntries,
// NodeConfig)); releases before it put it first.
const karpenterNodeConfig = `apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: telco
    apiServerEndpoint: https://example.eks.amazonaws.com
    certificateAuthority: Q0E=
    cidr: 10.100.0.0/16
  kubelet:
    config:
      clusterDNS: [10.100.0.10]
      maxPods: 58
      registerWithTaints:
      - {key: karpenter.sh/unregistered, effect: NoExecute}
      - {key: dedicated, value: upf, effect: NoSchedule}
    flags:
    - --node-labels="karpenter.sh/capacity-type=on-demand,karpenter.sh/nodepool=telco"
`

// With Karpenter's NodeConfig in user data, nodeprep's drop-in must not make
// kubelet lose karpenter.sh/unregistered (karpenter #7486) or any other taint
// user data set: what registers is the union.
func TestKarpenterTaintsSurviveNodeadmMerge(t *testing.T) {
	root := hostfs.New(t.TempDir())
	cfg := &api.NodePrepConfig{Spec: api.Spec{
		Node:          api.Node{Taints: []api.Taint{{Key: "nodeprep.dev/dpdk", Effect: "NoExecute"}}},
		FailurePolicy: api.FailurePolicyTaint,
	}}
	api.SetDefaults(cfg)
	inherited, err := Inherit(root, [][]byte{[]byte(karpenterNodeConfig)})
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := Render(cfg, Facts{Failed: []string{"bind"}, Inherited: inherited})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := nodeadmtest.EffectiveKubelet(t, []byte(karpenterNodeConfig), dropIn)
	want := []string{"dedicated=upf:NoSchedule", "karpenter.sh/unregistered:NoExecute", "nodeprep.dev/dpdk:NoExecute", "nodeprep.dev/failed=true:NoSchedule"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kubelet registers with\n  %v\nwant\n  %v\ndrop-in:\n%s", got, want, dropIn)
	}

	// The same through a user drop-in that sorts before nodeprep's, set by flag.
	earlier := "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags: [\"--register-with-taints=team=a:NoSchedule\"]\n"
	if _, err := root.WriteFile(DropInDir+"/50-team.yaml", []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}
	inherited, err = Inherit(root, [][]byte{[]byte(karpenterNodeConfig)})
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err = Render(cfg, Facts{Inherited: inherited})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = nodeadmtest.EffectiveKubelet(t, []byte(karpenterNodeConfig), []byte(earlier), dropIn)
	want = []string{"nodeprep.dev/dpdk:NoExecute", "team=a:NoSchedule"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with a 50- drop-in, kubelet registers with %v, want %v", got, want)
	}
}

// maxPods reaches kubelet through the drop-in, unless an earlier NodeConfig
// (Karpenter's always does) set it.
func TestMaxPodsOnlyWhenUnset(t *testing.T) {
	cfg := &api.NodePrepConfig{}
	api.SetDefaults(cfg)
	plain := []byte("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster: {name: telco}\n")
	for _, c := range []struct {
		name     string
		userData []byte
		want     any
	}{
		{"unset in user data", plain, 176},
		{"set by Karpenter", []byte(karpenterNodeConfig), 58},
		{"set by flag", []byte("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags: [--max-pods=20]\n"), "20"},
		// nodeadm evaluates the expression only when no maxPods is set; the
		// drop-in must leave maxPods unset for the user's expression to count.
		{"expression set by the user", []byte("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    maxPodsExpression: \"((default_enis - 1) * (ips_per_eni - 1)) + 2\"\n"), nil},
	} {
		inherited, err := Inherit(hostfs.New(t.TempDir()), [][]byte{c.userData})
		if err != nil {
			t.Fatal(err)
		}
		dropIn, err := Render(cfg, Facts{Inherited: inherited, MaxPods: 176})
		if err != nil {
			t.Fatal(err)
		}
		if _, got := nodeadmtest.EffectiveKubelet(t, c.userData, dropIn); got != c.want {
			t.Errorf("%s: kubelet maxPods %v, want %v\n%s", c.name, got, c.want, dropIn)
		}
	}
}

// Karpenter's NodeConfig comes last in user data (PR #6664 on) or first
// (before it): either way kubelet must register with what nodeadm's merge
// of the user data yields plus nodeprep's taints, and keep the user data's
// maxPods.
func TestKarpenterNodeConfigFirstOrLast(t *testing.T) {
	cfg := &api.NodePrepConfig{Spec: api.Spec{Node: api.Node{Taints: []api.Taint{{Key: "nodeprep.dev/dpdk", Effect: "NoExecute"}}}}}
	api.SetDefaults(cfg)
	user := []byte("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      maxPods: 30\n      registerWithTaints:\n      - {key: team, value: a, effect: NoSchedule}\n")
	karpenter := []byte(karpenterNodeConfig)
	for _, c := range []struct {
		name        string
		userData    [][]byte
		wantTaints  []string
		wantMaxPods any
	}{
		{"Karpenter last (PR #6664 on)", [][]byte{user, karpenter}, []string{"dedicated=upf:NoSchedule", "karpenter.sh/unregistered:NoExecute", "nodeprep.dev/dpdk:NoExecute"}, 58},
		{"Karpenter first (before it)", [][]byte{karpenter, user}, []string{"nodeprep.dev/dpdk:NoExecute", "team=a:NoSchedule"}, 30},
	} {
		inherited, err := Inherit(hostfs.New(t.TempDir()), c.userData)
		if err != nil {
			t.Fatal(err)
		}
		dropIn, err := Render(cfg, Facts{Inherited: inherited, MaxPods: 176})
		if err != nil {
			t.Fatal(err)
		}
		taints, maxPods := nodeadmtest.EffectiveKubelet(t, append(append([][]byte(nil), c.userData...), dropIn)...)
		if !reflect.DeepEqual(taints, c.wantTaints) || maxPods != c.wantMaxPods {
			t.Errorf("%s: kubelet registers with %v, maxPods %v; want %v, %v\n%s", c.name, taints, maxPods, c.wantTaints, c.wantMaxPods, dropIn)
		}
	}
}

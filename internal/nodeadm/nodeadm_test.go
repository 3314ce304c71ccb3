package nodeadm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
)

func config(t *testing.T, policy api.FailurePolicy, dpdk bool) *api.NodePrepConfig {
	t.Helper()
	c := &api.NodePrepConfig{Spec: api.Spec{
		Interfaces: []api.Interface{{Name: "n2", SubnetID: "subnet-0a1b2c3d4e5f60718"}},
		Node: api.Node{
			Labels: map[string]string{"nodeprep.dev/multus": "true", "topology.kubernetes.io/zone": "us-west-2a"},
			Taints: []api.Taint{{Key: "dedicated", Value: "upf", Effect: "NoSchedule"}, {Key: "nodeprep.dev/dpdk", Effect: "NoExecute"}},
		},
		FailurePolicy: policy,
	}}
	if dpdk {
		c.Spec.Interfaces = append(c.Spec.Interfaces, api.Interface{Name: "n3", SubnetID: "subnet-0a1b2c3d4e5f60718", Driver: api.DriverVFIOPCI})
	}
	api.SetDefaults(c)
	if err := api.Validate(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func parse(t *testing.T, data []byte) NodeConfig {
	t.Helper()
	var nc NodeConfig
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&nc); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if nc.APIVersion != "node.eks.aws/v1alpha1" || nc.Kind != "NodeConfig" {
		t.Fatalf("header %+v", nc)
	}
	return nc
}

func TestSucceededDPDKNode(t *testing.T) {
	data, err := Render(config(t, api.FailurePolicyTaint, true), Facts{})
	if err != nil {
		t.Fatal(err)
	}
	flags := parse(t, data).Spec.Kubelet.Flags
	want := []string{
		"--node-labels=nodeprep.dev/dpdk-ready=true,nodeprep.dev/multus=true,topology.kubernetes.io/zone=us-west-2a",
		"--register-with-taints=dedicated=upf:NoSchedule,nodeprep.dev/dpdk:NoExecute",
	}
	if strings.Join(flags, "\n") != strings.Join(want, "\n") {
		t.Fatalf("flags\n%s\nwant\n%s", strings.Join(flags, "\n"), strings.Join(want, "\n"))
	}
}

func TestFailureUnderTaintPolicy(t *testing.T) {
	data, err := Render(config(t, api.FailurePolicyTaint, true), Facts{Failed: []string{"bind", "cni"}})
	if err != nil {
		t.Fatal(err)
	}
	flags := parse(t, data).Spec.Kubelet.Flags
	if !strings.Contains(flags[0], "nodeprep.dev/dpdk-ready=false") {
		t.Fatalf("labels %s", flags[0])
	}
	if flags[1] != "--register-with-taints=dedicated=upf:NoSchedule,nodeprep.dev/dpdk:NoExecute,nodeprep.dev/failed=true:NoSchedule" {
		t.Fatalf("taints %s", flags[1])
	}
	if !strings.Contains(string(data), "# Failed steps: bind, cni") {
		t.Fatalf("no failure note:\n%s", data)
	}
}

func TestFailureUnderBlockPolicyAddsNoTaint(t *testing.T) {
	c := config(t, api.FailurePolicyBlock, false)
	c.Spec.Node.Taints = nil
	nc, err := Build(c, Facts{Failed: []string{"enis"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(nc.Spec.Kubelet.Flags) != 1 || !strings.Contains(nc.Spec.Kubelet.Flags[0], "dpdk-ready=false") {
		t.Fatalf("flags %v", nc.Spec.Kubelet.Flags)
	}
}

func TestNoDPDKInterfacesIsNotReady(t *testing.T) {
	nc, err := Build(config(t, api.FailurePolicyTaint, false), Facts{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nc.Spec.Kubelet.Flags[0], "nodeprep.dev/dpdk-ready=false") {
		t.Fatalf("flags %v", nc.Spec.Kubelet.Flags)
	}
}

func TestRefusesLabelsKubeletCannotSet(t *testing.T) {
	for key, ok := range map[string]bool{
		"node-role.kubernetes.io/worker":   false,
		"example.k8s.io/x":                 false,
		"kubernetes.io/hostname":           true,
		"node.kubernetes.io/instance-type": true,
		"foo.node.kubernetes.io/bar":       true,
		"kubelet.kubernetes.io/x":          true,
		"nodeprep.dev/x":                   true,
		"plain":                            true,
	} {
		c := config(t, api.FailurePolicyTaint, false)
		c.Spec.Node.Labels = map[string]string{key: "v"}
		_, err := Build(c, Facts{})
		if ok && err != nil {
			t.Errorf("%s refused: %v", key, err)
		}
		if !ok && (!errors.Is(err, ErrLabel) || !strings.Contains(err.Error(), key)) {
			t.Errorf("%s: got %v", key, err)
		}
	}
}

func TestWriteIsIdempotentAndFollowsOutcome(t *testing.T) {
	root := hostfs.New(t.TempDir())
	c := config(t, api.FailurePolicyTaint, true)
	write := func(failed ...string) bool {
		t.Helper()
		act := &changetest.Actions{}
		if _, err := (DropIn{Root: root, Config: c}).Apply(context.Background(), act, failed); err != nil {
			t.Fatal(err)
		}
		return len(act.Changes()) > 0
	}
	if !write("bind") {
		t.Fatal("first write changed nothing")
	}
	p := hostfstest.Path(t, root, DropInPath)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if write("bind") {
		t.Fatal("same outcome rewrote the file")
	}
	// A later successful run drops the failure taint.
	if !write() {
		t.Fatal("recovery changed nothing")
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), FailedTaintKey) {
		t.Fatalf("failure taint kept:\n%s", data)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", info.Mode())
	}
}

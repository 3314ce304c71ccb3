package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/nodeadm/nodeadmtest"
)

// taintUserData is Karpenter-shaped user data: its NodeConfig registers a
// startup taint, and nodeprep's part asks for failurePolicy Taint.
const taintUserData = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n" +
	"--//\nContent-Type: application/node.eks.aws\n\n" + karpenterLikeNodeConfig +
	"--//\nContent-Type: application/nodeprep.dev\n\n" +
	"apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  multus: {install: false}\n  node: {labels: {team: telco}}\n  failurePolicy: Taint\n" +
	"--//--\n"

const karpenterLikeNodeConfig = "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      registerWithTaints: [{key: karpenter.sh/unregistered, effect: NoExecute}]\n"

// runFailing runs the whole graph under failurePolicy Taint with fault
// applied to the node and its steps, and returns what kubelet registers
// with, judged by nodeadm's own merge of user data and the drop-ins.
func runFailing(t *testing.T, fault func(*Node, []engine.Step) []engine.Step) (Summary, []string, hostfs.Root, error) {
	t.Helper()
	root := hostfs.New(t.TempDir())
	r := &Runner{
		Host: Host{Root: root}, Log: slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) { return []byte(taintUserData), nil },
		faults:   fault,
	}
	out, err := r.Run(context.Background())
	taints, _ := nodeadmtest.OnNode(t, root, []byte(karpenterLikeNodeConfig))
	return out, taints, root, err
}

// failStep makes the named step fail as it starts.
func failStep(name string) func(*Node, []engine.Step) []engine.Step {
	return func(_ *Node, steps []engine.Step) []engine.Step {
		for i, s := range steps {
			if s.Name == name {
				steps[i].Run = func(context.Context, change.Actions) error { return fmt.Errorf("injected failure of %s", name) }
			}
		}
		return steps
	}
}

// TestEveryFailureUnderTaintReachesKubelet makes each step of the graph
// fail in turn, and then the nodeadm drop-in itself (a label kubelet
// refuses, so the full drop-in cannot be built): in every case the run
// reports the failure, says the node registers tainted, and kubelet, as
// nodeadm merges user data and the drop-ins, registers the failure taint
// beside Karpenter's.
func TestEveryFailureUnderTaintReachesKubelet(t *testing.T) {
	want := []string{"karpenter.sh/unregistered:NoExecute", nodeadm.FailedTaintKey + "=true:NoSchedule"}
	cfg := &api.NodePrepConfig{}
	api.SetDefaults(cfg)
	n := &Node{Config: cfg}
	var names []string
	for _, s := range n.Steps() {
		if s.Run != nil {
			names = append(names, s.Name)
		}
	}
	if len(names) < 8 {
		t.Fatalf("the graph has only %v", names)
	}
	for _, name := range names {
		out, taints, _, err := runFailing(t, failStep(name))
		if !errors.Is(err, ErrStepsFailed) || !out.Tainted || !slices.Contains(out.Report.Failed(), name) {
			t.Errorf("%s failing: err %v, tainted %v, failed %v", name, err, out.Tainted, out.Report.Failed())
		}
		if !slices.Equal(taints, want) {
			t.Errorf("%s failing: kubelet registers with %v, want %v", name, taints, want)
		}
	}

	// The drop-in itself cannot be built: a label kubelet refuses.
	out, taints, root, err := runFailing(t, func(n *Node, steps []engine.Step) []engine.Step {
		n.Config.Spec.Node.Labels = map[string]string{"node-role.kubernetes.io/upf": "true"}
		return steps
	})
	if !errors.Is(err, ErrStepsFailed) || !out.Tainted || !slices.Equal(out.Report.Failed(), []string{StepNodeadm}) {
		t.Errorf("drop-in failing: err %v, tainted %v, failed %v", err, out.Tainted, out.Report.Failed())
	}
	if !errors.Is(err, nodeadm.ErrLabel) {
		t.Errorf("drop-in failing: err %v, want the label's error", err)
	}
	if !slices.Equal(taints, want) {
		t.Errorf("drop-in failing: kubelet registers with %v, want %v", taints, want)
	}
	if data, _ := root.ReadFile(nodeadm.DropInPath); strings.Contains(string(data), "node-role") {
		t.Errorf("the taint-only drop-in carries the refused label:\n%s", data)
	}
}

// When not even the taint can be written, the node must not join looking
// healthy: the run is not "tainted", so the agent blocks kubelet.
func TestTaintThatCannotBeWrittenBlocks(t *testing.T) {
	out, taints, _, err := runFailing(t, func(n *Node, steps []engine.Step) []engine.Step {
		// A directory where the drop-in goes: no write can succeed.
		if err := n.Host.Root.MkdirAll(nodeadm.DropInPath, 0o755); err != nil {
			t.Fatal(err)
		}
		return failStep(StepHugepages)(n, steps)
	})
	if !errors.Is(err, ErrStepsFailed) || out.Tainted {
		t.Errorf("err %v, tainted %v; want a failed run that is not taken as tainted", err, out.Tainted)
	}
	if slices.Contains(taints, nodeadm.FailedTaintKey+"=true:NoSchedule") {
		t.Errorf("kubelet registers with %v", taints)
	}
}

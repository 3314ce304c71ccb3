package bootstrap

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// TestCPUProfileResolvedOnce: the cpu-profile step reads the topology, and
// every consumer takes its profile. The topology changes under the run
// right after that step (a core going offline), so a consumer that read
// sysfs again would see other CPU sets: the kernel arguments kernelargs
// plans and the kubelet settings the drop-in gets must still be the
// profile's.
func TestCPUProfileResolvedOnce(t *testing.T) {
	h := pcitest.New(t)
	shape := pcitest.CPUShape{CPUs: 8, Nodes: 2, Threads: 2}
	h.SetCPUs(shape, 0)
	for p, s := range map[string]string{
		"/proc/cmdline":                   "BOOT_IMAGE=/vmlinuz root=/dev/nvme0n1p1 ro\n",
		"/proc/sys/kernel/random/boot_id": "6f1c2a4e-0b0e-4b3a-9f57-2d1c0e6a7b11\n",
	} {
		if _, err := h.Root.WriteFile(p, []byte(s), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	var node *Node
	var resolved cpuset.Partition
	r := &Runner{
		Host: Host{Root: h.Root}, Log: slog.New(slog.DiscardHandler), DryRun: true,
		Only: []string{StepCPUProfile, StepKernelArgs, StepKubeletState},
		UserData: func(context.Context) ([]byte, error) {
			return []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu:\n    reserved: auto\n"), nil
		},
		faults: func(n *Node, steps []engine.Step) []engine.Step {
			node = n
			for i, s := range steps {
				if s.Name != StepCPUProfile {
					continue
				}
				run := s.Run
				steps[i].Run = func(ctx context.Context, act change.Actions) error {
					err := run(ctx, act)
					if p, ok := n.model.cpuProfile(); ok {
						resolved = p.Partition
					}
					h.SetCPUs(pcitest.CPUShape{CPUs: 8, Nodes: 2, Threads: 2, Offline: []int{2, 6}}, 0)
					return err
				}
			}
			return steps
		},
	}
	out, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resolved.Isolated.IsEmpty() {
		t.Fatal("the cpu-profile step recorded no profile")
	}
	var planned []string
	for _, s := range out.Report.Steps {
		if s.Name == StepKernelArgs {
			for _, c := range s.Changes {
				planned = append(planned, c.What)
			}
		}
	}
	want := "nohz_full=" + resolved.Isolated.String() + " "
	if len(planned) == 0 || !strings.Contains(planned[0], want) {
		t.Errorf("kernelargs plans %q, want the resolved isolated set (%s)", planned, want)
	}
	k, err := node.cpuKubelet(nodeadm.Inherited{})
	if err != nil {
		t.Fatal(err)
	}
	if k.ReservedSystemCPUs != resolved.Reserved.String() {
		t.Errorf("the drop-in's reservedSystemCPUs %s, want the resolved reserved set %s", k.ReservedSystemCPUs, resolved.Reserved)
	}
	t.Logf("resolved reserved %s, isolated %s; kernelargs plans %q", resolved.Reserved, resolved.Isolated, planned)
}

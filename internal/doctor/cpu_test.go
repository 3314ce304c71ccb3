package doctor

import (
	"context"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// cgroupUnits is systemd on the fake kernel: AllowedCPUs lands in the
// slice's cpuset.cpus, which the fake kernel mirrors into .effective.
type cgroupUnits struct{ k change.Kernel }

func (u cgroupUnits) SetAllowedCPUs(_ context.Context, unit string, cpus cpuset.Set) error {
	return u.k.WriteAttr(cpuprofile.CgroupRoot+"/"+unit+"/cpuset.cpus", cpus.String())
}

func (cgroupUnits) TryRestart(context.Context, string) error { return nil }

// newCPUFixture is a node with spec.cpu after a run and the reboot it asked
// for: 8 CPUs, one NUMA node, two threads per core (CPU c and c+4 are
// siblings), so the automatic reserved set is core 0, CPUs 0 and 4. The run's
// own cpu step (cpuprofile.Host.Plan, applied) confined the slices and IRQs,
// and its drop-in (nodeadm.Render) carries the kubelet settings.
func newCPUFixture(t testing.TB) *fixture {
	t.Helper()
	h := pcitest.New(t)
	f := &fixture{t: t, h: h}
	h.SetCPUs(pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 6)
	for _, s := range cpuprofile.Slices {
		f.write(cpuprofile.CgroupRoot+"/"+s+"/cpuset.cpus", "0-7\n")
		f.write(cpuprofile.CgroupRoot+"/"+s+"/cpuset.cpus.effective", "0-7\n")
	}
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu: {}\n")})
	if err != nil {
		t.Fatal(err)
	}
	topo, err := cpuset.ReadTopology(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cpuprofile.Build(cfg.Spec.CPU, topo)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := cpuprofile.Host{Root: h.Root, Kernel: h.Kernel(), Units: cgroupUnits{h.Kernel()}}.Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if err := c.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The timer (IRQ 0) refuses a new affinity; the kernel delivers it on
	// CPU 0, as a real one does.
	f.write("/proc/irq/0/effective_affinity_list", "0\n")
	// The kernel booted with the profile's arguments: nohz_full=1-3,5-7
	// and isolcpus=managed_irq,1-3,5-7, which takes no CPU out of the
	// scheduler domains, so isolated stays empty.
	f.write(sysCPUNohzFull, "1-3,5-7\n")
	f.write(sysCPUIsolated, "\n")
	dropIn, err := nodeadm.Render(cfg, nodeadm.Facts{CPU: &p.Kubelet})
	if err != nil {
		t.Fatal(err)
	}
	f.write(nodeadm.DropInPath, string(dropIn))
	f.node = &Node{Root: h.Root, Config: cfg}
	return f
}

func cpuFindings(f *fixture) []Finding {
	return findings(Run(context.Background(), f.node, Checks()), "cpu-profile")
}

func TestCPUProfileHealthy(t *testing.T) {
	f := newCPUFixture(t)
	got := cpuFindings(f)
	subjects := map[string]bool{}
	for _, x := range got {
		subjects[x.Subject] = true
		if x.Verdict != OK {
			t.Errorf("%s: %s: %s", x.Subject, x.Verdict, x.Evidence)
		}
		t.Logf("%s %s: %s", x.Verdict, x.Subject, x.Evidence)
	}
	for _, s := range []string{"isolated", "nohz_full", "system.slice", "irq-affinity", "kubelet"} {
		if !subjects[s] {
			t.Errorf("no finding for %s", s)
		}
	}
}

func TestCPUProfileWithoutSpecCPUSaysNothing(t *testing.T) {
	f := newCPUFixture(t)
	f.node.Config.Spec.CPU = nil
	if got := cpuFindings(f); len(got) != 0 {
		t.Fatalf("findings without spec.cpu: %+v", got)
	}
}

// Each fault is one way a node drifts from its CPU profile; only the
// subject it breaks may go bad, for that reason.
func TestCPUProfileFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inject   func(f *fixture)
		subject  string
		verdict  Verdict
		evidence string
	}{
		{"booted without the profile's nohz_full", func(f *fixture) { f.write(sysCPUNohzFull, "(null)\n") },
			"nohz_full", Fail, `is "", the profile's kernel arguments ask for "1-3,5-7"`},
		{"isolcpus with domain isolation of another set", func(f *fixture) { f.write(sysCPUIsolated, "2-3\n") },
			"isolated", Fail, `is "2-3", the profile's kernel arguments ask for ""`},
		{"system.slice let back onto the isolated CPUs", func(f *fixture) {
			f.write(systemSliceCPUs, "0-7\n")
		}, "system.slice", Fail, `is "0-7", the reserved CPUs are "0,4"`},
		{"irqbalance moved an IRQ onto an isolated CPU", func(f *fixture) {
			f.write("/proc/irq/3/smp_affinity_list", "0,5\n")
			f.write("/proc/irq/3/effective_affinity_list", "5\n")
		}, "irq-affinity", Fail, "1 of 6 IRQs are delivered outside the reserved CPUs \"0,4\": 3"},
		{"an IRQ without an effective list, outside", func(f *fixture) {
			f.remove("/proc/irq/4/effective_affinity_list")
			f.write("/proc/irq/4/smp_affinity_list", "0-7\n")
		}, "irq-affinity", Fail, ": 4"},
		{"a managed queue IRQ pinned to an isolated CPU", func(f *fixture) {
			f.write("/proc/irq/5/smp_affinity_list", "6\n")
			f.write("/proc/irq/5/effective_affinity_list", "6\n")
		}, "irq-affinity", Warn, "pinned by their driver to isolated CPUs only and cannot move: 5"},
		{"drop-in reserves other CPUs", func(f *fixture) {
			b, _ := f.node.Root.ReadFile(nodeadm.DropInPath)
			f.write(nodeadm.DropInPath, strings.Replace(string(b), "reservedSystemCPUs: 0,4", "reservedSystemCPUs: 0-1", 1))
		}, "kubelet", Fail, `sets reservedSystemCPUs "0-1", the profile reserves "0,4"`},
		{"drop-in removed", func(f *fixture) { f.remove(nodeadm.DropInPath) },
			"kubelet", Fail, "cannot read " + nodeadm.DropInPath},
		{"drop-in without reservedSystemCPUs", func(f *fixture) {
			b, _ := f.node.Root.ReadFile(nodeadm.DropInPath)
			f.write(nodeadm.DropInPath, strings.Replace(string(b), "reservedSystemCPUs: 0,4", "", 1))
		}, "kubelet", Warn, "sets no reservedSystemCPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCPUFixture(t)
			tc.inject(f)
			seen := false
			for _, x := range cpuFindings(f) {
				if x.Subject != tc.subject {
					if x.Verdict != OK {
						t.Errorf("%s went %s too: %s", x.Subject, x.Verdict, x.Evidence)
					}
					continue
				}
				seen = true
				if x.Verdict != tc.verdict || !strings.Contains(x.Evidence, tc.evidence) {
					t.Errorf("%s: %s %q, want %s with %q", x.Subject, x.Verdict, x.Evidence, tc.verdict, tc.evidence)
				}
				if x.Fix == "" {
					t.Errorf("%s: no fix", x.Subject)
				}
			}
			if !seen {
				t.Errorf("no finding for %s", tc.subject)
			}
		})
	}
}

// BenchmarkCPUProfileCheck is the cpu-profile check alone on the fake
// kernel: it builds the profile from sysfs and reads every IRQ.
func BenchmarkCPUProfileCheck(b *testing.B) {
	f := newCPUFixture(b)
	checks := []Check{{Name: "cpu-profile", Run: checkCPUProfile}}
	b.ReportAllocs()
	for b.Loop() {
		if r := Run(context.Background(), f.node, checks); r.Worst() != OK {
			b.Fatal(r.Findings)
		}
	}
}

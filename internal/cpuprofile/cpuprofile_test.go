package cpuprofile_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

func spec(t testing.TB, doc string) *api.CPU {
	t.Helper()
	if doc == "" {
		doc = "    {}\n"
	}
	c, err := api.Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu:\n" + doc))
	if err != nil {
		t.Fatal(err)
	}
	api.SetDefaults(c)
	if err := api.Validate(c); err != nil {
		t.Fatal(err)
	}
	return c.Spec.CPU
}

func host(t *testing.T, s pcitest.CPUShape, irqs int) (*pcitest.Host, cpuset.Topology) {
	t.Helper()
	h := pcitest.New(t)
	h.SetCPUs(s, irqs)
	tp, err := cpuset.ReadTopology(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	return h, tp
}

func TestBuildKubelet(t *testing.T) {
	_, tp := host(t, pcitest.CPUShape{CPUs: 192, Nodes: 2, Threads: 2}, 0)
	p, err := cpuprofile.Build(spec(t, "    topologyManagerPolicy: single-numa-node\n"), tp)
	if err != nil {
		t.Fatal(err)
	}
	k := p.Kubelet
	if k.CPUManagerPolicy != "static" || k.ReservedSystemCPUs != "0,48,96,144" || k.TopologyManagerPolicy != "single-numa-node" ||
		k.MemoryManagerPolicy != "Static" || k.CPUManagerPolicyOptions["full-pcpus-only"] != "true" || *k.KubeReservedCgroup != "" {
		t.Fatalf("%+v", k)
	}
	// 1Gi + 500Mi + 100Mi = 1624Mi over two nodes.
	want := []cpuprofile.MemoryReservation{{NumaNode: 0, Limits: map[string]string{"memory": "812Mi"}}, {NumaNode: 1, Limits: map[string]string{"memory": "812Mi"}}}
	if !reflect.DeepEqual(k.ReservedMemory, want) {
		t.Fatalf("reservedMemory %+v", k.ReservedMemory)
	}
	if got := p.Kernel.String(); !strings.HasPrefix(got, "nohz_full=1-47,49-95,97-143,145-191 ") || !strings.HasSuffix(got, " irqaffinity=0,48,96,144") {
		t.Fatalf("kernel %s", got)
	}
	// best-effort: no memory manager, no memory keys at all.
	p, err = cpuprofile.Build(spec(t, "    reservedCores: 2\n"), tp)
	if err != nil || p.Kubelet.MemoryManagerPolicy != "" || p.Kubelet.KubeReserved != nil || p.Kubelet.ReservedMemory != nil {
		t.Fatalf("%+v %v", p, err)
	}
	// A topology problem names the field.
	_, err = cpuprofile.Build(spec(t, "    reserved: \"0\"\n"), tp)
	var pe *cpuset.PartitionError
	if !errors.As(err, &pe) || pe.Problems[0].Field != "spec.cpu.reserved" {
		t.Fatalf("%v", err)
	}
}

func TestReservedMemorySplit(t *testing.T) {
	rm, err := cpuprofile.ReservedMemory([]int{0, 1, 2}, "1Gi", "500Mi", "101Mi")
	if err != nil {
		t.Fatal(err)
	}
	// 1625Mi: 543 + 541 + 541.
	if got := []string{rm[0].Limits["memory"], rm[1].Limits["memory"], rm[2].Limits["memory"]}; !reflect.DeepEqual(got, []string{"543Mi", "541Mi", "541Mi"}) {
		t.Fatalf("%v", got)
	}
	rm, _ = cpuprofile.ReservedMemory([]int{0, 1}, "1G")
	if len(rm) != 1 || rm[0].Limits["memory"] != "1G" {
		t.Fatalf("not whole MiB: %+v", rm)
	}
}

func TestRespect(t *testing.T) {
	_, tp := host(t, pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 0)
	p, err := cpuprofile.Build(spec(t, "    topologyManagerPolicy: restricted\n"), tp)
	if err != nil {
		t.Fatal(err)
	}
	// The user's kubeReserved memory wins and enters the sum.
	k, err := p.Kubelet.Respect(map[string]any{"kubeReserved": map[string]any{"memory": "2Gi"}, "topologyManagerPolicy": "best-effort", "reservedSystemCPUs": "4,0"}, tp.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	if k.KubeReserved != nil || k.TopologyManagerPolicy != "" || k.ReservedSystemCPUs != "" || k.ReservedMemory[0].Limits["memory"] != "2648Mi" {
		t.Fatalf("%+v", k)
	}
	for _, user := range []map[string]any{{"reservedSystemCPUs": "0-1"}, {"kubeReservedCgroup": "/runtime"}} {
		if _, err := p.Kubelet.Respect(user, tp.Nodes); !errors.Is(err, cpuprofile.ErrConflict) {
			t.Errorf("%v: %v", user, err)
		}
	}
}

// units is systemd: AllowedCPUs lands in the slice's cpuset.cpus.
type units struct {
	k        change.Kernel
	restarts []string
}

func (u *units) SetAllowedCPUs(_ context.Context, unit string, cpus cpuset.Set) error {
	return u.k.WriteAttr(cpuprofile.CgroupRoot+"/"+unit+"/cpuset.cpus", cpus.String())
}

func (u *units) TryRestart(_ context.Context, unit string) error {
	u.restarts = append(u.restarts, unit)
	return nil
}

type act struct{}

func (act) DryRun() bool { return false }
func (act) Do(ctx context.Context, _ string, fn func(context.Context) error) error {
	return fn(ctx)
}
func (act) Plan(string)           {}
func (act) Status(string, ...any) {}
func (act) Log() *slog.Logger     { return slog.Default() }

func write(t *testing.T, h *pcitest.Host, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(h.Path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(p), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostPlan(t *testing.T) {
	h, tp := host(t, pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 6)
	for _, s := range []string{"system.slice", "user.slice"} {
		write(t, h, "/sys/fs/cgroup/"+s+"/cpuset.cpus", "\n")
	}
	write(t, h, "/proc/sys/net/core/rps_default_mask", "00\n")
	write(t, h, "/etc/sysconfig/irqbalance", "# IRQBALANCE_BANNED_CPULIST=\nIRQBALANCE_ARGS=\n")
	h.AddRxQueues("eth0", 2)
	write(t, h, "/sys/class/net/eth0/queues/rx-1/rps_cpus", "ff\n") // RPS on over every CPU
	p, err := cpuprofile.Build(spec(t, ""), tp)
	if err != nil {
		t.Fatal(err)
	}
	u := &units{k: h.Kernel()}
	hp := cpuprofile.Host{Root: h.Root, Kernel: h.Kernel(), Units: u}
	changes, err := hp.Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := change.Apply(context.Background(), act{}, changes); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(h.Path(p))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	for p, want := range map[string]string{
		"/sys/fs/cgroup/system.slice/cpuset.cpus.effective": "0,4",
		"/sys/fs/cgroup/user.slice/cpuset.cpus":             "0,4",
		"/proc/irq/1/effective_affinity_list":               "0,4",
		"/proc/irq/5/smp_affinity_list":                     "0,4",
		"/proc/irq/0/smp_affinity_list":                     "0-7", // the timer cannot move
		"/proc/irq/default_smp_affinity":                    "11",
		"/proc/sys/net/core/rps_default_mask":               "11",
		"/sys/class/net/eth0/queues/rx-0/rps_cpus":          "0", // RPS off stays off
		"/sys/class/net/eth0/queues/rx-1/rps_cpus":          "11",
	} {
		if got := read(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if got := read("/etc/sysconfig/irqbalance"); got != "# IRQBALANCE_BANNED_CPULIST=\nIRQBALANCE_ARGS=\nIRQBALANCE_BANNED_CPULIST=1-3,5-7" {
		t.Errorf("irqbalance env:\n%s", got)
	}
	if got := read(cpuprofile.SystemdDropIn); !strings.Contains(got, "[Manager]\nCPUAffinity=0,4") {
		t.Errorf("systemd drop-in:\n%s", got)
	}
	if !reflect.DeepEqual(u.restarts, []string{"irqbalance.service"}) {
		t.Errorf("restarts %v", u.restarts)
	}
	// Converged: the second run plans nothing but the IRQ that cannot move.
	again, err := hp.Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || !strings.HasPrefix(again[0].What, "move 1 IRQs") {
		t.Fatalf("second plan: %v", whats(again))
	}
	if err := change.Apply(context.Background(), act{}, again); err != nil {
		t.Fatalf("the unmovable timer IRQ fails the step: %v", err)
	}
}

func whats(cs []change.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.What)
	}
	return out
}

func TestPlanState(t *testing.T) {
	_, tp := host(t, pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}, 0)
	p, err := cpuprofile.Build(spec(t, "    topologyManagerPolicy: single-numa-node\n"), tp)
	if err != nil {
		t.Fatal(err)
	}
	run := func(h *pcitest.Host, k cpuprofile.Kubelet) []string {
		cs, err := cpuprofile.PlanState(h.Root, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := change.Apply(context.Background(), act{}, cs); err != nil {
			t.Fatal(err)
		}
		return whats(cs)
	}
	// First profile on a node whose kubelet ran with policy none: removed.
	h := pcitest.New(t)
	write(t, h, cpuprofile.CPUManagerState, `{"policyName":"none","defaultCpuSet":"","checksum":1}`)
	write(t, h, cpuprofile.MemoryManagerState, `{"policyName":"None","checksum":1}`)
	if got := run(h, p.Kubelet); len(got) != 3 || h.Exists(cpuprofile.CPUManagerState) || h.Exists(cpuprofile.MemoryManagerState) {
		t.Fatalf("%v", got)
	}
	// kubelet writes fresh state under the profile; the next boot keeps it.
	write(t, h, cpuprofile.CPUManagerState, `{"policyName":"static","defaultCpuSet":"0-7","checksum":2}`)
	write(t, h, cpuprofile.MemoryManagerState, `{"policyName":"Static","checksum":2}`)
	if got := run(h, p.Kubelet); len(got) != 0 || !h.Exists(cpuprofile.CPUManagerState) {
		t.Fatalf("unchanged profile removed state: %v", got)
	}
	// The reserved set changes (an instance resized): both go.
	k2 := p.Kubelet
	k2.ReservedSystemCPUs = "0-1,4-5"
	if got := run(h, k2); len(got) != 2 || h.Exists(cpuprofile.CPUManagerState) {
		t.Fatalf("%v", got)
	}
	// No record, static state lacking a reserved CPU: removed.
	h2 := pcitest.New(t)
	write(t, h2, cpuprofile.CPUManagerState, `{"policyName":"static","defaultCpuSet":"1-3,5-7","checksum":3}`)
	if got := run(h2, p.Kubelet); len(got) != 2 || !strings.Contains(got[0], "lacks reserved CPUs 0,4") {
		t.Fatalf("%v", got)
	}
}

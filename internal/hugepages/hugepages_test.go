package hugepages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

const (
	kib2M = 2048
	kib1G = 1 << 20
	gib   = 1 << 20 // in KiB
)

type fakeMounter struct{ calls []string }

func (m *fakeMounter) Mount(source, target, fstype string, _ uintptr, data string) error {
	m.calls = append(m.calls, fmt.Sprintf("%s %s %s %s", source, target, fstype, data))
	return nil
}

func newHost(t testing.TB, nodes int, free2M, free1G, gain int) (*pcitest.Host, *Manager, *fakeMounter) {
	h := pcitest.New(t)
	h.Memory(16*gib, kib2M, nodes, map[int64]int{kib2M: free2M, kib1G: free1G}, gain)
	m := &fakeMounter{}
	return h, &Manager{Root: h.Root, Kernel: h.Kernel(), Mounter: m}, m
}

// ensure runs Plan and applies its changes the way the hugepages step does.
func ensure(m *Manager, reqs []api.Hugepages) ([]change.Change, error) {
	_, changes, err := m.Plan(reqs)
	if err != nil {
		return nil, err
	}
	return changes, change.Apply(context.Background(), &changetest.Actions{}, changes)
}

func TestReserveTotalOneNode(t *testing.T) {
	h, m, _ := newHost(t, 1, 100, 0, 0)
	reqs := []api.Hugepages{{Size: "2Mi", Count: 8}}
	changes, err := ensure(m, reqs)
	if err != nil || len(changes) != 1 {
		t.Fatalf("changes=%d err=%v", len(changes), err)
	}
	if got := h.ReadInt("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"); got != 8 {
		t.Fatalf("nr_hugepages %d, want 8", got)
	}
	before := pcitest.Snapshot(t, h.Dir)
	changes, err = ensure(m, reqs)
	if err != nil || len(changes) != 0 {
		t.Fatalf("second run: changes=%v err=%v", changes, err)
	}
	if d := pcitest.Diff(before, pcitest.Snapshot(t, h.Dir)); len(d) > 0 {
		t.Fatalf("second run changed %v", d)
	}
}

func TestReservePerNUMANode(t *testing.T) {
	h, m, _ := newHost(t, 2, 100, 0, 0)
	if _, err := ensure(m, []api.Hugepages{{Size: "2Mi", PerNUMANode: map[int]int{0: 4, 1: 6}}}); err != nil {
		t.Fatal(err)
	}
	for node, want := range map[int]int{0: 4, 1: 6} {
		if got := h.ReadInt(fmt.Sprintf("/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages", node)); got != want {
			t.Errorf("node%d: %d, want %d", node, got, want)
		}
	}
	if got := h.ReadInt("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"); got != 10 {
		t.Errorf("total %d, want 10", got)
	}
}

func TestTotalSpreadsOverTwoNodes(t *testing.T) {
	h, m, _ := newHost(t, 2, 100, 0, 0)
	pools, _, err := m.Plan([]api.Hugepages{{Size: "2Mi", Count: 10}})
	if err != nil || pools[0].Total != 0 {
		t.Fatal(pools, err)
	}
	if _, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 10}}); err != nil {
		t.Fatal(err)
	}
	pools, _, _ = m.Plan([]api.Hugepages{{Size: "2Mi", Count: 10}})
	if pools[0].PerNode[0] != 5 || pools[0].PerNode[1] != 5 || h.Compactions != 0 {
		t.Fatalf("per node %v compactions %d", pools[0].PerNode, h.Compactions)
	}
}

func TestCompactionRetries(t *testing.T) {
	// 5 free at first; each compaction frees 2 more: 5, 7, 9 ≥ 8.
	h, m, _ := newHost(t, 1, 5, 0, 2)
	if _, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 8}}); err != nil {
		t.Fatal(err)
	}
	if h.Compactions != 2 {
		t.Fatalf("compactions %d, want 2", h.Compactions)
	}
}

func TestShortFailsWithNumbers(t *testing.T) {
	h, m, _ := newHost(t, 2, 3, 0, 0)
	_, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 8}})
	var se *ShortError
	if !errors.As(err, &se) || !errors.Is(err, ErrShort) {
		t.Fatalf("err = %v", err)
	}
	if se.Requested != 8 || se.Got != 6 || se.PerNode[0] != 3 || se.PerNode[1] != 3 {
		t.Fatalf("%+v", se)
	}
	for _, s := range []string{"requested 8", "got 6", "node0=3 node1=3"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if h.Compactions != Attempts-1 {
		t.Errorf("compactions %d, want %d", h.Compactions, Attempts-1)
	}
}

func TestOneGiShortGivesKernelArgs(t *testing.T) {
	_, m, mnt := newHost(t, 1, 100, 1, 0)
	_, err := ensure(m, []api.Hugepages{{Size: "1Gi", Count: 4}})
	if !errors.Is(err, ErrShort) || !strings.Contains(err.Error(), "default_hugepagesz=1G hugepagesz=1G hugepages=4") {
		t.Fatalf("err = %v", err)
	}
	if len(mnt.calls) != 0 {
		t.Errorf("mounted although the pages failed: %v", mnt.calls)
	}
}

func TestOneGiMountedOnce(t *testing.T) {
	h, m, mnt := newHost(t, 1, 100, 4, 0)
	if _, err := ensure(m, []api.Hugepages{{Size: "1Gi", Count: 2}, {Size: "2Mi", Count: 4}}); err != nil {
		t.Fatal(err)
	}
	want := "hugetlbfs " + h.Path("/dev/hugepages-1Gi") + " hugetlbfs pagesize=1G"
	if len(mnt.calls) != 1 || mnt.calls[0] != want {
		t.Fatalf("mounts %v, want [%s] (2Mi is the default size: systemd mounts it)", mnt.calls, want)
	}
	// The kernel now lists it in mountinfo; the next run mounts nothing.
	mi, _ := os.ReadFile(h.Path("/proc/self/mountinfo"))
	mi = append(mi, []byte("40 22 0:44 / /dev/hugepages-1Gi rw,relatime shared:23 - hugetlbfs hugetlbfs rw,pagesize=1024M\n")...)
	if err := os.WriteFile(h.Path("/proc/self/mountinfo"), mi, 0o644); err != nil {
		t.Fatal(err)
	}
	changes, err := ensure(m, []api.Hugepages{{Size: "1Gi", Count: 2}, {Size: "2Mi", Count: 4}})
	if err != nil || len(changes) != 0 || len(mnt.calls) != 1 {
		t.Fatalf("second run: changes %d mounts %v err %v", len(changes), mnt.calls, err)
	}
}

func TestNeverShrinks(t *testing.T) {
	h, m, _ := newHost(t, 1, 100, 0, 0)
	if _, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 16}}); err != nil {
		t.Fatal(err)
	}
	changes, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 8}})
	if err != nil || len(changes) != 0 || h.ReadInt("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") != 16 {
		t.Fatalf("changes %v err %v", changes, err)
	}
}

// Bad input: a clear error naming the field, and nothing on the host changes.
func TestBadInputLeavesHostUntouched(t *testing.T) {
	cases := []struct {
		name string
		reqs []api.Hugepages
		want error
		says string
	}{
		{"absurd count", []api.Hugepages{{Size: "2Mi", Count: 1 << 30}}, ErrTooMuchMemory, "at most 80% of MemTotal"},
		{"over the ceiling in sum", []api.Hugepages{{Size: "2Mi", Count: 4096}, {Size: "1Gi", Count: 6}}, ErrTooMuchMemory, "spec.hugepages"},
		{"missing NUMA node", []api.Hugepages{{Size: "2Mi", PerNUMANode: map[int]int{3: 1}}}, ErrNoNUMANode, "perNUMANode[3]"},
		{"unknown size", []api.Hugepages{{Size: "4Ki", Count: 1}}, ErrUnsupportedSize, "spec.hugepages[0].size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, m, mnt := newHost(t, 1, 100, 4, 0)
			before := pcitest.Snapshot(t, h.Dir)
			_, err := ensure(m, tc.reqs)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
			if d := pcitest.Diff(before, pcitest.Snapshot(t, h.Dir)); len(d) > 0 || len(h.Writes) > 0 || len(mnt.calls) > 0 {
				t.Fatalf("host touched: %v %v %v", d, h.Writes, mnt.calls)
			}
		})
	}
}

func TestOneGiUnsupported(t *testing.T) {
	h := pcitest.New(t)
	h.Memory(16*gib, kib2M, 1, map[int64]int{kib2M: 100}, 0)
	m := &Manager{Root: h.Root, Kernel: h.Kernel(), Mounter: &fakeMounter{}}
	_, _, err := m.Plan([]api.Hugepages{{Size: "1Gi", Count: 2}})
	if !errors.Is(err, ErrUnsupportedSize) || !strings.Contains(err.Error(), "hugepagesz=1G") {
		t.Fatalf("err = %v", err)
	}
}

// TestRealHost reserves 8 more 2Mi pages on this machine's kernel and puts
// the count back afterwards.
func TestRealHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write /sys/kernel/mm/hugepages")
	}
	const attr = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
	b, err := os.ReadFile(attr)
	if err != nil {
		t.Skipf("no 2Mi huge page pool: %v", err)
	}
	orig, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() {
		if err := os.WriteFile(attr, []byte(strconv.Itoa(orig)), 0o644); err != nil {
			t.Errorf("restore %s to %d: %v", attr, orig, err)
		}
	})
	root := hostfs.New("/")
	m := &Manager{Root: root, Kernel: root, Mounter: &fakeMounter{}}
	want := orig + 8
	changes, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: want}})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("changes %d, want 1", len(changes))
	}
	b, _ = os.ReadFile(attr)
	if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); got != want {
		t.Fatalf("kernel has %d pages, want %d", got, want)
	}
	changes, err = ensure(m, []api.Hugepages{{Size: "2Mi", Count: want}})
	if err != nil || len(changes) != 0 {
		t.Fatalf("second run: %d changes, %v", len(changes), err)
	}
}

// TestRealMount mounts hugetlbfs on a temp dir with mount(2) and finds it
// in the real /proc/self/mountinfo.
func TestRealMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	if err := (SyscallMounter{}).Mount("hugetlbfs", dir, "hugetlbfs", 0, "pagesize=2M"); err != nil {
		t.Skipf("cannot mount hugetlbfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	m := &Manager{Root: hostfs.New("/")}
	ok, err := m.mounted(dir)
	if err != nil || !ok {
		t.Fatalf("mounted(%s) = %v, %v", dir, ok, err)
	}
	if ok, _ := m.mounted(dir + "-not"); ok {
		t.Fatal("found a mount that is not there")
	}
}

func BenchmarkPlanSatisfied(b *testing.B) {
	_, m, _ := newHost(b, 2, 1000, 4, 0)
	reqs := []api.Hugepages{{Size: "2Mi", Count: 512}}
	if _, err := ensure(m, reqs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, c, err := m.Plan(reqs); err != nil || len(c) != 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserve512(b *testing.B) {
	h, m, _ := newHost(b, 1, 1000, 0, 0)
	for b.Loop() {
		b.StopTimer()
		if err := h.Kernel().WriteAttr("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if c, err := ensure(m, []api.Hugepages{{Size: "2Mi", Count: 512}}); err != nil || len(c) != 1 {
			b.Fatal(err)
		}
	}
}

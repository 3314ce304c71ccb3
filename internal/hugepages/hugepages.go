// Package hugepages reserves huge pages through sysfs before kubelet starts,
// since kubelet reads the node's huge page capacity only once at start-up.
//
// Every host path goes through a hostfs.Root, and every kernel write through
// a Kernel, so the logic runs against a fake tree (and a fake kernel that
// allocates fewer pages than asked) in tests.
package hugepages

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Host paths the package reads and writes.
const (
	sysHugepages  = "/sys/kernel/mm/hugepages"
	sysNodes      = "/sys/devices/system/node"
	procMeminfo   = "/proc/meminfo"
	compactMemory = "/proc/sys/vm/compact_memory"
	dropCaches    = "/proc/sys/vm/drop_caches"
	mountinfo     = "/proc/self/mountinfo"
)

// MaxMemoryPercent is the ceiling on huge pages: all configured sizes
// together may take at most this share of MemTotal, so the kernel, kubelet
// and system daemons keep at least a fifth of the node.
const MaxMemoryPercent = 80

// Attempts bounds the write, read back, compact cycle. Compaction only helps
// when free memory is fragmented; if two rounds of it did not free enough
// contiguous memory a third will not either.
const Attempts = 3

// Errors callers match with errors.Is.
var (
	// ErrShort: the kernel allocated fewer pages than requested.
	ErrShort = errors.New("kernel allocated fewer huge pages than requested")
	// ErrTooMuchMemory: the request exceeds MaxMemoryPercent of MemTotal.
	ErrTooMuchMemory = errors.New("huge pages exceed the memory ceiling")
	// ErrUnsupportedSize: the kernel/CPU has no pool for this page size.
	ErrUnsupportedSize = errors.New("page size not supported by this kernel")
	// ErrNoNUMANode: a perNUMANode entry names a node the host lacks.
	ErrNoNUMANode = errors.New("no such NUMA node")
)

// Mounter mounts a filesystem; unix.Mount has this shape.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
}

// Manager reserves huge pages on one host.
type Manager struct {
	Root    hostfs.Root
	Kernel  change.Kernel
	Mounter Mounter
}

// Pool is the observed state of one page size.
type Pool struct {
	Size      string
	Requested int
	// Total is nr_hugepages now; PerNode is each NUMA node's count now.
	Total   int
	PerNode map[int]int
}

// ShortError reports a reservation the kernel could not fully satisfy.
type ShortError struct {
	Size      string
	Requested int
	Got       int
	// Node is the NUMA node asked for, or -1 for a total.
	Node    int
	PerNode map[int]int
	Remedy  string
}

func (e *ShortError) Error() string {
	where := "in total"
	if e.Node >= 0 {
		where = fmt.Sprintf("on NUMA node %d", e.Node)
	}
	msg := fmt.Sprintf("hugepages %s: requested %d %s, got %d after %d attempts with memory compaction (per node now: %s)",
		e.Size, e.Requested, where, e.Got, Attempts, formatNodes(e.PerNode))
	if e.Remedy != "" {
		msg += "; " + e.Remedy
	}
	return msg
}

func (e *ShortError) Is(target error) bool { return target == ErrShort }

// Plan checks the requests against the host and returns the changes needed.
// It only reads. Pools already at or above the requested count are left
// alone: nodeprep only ever raises a pool to the configured count, it never
// shrinks one (pages may have been reserved on the kernel command line for
// the same workloads, and freeing them at run time cannot be undone).
func (m *Manager) Plan(reqs []api.Hugepages) ([]Pool, []change.Change, error) {
	memTotal, defaultKiB, err := m.meminfo()
	if err != nil {
		return nil, nil, err
	}
	var want int64
	for _, r := range reqs {
		want += int64(r.Total()) * api.HugepageBytes(r.Size)
	}
	if ceiling := memTotal * MaxMemoryPercent / 100; want > ceiling {
		return nil, nil, fmt.Errorf("spec.hugepages: %d MiB requested, but at most %d%% of MemTotal (%d MiB) = %d MiB may be huge pages: %w",
			want>>20, MaxMemoryPercent, memTotal>>20, ceiling>>20, ErrTooMuchMemory)
	}
	var pools []Pool
	var changes []change.Change
	for i, r := range reqs {
		kib := api.HugepageBytes(r.Size) >> 10
		if kib == 0 {
			return nil, nil, fmt.Errorf("spec.hugepages[%d].size: %q: %w", i, r.Size, ErrUnsupportedSize)
		}
		if !m.Root.Exists(poolDir(kib)) {
			return nil, nil, fmt.Errorf("spec.hugepages[%d].size: %s: %s missing: %w%s", i, r.Size, poolDir(kib), ErrUnsupportedSize, remedy(r.Size, r.Total()))
		}
		pool, err := m.observe(r.Size, kib)
		if err != nil {
			return nil, nil, err
		}
		pool.Requested = r.Total()
		pools = append(pools, pool)
		if len(r.PerNUMANode) == 0 {
			if pool.Total < r.Count {
				changes = append(changes, m.raise(r.Size, kib, -1, pool.Total, r.Count))
			}
		} else {
			for _, node := range sortedNodes(r.PerNUMANode) {
				have, ok := pool.PerNode[node]
				if !ok {
					return nil, nil, fmt.Errorf("spec.hugepages[%d].perNUMANode[%d]: host has NUMA nodes %s: %w", i, node, nodeList(pool.PerNode), ErrNoNUMANode)
				}
				if want := r.PerNUMANode[node]; have < want {
					changes = append(changes, m.raise(r.Size, kib, node, have, want))
				}
			}
		}
		if kib != defaultKiB && r.Total() > 0 {
			c, err := m.planMount(r.Size, kib)
			if err != nil {
				return nil, nil, err
			}
			if c != nil {
				changes = append(changes, *c)
			}
		}
	}
	return pools, changes, nil
}

func (m *Manager) raise(size string, kib int64, node, have, want int) change.Change {
	attr := poolDir(kib) + "/nr_hugepages"
	what := fmt.Sprintf("reserve %d × %s huge pages in total (now %d)", want, size, have)
	if node >= 0 {
		attr = fmt.Sprintf("%s/node%d/hugepages/hugepages-%dkB/nr_hugepages", sysNodes, node, kib)
		what = fmt.Sprintf("reserve %d × %s huge pages on NUMA node %d (now %d)", want, size, node, have)
	}
	return change.Change{What: what, Apply: func(ctx context.Context) error {
		return m.reserve(ctx, size, kib, node, attr, want)
	}}
}

// reserve writes the count, reads it back, and between attempts asks the
// kernel to drop clean caches and compact memory so contiguous ranges free up.
func (m *Manager) reserve(ctx context.Context, size string, kib int64, node int, attr string, want int) error {
	got := 0
	for attempt := 1; attempt <= Attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt > 1 {
			// Both are best effort: a kernel without compaction still
			// gets its remaining attempts.
			_ = m.Kernel.WriteAttr(dropCaches, "3")
			_ = m.Kernel.WriteAttr(compactMemory, "1")
		}
		if err := m.Kernel.WriteAttr(attr, strconv.Itoa(want)); err != nil {
			return fmt.Errorf("hugepages %s: %w", size, err)
		}
		n, err := m.readInt(attr)
		if err != nil {
			return err
		}
		got = n
		if got >= want {
			return nil
		}
	}
	pool, err := m.observe(size, kib)
	if err != nil {
		return err
	}
	return &ShortError{Size: size, Requested: want, Got: got, Node: node, PerNode: pool.PerNode, Remedy: remedy(size, want)}
}

// remedy is the fix for 1Gi pages: they need contiguous gigabytes, which
// only exist reliably at boot.
func remedy(size string, count int) string {
	if size != api.HugepageSize1Gi {
		return ""
	}
	return fmt.Sprintf("1Gi pages are only reliably available when reserved at boot: set the kernel arguments `default_hugepagesz=1G hugepagesz=1G hugepages=%d` (the nodeprep Packer plugin sets them in the AMI)", count)
}

func (m *Manager) observe(size string, kib int64) (Pool, error) {
	pool := Pool{Size: size, PerNode: map[int]int{}}
	total, err := m.readInt(poolDir(kib) + "/nr_hugepages")
	if err != nil {
		return pool, err
	}
	pool.Total = total
	nodes, err := m.nodes()
	if err != nil {
		return pool, err
	}
	for _, n := range nodes {
		c, err := m.readInt(fmt.Sprintf("%s/node%d/hugepages/hugepages-%dkB/nr_hugepages", sysNodes, n, kib))
		if errors.Is(err, os.ErrNotExist) {
			continue // a memoryless node has no pools
		}
		if err != nil {
			return pool, err
		}
		pool.PerNode[n] = c
	}
	return pool, nil
}

// nodes lists the NUMA nodes sysfs shows. A kernel without NUMA support has
// no node directory: the whole machine is node 0 for per-node requests only
// if sysfs says so.
func (m *Manager) nodes() ([]int, error) {
	names, err := m.Root.ReadDirNames(sysNodes)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, "node")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func (m *Manager) readInt(hostPath string) (int, error) {
	b, err := m.Root.ReadFile(hostPath)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", hostPath, err)
	}
	return n, nil
}

// meminfo returns MemTotal in bytes and the default huge page size in KiB.
func (m *Manager) meminfo() (memTotal int64, defaultKiB int64, err error) {
	b, err := m.Root.ReadFile(procMeminfo)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "MemTotal":
			memTotal = n << 10
		case "Hugepagesize":
			defaultKiB = n
		}
	}
	if memTotal == 0 {
		return 0, 0, fmt.Errorf("%s: no MemTotal", procMeminfo)
	}
	return memTotal, defaultKiB, nil
}

func poolDir(kib int64) string { return fmt.Sprintf("%s/hugepages-%dkB", sysHugepages, kib) }

func sortedNodes(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func formatNodes(m map[int]int) string {
	if len(m) == 0 {
		return "no NUMA nodes in sysfs"
	}
	parts := make([]string, 0, len(m))
	for _, n := range sortedNodes(m) {
		parts = append(parts, fmt.Sprintf("node%d=%d", n, m[n]))
	}
	return strings.Join(parts, " ")
}

func nodeList(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, n := range sortedNodes(m) {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

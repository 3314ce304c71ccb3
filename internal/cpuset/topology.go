package cpuset

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Host paths the topology is read from.
const (
	SysCPU  = "/sys/devices/system/cpu"
	SysNode = "/sys/devices/system/node"
)

// Topology is the node's online CPUs, their hyperthread siblings and NUMA
// nodes, as sysfs reports them.
type Topology struct {
	// Online is /sys/devices/system/cpu/online.
	Online Set
	// Nodes are the NUMA node numbers with at least one online CPU, ascending.
	Nodes []int
	// core maps each online CPU to its core: its thread_siblings_list, online only.
	core map[int]Set
	// node maps each online CPU to its NUMA node.
	node map[int]int
}

// ReadTopology reads the CPU topology through root. A CPU without a
// topology directory is its own core (some hypervisors show none), and a
// kernel without NUMA directories puts every CPU on node 0, as the kernel
// itself does on a non-NUMA build.
func ReadTopology(root hostfs.Root) (Topology, error) {
	raw, err := root.ReadFile(SysCPU + "/online")
	if err != nil {
		return Topology{}, fmt.Errorf("read CPU topology: %w", err)
	}
	online, err := Parse(string(raw))
	if err != nil {
		return Topology{}, fmt.Errorf("%s/online: %w", SysCPU, err)
	}
	if online.IsEmpty() {
		return Topology{}, fmt.Errorf("%s/online lists no CPU", SysCPU)
	}
	t := Topology{Online: online, core: map[int]Set{}, node: map[int]int{}}
	for _, cpu := range online.List() {
		p := fmt.Sprintf("%s/cpu%d/topology/thread_siblings_list", SysCPU, cpu)
		b, err := root.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			t.core[cpu] = Of(cpu)
			continue
		case err != nil:
			return Topology{}, err
		}
		sib, err := Parse(string(b))
		if err != nil {
			return Topology{}, fmt.Errorf("%s: %w", p, err)
		}
		t.core[cpu] = sib.Intersect(online).Union(Of(cpu))
	}
	names, err := root.ReadDirNames(SysNode)
	if err != nil {
		return Topology{}, err
	}
	seen := map[int]bool{}
	for _, name := range names {
		n, err := strconv.Atoi(strings.TrimPrefix(name, "node"))
		if !strings.HasPrefix(name, "node") || err != nil || n < 0 {
			continue
		}
		p := fmt.Sprintf("%s/node%d/cpulist", SysNode, n)
		b, err := root.ReadFile(p)
		if err != nil {
			return Topology{}, err
		}
		cpus, err := Parse(string(b))
		if err != nil {
			return Topology{}, fmt.Errorf("%s: %w", p, err)
		}
		for _, cpu := range cpus.Intersect(online).List() {
			t.node[cpu] = n
			seen[n] = true
		}
	}
	for _, cpu := range online.List() {
		if _, ok := t.node[cpu]; !ok {
			t.node[cpu] = 0
			seen[0] = true
		}
	}
	for n := range seen {
		t.Nodes = append(t.Nodes, n)
	}
	sort.Ints(t.Nodes)
	return t, nil
}

// Core is the online CPUs of cpu's core (cpu itself and its hyperthread
// siblings), or the empty set for an offline CPU.
func (t Topology) Core(cpu int) Set { return t.core[cpu] }

// Node is cpu's NUMA node, or -1 for an offline CPU.
func (t Topology) Node(cpu int) int {
	if n, ok := t.node[cpu]; ok {
		return n
	}
	return -1
}

// NodeCPUs is the online CPUs of NUMA node n.
func (t Topology) NodeCPUs(n int) Set {
	var b builder
	for cpu, node := range t.node {
		if node == n {
			b.add(cpu)
		}
	}
	return b.set()
}

// Cores lists every core as its set of CPUs, in order of the core's lowest CPU.
func (t Topology) Cores() []Set {
	var out []Set
	for _, cpu := range t.Online.List() {
		c := t.core[cpu]
		if c.List()[0] == cpu {
			out = append(out, c)
		}
	}
	return out
}

// ThreadsPerCore is the largest core's thread count: 2 with SMT on.
func (t Topology) ThreadsPerCore() int {
	n := 1
	for _, c := range t.core {
		n = max(n, c.Len())
	}
	return n
}

// Split is the CPUs of s that share a core with a CPU outside s: the
// siblings a set must add or drop to hold whole cores only.
func (t Topology) Split(s Set) (missing Set) {
	for _, cpu := range s.Intersect(t.Online).List() {
		missing = missing.Union(t.core[cpu].Difference(s))
	}
	return missing
}

// Package cpuprofile renders one spec.cpu, on one node's topology, into
// everything that must agree on the reserved and isolated CPU sets: the
// kernel arguments, kubelet's CPU, topology and memory managers (a typed
// value the nodeadm drop-in carries), systemd's CPU affinity, the IRQ and
// RPS masks, irqbalance's ban list, and the removal of kubelet state that a
// changed profile would make kubelet refuse. It is the PerformanceProfile
// of the cluster-node-tuning-operator, computed on the node itself.
package cpuprofile

import (
	"fmt"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"sort"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
)

// Profile is spec.cpu resolved on one node.
type Profile struct {
	Topology  cpuset.Topology
	Partition cpuset.Partition
	// Kernel are the isolation arguments the node must boot with.
	Kernel kernelargs.Args
	// Kubelet is what the nodeadm drop-in sets in kubelet's config.
	Kubelet Kubelet
}

// Kubelet is the part of KubeletConfiguration (kubelet.config.k8s.io/v1beta1)
// a CPU profile sets, with its field names. The drop-in merges it over
// nodeadm's generated config (kubelet applies drop-ins as JSON merge
// patches, so an explicit "" clears a value).
type Kubelet struct {
	CPUManagerPolicy        string              `yaml:"cpuManagerPolicy,omitempty" json:"cpuManagerPolicy,omitempty"`
	CPUManagerPolicyOptions map[string]string   `yaml:"cpuManagerPolicyOptions,omitempty" json:"cpuManagerPolicyOptions,omitempty"`
	ReservedSystemCPUs      string              `yaml:"reservedSystemCPUs,omitempty" json:"reservedSystemCPUs,omitempty"`
	TopologyManagerPolicy   string              `yaml:"topologyManagerPolicy,omitempty" json:"topologyManagerPolicy,omitempty"`
	MemoryManagerPolicy     string              `yaml:"memoryManagerPolicy,omitempty" json:"memoryManagerPolicy,omitempty"`
	ReservedMemory          []MemoryReservation `yaml:"reservedMemory,omitempty" json:"reservedMemory,omitempty"`
	KubeReserved            map[string]string   `yaml:"kubeReserved,omitempty" json:"kubeReserved,omitempty"`
	SystemReserved          map[string]string   `yaml:"systemReserved,omitempty" json:"systemReserved,omitempty"`
	EvictionHard            map[string]string   `yaml:"evictionHard,omitempty" json:"evictionHard,omitempty"`
	// KubeReservedCgroup and SystemReservedCgroup are set to "" because
	// kubelet refuses reservedSystemCPUs together with either, and nodeadm
	// always sets both (/runtime, /system) in the config it generates.
	KubeReservedCgroup   *string `yaml:"kubeReservedCgroup,omitempty" json:"kubeReservedCgroup,omitempty"`
	SystemReservedCgroup *string `yaml:"systemReservedCgroup,omitempty" json:"systemReservedCgroup,omitempty"`
}

// MemoryReservation is kubelet's reservedMemory entry for one NUMA node.
type MemoryReservation struct {
	NumaNode int32             `yaml:"numaNode" json:"numaNode"`
	Limits   map[string]string `yaml:"limits" json:"limits"`
}

// kubelet's option and policy names.
const (
	cpuManagerStatic    = "static"
	optionFullPCPUsOnly = "full-pcpus-only"
	memoryManagerStatic = "Static"
	evictionMemory      = "memory.available"
)

// Resolve is Build on the CPU topology of the host under root: what the
// cpu-profile step and `nodeprep validate --root` compute.
func Resolve(root hostfs.Root, c *api.CPU) (*Profile, error) {
	topo, err := cpuset.ReadTopology(root)
	if err != nil {
		return nil, err
	}
	return Build(c, topo)
}

// Build resolves a defaulted, validated spec.cpu on a topology.
func Build(c *api.CPU, topo cpuset.Topology) (*Profile, error) {
	part, err := topo.Partition(c.Request())
	if err != nil {
		return nil, err
	}
	iso := c.KernelIsolation
	p := &Profile{
		Topology:  topo,
		Partition: part,
		Kernel: kernelargs.CPUIsolation(part, kernelargs.Isolation{
			NohzFull: *iso.NohzFull, RCUNocbs: *iso.RCUNocbs, ManagedIRQ: *iso.ManagedIRQ, IRQAffinity: *iso.IRQAffinity,
		}),
	}
	empty := ""
	k := Kubelet{
		CPUManagerPolicy:      cpuManagerStatic,
		ReservedSystemCPUs:    part.Reserved.String(),
		TopologyManagerPolicy: c.TopologyManagerPolicy,
		KubeReservedCgroup:    &empty,
		SystemReservedCgroup:  &empty,
	}
	// full-pcpus-only needs whole cores to hand out; it is meaningless
	// (and harmless) without SMT, and kubelet accepts it either way.
	k.CPUManagerPolicyOptions = map[string]string{optionFullPCPUsOnly: "true"}
	if c.MemoryManagerOn() {
		m := c.MemoryManager
		k.MemoryManagerPolicy = memoryManagerStatic
		k.KubeReserved = map[string]string{"memory": m.KubeReserved}
		k.SystemReserved = map[string]string{"memory": m.SystemReserved}
		k.EvictionHard = map[string]string{evictionMemory: m.EvictionHard}
		rm, err := ReservedMemory(topo.Nodes, m.KubeReserved, m.SystemReserved, m.EvictionHard)
		if err != nil {
			return nil, err
		}
		k.ReservedMemory = rm
	}
	p.Kubelet = k
	return p, nil
}

// ReservedMemory splits kube + system reserved + the hard eviction
// threshold over the NUMA nodes, in whole MiB with the remainder on the
// first node, so the entries add up to exactly the node allocatable
// reservation kubelet's memory manager checks them against ("the total
// amount ... is not equal to the value ... determined by Node Allocatable").
func ReservedMemory(nodes []int, quantities ...string) ([]MemoryReservation, error) {
	var total resource.Quantity
	for _, s := range quantities {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("memory quantity %q: %w", s, err)
		}
		total.Add(q)
	}
	if len(nodes) == 0 {
		nodes = []int{0}
	}
	sorted := append([]int(nil), nodes...)
	sort.Ints(sorted)
	bytes := total.Value()
	const mi = 1 << 20
	if bytes%mi != 0 {
		// Not a whole MiB: keep the exact quantity on one node.
		return []MemoryReservation{{NumaNode: int32(sorted[0]), Limits: map[string]string{"memory": total.String()}}}, nil
	}
	each := bytes / mi / int64(len(sorted))
	rest := bytes/mi - each*int64(len(sorted))
	out := make([]MemoryReservation, 0, len(sorted))
	for i, n := range sorted {
		v := each
		if i == 0 {
			v += rest
		}
		if v == 0 {
			continue // kubelet refuses a zero reservation
		}
		out = append(out, MemoryReservation{NumaNode: int32(n), Limits: map[string]string{"memory": fmt.Sprintf("%dMi", v)}})
	}
	return out, nil
}

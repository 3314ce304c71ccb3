package api

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeprep/nodeprep/internal/cpuset"
)

// CPU partitions the node's CPUs into reserved (housekeeping: kernel threads, interrupts, systemd services, kubelet) and isolated (pods that kubelet's static CPU manager pins), computed on the node from its own topology.
type CPU struct {
	// Reserved is "auto" (the default: reservedCores whole cores) or a CPU list such as 0-1,32-33; whole cores only, hyperthread siblings together.
	Reserved string `yaml:"reserved,omitempty" json:"reserved,omitempty"`
	// ReservedCores is, with reserved auto, how many whole cores to reserve, spread over the NUMA nodes; default one per NUMA node.
	ReservedCores int `yaml:"reservedCores,omitempty" json:"reservedCores,omitempty"`
	// Isolated is a CPU list; default every online CPU that is not reserved. When given, reserved and isolated together must hold every online CPU exactly once.
	Isolated string `yaml:"isolated,omitempty" json:"isolated,omitempty"`
	// KernelIsolation chooses the kernel arguments that keep the kernel off the isolated CPUs; all on by default.
	KernelIsolation KernelIsolation `yaml:"kernelIsolation,omitempty" json:"kernelIsolation,omitempty"`
	// TopologyManagerPolicy is kubelet's: none, best-effort (default, as the PerformanceProfile), restricted or single-numa-node.
	TopologyManagerPolicy string `yaml:"topologyManagerPolicy,omitempty" json:"topologyManagerPolicy,omitempty"`
	// MemoryManager configures kubelet's memory manager.
	MemoryManager MemoryManager `yaml:"memoryManager,omitempty" json:"memoryManager,omitempty"`
}

// KernelIsolation says which isolation kernel arguments are rendered.
type KernelIsolation struct {
	// NohzFull renders nohz_full=<isolated>: no scheduler tick on an isolated CPU running one task.
	NohzFull *bool `yaml:"nohzFull,omitempty" json:"nohzFull,omitempty"`
	// RCUNocbs renders rcu_nocbs=<isolated>: RCU callbacks run on the reserved CPUs.
	RCUNocbs *bool `yaml:"rcuNocbs,omitempty" json:"rcuNocbs,omitempty"`
	// ManagedIRQ renders isolcpus=managed_irq,<isolated>: drivers' managed interrupts stay off the isolated CPUs.
	ManagedIRQ *bool `yaml:"managedIRQ,omitempty" json:"managedIRQ,omitempty"`
	// IRQAffinity renders irqaffinity=<reserved>: every interrupt starts on the reserved CPUs.
	IRQAffinity *bool `yaml:"irqAffinity,omitempty" json:"irqAffinity,omitempty"`
}

// MemoryManager configures kubelet's memory manager and the memory reservations it must agree with.
type MemoryManager struct {
	// Enabled sets memoryManagerPolicy Static with reservedMemory per NUMA node; default on when topologyManagerPolicy is restricted or single-numa-node.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// KubeReserved is kubelet's kubeReserved memory, set explicitly so reservedMemory can equal it plus systemReserved plus the hard eviction threshold; default 1Gi.
	KubeReserved string `yaml:"kubeReserved,omitempty" json:"kubeReserved,omitempty"`
	// SystemReserved is kubelet's systemReserved memory; default 500Mi.
	SystemReserved string `yaml:"systemReserved,omitempty" json:"systemReserved,omitempty"`
	// EvictionHard is kubelet's evictionHard memory.available; default 100Mi (nodeadm's).
	EvictionHard string `yaml:"evictionHard,omitempty" json:"evictionHard,omitempty"`
}

// Values of spec.cpu.
const (
	CPUReservedAuto = "auto"

	TopologyNone           = "none"
	TopologyBestEffort     = "best-effort"
	TopologyRestricted     = "restricted"
	TopologySingleNUMANode = "single-numa-node"

	DefaultKubeReservedMemory   = "1Gi"
	DefaultSystemReservedMemory = "500Mi"
	DefaultEvictionHardMemory   = "100Mi"
)

// Hugepage placements.
const (
	// HugepagePlacementKernel lets the kernel spread count over the NUMA nodes.
	HugepagePlacementKernel = "kernel"
	// HugepagePlacementNICLocal splits count over the NUMA nodes of the DPDK interfaces' NICs.
	HugepagePlacementNICLocal = "nicLocal"
)

// Request is the partition request of a defaulted, validated spec.cpu.
func (c *CPU) Request() cpuset.Request {
	req := cpuset.Request{ReservedCores: c.ReservedCores, ReservedField: "spec.cpu.reserved", IsolatedField: "spec.cpu.isolated"}
	if c.Reserved != CPUReservedAuto {
		req.Reserved, _ = cpuset.Parse(c.Reserved)
	}
	req.Isolated, _ = cpuset.Parse(c.Isolated)
	return req
}

// MemoryManagerOn reports whether kubelet's memory manager is to be Static.
func (c *CPU) MemoryManagerOn() bool {
	return c.MemoryManager.Enabled != nil && *c.MemoryManager.Enabled
}

func setCPUDefaults(c *CPU) {
	if c == nil {
		return
	}
	if c.Reserved == "" {
		c.Reserved = CPUReservedAuto
	}
	for _, b := range []**bool{&c.KernelIsolation.NohzFull, &c.KernelIsolation.RCUNocbs, &c.KernelIsolation.ManagedIRQ, &c.KernelIsolation.IRQAffinity} {
		if *b == nil {
			on := true
			*b = &on
		}
	}
	if c.TopologyManagerPolicy == "" {
		c.TopologyManagerPolicy = TopologyBestEffort
	}
	m := &c.MemoryManager
	if m.Enabled == nil {
		on := c.TopologyManagerPolicy == TopologyRestricted || c.TopologyManagerPolicy == TopologySingleNUMANode
		m.Enabled = &on
	}
	for _, f := range []struct {
		p *string
		d string
	}{{&m.KubeReserved, DefaultKubeReservedMemory}, {&m.SystemReserved, DefaultSystemReservedMemory}, {&m.EvictionHard, DefaultEvictionHardMemory}} {
		if *f.p == "" {
			*f.p = f.d
		}
	}
}

func setHugepagePlacementDefaults(hps []Hugepages) {
	for i := range hps {
		if hps[i].Placement == "" {
			hps[i].Placement = HugepagePlacementKernel
		}
	}
}

// cpu checks what can be checked without the node: syntax, overlap, bounds.
// Whole cores and online CPUs need the node's topology; cpuset.Partition
// checks them before any change, naming the same fields.
func (v *validator) cpu(c *CPU, hps []Hugepages, ifs []Interface) {
	for i, h := range hps {
		p := fmt.Sprintf("spec.hugepages[%d].placement", i)
		switch h.Placement {
		case HugepagePlacementKernel:
		case HugepagePlacementNICLocal:
			if len(h.PerNUMANode) > 0 {
				v.add(p, h.Placement, "nicLocal splits count over the NICs' NUMA nodes; give count, not perNUMANode")
			}
			if !anyDPDK(ifs) {
				v.add(p, h.Placement, "nicLocal needs a DPDK interface (driver vfio-pci or igb_uio) whose NIC's NUMA node it follows")
			}
		default:
			v.add(p, h.Placement, "must be kernel or nicLocal")
		}
	}
	if c == nil {
		return
	}
	var reserved, isolated cpuset.Set
	var err error
	if c.Reserved != CPUReservedAuto {
		if reserved, err = cpuset.Parse(c.Reserved); err != nil {
			v.add("spec.cpu.reserved", c.Reserved, "must be auto or a CPU list such as 0-1,32-33")
		} else if reserved.IsEmpty() {
			v.add("spec.cpu.reserved", c.Reserved, "must name at least one CPU")
		}
		if c.ReservedCores != 0 {
			v.add("spec.cpu.reservedCores", c.ReservedCores, "only with reserved auto; an explicit list fixes the cores")
		}
	}
	if c.ReservedCores < 0 || c.ReservedCores > cpuset.MaxCPUs {
		v.add("spec.cpu.reservedCores", c.ReservedCores, "must be between 1 and %d", cpuset.MaxCPUs)
	}
	if isolated, err = cpuset.Parse(c.Isolated); err != nil {
		v.add("spec.cpu.isolated", c.Isolated, "must be a CPU list such as 2-31,34-63")
	}
	if both := reserved.Intersect(isolated); !both.IsEmpty() {
		v.add("spec.cpu.isolated", c.Isolated, "CPUs %s are also in spec.cpu.reserved; a CPU is either reserved or isolated", both)
	}
	switch c.TopologyManagerPolicy {
	case TopologyNone, TopologyBestEffort, TopologyRestricted, TopologySingleNUMANode:
	default:
		v.add("spec.cpu.topologyManagerPolicy", c.TopologyManagerPolicy, "must be none, best-effort, restricted or single-numa-node")
	}
	m := c.MemoryManager
	for _, f := range []struct{ path, val string }{
		{"spec.cpu.memoryManager.kubeReserved", m.KubeReserved},
		{"spec.cpu.memoryManager.systemReserved", m.SystemReserved},
		{"spec.cpu.memoryManager.evictionHard", m.EvictionHard},
	} {
		q, err := resource.ParseQuantity(f.val)
		switch {
		case err != nil:
			v.add(f.path, f.val, "must be a memory quantity such as 500Mi")
		case q.Sign() <= 0:
			v.add(f.path, f.val, "must be above zero: kubelet refuses a zero reservedMemory")
		}
	}
}

func anyDPDK(ifs []Interface) bool {
	for _, in := range ifs {
		if in.DPDK() {
			return true
		}
	}
	return false
}

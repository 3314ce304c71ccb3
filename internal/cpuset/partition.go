package cpuset

import (
	"fmt"
	"strings"
)

// Request is what the config asks of the partition. Exactly one of
// Reserved and ReservedCores describes the reserved set.
type Request struct {
	// Reserved is an explicit reserved list; empty means automatic.
	Reserved Set
	// ReservedCores is the number of whole cores the automatic reserved
	// set takes; 0 means one per NUMA node.
	ReservedCores int
	// Isolated is an explicit isolated list; empty means every online CPU
	// that is not reserved.
	Isolated Set
	// ReservedField and IsolatedField are the config paths errors name.
	ReservedField, IsolatedField string
}

// Partition is the node's CPUs split in two: reserved for housekeeping
// (kernel threads, IRQs, systemd services, kubelet and containerd) and
// isolated for pods that kubelet's static CPU manager pins. Every online
// CPU is in exactly one of them, and each holds whole cores only.
type Partition struct {
	Reserved Set
	Isolated Set
}

// Problem is one reason a Request does not fit the topology.
type Problem struct {
	Field string
	// CPUs are the offending CPUs, when there are some.
	CPUs   Set
	Reason string
}

func (p Problem) Error() string {
	if p.CPUs.IsEmpty() {
		return fmt.Sprintf("%s: %s", p.Field, p.Reason)
	}
	return fmt.Sprintf("%s: CPUs %s: %s", p.Field, p.CPUs, p.Reason)
}

// PartitionError lists every problem with a Request.
type PartitionError struct {
	Problems []Problem
}

func (e *PartitionError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Partition computes the reserved and isolated sets on this topology. It
// reports every problem at once: CPUs that are not online, a reserved and
// an isolated set that overlap or leave online CPUs in neither, and a set
// that splits a core between housekeeping and pods (kubelet's
// full-pcpus-only then could not hand out that core whole, and the
// housekeeping sibling would share the isolated one's L1 and L2).
func (t Topology) Partition(req Request) (Partition, error) {
	rf, isf := req.ReservedField, req.IsolatedField
	if rf == "" {
		rf = "reserved"
	}
	if isf == "" {
		isf = "isolated"
	}
	var probs []Problem
	add := func(field string, cpus Set, format string, args ...any) {
		probs = append(probs, Problem{Field: field, CPUs: cpus, Reason: fmt.Sprintf(format, args...)})
	}
	var reserved Set
	if req.Reserved.IsEmpty() {
		r, err := t.autoReserved(req.ReservedCores)
		if err != nil {
			add(rf, Set{}, "%v", err)
		}
		reserved = r
	} else {
		reserved = req.Reserved
		if off := reserved.Difference(t.Online); !off.IsEmpty() {
			add(rf, off, "not online (online: %s)", t.Online)
		}
	}
	isolated := req.Isolated
	if isolated.IsEmpty() {
		isolated = t.Online.Difference(reserved)
	} else {
		if off := isolated.Difference(t.Online); !off.IsEmpty() {
			add(isf, off, "not online (online: %s)", t.Online)
		}
		if both := isolated.Intersect(reserved); !both.IsEmpty() {
			add(isf, both, "also in %s (%s); a CPU is either reserved or isolated", rf, reserved)
		}
		if left := t.Online.Difference(reserved.Union(isolated)); !left.IsEmpty() {
			add(isf, left, "online but in neither %s nor %s; every online CPU must be in one", rf, isf)
		}
	}
	if split := t.Split(reserved.Intersect(t.Online)); !split.IsEmpty() {
		add(rf, split, "hyperthread siblings of reserved CPUs are missing; reserve whole cores (%s)", t.coreHint(reserved))
	}
	if !req.Isolated.IsEmpty() {
		if split := t.Split(isolated.Intersect(t.Online)); !split.IsEmpty() {
			add(isf, split, "hyperthread siblings of isolated CPUs are missing; isolate whole cores")
		}
	}
	if len(probs) == 0 && isolated.Intersect(t.Online).IsEmpty() {
		add(isf, Set{}, "no CPU left to isolate: the node has %d online CPUs in %d cores and %s takes %s", t.Online.Len(), len(t.Cores()), rf, reserved)
	}
	if len(probs) > 0 {
		return Partition{}, &PartitionError{Problems: probs}
	}
	return Partition{Reserved: reserved, Isolated: isolated}, nil
}

// coreHint names the whole cores a reserved set touches.
func (t Topology) coreHint(s Set) string {
	var whole Set
	for _, cpu := range s.Intersect(t.Online).List() {
		whole = whole.Union(t.core[cpu])
	}
	return "e.g. " + whole.String()
}

// autoReserved takes n whole cores (0: one per NUMA node), spread over the
// NUMA nodes round-robin and lowest-numbered first on each, so every node
// keeps a housekeeping core for its own interrupts and kernel threads, and
// CPU 0 (which some firmware interrupts cannot leave) is always among them.
func (t Topology) autoReserved(n int) (Set, error) {
	if n == 0 {
		n = len(t.Nodes)
	}
	cores := t.Cores()
	if n >= len(cores) {
		return Set{}, fmt.Errorf("auto reserves %d whole cores but the node has %d (%d online CPUs, %d thread(s) per core); at least one must stay for isolation", n, len(cores), t.Online.Len(), t.ThreadsPerCore())
	}
	perNode := map[int][]Set{}
	for _, c := range cores {
		node := t.node[c.List()[0]]
		perNode[node] = append(perNode[node], c)
	}
	var out Set
	for taken := 0; taken < n; {
		progressed := false
		for _, node := range t.Nodes {
			if taken == n {
				break
			}
			if len(perNode[node]) == 0 {
				continue
			}
			out = out.Union(perNode[node][0])
			perNode[node] = perNode[node][1:]
			taken++
			progressed = true
		}
		if !progressed {
			break
		}
	}
	return out, nil
}

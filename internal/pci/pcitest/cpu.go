package pcitest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// CPUShape is an instance type's CPU layout, numbered the way EC2's Nitro
// hypervisor numbers it: the first thread of every core first (NUMA node 0's
// cores, then node 1's), then the second threads in the same order, so CPU c
// and c+Cores are siblings. m7i.48xlarge is {CPUs: 192, Nodes: 2, Threads: 2}.
type CPUShape struct {
	CPUs    int
	Nodes   int
	Threads int
	// Offline CPUs are absent from online (hot-unplugged or maxcpus=).
	Offline []int
}

// Cores is the number of physical cores.
func (s CPUShape) Cores() int { return s.CPUs / s.Threads }

// NodeOf is the NUMA node of a CPU.
func (s CPUShape) NodeOf(cpu int) int {
	core := cpu % s.Cores()
	return core * s.Nodes / s.Cores()
}

// SetCPUs writes the shape's /sys/devices/system/cpu and the cpulist of each
// /sys/devices/system/node/node<N>, and a /proc/irq tree of irqs interrupts
// (IRQ 0 is the timer, which refuses a new affinity like the real one; the
// rest accept one), all with every online CPU in their affinity.
func (h *Host) SetCPUs(s CPUShape, irqs int) {
	off := map[int]bool{}
	for _, c := range s.Offline {
		off[c] = true
	}
	var online []int
	for c := 0; c < s.CPUs; c++ {
		if !off[c] {
			online = append(online, c)
		}
	}
	h.write("/sys/devices/system/cpu/online", listOf(online)+"\n")
	h.write("/sys/devices/system/cpu/possible", fmt.Sprintf("0-%d\n", s.CPUs-1))
	h.write("/sys/devices/system/cpu/isolated", "\n")
	h.write("/sys/devices/system/cpu/nohz_full", "(null)\n")
	nodeCPUs := map[int][]int{}
	for _, c := range online {
		var sib []int
		for t := 0; t < s.Threads; t++ {
			if o := c%s.Cores() + t*s.Cores(); !off[o] {
				sib = append(sib, o)
			}
		}
		dir := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/topology", c)
		h.write(dir+"/thread_siblings_list", listOf(sib)+"\n")
		h.write(dir+"/core_id", strconv.Itoa(c%s.Cores())+"\n")
		h.write(dir+"/physical_package_id", strconv.Itoa(s.NodeOf(c))+"\n")
		nodeCPUs[s.NodeOf(c)] = append(nodeCPUs[s.NodeOf(c)], c)
	}
	for n := 0; n < s.Nodes; n++ {
		h.write(fmt.Sprintf("/sys/devices/system/node/node%d/cpulist", n), listOf(nodeCPUs[n])+"\n")
	}
	all := listOf(online)
	h.write("/proc/irq/default_smp_affinity", maskOf(online)+"\n")
	for i := 0; i < irqs; i++ {
		h.write(fmt.Sprintf("/proc/irq/%d/smp_affinity_list", i), all+"\n")
		h.write(fmt.Sprintf("/proc/irq/%d/effective_affinity_list", i), all+"\n")
	}
	h.mu.Lock()
	h.onlineCPUs = online
	h.mu.Unlock()
}

// AddRxQueues gives a netdev n receive queues with RPS off (rps_cpus 0).
func (h *Host) AddRxQueues(ifname string, n int) {
	for q := 0; q < n; q++ {
		h.write(fmt.Sprintf("/sys/class/net/%s/queues/rx-%d/rps_cpus", ifname, q), "0\n")
	}
}

// cpuWrite is the kernel side of CPU-affinity writes; handled is false for
// paths it does not own.
func (h *Host) cpuWrite(hostPath, v string) (handled bool, err error) {
	errno := func(e syscall.Errno) error { return &os.PathError{Op: "write", Path: hostPath, Err: e} }
	switch {
	case strings.HasPrefix(hostPath, "/proc/irq/") && strings.HasSuffix(hostPath, "/smp_affinity_list"):
		cpus, ok := parseList(v)
		if !ok {
			return true, errno(syscall.EINVAL)
		}
		// The kernel refuses a mask with no online CPU, and the timer
		// (like every per-CPU or managed IRQ) cannot be moved.
		if !h.anyOnline(cpus) {
			return true, errno(syscall.EINVAL)
		}
		if hostPath == "/proc/irq/0/smp_affinity_list" {
			return true, errno(syscall.EIO)
		}
		list := listOf(cpus)
		h.write(hostPath, list+"\n")
		h.write(strings.TrimSuffix(hostPath, "smp_affinity_list")+"effective_affinity_list", list+"\n")
		return true, nil
	case hostPath == "/proc/irq/default_smp_affinity", strings.HasSuffix(hostPath, "/rps_cpus"),
		hostPath == "/proc/sys/net/core/rps_default_mask":
		for _, w := range strings.Split(v, ",") {
			if _, err := strconv.ParseUint(w, 16, 32); err != nil {
				return true, errno(syscall.EINVAL)
			}
		}
		h.write(hostPath, v+"\n")
		return true, nil
	case strings.HasPrefix(hostPath, "/sys/fs/cgroup/") && strings.HasSuffix(hostPath, "/cpuset.cpus"):
		if _, ok := parseList(v); !ok {
			return true, errno(syscall.EINVAL)
		}
		h.write(hostPath, v+"\n")
		h.write(strings.TrimSuffix(hostPath, "cpuset.cpus")+"cpuset.cpus.effective", v+"\n")
		return true, nil
	}
	return false, nil
}

func (h *Host) anyOnline(cpus []int) bool {
	on := map[int]bool{}
	for _, c := range h.onlineCPUs {
		on[c] = true
	}
	for _, c := range cpus {
		if on[c] {
			return true
		}
	}
	return false
}

// parseList is a deliberately separate reading of the kernel list format,
// so the fake does not trust the code under test's parser.
func parseList(s string) ([]int, bool) {
	var out []int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, r := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, false
		}
		b := a
		if r {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, false
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, true
}

func listOf(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func maskOf(cpus []int) string {
	n := 1
	for _, c := range cpus {
		n = max(n, c/32+1)
	}
	words := make([]uint32, n)
	for _, c := range cpus {
		words[c/32] |= 1 << (c % 32)
	}
	parts := make([]string, n)
	for i := range words {
		parts[n-1-i] = fmt.Sprintf("%08x", words[i])
	}
	return strings.Join(parts, ",")
}

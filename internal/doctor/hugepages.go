package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/pci"
)

const (
	sysHugepages = "/sys/kernel/mm/hugepages"
	sysNodes     = "/sys/devices/system/node"
	procStat     = "/proc/stat"
	// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's starttime: 100
	// on every Linux architecture EC2 runs.
	clockTicks = 100
	// stepHugepages is the run's hugepage step, as the state file names it.
	stepHugepages = "hugepages"
)

func pageKiB(size string) int64 { return api.HugepageBytes(size) / 1024 }

func (n *Node) readInt(hostPath string) (int, error) {
	b, err := n.Root.ReadFile(hostPath)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// checkHugepages: each configured size has at least the pages asked for,
// in total and on each NUMA node the config names.
func checkHugepages(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	var out []Finding
	for _, h := range n.Config.Spec.Hugepages {
		kib := pageKiB(h.Size)
		if len(h.PerNUMANode) == 0 {
			p := fmt.Sprintf("%s/hugepages-%dkB/nr_hugepages", sysHugepages, kib)
			have, err := n.readInt(p)
			switch {
			case err != nil:
				out = append(out, fail(h.Size, p+": "+err.Error(), "the kernel has no "+h.Size+" pool: check hugepagesz support"))
			case have < h.Count:
				out = append(out, fail(h.Size, fmt.Sprintf("%d allocated, %d requested (%s)", have, h.Count, p),
					fmt.Sprintf("memory is too fragmented: reserve them at boot (hugepagesz=%s hugepages=%d on the kernel command line) or reboot", cmdlineSize(h.Size), h.Count)))
			default:
				out = append(out, ok(h.Size, fmt.Sprintf("%d allocated, %d requested", have, h.Count)))
			}
			continue
		}
		for _, node := range sortedInts(h.PerNUMANode) {
			want := h.PerNUMANode[node]
			p := fmt.Sprintf("%s/node%d/hugepages/hugepages-%dkB/nr_hugepages", sysNodes, node, kib)
			subject := fmt.Sprintf("%s node%d", h.Size, node)
			have, err := n.readInt(p)
			switch {
			case err != nil:
				out = append(out, fail(subject, p+": "+err.Error(), "NUMA node "+strconv.Itoa(node)+" does not exist on this instance type: fix perNUMANode"))
			case have < want:
				out = append(out, fail(subject, fmt.Sprintf("%d allocated, %d requested (%s)", have, want, p), "reserve them at boot, or reboot to defragment"))
			default:
				out = append(out, ok(subject, fmt.Sprintf("%d allocated, %d requested", have, want)))
			}
		}
	}
	return out
}

func cmdlineSize(size string) string {
	if size == api.HugepageSize1Gi {
		return "1G"
	}
	return "2M"
}

// checkHugepagesNUMA: each DPDK NIC's NUMA node has hugepages of some
// configured size; DPDK allocates its mbufs on the NIC's node, so pages on
// another node mean "no memory" at rte_eal_init or cross-node traffic.
func checkHugepagesNUMA(_ context.Context, n *Node) []Finding {
	if n.Config == nil || len(n.Config.Spec.Hugepages) == 0 {
		return nil
	}
	var out []Finding
	sys := pci.Sysfs{Root: n.Root}
	for _, i := range n.interfaces() {
		if !i.Config.DPDK() || i.pciAddress() == "" {
			continue
		}
		d, err := sys.Device(i.pciAddress())
		if err != nil {
			continue // the driver check reports it
		}
		if d.NUMANode < 0 {
			out = append(out, ok(i.Config.Name, "PCI "+d.Address+" has no NUMA affinity (single-node instance)"))
			continue
		}
		var have []string
		total := 0
		for _, h := range n.Config.Spec.Hugepages {
			c, err := n.readInt(fmt.Sprintf("%s/node%d/hugepages/hugepages-%dkB/nr_hugepages", sysNodes, d.NUMANode, pageKiB(h.Size)))
			if err == nil && c > 0 {
				have = append(have, fmt.Sprintf("%d×%s", c, h.Size))
				total += c
			}
		}
		if total == 0 {
			out = append(out, fail(i.Config.Name, fmt.Sprintf("PCI %s is on NUMA node %d, which has no hugepages", d.Address, d.NUMANode),
				fmt.Sprintf("set spec.hugepages[].perNUMANode with node %d", d.NUMANode)))
			continue
		}
		out = append(out, ok(i.Config.Name, fmt.Sprintf("NUMA node %d has %s", d.NUMANode, strings.Join(have, ", "))))
	}
	return out
}

// checkKubeletAfterHugepages: kubelet reads the hugepage pools once, at
// start; pages reserved after it started are not in the node's capacity
// until kubelet restarts (amazon-eks-ami #2367).
func checkKubeletAfterHugepages(_ context.Context, n *Node) []Finding {
	if n.Config == nil || len(n.Config.Spec.Hugepages) == 0 || n.State == nil {
		return nil
	}
	var step *engine.Result
	for i := range n.State.Steps {
		if n.State.Steps[i].Name == stepHugepages {
			step = &n.State.Steps[i]
		}
	}
	if step == nil {
		return []Finding{warn("", "the last run recorded no hugepages step", "nodeprep status")}
	}
	reserved := step.Started.Add(step.Duration)
	started, pid, err := kubeletStart(n)
	if err != nil {
		return []Finding{warn("", "cannot tell when kubelet started: "+err.Error(), "")}
	}
	if pid == 0 {
		return []Finding{ok("", "kubelet is not running yet")}
	}
	if len(step.Changes) == 0 {
		return []Finding{ok("", "the last run found the pages already reserved; kubelet (pid "+strconv.Itoa(pid)+") started at "+started.Format(time.RFC3339))}
	}
	// btime has whole seconds, so the computed start may be up to 1 s early.
	switch {
	case started.Add(time.Second).Before(reserved):
		return []Finding{fail("", fmt.Sprintf("kubelet (pid %d) started at %s, hugepages reserved at %s: kubelet's capacity lacks them",
			pid, started.Format(time.RFC3339), reserved.Format(time.RFC3339Nano)), "systemctl restart kubelet; check that kubelet.service is After=nodeprep.service")}
	case started.Before(reserved):
		return []Finding{warn("", fmt.Sprintf("kubelet started within 1 s of the reservation (%s vs %s): too close to tell", started.Format(time.RFC3339), reserved.Format(time.RFC3339Nano)),
			"compare kubectl describe node's hugepages capacity with the pools")}
	}
	return []Finding{ok("", fmt.Sprintf("kubelet (pid %d) started at %s, after the reservation at %s", pid, started.Format(time.RFC3339), reserved.Format(time.RFC3339)))}
}

// kubeletStart finds the kubelet process in /proc and its start time:
// /proc/stat's btime plus the process's starttime in clock ticks.
func kubeletStart(n *Node) (time.Time, int, error) {
	pids, err := n.Root.ReadDirNames("/proc")
	if err != nil {
		return time.Time{}, 0, err
	}
	for _, p := range pids {
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		comm, err := n.Root.ReadFile("/proc/" + p + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "kubelet" {
			continue
		}
		stat, err := n.Root.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			return time.Time{}, 0, err
		}
		// Fields after the parenthesised comm; starttime is field 22.
		s := string(stat)
		rest := s[strings.LastIndexByte(s, ')')+1:]
		f := strings.Fields(rest)
		if len(f) < 20 {
			return time.Time{}, 0, fmt.Errorf("/proc/%s/stat: %d fields", p, len(f)+2)
		}
		ticks, err := strconv.ParseInt(f[19], 10, 64)
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("/proc/%s/stat starttime: %w", p, err)
		}
		boot, err := bootTime(n)
		if err != nil {
			return time.Time{}, 0, err
		}
		return boot.Add(time.Duration(ticks) * time.Second / clockTicks), pid, nil
	}
	return time.Time{}, 0, nil
}

func bootTime(n *Node) (time.Time, error) {
	b, err := n.Root.ReadFile(procStat)
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "btime "); found {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s btime: %w", procStat, err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s has no btime", procStat)
}

func sortedInts(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

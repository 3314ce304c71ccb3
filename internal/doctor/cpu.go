package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// Where the kernel, systemd and kubelet show the CPU sets they use.
const (
	sysCPUIsolated  = cpuset.SysCPU + "/isolated"
	sysCPUNohzFull  = cpuset.SysCPU + "/nohz_full"
	systemSliceCPUs = cpuprofile.CgroupRoot + "/system.slice/cpuset.cpus.effective"
)

// Fixes of the CPU profile's findings.
const (
	cpuProfileRerun  = "systemctl restart nodeprep (the cpu step confines it again)"
	cpuProfileReboot = "reboot so the kernel boots with the profile's arguments (nodeprep persists them)"
)

// checkCPUProfile compares what the kernel, systemd, the IRQs and
// kubelet's drop-in use with the profile the agent computes from spec.cpu
// on this node's topology (cpuprofile.Build, as every step does): a CPU
// set that disagrees puts housekeeping on a pinned pod's CPU, or a pod on
// a CPU kubelet believes reserved.
func checkCPUProfile(_ context.Context, n *Node) []Finding {
	if n.Config == nil || n.Config.Spec.CPU == nil {
		return nil
	}
	topo, err := cpuset.ReadTopology(n.Root)
	if err != nil {
		return []Finding{fail("", "cannot read the CPU topology: "+err.Error(), "")}
	}
	p, err := cpuprofile.Build(n.Config.Spec.CPU, topo)
	if err != nil {
		return []Finding{fail("", "spec.cpu does not fit this node: "+err.Error(), "fix spec.cpu for this instance type")}
	}
	reserved := p.Partition.Reserved
	return []Finding{
		checkKernelSet(n, "isolated", sysCPUIsolated, domainIsolated(p.Kernel)),
		checkKernelSet(n, "nohz_full", sysCPUNohzFull, argCPUs(p.Kernel, "nohz_full")),
		checkSystemSlice(n, reserved),
		checkIRQAffinity(n, reserved),
		checkKubeletReserved(n, p),
	}
}

// checkKernelSet compares a CPU list the kernel shows with the one the
// profile's kernel arguments ask for.
func checkKernelSet(n *Node, subject, hostPath string, want cpuset.Set) Finding {
	b, err := n.Root.ReadFile(hostPath)
	if err != nil {
		return warn(subject, "cannot read "+hostPath+": "+err.Error(), "")
	}
	// nohz_full reads "(null)" when it is off.
	s := strings.TrimSpace(string(b))
	if s == "(null)" {
		s = ""
	}
	have, err := cpuset.Parse(s)
	if err != nil {
		return fail(subject, hostPath+": "+err.Error(), "")
	}
	if !have.Equal(want) {
		return fail(subject, fmt.Sprintf("%s is %q, the profile's kernel arguments ask for %q", hostPath, have, want), cpuProfileReboot)
	}
	return ok(subject, fmt.Sprintf("%s is %q as the profile asks", hostPath, want))
}

// argCPUs is the CPU list of a profile kernel argument, empty when the
// profile does not set it.
func argCPUs(args kernelargs.Args, key string) cpuset.Set {
	for _, a := range args {
		if a.Key == key {
			s, _ := cpuset.Parse(a.Value)
			return s
		}
	}
	return cpuset.Set{}
}

// domainIsolated is the set /sys/devices/system/cpu/isolated shows under
// the profile's isolcpus=: only CPUs taken out of the scheduler domains,
// which isolcpus does when it names no flag or the domain flag. The
// profile's isolcpus=managed_irq,<cpus> leaves the file empty.
func domainIsolated(args kernelargs.Args) cpuset.Set {
	for _, a := range args {
		if a.Key != "isolcpus" {
			continue
		}
		var flags, cpus []string
		for _, part := range strings.Split(a.Value, ",") {
			switch part {
			case "domain", "managed_irq", "nohz":
				flags = append(flags, part)
			default:
				cpus = append(cpus, part)
			}
		}
		if len(flags) > 0 && !strings.Contains(","+strings.Join(flags, ",")+",", ",domain,") {
			return cpuset.Set{}
		}
		s, _ := cpuset.Parse(strings.Join(cpus, ","))
		return s
	}
	return cpuset.Set{}
}

// checkSystemSlice compares the CPUs system.slice's services may run on
// (cgroup v2 cpuset.cpus.effective) with the reserved set.
func checkSystemSlice(n *Node, reserved cpuset.Set) Finding {
	const subject = "system.slice"
	b, err := n.Root.ReadFile(systemSliceCPUs)
	if errors.Is(err, fs.ErrNotExist) {
		return warn(subject, "no "+systemSliceCPUs+": not cgroup v2 with the cpuset controller, services are not confined at run time", "boot with cgroup v2 (AL2023 does)")
	}
	if err != nil {
		return warn(subject, "cannot read "+systemSliceCPUs+": "+err.Error(), "")
	}
	have, err := cpuset.Parse(string(b))
	if err != nil {
		return fail(subject, systemSliceCPUs+": "+err.Error(), "")
	}
	if !have.Equal(reserved) {
		return fail(subject, fmt.Sprintf("%s is %q, the reserved CPUs are %q", systemSliceCPUs, have, reserved), cpuProfileRerun)
	}
	return ok(subject, fmt.Sprintf("services run on the reserved CPUs %q", reserved))
}

// checkIRQAffinity finds the IRQs that the kernel delivers outside the
// reserved CPUs (effective_affinity_list, else smp_affinity_list where the
// kernel has no effective list). An IRQ the kernel pins to isolated CPUs
// only (a driver's managed per-queue IRQ, which cannot be moved) is a
// warning: isolcpus=managed_irq keeps them quiet while a housekeeping CPU
// is in their mask, and these have none.
func checkIRQAffinity(n *Node, reserved cpuset.Set) Finding {
	const subject = "irq-affinity"
	names, err := n.Root.ReadDirNames(cpuprofile.ProcIRQ)
	if err != nil {
		return warn(subject, "cannot list "+cpuprofile.ProcIRQ+": "+err.Error(), "")
	}
	var outside, pinned []int
	total := 0
	for _, name := range names {
		irq, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		dir := path.Join(cpuprofile.ProcIRQ, name)
		asked, aerr := readCPUList(n, dir+"/smp_affinity_list")
		eff, err := readCPUList(n, dir+"/effective_affinity_list")
		if errors.Is(err, fs.ErrNotExist) {
			eff, err = asked, aerr
		}
		if err != nil {
			continue // gone while reading, or not an IRQ directory
		}
		total++
		if eff.SubsetOf(reserved) {
			continue
		}
		if aerr == nil && asked.Intersect(reserved).IsEmpty() {
			pinned = append(pinned, irq)
			continue
		}
		outside = append(outside, irq)
	}
	sort.Ints(outside)
	sort.Ints(pinned)
	switch {
	case len(outside) > 0:
		return fail(subject, fmt.Sprintf("%d of %d IRQs are delivered outside the reserved CPUs %q: %s", len(outside), total, reserved, irqList(outside)), cpuProfileRerun+"; if irqbalance moved them, check its IRQBALANCE_BANNED_CPULIST")
	case len(pinned) > 0:
		return warn(subject, fmt.Sprintf("%d IRQs are pinned by their driver to isolated CPUs only and cannot move: %s", len(pinned), irqList(pinned)), "keep isolcpus=managed_irq in the profile's kernel arguments")
	}
	return ok(subject, fmt.Sprintf("all %d IRQs are delivered on the reserved CPUs %q", total, reserved))
}

func readCPUList(n *Node, hostPath string) (cpuset.Set, error) {
	b, err := n.Root.ReadFile(hostPath)
	if err != nil {
		return cpuset.Set{}, err
	}
	return cpuset.Parse(string(b))
}

// irqList names at most ten IRQs.
func irqList(irqs []int) string {
	var s []string
	for i, irq := range irqs {
		if i == 10 {
			s = append(s, fmt.Sprintf("and %d more", len(irqs)-10))
			break
		}
		s = append(s, strconv.Itoa(irq))
	}
	return strings.Join(s, ", ")
}

// checkKubeletReserved compares the reservedSystemCPUs of nodeprep's
// nodeadm drop-in, what kubelet is configured from, with the profile's.
func checkKubeletReserved(n *Node, p *cpuprofile.Profile) Finding {
	const subject = "kubelet"
	b, err := n.Root.ReadFile(nodeadm.DropInPath)
	if err != nil {
		return fail(subject, "cannot read "+nodeadm.DropInPath+": "+err.Error(), "nodeprep run (it writes the drop-in before kubelet starts)")
	}
	var nc nodeadm.NodeConfig
	if err := yaml.Unmarshal(b, &nc); err != nil {
		return fail(subject, nodeadm.DropInPath+": "+err.Error(), "nodeprep run")
	}
	want := p.Partition.Reserved
	if nc.Spec.Kubelet.Config == nil || nc.Spec.Kubelet.Config.ReservedSystemCPUs == "" {
		// The drop-in leaves out what the user's own NodeConfig sets
		// (cpuprofile.Kubelet.Respect), and the run refuses a user value
		// other than the reserved set: only user data can say which.
		return warn(subject, nodeadm.DropInPath+" sets no reservedSystemCPUs: only a NodeConfig in user data setting it to "+want.String()+" keeps kubelet off the housekeeping CPUs", "check the user data's kubelet config, or nodeprep run")
	}
	have, err := cpuset.Parse(nc.Spec.Kubelet.Config.ReservedSystemCPUs)
	if err != nil {
		return fail(subject, nodeadm.DropInPath+": reservedSystemCPUs: "+err.Error(), "nodeprep run")
	}
	if !have.Equal(want) {
		return fail(subject, fmt.Sprintf("%s sets reservedSystemCPUs %q, the profile reserves %q", nodeadm.DropInPath, have, want), "nodeprep run, then restart kubelet (it must drop its CPU manager state: nodeprep does before kubelet starts)")
	}
	return ok(subject, fmt.Sprintf("%s sets reservedSystemCPUs %q as the profile reserves", nodeadm.DropInPath, want))
}

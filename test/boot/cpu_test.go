package boot

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// twoNUMANodes is the guest of the CPU test: two sockets, each a NUMA node
// of two cores (4 vCPUs: TCG on a shared 2-core host stays bearable).
var twoNUMANodes = Topology{Sockets: 2, Cores: 2, Threads: 1}

// cpuPart is the kernel ENI n2 (its IRQs must leave the isolated CPUs too)
// and, with cpu, spec.cpu reserved auto: one whole core per NUMA node.
func cpuPart(cpu bool) string {
	more := "  failurePolicy: Block\n"
	if cpu {
		more = "  cpu:\n    reserved: auto\n" + more
	}
	return nodeprepPart(more)
}

// bootTimes is one cold boot to a settled guest, on the host clock.
type bootTimes struct {
	settled time.Duration // QEMU start to every unit started
	reboot  time.Duration // QEMU start to nodeprep's reboot; 0 without one
	kubelet time.Duration // kernel start to kubelet start, on the last boot
}

// TestBootCPUProfile boots a two-NUMA-node guest whose image lacks the
// isolation kernel arguments, with spec.cpu in user data: nodeprep
// persists them, reboots once before kubelet ever starts, and on the boot
// after, the kernel, systemd, the NIC IRQs and kubelet's drop-in all hold
// the same two CPU sets. A second reboot reboots nothing more. A baseline
// boot of the same guest without spec.cpu measures the reboot's cost.
func TestBootCPUProfile(t *testing.T) {
	var profile, baseline bootTimes
	t.Run("Profile", func(t *testing.T) {
		b := Boot(t, Spec{NodeprepPart: cpuPart(true), CPUs: twoNUMANodes, NodeprepReboots: true})
		profile = bootTimes{settled: b.Booted.Sub(b.QEMUStart), reboot: b.NodeprepReboot.Sub(b.QEMUStart), kubelet: kubeletStart(t, b)}
		reserved, isolated := checkPartition(t, b)
		t.Run("KernelCmdline", func(t *testing.T) { checkCmdline(t, b, reserved, isolated) })
		t.Run("SystemSlice", func(t *testing.T) {
			got := guestSet(t, b, "/sys/fs/cgroup/system.slice/cpuset.cpus.effective")
			if !got.Equal(reserved) {
				t.Errorf("system.slice cpuset.cpus.effective = %s, want the reserved %s", got, reserved)
			}
		})
		t.Run("NICIRQs", func(t *testing.T) { checkNICIRQs(t, b, isolated) })
		t.Run("KubeletOnceAfterReboot", func(t *testing.T) { checkKubeletOnce(t, b, 2) })
		t.Run("PersistedArgs", func(t *testing.T) {
			// What nodeprep persisted and GRUB booted from, and how GRUB waits.
			out := b.MustSSH(t, "grep -n GRUB_CMDLINE_LINUX /etc/default/grub; grep -rn 'GRUB_TIMEOUT\\|GRUB_RECORDFAIL' /etc/default/grub /etc/default/grub.d 2>/dev/null; "+
				"grep -n 'set timeout\\|recordfail\\|linux\\s*/boot' /boot/grub/grub.cfg | head -n 12")
			t.Logf("after nodeprep's update-grub:\n%s", out)
			if !strings.Contains(out, "nohz_full=") {
				t.Error("/etc/default/grub or grub.cfg lacks nohz_full=")
			}
		})
		t.Run("SecondBootRebootsNothing", func(t *testing.T) {
			marker := b.MustSSH(t, "cat "+kernelargs.MarkerPath)
			b.Reboot(t)
			checkKubeletOnce(t, b, 3)
			checkCmdline(t, b, reserved, isolated)
			if again := b.MustSSH(t, "cat "+kernelargs.MarkerPath); again != marker {
				t.Errorf("the marker changed on a boot that needed no reboot:\nbefore %s\nafter  %s", marker, again)
			}
		})
	})
	t.Run("Baseline", func(t *testing.T) {
		b := Boot(t, Spec{NodeprepPart: cpuPart(false), CPUs: twoNUMANodes})
		baseline = bootTimes{settled: b.Booted.Sub(b.QEMUStart), kubelet: kubeletStart(t, b)}
		checkKubeletOnce(t, b, 1)
	})
	if profile.settled == 0 || baseline.settled == 0 {
		return
	}
	// Printed, not judged: wall time on a loaded shared machine.
	t.Logf("boot time, 4 vCPUs in 2 NUMA nodes under TCG (host clock, QEMU start to every unit started):\n"+
		"  with spec.cpu (one nodeprep reboot at %v): %v; kubelet started %v after the last kernel start\n"+
		"  without spec.cpu:                              %v; kubelet started %v after kernel start\n"+
		"  extra boot time of the reboot: %v",
		profile.reboot.Round(time.Second), profile.settled.Round(time.Second), profile.kubelet.Round(time.Second),
		baseline.settled.Round(time.Second), baseline.kubelet.Round(time.Second),
		(profile.settled - baseline.settled).Round(time.Second))
}

// kubeletStart is when systemd started kubelet, since the kernel started.
func kubeletStart(t *testing.T, b *Bed) time.Duration {
	t.Helper()
	return monotonic(t, unitProps(t, b, "kubelet.service", "InactiveExitTimestampMonotonic"), "InactiveExitTimestampMonotonic")
}

// guestSet reads a CPU list file in the guest ("" or "(null)" is empty).
func guestSet(t *testing.T, b *Bed, path string) cpuset.Set {
	t.Helper()
	s := strings.TrimSpace(b.MustSSH(t, "cat "+path))
	t.Logf("%s: %q", path, s)
	if s == "(null)" {
		s = ""
	}
	set, err := cpuset.Parse(s)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return set
}

// checkPartition takes the two sets from the drop-in kubelet got (the copy
// nodeadm-run's stand-in took as it started) and checks they are what
// spec.cpu asks on this guest: one whole core per NUMA node reserved, CPU 0
// among them, every other online CPU isolated.
func checkPartition(t *testing.T, b *Bed) (reserved, isolated cpuset.Set) {
	t.Helper()
	path := "/run/bed/nodeadm.d/" + strings.TrimPrefix(nodeadm.DropInPath, nodeadm.DropInDir+"/")
	data, ok := guestFile(t, b, path)
	if !ok {
		t.Fatalf("nodeadm-run started without %s", nodeadm.DropInPath)
	}
	t.Logf("%s as nodeadm-run read it:\n%s", nodeadm.DropInPath, data)
	var nc nodeadm.NodeConfig
	if err := yaml.Unmarshal([]byte(data), &nc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	kc := nc.Spec.Kubelet.Config
	if kc == nil || kc.CPUManagerPolicy != "static" || kc.ReservedSystemCPUs == "" {
		t.Fatalf("the drop-in sets no static CPU manager with reservedSystemCPUs: %+v", kc)
	}
	reserved, err := cpuset.Parse(kc.ReservedSystemCPUs)
	if err != nil {
		t.Fatalf("reservedSystemCPUs: %v", err)
	}
	online := guestSet(t, b, "/sys/devices/system/cpu/online")
	isolated = online.Difference(reserved)
	for node := 0; node < twoNUMANodes.Sockets; node++ {
		cpus := guestSet(t, b, "/sys/devices/system/node/node"+strconv.Itoa(node)+"/cpulist")
		if got, want := cpus.Intersect(reserved).Len(), twoNUMANodes.Threads; got != want {
			t.Errorf("NUMA node %d (CPUs %s): %d reserved CPUs, want one core (%d)", node, cpus, got, want)
		}
	}
	if !reserved.Contains(0) || !reserved.SubsetOf(online) || isolated.IsEmpty() {
		t.Errorf("reserved %s, isolated %s on online %s", reserved, isolated, online)
	}
	t.Logf("reserved %s, isolated %s", reserved, isolated)
	return reserved, isolated
}

// checkCmdline: the running kernel booted with the isolation arguments of
// these two sets, and the kernel's own view agrees.
func checkCmdline(t *testing.T, b *Bed, reserved, isolated cpuset.Set) {
	t.Helper()
	cmdline := strings.TrimSpace(b.MustSSH(t, "cat /proc/cmdline"))
	t.Logf("/proc/cmdline: %s", cmdline)
	args := map[string]string{}
	for _, a := range kernelargs.Parse(cmdline) {
		args[a.Key] = a.Value
	}
	want := map[string]struct {
		prefix string
		set    cpuset.Set
	}{
		"nohz_full":   {"", isolated},
		"rcu_nocbs":   {"", isolated},
		"isolcpus":    {"managed_irq,", isolated},
		"irqaffinity": {"", reserved},
	}
	for key, w := range want {
		v, ok := strings.CutPrefix(args[key], w.prefix)
		got, err := cpuset.Parse(v)
		if !ok || err != nil || !got.Equal(w.set) {
			t.Errorf("/proc/cmdline %s=%q, want %s%s", key, args[key], w.prefix, w.set)
		}
	}
	if got := guestSet(t, b, "/sys/devices/system/cpu/nohz_full"); !got.Equal(isolated) {
		t.Errorf("/sys/devices/system/cpu/nohz_full = %s, want the isolated %s", got, isolated)
	}
	// The kernel lists as "isolated" only the CPUs isolcpus= takes out of
	// the scheduler's load balancing (its domain flag, or no flag). nodeprep
	// asks managed_irq only: kubelet's static CPU manager pins pods to
	// isolated CPUs, and a pod on several of them still needs balancing.
	if got := guestSet(t, b, "/sys/devices/system/cpu/isolated"); !got.IsEmpty() {
		t.Errorf("/sys/devices/system/cpu/isolated = %s, want none (isolcpus=managed_irq only, no domain isolation)", got)
	}
}

// nicIRQs lists, for each PCI network interface, its MSI IRQs and their
// effective affinity: "ifname irq cpulist" per line.
const nicIRQs = `for n in /sys/class/net/*; do
  d=$(readlink -f $n/device) || continue
  [ -d "$d/msi_irqs" ] || d=$(dirname "$d")
  [ -d "$d/msi_irqs" ] || continue
  for i in $(ls $d/msi_irqs); do echo "$(basename $n) $i $(cat /proc/irq/$i/effective_affinity_list)"; done
done`

// checkNICIRQs: no NIC IRQ (the primary ENI's and the kernel ENI's) is
// delivered to an isolated CPU.
func checkNICIRQs(t *testing.T, b *Bed, isolated cpuset.Set) {
	t.Helper()
	out := strings.TrimSpace(b.MustSSH(t, nicIRQs))
	t.Logf("NIC IRQs (interface, IRQ, effective affinity):\n%s", out)
	nics := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("NIC IRQ line %q", line)
		}
		nics[f[0]] = true
		eff, err := cpuset.Parse(f[2])
		if err != nil {
			t.Fatalf("IRQ %s effective affinity %q: %v", f[1], f[2], err)
		}
		if !eff.Intersect(isolated).IsEmpty() {
			t.Errorf("%s IRQ %s is delivered to %s, isolated CPUs among them", f[0], f[1], eff)
		}
	}
	if len(nics) < 2 {
		t.Errorf("IRQs of %d NICs found, want the primary and the kernel ENI", len(nics))
	}
}

// bootLine is one line of `journalctl --list-boots`: index and boot ID.
var bootLine = regexp.MustCompile(`(?m)^\s*(-?\d+)\s+([0-9a-f]{32})\s`)

// checkKubeletOnce: this test's boots number boots; kubelet never started
// on the boot nodeprep rebooted from, and exactly once on each boot after
// (all on the final kernel command line, which checkCmdline judges). The journal also holds the image's provisioning boot, so
// the test's boots are counted from the one nodeprep's marker names (the
// boot it rebooted from), or, with boots 1, are the current one.
func checkKubeletOnce(t *testing.T, b *Bed, boots int) {
	t.Helper()
	list := b.MustSSH(t, "journalctl --list-boots --no-pager")
	t.Logf("journalctl --list-boots:\n%s", list)
	all := bootLine.FindAllStringSubmatch(list, -1)
	if len(all) == 0 {
		t.Fatal("no boots in the journal")
	}
	first := all[len(all)-1][2]
	if boots > 1 {
		var marker kernelargs.Marker
		if err := json.Unmarshal([]byte(b.MustSSH(t, "cat "+kernelargs.MarkerPath)), &marker); err != nil {
			t.Fatalf("%s: %v", kernelargs.MarkerPath, err)
		}
		first = strings.ReplaceAll(marker.BootID, "-", "")
	} else if _, ok := guestFile(t, b, kernelargs.MarkerPath); ok {
		t.Errorf("%s exists on a boot that needed no reboot", kernelargs.MarkerPath)
	}
	var ids [][]string
	for i, m := range all {
		if m[2] == first {
			ids = all[i:]
		}
	}
	if len(ids) != boots {
		t.Fatalf("%d boots from %s (the first of this test) on, want %d", len(ids), first, boots)
	}
	for i, m := range ids {
		n := strings.Count(b.MustSSH(t, "journalctl -b "+m[2]+" -u kubelet.service -o cat --no-pager"), "bed: kubelet started")
		// None on the boot nodeprep rebooted from, one on every boot after.
		want := 1
		if boots > 1 && i == 0 {
			want = 0
		}
		if n != want {
			t.Errorf("boot %s (%s): kubelet started %d times, want %d", m[1], m[2], n, want)
		}
	}
	if boots < 2 {
		return
	}
	// The boot nodeprep rebooted from says why; no boot after it reboots.
	why := b.MustSSH(t, "journalctl -b "+ids[0][2]+" -u nodeprep.service -o cat --no-pager | grep -i 'kernel arguments' || true")
	if why == "" {
		t.Error("nodeprep's journal of the first boot does not say it rebooted for kernel arguments")
	}
	// Where the first boot's time went: nodeprep's run, then the shutdown.
	t.Logf("the boot nodeprep rebooted from (%s), nodeprep's journal (seconds since kernel start):\n%s\nand the boot's last entries:\n%s",
		ids[0][2], b.MustSSH(t, "journalctl -b "+ids[0][2]+" -u nodeprep.service -o short-monotonic --no-pager | cut -c1-220"),
		b.MustSSH(t, "journalctl -b "+ids[0][2]+" -o short-monotonic --no-pager | tail -n 12 | cut -c1-220"))
	for _, m := range ids[1:] {
		if again := b.MustSSH(t, "journalctl -b "+m[2]+" -u nodeprep.service -o cat --no-pager | grep -i 'rebooting' || true"); again != "" {
			t.Errorf("nodeprep rebooted again on boot %s:\n%s", m[1], again)
		}
	}
}

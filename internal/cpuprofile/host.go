package cpuprofile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
)

// Host paths the host changes read and write.
const (
	// SystemdDropIn confines PID 1, and so every service it starts, to the
	// reserved CPUs from the next boot on (systemd.conf(5) CPUAffinity=).
	SystemdDropIn  = "/etc/systemd/system.conf.d/50-nodeprep-cpu.conf"
	CgroupRoot     = "/sys/fs/cgroup"
	ProcIRQ        = "/proc/irq"
	DefaultIRQMask = "/proc/irq/default_smp_affinity"
	RPSDefaultMask = "/proc/sys/net/core/rps_default_mask"
	SysClassNet    = "/sys/class/net"
)

// Slices are the housekeeping cgroups confined at run time: services,
// logins, and runtime.slice, where AL2023's EKS AMI runs containerd and
// kubelet. kubepods.slice, where pods run, is kubelet's to manage.
var Slices = []string{"system.slice", "user.slice", "runtime.slice"}

// IRQBalanceEnv are the EnvironmentFiles irqbalance.service reads, on
// AL2023/RHEL and on Debian; the first present is edited.
var IRQBalanceEnv = []string{"/etc/sysconfig/irqbalance", "/etc/default/irqbalance"}

// Units is the systemd manager, for what can only go through it.
type Units interface {
	// SetAllowedCPUs sets a unit's cgroup v2 AllowedCPUs for this boot only
	// (systemctl set-property --runtime), so systemd does not undo it.
	SetAllowedCPUs(ctx context.Context, unit string, cpus cpuset.Set) error
	// TryRestart restarts a unit if it is running.
	TryRestart(ctx context.Context, unit string) error
}

// Systemctl implements Units with systemctl.
type Systemctl struct{ Run kernelargs.Runner }

func (s Systemctl) SetAllowedCPUs(ctx context.Context, unit string, cpus cpuset.Set) error {
	_, err := s.Run.Run(ctx, "systemctl", "set-property", "--runtime", unit, "AllowedCPUs="+cpus.String())
	return err
}

func (s Systemctl) TryRestart(ctx context.Context, unit string) error {
	_, err := s.Run.Run(ctx, "systemctl", "try-restart", unit)
	return err
}

// Host plans the run-time CPU changes on one node.
type Host struct {
	Root   hostfs.Root
	Kernel change.Kernel
	Units  Units
}

// Plan returns the changes that confine housekeeping to p's reserved CPUs;
// none for what already is. It only reads.
func (h Host) Plan(p *Profile) ([]change.Change, error) {
	reserved, isolated := p.Partition.Reserved, p.Partition.Isolated
	var out []change.Change
	// systemd, later boots.
	conf := fmt.Sprintf("# Written by nodeprep from spec.cpu: housekeeping runs on the reserved CPUs.\n[Manager]\nCPUAffinity=%s\n", reserved)
	if differs, err := h.Root.Differs(SystemdDropIn, []byte(conf), 0o644); err != nil {
		return nil, err
	} else if differs {
		out = append(out, change.Change{What: fmt.Sprintf("set systemd CPUAffinity=%s in %s", reserved, SystemdDropIn),
			Apply: func(context.Context) error {
				_, err := h.Root.WriteFile(SystemdDropIn, []byte(conf), 0o644)
				return err
			}})
	}
	// systemd, this boot.
	for _, slice := range Slices {
		dir := path.Join(CgroupRoot, slice)
		if !h.Root.Exists(dir) {
			continue
		}
		if cur, err := h.readList(dir + "/cpuset.cpus"); err == nil && cur.Equal(reserved) {
			continue
		}
		out = append(out, change.Change{What: fmt.Sprintf("confine %s to CPUs %s (AllowedCPUs, this boot)", slice, reserved),
			Apply: func(ctx context.Context) error { return h.Units.SetAllowedCPUs(ctx, slice, reserved) }})
	}
	// IRQs.
	irqs, err := h.irqsOutside(reserved)
	if err != nil {
		return nil, err
	}
	if len(irqs) > 0 {
		out = append(out, change.Change{What: fmt.Sprintf("move %d IRQs to CPUs %s", len(irqs), reserved),
			Apply: func(context.Context) error { return h.moveIRQs(irqs, reserved) }})
	}
	if c, err := h.mask(DefaultIRQMask, reserved, "IRQs the kernel sets up from now on"); err != nil {
		return nil, err
	} else if c != nil {
		out = append(out, *c)
	}
	// irqbalance.
	if c, err := h.irqbalance(isolated); err != nil {
		return nil, err
	} else {
		out = append(out, c...)
	}
	// RPS: new netdevs (pods' veths included) and existing queues with RPS on.
	if h.Root.Exists(RPSDefaultMask) {
		if c, err := h.mask(RPSDefaultMask, reserved, "RPS of new network devices"); err != nil {
			return nil, err
		} else if c != nil {
			out = append(out, *c)
		}
	}
	queues, err := h.rpsOutside(reserved)
	if err != nil {
		return nil, err
	}
	for _, q := range queues {
		out = append(out, change.Change{What: fmt.Sprintf("steer RPS of %s to CPUs %s", strings.TrimPrefix(path.Dir(q), SysClassNet+"/"), reserved),
			Apply: func(context.Context) error { return h.Kernel.WriteAttr(q, reserved.Mask()) }})
	}
	return out, nil
}

func (h Host) readList(p string) (cpuset.Set, error) {
	b, err := h.Root.ReadFile(p)
	if err != nil {
		return cpuset.Set{}, err
	}
	return cpuset.Parse(string(b))
}

func (h Host) mask(p string, want cpuset.Set, what string) (*change.Change, error) {
	b, err := h.Root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if cur, err := cpuset.ParseMask(string(b)); err == nil && cur.Equal(want) {
		return nil, nil
	}
	return &change.Change{What: fmt.Sprintf("set %s to %s (%s)", p, want.Mask(), what),
		Apply: func(context.Context) error { return h.Kernel.WriteAttr(p, want.Mask()) }}, nil
}

// irqsOutside lists the IRQs whose affinity reaches beyond reserved.
func (h Host) irqsOutside(reserved cpuset.Set) ([]int, error) {
	names, err := h.Root.ReadDirNames(ProcIRQ)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		cur, err := h.readList(fmt.Sprintf("%s/%d/smp_affinity_list", ProcIRQ, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !cur.SubsetOf(reserved) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// IRQError lists the IRQs the kernel would not move for a reason other
// than that they cannot move at all.
type IRQError struct {
	IRQs []int
	Err  error
}

func (e *IRQError) Error() string {
	return fmt.Sprintf("IRQs %v: smp_affinity_list: %v", e.IRQs, e.Err)
}

func (e *IRQError) Unwrap() error { return e.Err }

// moveIRQs writes reserved to each IRQ's affinity. EIO is how the kernel
// refuses an IRQ that cannot move (per-CPU timers, drivers' managed
// queue interrupts); those are what isolcpus=managed_irq is for, and are
// skipped. Any other error is reported after trying every IRQ.
func (h Host) moveIRQs(irqs []int, reserved cpuset.Set) error {
	var failed []int
	var first error
	for _, n := range irqs {
		err := h.Kernel.WriteAttr(fmt.Sprintf("%s/%d/smp_affinity_list", ProcIRQ, n), reserved.String())
		if err == nil || errors.Is(err, syscall.EIO) || errors.Is(err, fs.ErrNotExist) {
			continue // fixed IRQ, or one that went away
		}
		failed = append(failed, n)
		if first == nil {
			first = err
		}
	}
	if len(failed) > 0 {
		return &IRQError{IRQs: failed, Err: first}
	}
	return nil
}

func (h Host) irqbalance(isolated cpuset.Set) ([]change.Change, error) {
	for _, env := range IRQBalanceEnv {
		cur, err := h.Root.ReadFile(env)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		next, changed := setEnv(cur, "IRQBALANCE_BANNED_CPULIST", isolated.String())
		if !changed {
			return nil, nil
		}
		return []change.Change{{
			What: fmt.Sprintf("ban irqbalance from the isolated CPUs %s (IRQBALANCE_BANNED_CPULIST in %s) and restart it if running", isolated, env),
			Apply: func(ctx context.Context) error {
				if _, err := h.Root.WriteFile(env, next, 0o644); err != nil {
					return err
				}
				return h.Units.TryRestart(ctx, "irqbalance.service")
			},
		}}, nil
	}
	return nil, nil // no irqbalance installed: nothing rebalances the IRQs
}

// setEnv sets KEY=value in an EnvironmentFile, replacing an active line
// and leaving comments alone.
func setEnv(content []byte, key, value string) ([]byte, bool) {
	line := key + "=" + value
	lines := strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), key+"=") {
			lines[i] = line
			found = true
		}
	}
	if !found {
		lines = append(lines, line)
	}
	out := strings.Join(lines, "\n") + "\n"
	if len(content) == 0 {
		out = line + "\n"
	}
	return []byte(out), out != string(content)
}

// rpsOutside lists the rx queues with RPS on (a non-zero mask) that steer
// packets to a CPU outside reserved. Queues with RPS off stay off.
func (h Host) rpsOutside(reserved cpuset.Set) ([]string, error) {
	devs, err := h.Root.ReadDirNames(SysClassNet)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, dev := range devs {
		qs, err := h.Root.ReadDirNames(path.Join(SysClassNet, dev, "queues"))
		if err != nil {
			return nil, err
		}
		for _, q := range qs {
			if !strings.HasPrefix(q, "rx-") {
				continue
			}
			p := path.Join(SysClassNet, dev, "queues", q, "rps_cpus")
			b, err := h.Root.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			cur, err := cpuset.ParseMask(string(b))
			if err != nil || cur.IsEmpty() || cur.SubsetOf(reserved) {
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}

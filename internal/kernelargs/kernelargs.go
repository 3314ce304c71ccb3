// Package kernelargs is the one source of truth for the kernel arguments a
// nodeprep node boots with, and for making them persist.
//
// What: Hugepages, IOMMU and CPUIsolation each turn one typed input into
// Args; the agent and the Packer plugin call the same functions, so a baked
// image and a node that sets its own arguments at boot agree token by token.
//
// Where: Persist writes them to both places a later boot reads them from:
// the grubby boot entries (what the next boot uses) and GRUB_CMDLINE_LINUX
// in /etc/default/grub (what grub2-mkconfig and a kernel update regenerate
// the entries from; amazon-eks-ami #2741 lost arguments that lived in the
// entries only, and its set-kernel-arg writes both since #2746).
//
// When: Boot decides, from /proc/cmdline and a marker, whether this boot
// needs a reboot, and allows at most one per argument set (see Boot).
package kernelargs

import (
	"fmt"
	"strings"

	"github.com/nodeprep/nodeprep/internal/cpuset"
)

// Arg is one kernel argument: Key, or Key=Value.
type Arg struct {
	Key   string
	Value string
	// HasValue distinguishes "quiet" from "quiet=".
	HasValue bool
}

// KV is Key=Value.
func KV(key, value string) Arg { return Arg{Key: key, Value: value, HasValue: true} }

// Flag is a bare Key.
func Flag(key string) Arg { return Arg{Key: key} }

func (a Arg) String() string {
	if !a.HasValue {
		return a.Key
	}
	if strings.ContainsAny(a.Value, " \t") {
		return a.Key + `="` + a.Value + `"`
	}
	return a.Key + "=" + a.Value
}

// Args is an ordered list of kernel arguments.
type Args []Arg

// Strings is each argument's text, for grubby --args and Packer's list.
func (as Args) Strings() []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// String is the arguments as one command-line fragment.
func (as Args) String() string { return strings.Join(as.Strings(), " ") }

// Parse splits a kernel command line (/proc/cmdline, a grubby args="..."
// value, GRUB_CMDLINE_LINUX) the way the kernel does: on white space,
// except inside double quotes, which may enclose a value or a whole token.
func Parse(cmdline string) Args {
	var out Args
	var tok strings.Builder
	inQuote, have := false, false
	flush := func() {
		if !have {
			return
		}
		t := tok.String()
		tok.Reset()
		have = false
		k, v, ok := strings.Cut(t, "=")
		out = append(out, Arg{Key: k, Value: v, HasValue: ok})
	}
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			tok.WriteRune(r)
			have = true
		}
	}
	flush()
	return out
}

// Lookup is the value of the last argument with key, as the kernel's
// parsers of these keys take the last one.
func (as Args) Lookup(key string) (Arg, bool) {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Key == key {
			return as[i], true
		}
	}
	return Arg{}, false
}

// Missing is every argument of want that have lacks or gives another value.
func Missing(have, want Args) Args {
	var out Args
	for _, w := range want {
		if h, ok := have.Lookup(w.Key); !ok || h != w {
			out = append(out, w)
		}
	}
	return out
}

// Set replaces the arguments of base whose key is in args (all of them,
// where a key repeats) and appends args, keeping every other argument in
// place.
func (as Args) Set(args Args) Args {
	keys := map[string]bool{}
	for _, a := range args {
		keys[a.Key] = true
	}
	out := make(Args, 0, len(as)+len(args))
	for _, a := range as {
		if !keys[a.Key] {
			out = append(out, a)
		}
	}
	return append(out, args...)
}

// Hugepages are the boot-time huge page arguments: the default size and,
// when count > 0, that many pages reserved before user space starts (the
// only reliable way to get 1G pages). size is "1G" or "2M", the kernel's
// spelling.
func Hugepages(size string, count int) Args {
	args := Args{KV("default_hugepagesz", size), KV("hugepagesz", size)}
	if count > 0 {
		args = append(args, KV("hugepages", fmt.Sprint(count)))
	}
	return args
}

// IOMMU are the arguments that turn the IOMMU on for vfio-pci in
// passthrough mode, for the architecture as GOARCH spells it. arm64 (SMMU)
// needs none: Graviton instances expose it on by default.
func IOMMU(goarch string) Args {
	if goarch == "amd64" {
		return Args{KV("intel_iommu", "on"), KV("iommu", "pt")}
	}
	return nil
}

// Isolation says which kernel isolation features CPUIsolation renders.
// It is the typed form of spec.cpu.kernelIsolation.
type Isolation struct {
	// NohzFull stops the scheduler tick on isolated CPUs running one task.
	NohzFull bool
	// RCUNocbs moves RCU callbacks off the isolated CPUs.
	RCUNocbs bool
	// ManagedIRQ (isolcpus=managed_irq,<isolated>) keeps drivers' managed
	// interrupts (NVMe and ENA queues) off the isolated CPUs where it can.
	// nodeprep never uses isolcpus' domain flag: kubelet's static CPU
	// manager needs the scheduler to place pinned pods on those CPUs.
	ManagedIRQ bool
	// IRQAffinity (irqaffinity=<reserved>) is the default affinity of
	// every interrupt the kernel sets up, from the first one at boot.
	IRQAffinity bool
}

// CPUIsolation is the kernel side of a CPU partition, in the order the
// cluster-node-tuning-operator's cpu-partitioning profile renders them.
func CPUIsolation(p cpuset.Partition, iso Isolation) Args {
	isolated, reserved := p.Isolated.String(), p.Reserved.String()
	var args Args
	if iso.NohzFull {
		args = append(args, KV("nohz_full", isolated))
	}
	if iso.RCUNocbs {
		args = append(args, KV("rcu_nocbs", isolated))
	}
	if iso.ManagedIRQ {
		args = append(args, KV("isolcpus", "managed_irq,"+isolated))
	}
	if iso.IRQAffinity {
		args = append(args, KV("irqaffinity", reserved))
	}
	return args
}

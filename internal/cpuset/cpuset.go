// Package cpuset is the one home of CPU sets on a node: the kernel's list
// format ("0-3,8,10-11") and mask format ("ff,0000000f") in and out, the
// node's CPU topology read from /sys/devices/system/cpu through a
// hostfs.Root, and the partition of the online CPUs into reserved
// (housekeeping) and isolated (workload) sets that every rendered output
// (kernel arguments, systemd, IRQs, kubelet) takes as its input.
package cpuset

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxCPUs bounds CPU numbers: the largest NR_CPUS a distribution kernel is
// built with. A list naming a higher CPU is a typo, and refusing it keeps a
// "0-4000000000" from allocating gigabytes.
const MaxCPUs = 8192

// ErrSyntax is returned for a list or mask the kernel would not accept.
var ErrSyntax = errors.New("not a CPU list")

// Set is an immutable set of CPU numbers. The zero value is empty.
type Set struct {
	words []uint64
}

// Of returns the set of the given CPUs.
func Of(cpus ...int) Set {
	var b builder
	for _, c := range cpus {
		b.add(c)
	}
	return b.set()
}

// Range returns the CPUs first..last.
func Range(first, last int) Set {
	var b builder
	for c := first; c <= last; c++ {
		b.add(c)
	}
	return b.set()
}

type builder struct{ words []uint64 }

func (b *builder) add(c int) {
	if c < 0 {
		return
	}
	for len(b.words) <= c/64 {
		b.words = append(b.words, 0)
	}
	b.words[c/64] |= 1 << (c % 64)
}

func (b *builder) set() Set { return Set{words: trim(b.words)} }

func trim(w []uint64) []uint64 {
	for len(w) > 0 && w[len(w)-1] == 0 {
		w = w[:len(w)-1]
	}
	if len(w) == 0 {
		return nil
	}
	return w
}

// Parse reads the kernel's CPU list format, as in
// /sys/devices/system/cpu/online or isolcpus=: comma-separated CPUs and
// ranges, "0-3,8,10-11". Surrounding white space is ignored; an empty
// string is the empty set.
func Parse(s string) (Set, error) {
	s = strings.TrimSpace(s)
	var b builder
	if s == "" {
		return Set{}, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := cpuNumber(lo)
		if err != nil {
			return Set{}, fmt.Errorf("%q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = cpuNumber(hi); err != nil {
				return Set{}, fmt.Errorf("%q: %w", s, err)
			}
			if last < first {
				return Set{}, fmt.Errorf("%q: range %s runs backwards: %w", s, part, ErrSyntax)
			}
		}
		for c := first; c <= last; c++ {
			b.add(c)
		}
	}
	return b.set(), nil
}

func cpuNumber(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a CPU number: %w", s, ErrSyntax)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= MaxCPUs {
		return 0, fmt.Errorf("CPU %s is above the kernel's limit of %d: %w", s, MaxCPUs-1, ErrSyntax)
	}
	return n, nil
}

// MustParse is Parse for constants in tests and tables; it panics on error.
func MustParse(s string) Set {
	set, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return set
}

// String is the canonical kernel list form, ranges collapsed: "0-3,8".
func (s Set) String() string {
	var parts []string
	list := s.List()
	for i := 0; i < len(list); {
		j := i
		for j+1 < len(list) && list[j+1] == list[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(list[i]))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", list[i], list[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// List is the CPUs in ascending order.
func (s Set) List() []int {
	out := make([]int, 0, s.Len())
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// Len is the number of CPUs in the set.
func (s Set) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether the set has no CPU.
func (s Set) IsEmpty() bool { return len(s.words) == 0 }

// Contains reports whether cpu is in the set.
func (s Set) Contains(cpu int) bool {
	return cpu >= 0 && cpu/64 < len(s.words) && s.words[cpu/64]&(1<<(cpu%64)) != 0
}

// Union is s ∪ o.
func (s Set) Union(o Set) Set {
	out := make([]uint64, max(len(s.words), len(o.words)))
	copy(out, s.words)
	for i, w := range o.words {
		out[i] |= w
	}
	return Set{words: trim(out)}
}

// Intersect is s ∩ o.
func (s Set) Intersect(o Set) Set {
	out := make([]uint64, min(len(s.words), len(o.words)))
	for i := range out {
		out[i] = s.words[i] & o.words[i]
	}
	return Set{words: trim(out)}
}

// Difference is s \ o.
func (s Set) Difference(o Set) Set {
	out := append([]uint64(nil), s.words...)
	for i := 0; i < len(out) && i < len(o.words); i++ {
		out[i] &^= o.words[i]
	}
	return Set{words: trim(out)}
}

// Equal reports whether both sets hold the same CPUs.
func (s Set) Equal(o Set) bool {
	if len(s.words) != len(o.words) {
		return false
	}
	for i := range s.words {
		if s.words[i] != o.words[i] {
			return false
		}
	}
	return true
}

// SubsetOf reports whether every CPU of s is in o.
func (s Set) SubsetOf(o Set) bool { return s.Difference(o).IsEmpty() }

// Mask is the kernel's hex mask form, as /proc/irq/*/smp_affinity and
// /sys/class/net/*/queues/rx-*/rps_cpus read and write it: 32-bit words,
// most significant first, separated by commas, each of 8 hex digits except
// that leading all-zero words are dropped ("f", "1,00000000"). The kernel
// accepts it for any NR_CPUS. The empty set is "0".
func (s Set) Mask() string {
	var words []uint32
	for _, w := range s.words {
		words = append(words, uint32(w), uint32(w>>32))
	}
	for len(words) > 1 && words[len(words)-1] == 0 {
		words = words[:len(words)-1]
	}
	if len(words) == 0 {
		return "0"
	}
	parts := make([]string, len(words))
	for i := range words {
		w := words[len(words)-1-i]
		if i == 0 {
			parts[i] = strconv.FormatUint(uint64(w), 16)
		} else {
			parts[i] = fmt.Sprintf("%08x", w)
		}
	}
	return strings.Join(parts, ",")
}

// ParseMask reads the kernel's hex mask form (see Mask); the kernel pads
// with leading zero words, which are accepted.
func ParseMask(s string) (Set, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Set{}, fmt.Errorf("empty mask: %w", ErrSyntax)
	}
	parts := strings.Split(s, ",")
	if len(parts)*32 > MaxCPUs {
		return Set{}, fmt.Errorf("mask %q is wider than %d CPUs: %w", s, MaxCPUs, ErrSyntax)
	}
	var b builder
	for i, p := range parts {
		w, err := strconv.ParseUint(p, 16, 32)
		if err != nil {
			return Set{}, fmt.Errorf("mask %q: %w", s, ErrSyntax)
		}
		base := (len(parts) - 1 - i) * 32
		for bit := 0; bit < 32; bit++ {
			if w&(1<<bit) != 0 {
				b.add(base + bit)
			}
		}
	}
	return b.set(), nil
}

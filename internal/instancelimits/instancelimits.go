// Package instancelimits knows how many addresses each EC2 instance type
// allows per ENI, so nodeprep can refuse a config the instance cannot
// satisfy before it calls EC2. The numbers are the VPC CNI's generated
// limits (limits.tsv names the source and version); gen/main.go says how
// to refresh them.
package instancelimits

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

//go:embed limits.tsv
var table string

// Limits are one instance type's network limits.
type Limits struct {
	// ENIsPerCard is the number of ENIs on the default network card.
	ENIsPerCard int
	// IPv4PerENI is the private IPv4 addresses per ENI, the primary
	// included. Each delegated /28 prefix takes one of these slots.
	IPv4PerENI   int
	NetworkCards int
	// Nitro instances are the only ones that take prefix delegation.
	Nitro     bool
	BareMetal bool
}

// PodSlots is how many secondary addresses or prefixes an ENI takes
// besides its primary address. EC2 counts IPv6 addresses and /80 prefixes
// against the same per-ENI number.
func (l Limits) PodSlots() int { return l.IPv4PerENI - 1 }

// Table maps instance types to their limits.
type Table map[string]Limits

// Load returns the embedded table, parsed once.
var Load = sync.OnceValues(func() (Table, error) { return Parse(table) })

// Parse reads a limits table in limits.tsv's format.
func Parse(text string) (Table, error) {
	t := Table{}
	for i, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("limits.tsv line %d: %d fields, want 6", i+1, len(f))
		}
		var l Limits
		var err error
		for _, p := range []struct {
			dst *int
			s   string
		}{{&l.ENIsPerCard, f[1]}, {&l.IPv4PerENI, f[2]}, {&l.NetworkCards, f[3]}} {
			if *p.dst, err = strconv.Atoi(p.s); err != nil {
				return nil, fmt.Errorf("limits.tsv line %d: %w", i+1, err)
			}
		}
		l.Nitro = f[4] == "nitro"
		l.BareMetal = f[5] == "true"
		t[f[0]] = l
	}
	return t, nil
}

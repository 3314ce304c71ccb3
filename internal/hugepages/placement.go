package hugepages

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Placement is where NICLocal put the pages, and why.
type Placement struct {
	// PerNode is the page count of each NUMA node.
	PerNode map[int]int
	// Unknown are the devices that report no NUMA node (numa_node -1,
	// common on EC2 where the hypervisor exposes none for a NIC).
	Unknown []string
}

// NICLocal splits count pages over the NUMA nodes of the given PCI devices
// (the DPDK NICs), so a DPDK process pinned next to its NIC gets local
// memory. Devices that report no node are left out; when none reports one,
// the pages are spread over every NUMA node, which is where the kernel's
// own interleave would put them. The remainder goes to the lowest nodes.
func NICLocal(root hostfs.Root, count int, bdfs []string) (Placement, error) {
	p := Placement{PerNode: map[int]int{}}
	seen := map[int]bool{}
	for _, bdf := range bdfs {
		path := "/sys/bus/pci/devices/" + bdf + "/numa_node"
		b, err := root.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			p.Unknown = append(p.Unknown, bdf)
			continue
		}
		if err != nil {
			return p, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		if n < 0 {
			p.Unknown = append(p.Unknown, bdf)
			continue
		}
		seen[n] = true
	}
	var nodes []int
	for n := range seen {
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		all, err := (&Manager{Root: root}).nodes()
		if err != nil {
			return p, err
		}
		nodes = all
	}
	if len(nodes) == 0 {
		nodes = []int{0}
	}
	sort.Ints(nodes)
	each, rest := count/len(nodes), count%len(nodes)
	for i, n := range nodes {
		c := each
		if i < rest {
			c++
		}
		p.PerNode[n] = c
	}
	return p, nil
}

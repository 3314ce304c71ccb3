package cpuprofile_test

import (
	"testing"

	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// BenchmarkProfile192 is what every CPU step pays to recompute the profile
// on an m7i.48xlarge-shaped node: read sysfs topology, partition, render.
func BenchmarkProfile192(b *testing.B) {
	h := pcitest.New(b)
	h.SetCPUs(pcitest.CPUShape{CPUs: 192, Nodes: 2, Threads: 2}, 0)
	c := spec(b, "    topologyManagerPolicy: single-numa-node\n")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		topo, err := cpuset.ReadTopology(h.Root)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cpuprofile.Build(c, topo); err != nil {
			b.Fatal(err)
		}
	}
}

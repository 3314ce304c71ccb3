package api

import (
	"fmt"
	"math"
	"math/big"
	"testing"
)

// FuzzHugepagesCeiling holds the invariant that a config that validates never
// asks for more huge page memory than MaxHugepageBytes, whatever the counts:
// the sum is recomputed here in arbitrary precision, so a wrapped int64 in
// the code under test cannot hide.
func FuzzHugepagesCeiling(f *testing.F) {
	f.Add(int64(4611686018427387904), int64(4611686018427387904), int64(0), false)
	f.Add(int64(math.MaxInt64), int64(1), int64(0), true)
	f.Add(int64(0), int64(0), int64(math.MaxInt64/(2<<20)+1), false)
	f.Add(int64(512), int64(512), int64(4), true)
	f.Add(int64(-1), int64(math.MinInt64), int64(0), false)
	f.Fuzz(func(t *testing.T, node0, node1, count1Gi int64, oneGiPerNode bool) {
		perNodeSize, countSize := HugepageSize2Mi, HugepageSize1Gi
		if oneGiPerNode {
			perNodeSize, countSize = countSize, perNodeSize
		}
		doc := fmt.Sprintf("apiVersion: %s\nkind: %s\nspec:\n  hugepages:\n  - size: %s\n    perNUMANode: {0: %d, 1: %d}\n  - size: %s\n    count: %d\n",
			APIVersion, Kind, perNodeSize, node0, node1, countSize, count1Gi)
		cfg, err := Load(Source{Name: "fuzz", Data: []byte(doc)})
		if err != nil {
			return
		}
		asked := new(big.Int)
		for _, h := range cfg.Spec.Hugepages {
			pages := big.NewInt(int64(h.Count))
			for _, c := range h.PerNUMANode {
				if c < 0 {
					t.Fatalf("validated a negative NUMA count %d", c)
				}
				pages.Add(pages, big.NewInt(int64(c)))
			}
			asked.Add(asked, pages.Mul(pages, big.NewInt(HugepageBytes(h.Size))))
		}
		if asked.Cmp(big.NewInt(MaxHugepageBytes)) > 0 {
			t.Fatalf("validated %s bytes of huge pages, over the %d-byte ceiling:\n%s", asked, int64(MaxHugepageBytes), doc)
		}
	})
}

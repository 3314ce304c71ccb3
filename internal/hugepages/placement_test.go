package hugepages_test

import (
	"reflect"
	"testing"

	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

func TestNICLocal(t *testing.T) {
	h := pcitest.New(t)
	h.Memory(64<<20, 2048, 2, map[int64]int{1 << 20: 16}, 0)
	h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "eth1", MAC: "02:00:00:00:00:06", NUMA: 1})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Driver: "ena", IfName: "eth2", MAC: "02:00:00:00:00:07", NUMA: -1})
	for _, tc := range []struct {
		bdfs []string
		want map[int]int
	}{
		{[]string{"0000:00:06.0"}, map[int]int{1: 5}},
		{[]string{"0000:00:06.0", "0000:00:07.0"}, map[int]int{1: 5}}, // -1 is left out
		{[]string{"0000:00:07.0"}, map[int]int{0: 3, 1: 2}},           // only -1: spread
	} {
		p, err := hugepages.NICLocal(h.Root, 5, tc.bdfs)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.PerNode, tc.want) {
			t.Errorf("%v: %v, want %v (unknown %v)", tc.bdfs, p.PerNode, tc.want, p.Unknown)
		}
	}
}

package cpuset_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"0":              "0",
		" 0-3,8,10-11\n": "0-3,8,10-11",
		"3,2,1,0":        "0-3",
		"0-1,32-33":      "0-1,32-33",
		"5,5,4-6":        "4-6",
		"0-63,64,65-127": "0-127",
		"8191":           "8191",
	} {
		s, err := cpuset.Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if got := s.String(); got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", in, got, want)
		}
		if again := cpuset.MustParse(s.String()); !again.Equal(s) {
			t.Errorf("%q does not round-trip", in)
		}
	}
	for _, bad := range []string{"a", "1-", "-1", "3-1", "1,,2", "0x1", "8192", "0-4000000000", "1 2"} {
		if _, err := cpuset.Parse(bad); !errors.Is(err, cpuset.ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax", bad, err)
		}
	}
}

func TestMask(t *testing.T) {
	for list, mask := range map[string]string{
		"":          "0",
		"0-3":       "f",
		"0,1,32,33": "3,00000003",
		"63":        "80000000,00000000",
		"64":        "1,00000000,00000000",
		"0-191":     "ffffffff,ffffffff,ffffffff,ffffffff,ffffffff,ffffffff",
	} {
		s := cpuset.MustParse(list)
		if got := s.Mask(); got != mask {
			t.Errorf("%q.Mask() = %q, want %q", list, got, mask)
		}
		back, err := cpuset.ParseMask(mask)
		if err != nil || !back.Equal(s) {
			t.Errorf("ParseMask(%q) = %v, %v; want %q", mask, back, err, list)
		}
	}
	// The kernel pads with zero words when it prints a mask.
	if s, err := cpuset.ParseMask("00000000,0000000f"); err != nil || s.String() != "0-3" {
		t.Errorf("padded mask: %v %v", s, err)
	}
	if _, err := cpuset.ParseMask("xyz"); !errors.Is(err, cpuset.ErrSyntax) {
		t.Errorf("bad mask: %v", err)
	}
}

func TestSetAlgebra(t *testing.T) {
	a, b := cpuset.MustParse("0-7"), cpuset.MustParse("4-11")
	if got := a.Union(b).String(); got != "0-11" {
		t.Errorf("union %s", got)
	}
	if got := a.Intersect(b).String(); got != "4-7" {
		t.Errorf("intersect %s", got)
	}
	if got := a.Difference(b).String(); got != "0-3" {
		t.Errorf("difference %s", got)
	}
	if !cpuset.MustParse("4-5").SubsetOf(a) || b.SubsetOf(a) {
		t.Error("subset")
	}
	if a.Difference(a).IsEmpty() != true || !a.Difference(a).Equal(cpuset.Set{}) {
		t.Error("empty difference is not the zero set")
	}
}

func topo(t *testing.T, s pcitest.CPUShape) cpuset.Topology {
	t.Helper()
	h := pcitest.New(t)
	h.SetCPUs(s, 0)
	tp, err := cpuset.ReadTopology(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// Instance-type-shaped topologies, numbered as EC2 numbers them.
var (
	shape2SMT     = pcitest.CPUShape{CPUs: 2, Nodes: 1, Threads: 2}   // c6i.large
	shape2NoSMT   = pcitest.CPUShape{CPUs: 2, Nodes: 1, Threads: 1}   // c7g.large
	shape8SMT     = pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2}   // c6i.2xlarge
	shape64NoSMT  = pcitest.CPUShape{CPUs: 64, Nodes: 1, Threads: 1}  // c7g.16xlarge
	shape64SMT2N  = pcitest.CPUShape{CPUs: 64, Nodes: 2, Threads: 2}  // two-socket, 32 cores
	shape192SMT2N = pcitest.CPUShape{CPUs: 192, Nodes: 2, Threads: 2} // m7i.48xlarge
	shape192NoSMT = pcitest.CPUShape{CPUs: 192, Nodes: 2, Threads: 1} // c7a.48xlarge
)

func TestReadTopology(t *testing.T) {
	tp := topo(t, shape192SMT2N)
	if tp.Online.Len() != 192 || len(tp.Nodes) != 2 || tp.ThreadsPerCore() != 2 || len(tp.Cores()) != 96 {
		t.Fatalf("online %d nodes %v threads %d cores %d", tp.Online.Len(), tp.Nodes, tp.ThreadsPerCore(), len(tp.Cores()))
	}
	if got := tp.Core(5).String(); got != "5,101" {
		t.Errorf("core of 5 = %s", got)
	}
	if got := tp.NodeCPUs(1).String(); got != "48-95,144-191" {
		t.Errorf("node 1 = %s", got)
	}
	if tp.Node(100) != 0 || tp.Node(150) != 1 || tp.Node(500) != -1 {
		t.Errorf("nodes of 100, 150, 500: %d %d %d", tp.Node(100), tp.Node(150), tp.Node(500))
	}
	// An offline sibling leaves its core with one online thread.
	off := topo(t, pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 2, Offline: []int{7}})
	if got := off.Core(3).String(); got != "3" || off.Online.String() != "0-6" {
		t.Errorf("core of 3 with 7 offline = %s, online %s", got, off.Online)
	}
}

func TestPartitionShapes(t *testing.T) {
	cases := []struct {
		name     string
		shape    pcitest.CPUShape
		req      cpuset.Request
		reserved string
		isolated string
	}{
		{"2 vCPU SMT off", shape2NoSMT, cpuset.Request{}, "0", "1"},
		{"8 vCPU SMT, 1 node", shape8SMT, cpuset.Request{}, "0,4", "1-3,5-7"},
		{"8 vCPU SMT, 2 cores", shape8SMT, cpuset.Request{ReservedCores: 2}, "0-1,4-5", "2-3,6-7"},
		{"64 vCPU SMT off", shape64NoSMT, cpuset.Request{}, "0", "1-63"},
		{"64 vCPU SMT, 2 nodes", shape64SMT2N, cpuset.Request{}, "0,16,32,48", "1-15,17-31,33-47,49-63"},
		{"192 vCPU SMT, 2 nodes", shape192SMT2N, cpuset.Request{}, "0,48,96,144", "1-47,49-95,97-143,145-191"},
		{"192 vCPU SMT, 3 cores round-robin", shape192SMT2N, cpuset.Request{ReservedCores: 3}, "0-1,48,96-97,144", "2-47,49-95,98-143,145-191"},
		{"192 vCPU SMT off, 2 nodes", shape192NoSMT, cpuset.Request{}, "0,96", "1-95,97-191"},
		{"explicit list", shape8SMT, cpuset.Request{Reserved: cpuset.MustParse("3,7")}, "3,7", "0-2,4-6"},
		{"explicit both", shape8SMT, cpuset.Request{Reserved: cpuset.MustParse("0,4"), Isolated: cpuset.MustParse("1-3,5-7")}, "0,4", "1-3,5-7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := topo(t, tc.shape).Partition(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if p.Reserved.String() != tc.reserved || p.Isolated.String() != tc.isolated {
				t.Fatalf("reserved %s isolated %s, want %s / %s", p.Reserved, p.Isolated, tc.reserved, tc.isolated)
			}
			if !p.Reserved.Intersect(p.Isolated).IsEmpty() {
				t.Fatal("overlap")
			}
		})
	}
}

func TestPartitionProblems(t *testing.T) {
	req := func(r, i string) cpuset.Request {
		return cpuset.Request{Reserved: cpuset.MustParse(r), Isolated: cpuset.MustParse(i),
			ReservedField: "spec.cpu.reserved", IsolatedField: "spec.cpu.isolated"}
	}
	cases := []struct {
		name  string
		shape pcitest.CPUShape
		req   cpuset.Request
		want  []string
	}{
		{"one core, SMT: nothing left", shape2SMT, cpuset.Request{ReservedField: "spec.cpu.reserved"},
			[]string{"spec.cpu.reserved: auto reserves 1 whole cores but the node has 1"}},
		{"partial core", shape8SMT, req("0", ""),
			[]string{"spec.cpu.reserved: CPUs 4: hyperthread siblings of reserved CPUs are missing; reserve whole cores (e.g. 0,4)"}},
		{"overlap and partial isolated", shape8SMT, req("0,4", "1-4"),
			[]string{"spec.cpu.isolated: CPUs 4: also in spec.cpu.reserved", "spec.cpu.isolated: CPUs 5-7: online but in neither",
				"spec.cpu.isolated: CPUs 0,5-7: hyperthread siblings of isolated CPUs are missing"}},
		{"not online", pcitest.CPUShape{CPUs: 8, Nodes: 1, Threads: 1, Offline: []int{7}}, req("0,7-9", ""),
			[]string{"spec.cpu.reserved: CPUs 7-9: not online (online: 0-6)"}},
		{"everything reserved", shape2NoSMT, req("0-1", ""),
			[]string{"spec.cpu.isolated: no CPU left to isolate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := topo(t, tc.shape).Partition(tc.req)
			var pe *cpuset.PartitionError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PartitionError", err)
			}
			if len(pe.Problems) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(pe.Problems), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(pe.Problems[i].Error(), w) {
					t.Errorf("problem %d = %q\nwant prefix %q", i, pe.Problems[i].Error(), w)
				}
			}
		})
	}
}

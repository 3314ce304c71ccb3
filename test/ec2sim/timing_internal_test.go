package ec2sim

import (
	"testing"
	"time"
)

func TestLatencyDrawsAreSeeded(t *testing.T) {
	draws := func(seed int64) []time.Duration {
		s := New(Config{Seed: seed, Timing: Realistic()})
		var out []time.Duration
		for i := 0; i < 20; i++ {
			out = append(out, s.callLatency("CreateNetworkInterface", s.clientRNG("node-a")))
		}
		return out
	}
	a, b, c := draws(7), draws(7), draws(8)
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 draw %d: %v then %v", i, a[i], b[i])
		}
		if a[i] < 300*time.Millisecond || a[i] >= 600*time.Millisecond {
			t.Fatalf("draw %v outside 300-600ms", a[i])
		}
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 7 and 8 drew the same latencies")
	}
}

// TestClientDrawsIgnoreOtherClients interleaves a second client's calls
// differently: the first client's latencies must not change.
func TestClientDrawsIgnoreOtherClients(t *testing.T) {
	draws := func(othersBetween int) []time.Duration {
		s := New(Config{Seed: 7, Timing: Realistic()})
		var out []time.Duration
		for i := 0; i < 10; i++ {
			for range othersBetween * i {
				s.callLatency("DescribeSubnets", s.clientRNG("node-b"))
			}
			out = append(out, s.callLatency("CreateNetworkInterface", s.clientRNG("node-a")))
		}
		return out
	}
	a, b := draws(0), draws(3)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d of node-a: %v alone, %v with node-b's calls in between", i, a[i], b[i])
		}
	}
}

func TestAWSReservedAddresses(t *testing.T) {
	s := New(Config{})
	sn, err := s.AddSubnet(SubnetSpec{CIDR: "10.1.0.0/28"})
	if err != nil {
		t.Fatal(err)
	}
	st := s.subnets[sn.ID]
	var free []string
	for i := 0; i < 16; i++ {
		if a := addrAt(st.prefix, i); s.autoAllocatable(st, a) {
			free = append(free, a.String())
		}
	}
	if len(free) != 11 || free[0] != "10.1.0.4" || free[10] != "10.1.0.14" {
		t.Fatalf("allocatable %v", free)
	}
}

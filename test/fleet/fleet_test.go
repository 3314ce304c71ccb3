package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/fleet"
)

// TestFleet50x2 is the short boot storm of make test: 50 nodes with two
// ENIs each at once, realistic latency and visibility, EC2's buckets, at
// the defaults (deadline, retry, pacing).
func TestFleet50x2(t *testing.T) {
	if testing.Short() {
		t.Skip("a realistic-latency boot storm takes seconds")
	}
	off := false
	rep, err := fleet.Run(context.Background(), fleet.Spec{Nodes: 50, ENIs: 2, SourceDestCheck: &off, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	for a, st := range rep.PerAction {
		t.Logf("%-32s calls=%d throttled=%d errors=%d", a, st.Calls, st.Throttled, st.Errors)
	}
	if rep.Failed != 0 {
		t.Errorf("%d nodes failed; first: %v", rep.Failed, rep.Errors[0])
	}
	if rep.LeakedUnattached != 0 || rep.LeakedAfterTermination != 0 {
		t.Errorf("leaked %d unattached ENIs, %d after termination", rep.LeakedUnattached, rep.LeakedAfterTermination)
	}
}

// The bound follows the bucket arithmetic of the package comment.
func TestBound(t *testing.T) {
	off := false
	zero := ec2sim.Instant()
	// 500 x 2: 1,000 attaches through a 50-token bucket at 5/s: 190 s
	// (Instant timing: no latency after the last one).
	if got := fleet.Bound(fleet.Spec{Nodes: 500, ENIs: 2}, zero); got != 190*time.Second {
		t.Errorf("500x2 bound %v, want 190s", got)
	}
	// With sourceDestCheck false, 2,000 attribute changes through 100 at 5/s: 380 s.
	if got := fleet.Bound(fleet.Spec{Nodes: 500, ENIs: 2, SourceDestCheck: &off}, zero); got != 380*time.Second {
		t.Errorf("500x2 sourceDestCheck=false bound %v, want 380s", got)
	}
	// Realistic: the last attach (200 ms) and its attach delay (2 s) follow.
	if got := fleet.Bound(fleet.Spec{Nodes: 500, ENIs: 2}, ec2sim.Realistic()); got != 192200*time.Millisecond {
		t.Errorf("500x2 realistic bound %v, want 192.2s", got)
	}
}

// The first wave: at 500 fresh nodes 500 observation describes of the
// network interfaces and 500 of the subnets meet buckets of 100 each.
func TestFirstWave(t *testing.T) {
	for _, c := range []struct{ nodes, want int }{{500, 400 + 400}, {200, 100 + 100}, {50, 0}} {
		if got := fleet.FirstWave(fleet.Spec{Nodes: c.nodes, ENIs: 2}); got != c.want {
			t.Errorf("%d nodes: first wave %d, want %d", c.nodes, got, c.want)
		}
	}
}

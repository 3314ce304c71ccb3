package eni

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// The spread is the longest drain of the buckets the storm needs: at 500
// nodes with two ENIs and sourceDestCheck off, the 2,000 attribute changes
// through the 100-token, 5/s bucket.
func TestStormSpread(t *testing.T) {
	two := demand{"CreateNetworkInterface": 2, "AttachNetworkInterface": 2, "ModifyNetworkInterfaceAttribute": 4}
	for _, c := range []struct {
		n    int
		d    demand
		want time.Duration
	}{
		{500, two, time.Duration(1.05 * float64(1900*200*time.Millisecond))},
		{500, demand{"CreateNetworkInterface": 3, "AttachNetworkInterface": 3, "ModifyNetworkInterfaceAttribute": 6}, time.Duration(1.05 * float64(2900*200*time.Millisecond))},
		// The attaches' 50-token bucket is the longest drain without sourceDestCheck.
		{500, demand{"CreateNetworkInterface": 2, "AttachNetworkInterface": 2, "ModifyNetworkInterfaceAttribute": 2}, time.Duration(1.05 * float64(950*200*time.Millisecond))},
		{25, two, 0}, // every bucket's burst holds it
		{1, two, 0},
		{100000, two, stormSpreadMax},
	} {
		if got := stormSpread(c.n, c.d); got != c.want {
			t.Errorf("stormSpread(%d, %v) = %s, want %s", c.n, c.d, got, c.want)
		}
	}
}

type stormBed struct {
	sim *ec2sim.Sim
	run *run
	// ids are the booting instances, the node's first.
	ids []string
}

// newStormBed is one node's run among booting others (booting instances in
// all, the node's included), two new ENIs with sourceDestCheck off.
func newStormBed(t *testing.T, booting int) stormBed {
	t.Helper()
	timing := ec2sim.Instant()
	timing.StatusChecks = ec2sim.Latency{Base: time.Hour}
	sim := ec2sim.New(ec2sim.Config{Seed: 1, Timing: timing})
	t.Cleanup(sim.Close)
	sn, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	var self ec2sim.Instance
	var ids []string
	for i := range booting {
		inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: sn.ID})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			self = inst
		}
		ids = append(ids, inst.ID)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	off := false
	var items []item
	for k := range 2 {
		items = append(items, item{in: api.Interface{Name: fmt.Sprintf("data%d", k), SubnetID: sn.ID, SourceDestCheck: &off}})
	}
	client := ec2.NewFromConfig(ec2sim.AWSConfigFor(srv.URL, "us-west-2", "STORM"), ClientOptions(""))
	return stormBed{sim: sim, run: &run{Reconciler: &Reconciler{EC2: client, InstanceID: self.ID}, act: &changetest.Actions{}, items: items}, ids: ids}
}

// trackerAfter is a run's tracker after its first answer and throttles
// throttled ones.
func trackerAfter(throttles int) *throttleTracker {
	return &throttleTracker{waiting: map[*opState]bool{}, firstAt: time.Now(), throttles: throttles}
}

// A node whose first answer was a throttle counts the booting instances
// once and waits a turn within the spread they need, as throttled time (the
// deadline grows by it); a node whose first answer was granted asks
// nothing and waits for nothing.
func TestWideStormWaitsItsTurn(t *testing.T) {
	// 29 booting nodes with 4 attribute changes each: 16 more than the
	// bucket's burst, 3.36 s of refill.
	bed := newStormBed(t, 29)
	tr := trackerAfter(1)
	ctx := withThrottleTracker(context.Background(), tr)
	start := time.Now()
	if err := bed.run.stormTurn(ctx, "data0"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	window := stormSpread(29, bed.run.demand())
	if want := time.Duration(1.05 * float64(16*200*time.Millisecond)); window != want {
		t.Fatalf("spread for 29 booting nodes %s, want %s", window, want)
	}
	if turn := tr.stormTurn().Sub(tr.firstAt); turn < 0 || turn > window {
		t.Errorf("turn %s after the first answer, want within the spread %s", turn, window)
	}
	if took > window+500*time.Millisecond {
		t.Errorf("waited %s, longer than the spread %s", took, window)
	}
	if got := tr.Throttled(); got < took-100*time.Millisecond {
		t.Errorf("waited %s for the turn, throttled time %s: the deadline would not grow by the wait", took, got)
	}
	if got := bed.sim.Stats()["DescribeInstanceStatus"].Calls; got != 1 {
		t.Errorf("%d DescribeInstanceStatus calls, want 1", got)
	}
	// The other interfaces of the run take the same turn, without asking again.
	again := time.Now()
	if err := bed.run.stormTurn(ctx, "data0"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(again); d > 50*time.Millisecond {
		t.Errorf("a second interface waited %s past the turn", d)
	}
	if got := bed.sim.Stats()["DescribeInstanceStatus"].Calls; got != 1 {
		t.Errorf("%d DescribeInstanceStatus calls after a second interface, want 1", got)
	}

	calm := newStormBed(t, 29)
	if err := calm.run.stormTurn(withThrottleTracker(context.Background(), trackerAfter(0)), "data0"); err != nil {
		t.Fatal(err)
	}
	if got := calm.sim.Stats()["DescribeInstanceStatus"].Calls; got != 0 {
		t.Errorf("first answer granted: %d DescribeInstanceStatus calls, want none", got)
	}
}

// A policy without ec2:DescribeInstanceStatus costs the node its spread,
// not its run.
func TestStormCountDeniedIsNoFailure(t *testing.T) {
	bed := newStormBed(t, 29)
	bed.sim.InjectFault(ec2sim.Fault{Action: "DescribeInstanceStatus", Kind: ec2sim.FaultDenied})
	start := time.Now()
	if err := bed.run.stormTurn(withThrottleTracker(context.Background(), trackerAfter(1)), "data0"); err != nil {
		t.Fatalf("denied count: %v, want no error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("denied count: waited %s, want no wait", d)
	}
}

// Once its storm turn has come, a node forgets the pace it learned in the
// storm's first wave (its turn is spread past it), not what it learned
// since.
func TestTurnForgetsTheFirstWavesPace(t *testing.T) {
	p := newPacer()
	p.answered("DescribeSubnets", true) // the first wave: a wide storm
	p.answered("CreateNetworkInterface", true)
	turn := time.Now()
	p.forgetBefore(turn.Add(time.Hour)) // not yet come: nothing forgotten
	if p.levelOf("CreateNetworkInterface") == 1 {
		t.Fatal("a turn an hour away made the node forget its pace")
	}
	time.Sleep(time.Millisecond)
	p.answered("ModifyNetworkInterfaceAttribute", true) // after the turn
	p.forgetBefore(turn)
	if l, d := p.levelOf("CreateNetworkInterface"), p.spacing("CreateNetworkInterface", time.Now()); l != 1 || d != 0 {
		t.Errorf("after the turn: create level %v, spacing %s; want 1 and none", l, d)
	}
	if p.wideStorm {
		t.Error("after the turn the node still waits a refill time as in the first wave")
	}
	if p.levelOf("ModifyNetworkInterfaceAttribute") == 1 {
		t.Error("a throttle after the turn was forgotten too")
	}
}

// A node whose observation EC2 granted in a storm's first wave creates at
// once and is throttled only then (at 500 nodes about 80 nodes got both
// describes through, and their 160 creates met a 100-token bucket). The
// throttled create's retry waits for the node's turn, not for the pacer's
// next slot a second later with the others': before, those retries were
// throttled 100 times more in the storm's first 10 s.
func TestThrottledCreateRetriesAtTheTurn(t *testing.T) {
	bed := newStormBed(t, 29)
	tr := &throttleTracker{waiting: map[*opState]bool{}}
	ctx := withThrottleTracker(context.Background(), tr)
	// The node's first answer is granted: no wide storm.
	if _, err := bed.run.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	// The turn, as the count would draw it, 2 s away: past any paced retry
	// (level 4 after one throttle: 0.4-1.2 s).
	turn := time.Now().Add(2 * time.Second)
	bed.run.stormOnce.Do(func() { tr.setStormTurn(turn) })
	tr.setTurnGate(bed.run.awaitTurn)
	bed.sim.InjectFault(ec2sim.Fault{Action: "CreateNetworkInterface", Kind: ec2sim.FaultThrottle, Count: 1})
	if _, err := bed.run.create(ctx, bed.run.items[0].in, ""); err != nil {
		t.Fatal(err)
	}
	var attempts []time.Time
	for _, c := range bed.sim.Calls() {
		if c.Action == "CreateNetworkInterface" {
			attempts = append(attempts, c.Time)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("%d create attempts, want 2 (one throttled, its retry)", len(attempts))
	}
	if attempts[1].Before(turn) {
		t.Errorf("the throttled create was retried %s before the node's turn", turn.Sub(attempts[1]).Round(time.Millisecond))
	}
	if got := tr.Throttled(); got < 1500*time.Millisecond {
		t.Errorf("throttled time %s after waiting ~2 s for the turn: the deadline would not grow by the wait", got)
	}
}

// Every node of a storm sees the same booting instances, so each takes its
// own slot of the spread: 29 nodes' turns fall one in each 29th of it.
// Turns drawn over the whole spread clustered, and the buckets answered the
// clusters with throttles.
func TestStormTurnsTakeOneSlotEach(t *testing.T) {
	bed := newStormBed(t, 29)
	window := stormSpread(29, bed.run.demand())
	slots := map[int]string{}
	for _, id := range bed.ids {
		run := &run{Reconciler: &Reconciler{EC2: bed.run.EC2, InstanceID: id}, act: bed.run.act, items: bed.run.items}
		tr := trackerAfter(1)
		turn, ok := run.decideTurn(withThrottleTracker(context.Background(), tr))
		if !ok || turn.IsZero() {
			t.Fatalf("%s: no turn", id)
		}
		slot := int(turn.Sub(tr.firstAt) / (window / 29))
		if other, taken := slots[slot]; taken {
			t.Errorf("%s and %s share the %d-th 29th of the spread", id, other, slot)
		}
		slots[slot] = id
	}
	if len(slots) != 29 {
		t.Errorf("%d distinct slots for 29 nodes", len(slots))
	}
}

package eni_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// A node whose observation was throttled from its first answer counts the
// booting instances before its first create, and still brings its ENIs up.
// Without the count its creates would go as soon as the observation is
// answered, with the whole storm's.
func TestWideStormCountsBeforeTheFirstCreate(t *testing.T) {
	t.Parallel() // its first retry waits up to 40 s (waveRetrySpread)
	timing := ec2sim.Instant()
	// The describes of the ENIs answer after the subnets' throttle.
	timing.Calls = map[string]ec2sim.Latency{"DescribeNetworkInterfaces": {Base: 200 * time.Millisecond}}
	f, r, ifaces := stormNode(t, 29, timing)
	// The node's first answer is a throttle: a wide storm (its retry waits
	// up to four refill times, 40 s).
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Kind: ec2sim.FaultThrottle, Count: 1})
	got, err := r.Reconcile(context.Background(), &changetest.Actions{}, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d ENIs attached, want 2", len(got))
	}
	var counted, created time.Time
	for _, c := range f.sim.Calls() {
		switch {
		case c.Action == "DescribeInstanceStatus" && counted.IsZero():
			counted = c.Time
		case c.Action == "CreateNetworkInterface" && created.IsZero():
			created = c.Time
		}
	}
	if counted.IsZero() {
		t.Fatal("no DescribeInstanceStatus: the node never asked how wide its storm is")
	}
	if created.Before(counted) {
		t.Errorf("first create at %s, before the count at %s", created.Format(time.StampMilli), counted.Format(time.StampMilli))
	}
}

// stormNode is one node of booting instances (all still initializing)
// with two new ENIs, sourceDestCheck off (at 200 booting: a spread of about
// 2 minutes).
func stormNode(t *testing.T, booting int, timing ec2sim.Timing) (*fixture, *eni.Reconciler, []api.Interface) {
	t.Helper()
	timing.StatusChecks = ec2sim.Latency{Base: time.Hour}
	f := newFixtureWith(t, booting, "10.1.0.0/24", ec2sim.Config{Seed: 3, Timing: timing})
	off := false
	var ifaces []api.Interface
	for k, name := range []string{"data1", "data2"} {
		in := managed(name, f.data.ID, int32(k+1), api.PrivateIPDHCP)
		in.SourceDestCheck = &off
		ifaces = append(ifaces, in)
	}
	r := &eni.Reconciler{EC2: ec2.NewFromConfig(ec2sim.AWSConfigFor(f.url, "us-west-2", "NODE0"), eni.ClientOptions("")), InstanceID: f.insts[0].ID}
	return f, r, ifaces
}

// firstCall is when the first call of action came with that answer code
// ("" granted), and whether one did.
func firstCall(f *fixture, action, code string) (time.Time, bool) {
	for _, c := range f.sim.Calls() {
		if c.Action == action && c.ErrorCode == code {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// A node throttled while it waits for a new ENI to become visible (its
// describes meet the storm's drained bucket) stops describing and waits for
// its turn; before, it kept a describe going every 150-300 ms.
func TestVisibilityWaitStopsForTheTurn(t *testing.T) {
	timing := ec2sim.Instant()
	timing.Visibility = ec2sim.Latency{Base: 10 * time.Second}
	f, r, ifaces := stormNode(t, 200, timing)
	// The node's turn is its rank's slot of the spread ((200 x 4 - 100) x
	// 200 ms x 1.05 = 147 s; 0.735 s a slot): at least 3 s away.
	var ids []string
	for _, inst := range f.insts {
		ids = append(ids, inst.ID)
	}
	slices.Sort(ids)
	if rank := slices.Index(ids, r.InstanceID); rank < 5 {
		t.Fatalf("the node ranks %d of 200: its turn may come within 3 s; pick another seed", rank)
	}
	// The observation goes through; the first describe that waits for a new
	// ENI to show (filtered by its ID) is throttled.
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeNetworkInterfaces", Kind: ec2sim.FaultThrottle, Count: 1, Param: "Filter.1.Name", Value: "network-interface-id"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _, _ = r.Reconcile(ctx, &changetest.Actions{}, ifaces) }()
	for {
		if _, ok := firstCall(f, "DescribeNetworkInterfaces", "RequestLimitExceeded"); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the visibility describe was never throttled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	throttled, _ := firstCall(f, "DescribeNetworkInterfaces", "RequestLimitExceeded")
	after := 0
	for _, c := range f.sim.Calls() {
		if c.Action == "DescribeNetworkInterfaces" && c.Time.After(throttled.Add(time.Second)) {
			after++
		}
	}
	if after > 0 {
		t.Errorf("%d describes of the new ENIs from 1 s to 3 s after the throttle: the node kept polling before its turn", after)
	}
	if _, ok := firstCall(f, "DescribeInstanceStatus", ""); !ok {
		t.Error("no DescribeInstanceStatus: the node never asked how wide its storm is")
	}
}

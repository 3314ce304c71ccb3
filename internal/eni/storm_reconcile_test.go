package eni_test

import (
	"context"
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
	timing := ec2sim.Instant()
	timing.StatusChecks = ec2sim.Latency{Base: time.Hour}
	// The describes of the ENIs answer after the subnets' throttle.
	timing.Calls = map[string]ec2sim.Latency{"DescribeNetworkInterfaces": {Base: 200 * time.Millisecond}}
	f := newFixtureWith(t, 29, "10.1.0.0/24", ec2sim.Config{Seed: 3, Timing: timing})
	// The node's first answer is a throttle: a wide storm (its retry waits
	// up to two refill times, 20 s).
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Kind: ec2sim.FaultThrottle, Count: 1})
	off := false
	var ifaces []api.Interface
	for k, name := range []string{"data1", "data2"} {
		in := managed(name, f.data.ID, int32(k+1), api.PrivateIPDHCP)
		in.SourceDestCheck = &off
		ifaces = append(ifaces, in)
	}
	r := &eni.Reconciler{EC2: ec2.NewFromConfig(ec2sim.AWSConfigFor(f.url, "us-west-2", "NODE0"), eni.ClientOptions("")), InstanceID: f.insts[0].ID}
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

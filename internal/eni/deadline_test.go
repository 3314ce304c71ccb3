package eni_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// A node throttled for longer than its deadline is no failure: the
// account's bucket is busy, not broken, so the deadline grows by the time
// EC2 throttled the node (up to eni.MaxDeadline). On the old fixed
// deadline this run failed with "context deadline exceeded".
func TestDeadlineGrowsWithThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("throttled for longer than a 6 s deadline")
	}
	f := newFixture(t, 1, "10.9.8.0/24")
	id := f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultThrottle, Count: 8})
	start := time.Now()
	if err := reconcileOne(f, &changetest.Actions{}, 6*time.Second, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Second), err)
	}
	if hits := f.sim.FaultHits(id); hits != 8 {
		t.Errorf("%d throttled attaches, want 8", hits)
	}
	wantNoneUnattached(t, f, "a throttled attach was given up")
}

// A run that does run out of time says why: the last EC2 error code, the
// call that got it and how long the node was throttled, as a
// *eni.DeadlineError that is also context.DeadlineExceeded.
func TestDeadlineErrorNamesTheLastEC2Code(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultInternalError})
	err := reconcileOne(f, &changetest.Actions{}, 2*time.Second, managed("a", f.data.ID, 1, api.PrivateIPDHCP))
	var d *eni.DeadlineError
	if !errors.As(err, &d) {
		t.Fatalf("error %v, want an *eni.DeadlineError", err)
	}
	if d.LastCode != "InternalError" || d.LastCall != "AttachNetworkInterface" {
		t.Errorf("last EC2 error %q from %q, want InternalError from AttachNetworkInterface", d.LastCode, d.LastCall)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not context.DeadlineExceeded", err)
	}
	for _, want := range []string{"InternalError from AttachNetworkInterface", "throttled", "interface a"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	f.sim.ClearFaults()
	if err := f.sim.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantNoneUnattached(t, f, "the ENI of a run past its deadline leaked")
}

package eni_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// The regression tests of issue 11: each one fails on the reconciler as it
// was before (attempt-bound retries, no request timeout, NotFound read as
// "gone", concurrent attribute changes, lowest-address races).

func twoENIs(f *fixture, mode api.PrivateIPMode) []api.Interface {
	return []api.Interface{managed("a", f.data.ID, 1, mode), managed("b", f.data.ID, 2, mode)}
}

func creates(f *fixture) int { return f.sim.Stats()["CreateNetworkInterface"].Calls }

// reconcileOne runs one node's reconciler for interfaces under a deadline.
func reconcileOne(f *fixture, act change.Actions, deadline time.Duration, ifaces ...api.Interface) error {
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID, Deadline: deadline}
	_, err := r.Reconcile(context.Background(), act, ifaces)
	return err
}

// wantNoneUnattached fails the test if an ENI was left unattached.
func wantNoneUnattached(t *testing.T, f *fixture, why string) {
	t.Helper()
	if left := f.sim.UnattachedENIs(); len(left) != 0 {
		t.Errorf("ENI %s (of %d) left unattached: %s", left[0].ID, len(left), why)
	}
}

// Eventual consistency: new ENIs stay invisible for 2-3 s. A NotFound on
// attach means "not visible yet", never a reason to create again.
func TestNewENIsInvisibleForSeconds(t *testing.T) {
	f := newFixtureWith(t, 1, "10.9.8.0/24", ec2sim.Config{Seed: 3, Timing: ec2sim.Timing{Visibility: ec2sim.Latency{Base: 2 * time.Second, Jitter: time.Second}}})
	if err := reconcileOne(f, &changetest.Actions{}, time.Minute, twoENIs(f, api.PrivateIPDHCP)...); err != nil {
		t.Fatal(err)
	}
	if n := creates(f); n != 2 {
		t.Errorf("%d CreateNetworkInterface calls for 2 ENIs: a NotFound was taken for a lost ENI", n)
	}
	wantNoneUnattached(t, f, "a salted re-create left the first ENI behind")
}

// A NotFound on the cleanup delete of an ENI we just created may be EC2
// not showing it yet: it must be verified, not counted as "already gone".
func TestCleanupDeleteVerifiesNotFound(t *testing.T) {
	f := newFixtureWith(t, 1, "10.9.8.0/24", ec2sim.Config{Seed: 3, Timing: ec2sim.Timing{Visibility: ec2sim.Latency{Base: 3 * time.Second}}})
	// The run ends while its new ENI is still invisible, so the attach
	// fails and the cleanup's first delete answers NotFound.
	if err := reconcileOne(f, &changetest.Actions{}, time.Second, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err == nil {
		t.Fatal("the run succeeded although its ENI stayed invisible past its deadline")
	}
	wantNoneUnattached(t, f, "the cleanup took NotFound for gone")
}

// A hung request must not use up the run's deadline: it times out and is
// retried.
func TestHungAttachIsRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for one request timeout")
	}
	f := newFixture(t, 1, "10.9.8.0/24")
	f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultTimeout, Count: 1})
	start := time.Now()
	if err := reconcileOne(f, &changetest.Actions{}, 5*time.Minute, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	wantNoneUnattached(t, f, "the hung attach was never retried")
}

// When the run's deadline ends an attach, the cleanup still runs, on its
// own context, and the ENI does not leak.
func TestCleanupOutlivesTheRunDeadline(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultTimeout})
	if err := reconcileOne(f, &changetest.Actions{}, 2*time.Second, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err == nil {
		t.Fatal("the run succeeded although every attach hung")
	}
	wantNoneUnattached(t, f, "the cleanup ran on the expired context")
}

// Boot storm: a run's retries end at its deadline, not after a number of
// attempts. EC2 throttles this node's attach 12 times in a row, as many
// attempts as the shipped retryer made before giving up.
func TestThrottlingBoundedByDeadlineNotAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("backs off through 12 throttled attempts")
	}
	f := newFixture(t, 1, "10.9.8.0/24")
	f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultThrottle, Count: 12})
	if err := reconcileOne(f, &changetest.Actions{}, 5*time.Minute, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Stats()["AttachNetworkInterface"].Calls; n != 13 {
		t.Errorf("%d attach calls, want 12 throttled and one through", n)
	}
}

// Boot storm: DeleteOnTermination is the first change after the attach,
// and is made even when everything after it hangs past the deadline, so
// no attached ENI outlives its instance.
func TestDeleteOnTerminationFirstAndAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for two request timeouts")
	}
	f := newFixture(t, 1, "10.9.8.0/24")
	// The first two attribute changes hang.
	f.sim.InjectFault(ec2sim.Fault{Action: "ModifyNetworkInterfaceAttribute", Kind: ec2sim.FaultTimeout, Count: 2})
	in := managed("a", f.data.ID, 1, api.PrivateIPDHCP)
	off := false
	in.SourceDestCheck = &off
	// The run's deadline passes while it waits for the NIC, after the
	// attach answered: an event, not a time (a 2 s deadline passed before
	// the attach on a loaded machine).
	deadline := newEventDeadline()
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID, Deadline: time.Hour,
		NICAppeared: func(ctx context.Context, _ string) error {
			deadline.expire()
			<-ctx.Done()
			return ctx.Err()
		}}
	_, _ = r.Reconcile(deadline, &changetest.Actions{}, []api.Interface{in})
	var order []string
	for _, c := range f.sim.Calls() {
		if c.Action == "ModifyNetworkInterfaceAttribute" && c.ErrorCode == "" {
			if c.Params.Has("Attachment.DeleteOnTermination") {
				order = append(order, "DeleteOnTermination")
			} else {
				order = append(order, "other")
			}
		}
	}
	if len(order) == 0 || order[0] != "DeleteOnTermination" {
		t.Errorf("attribute changes applied: %v, want DeleteOnTermination first", order)
	}
	if _, err := f.sim.TerminateInstance(f.insts[0].ID); err != nil {
		t.Fatal(err)
	}
	wantNoneUnattached(t, f, "it outlived its instance (DeleteOnTermination never set)")
}

// An attach whose answer was lost but that EC2 made is a success: no
// change is reported failed (the engine would log it at ERROR).
func TestRecoveredAttachIsNoFailure(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	f.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultInternalError, Count: 1, AfterApply: true})
	act := &failures{}
	if err := reconcileOne(f, act, time.Minute, managed("a", f.data.ID, 1, api.PrivateIPDHCP)); err != nil {
		t.Fatal(err)
	}
	if len(act.failed) != 0 {
		t.Errorf("failed changes reported for a recovered attach:\n%s", strings.Join(act.failed, "\n"))
	}
}

// failures keeps the changes whose function failed: the engine logs each
// at ERROR.
type failures struct {
	changetest.Actions
	mu     sync.Mutex
	failed []string
}

func (f *failures) Do(ctx context.Context, what string, fn func(context.Context) error) error {
	return f.Actions.Do(ctx, what, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil {
			f.mu.Lock()
			f.failed = append(f.failed, what+": "+err.Error())
			f.mu.Unlock()
		}
		return err
	})
}

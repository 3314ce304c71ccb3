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

// A fresh instance (IMDS shows only its primary interface) observes with
// one describe of its ENIs: in a boot storm every node sends its
// observation at once, and each describe of it is a throttled answer for
// all but a bucket's burst of the nodes (at 500 x 2, 2,005 of 2,677
// throttled answers were describes of ENIs with two at boot).
func TestFreshInstanceObservesWithOneDescribeOfItsENIs(t *testing.T) {
	n := newNode(t, nodeSpec{})
	r := n.reconciler(n.start(5*time.Second), time.Minute)
	n.sim.ResetCalls()
	res, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
		n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP),
	})
	if err != nil || len(res) != 2 {
		t.Fatalf("Reconcile: %d attachments, %v", len(res), err)
	}
	describes := 0
	for _, c := range n.sim.Calls() {
		if c.Action == "CreateNetworkInterface" {
			break
		}
		if c.Action == "DescribeNetworkInterfaces" {
			describes++
		}
	}
	if describes != 1 {
		t.Errorf("%d describes of ENIs before the first create, want 1 (IMDS shows only the primary interface)", describes)
	}
}

// IMDS shows an attachment only once it is complete: a re-run after a
// crash may see only the primary interface there while EC2 already has the
// node's own ENI attached (or attaching) and another left unattached. The
// one describe of the node's tagged ENIs must find both: the attached one
// adopted as is, the unattached one attached, no new ENI.
func TestFreshInstanceStillFindsItsOwnENIs(t *testing.T) {
	n := newNode(t, nodeSpec{})
	ctx := context.Background()
	a, b := n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP)
	if _, err := n.reconciler(n.start(5*time.Second), time.Minute).Reconcile(ctx, &changetest.Actions{}, []api.Interface{a}); err != nil {
		t.Fatal(err)
	}
	setup := n.start(5 * time.Second)
	if err := (&sweepScenario{n: n}).leftover(ctx, setup.client, "b", n.data.ID); err != nil {
		t.Fatal(err)
	}
	before := n.ours()
	r := n.reconciler(n.start(5*time.Second), time.Minute)
	// IMDS lags at the observation only: the attach waits then see b.
	lagging := true
	r.AttachedMACs = func(ctx context.Context) ([]string, error) {
		if lagging {
			lagging = false
			return []string{"02:00:00:00:00:01"}, nil
		}
		return n.imds.AttachedMACs(ctx)
	}
	res, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{a, b})
	if err != nil {
		t.Fatal(err)
	}
	how := map[string]string{}
	for _, at := range res {
		how[at.Interface] = at.How
	}
	if how["a"] != "adopted" || how["b"] != "reattached" {
		t.Errorf("a %q, b %q: want adopted and reattached", how["a"], how["b"])
	}
	for name, enis := range n.ours() {
		if len(enis) != 1 || len(before[name]) != 1 || enis[0].ID != before[name][0].ID {
			t.Errorf("interface %s: ENIs %v after the re-run, %v before: want the same one", name, enis, before[name])
		}
	}
}

// Without the describe of the attached ENIs the primary interface is still
// counted against its network card: c5.large takes 3 ENIs, so with the
// primary a third Multus ENI on card 0 is one too many.
func TestFreshInstanceCountsItsPrimaryAgainstTheCard(t *testing.T) {
	n := newNode(t, nodeSpec{instanceType: "c5.large"})
	p := n.start(5 * time.Second)
	l, err := eni.DescribeLimits(context.Background(), p.client, "c5.large")
	if err != nil {
		t.Fatal(err)
	}
	r := n.reconciler(p, time.Minute)
	r.Limits = &l
	n.sim.ResetCalls()
	_, err = r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
		n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP), n.iface("c", 3, api.PrivateIPDHCP),
	})
	if !errors.Is(err, eni.ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit (card 0 of c5.large takes 3 ENIs, the primary included)", err)
	}
	if e := asError(t, err); e.Interface != "c" {
		t.Errorf("the error names %q, want c, the fourth ENI on the card", e.Interface)
	}
	for _, c := range n.sim.Calls() {
		if c.Mutating {
			t.Errorf("%s before the limit was checked", c.Action)
		}
	}
}

// A config asking no pod addresses is checked against the instance type's
// limits before the first attach, and the limits are asked beside the
// creates: a fresh node's first calls are the two describes of its
// observation, not three (DescribeInstanceTypes too, each meeting its own
// 100-token bucket at once in a 500-node storm), and the create does not
// wait for the limits.
func TestLimitsAskedBesideTheCreates(t *testing.T) {
	n := newNode(t, nodeSpec{cfg: ec2sim.Config{Seed: 3, Timing: ec2sim.Timing{Calls: map[string]ec2sim.Latency{"DescribeInstanceTypes": {Base: 300 * time.Millisecond}}}}})
	p := n.start(5 * time.Second)
	r := n.reconciler(p, time.Minute)
	r.LoadLimits = (&eni.LimitsOnce{EC2: p.client, InstanceType: n.inst.Type}).Get
	n.sim.ResetCalls()
	if _, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{n.iface("a", 1, api.PrivateIPDHCP)}); err != nil {
		t.Fatal(err)
	}
	at := map[string]time.Time{}
	var order []string
	for _, c := range n.sim.Calls() {
		if _, seen := at[c.Action]; !seen {
			at[c.Action] = c.Time
			order = append(order, c.Action)
		}
	}
	types, created, attached := at["DescribeInstanceTypes"], at["CreateNetworkInterface"], at["AttachNetworkInterface"]
	if types.IsZero() || created.IsZero() || attached.IsZero() {
		t.Fatalf("calls in order %v: want DescribeInstanceTypes, a create and an attach", order)
	}
	if types.Before(at["DescribeSubnets"]) || types.Before(at["DescribeNetworkInterfaces"]) {
		t.Errorf("calls in order %v: DescribeInstanceTypes went with the observation", order)
	}
	if created.After(types.Add(300 * time.Millisecond)) {
		t.Errorf("the create went %s after DescribeInstanceTypes: it waited for the limits", created.Sub(types))
	}
	if attached.Before(types.Add(300 * time.Millisecond)) {
		t.Errorf("the attach went before the limits were answered: unchecked")
	}
}

// Checked before the first attach, a config the instance type cannot take
// fails with the limit's error, once, and the ENIs created for it are
// deleted: nothing is attached, nothing is left.
func TestLimitsRefusedBeforeTheAttach(t *testing.T) {
	n := newNode(t, nodeSpec{instanceType: "c5.large"})
	p := n.start(5 * time.Second)
	r := n.reconciler(p, time.Minute)
	r.LoadLimits = (&eni.LimitsOnce{EC2: p.client, InstanceType: "c5.large"}).Get
	n.sim.ResetCalls()
	_, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
		n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP), n.iface("c", 3, api.PrivateIPDHCP),
	})
	if !errors.Is(err, eni.ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit (card 0 of c5.large takes 3 ENIs, the primary included)", err)
	}
	if got := strings.Count(err.Error(), "network card 0 of c5.large takes 3 ENIs"); got != 1 {
		t.Errorf("the limit is said %d times in %q, want once", got, err)
	}
	for _, c := range n.sim.Calls() {
		if c.Action == "AttachNetworkInterface" {
			t.Errorf("an attach (%v) after the limits refused the config", c.Params.Get("NetworkInterfaceId"))
		}
	}
	for name, enis := range n.ours() {
		t.Errorf("interface %s: %d ENIs left after the refused run", name, len(enis))
	}
}

package eni

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Pacing alone cannot keep a boot storm's throttles rare: a node learns
// how many others share the account's buckets only by being throttled, one
// throttle at a time, so at 500 nodes every node was throttled about ten
// times on its creates and attribute changes (5,000 throttled answers of
// 15,000 calls). So once EC2 throttles a run, it asks once how many
// instances are booting (DescribeInstanceStatus: the instances whose first
// status checks are still "initializing", itself included) and, from that
// count, how long the storm needs EC2's buckets: n instances with this
// node's demand of an action drain its bucket in (n x demand - burst) /
// refill rate. The node's next create or attach then waits for its turn
// within the longest of those drains, counted from its first answer (about
// when the storm began): its own slot of it, by its rank among the booting
// instances (turnIn), so the storm reaches each bucket at its refill rate
// instead of all at once. A throttled create or attach is retried at the
// turn too, and a node throttled while it waits for a new ENI to show stops
// describing until then. A turn already past costs nothing; the wait counts
// as throttled time (the deadline grows by it). A node EC2 never throttled
// asks nothing and never waits.
//
// The count is of every booting instance in the region, not only nodeprep
// nodes: unrelated instances booting at the same time make the spread
// longer than needed (slower, never failed), which stormSpreadMax bounds.

// stormSpreadMargin stretches the spread past the bucket's drain time:
// arrivals spread at random cluster, and a spread just short of the drain
// brings the throttles back (in a discrete-event model of the 500 x 2
// bench: 21% of the calls throttled at 0.9 x the drain, 1% at 1.05 x).
const stormSpreadMargin = 1.05

// stormSpreadMax bounds the spread: half the hard deadline, so a node
// spread to the end still has as long again to finish.
const stormSpreadMax = MaxDeadline / 2

// stormCountTimeout bounds the count: EC2 retries 5xx answers without an
// attempt limit, and a node that cannot count its storm is still paced by
// its throttles.
const stormCountTimeout = 20 * time.Second

// demand is how many calls of each mutating action a node still needs.
type demand map[string]int

// stormSpread is the window over which n nodes with this demand must spread
// their changes so that no bucket gets more than it refills.
func stormSpread(n int, d demand) time.Duration {
	var window time.Duration
	for op, k := range d {
		if excess := n*k - burst(op); excess > 0 {
			window = max(window, time.Duration(excess)*refillInterval(op))
		}
	}
	return min(stormSpreadMax, time.Duration(float64(window)*stormSpreadMargin))
}

// stormTurn waits, once EC2 has throttled the run, for this node's turn in
// the boot storm before a create or an attach; before that it returns at once.
// The first caller after a throttle asks how wide the storm is. A wait cut
// short fails the interface name is for.
func (r *run) stormTurn(ctx context.Context, name string) error {
	if err := r.awaitTurn(ctx); err != nil {
		return &Error{Interface: name, Err: fmt.Errorf("wait for this node's turn in a boot storm: %w", err)}
	}
	return nil
}

// awaitTurn is stormTurn's wait. It is also the gate of a throttled create
// or attach's retries (installPacing): a node whose observation EC2 granted
// in a storm's first wave (at 500 nodes, about 80 got both describes
// through) creates at once, is throttled only then, and without the gate
// retried into the drained bucket with the rest of them.
func (r *run) awaitTurn(ctx context.Context) error {
	turn, ok := r.decideTurn(ctx)
	if !ok {
		return nil
	}
	if time.Until(turn) > 0 {
		r.act.Status("waiting for this node's turn in a boot storm (%s)", time.Until(turn).Round(time.Second))
	}
	return trackerFrom(ctx).hold(ctx, turn)
}

// turnAhead reports whether the run has been throttled and its turn is
// still to come (asking how wide the storm is, the first time).
func (r *run) turnAhead(ctx context.Context) bool {
	turn, ok := r.decideTurn(ctx)
	return ok && time.Until(turn) > 0
}

// decideTurn is the run's storm turn once EC2 has throttled it (ok); the
// first call after a throttle counts the storm and draws the turn. A turn
// is zero when the count failed: the node is then paced by its throttles
// alone.
func (r *run) decideTurn(ctx context.Context) (turn time.Time, ok bool) {
	t := trackerFrom(ctx)
	if t == nil || r.act.DryRun() {
		return time.Time{}, false
	}
	at, throttled := t.first()
	if !throttled {
		return time.Time{}, false
	}
	r.stormOnce.Do(func() {
		booting, err := r.booting(ctx)
		if err != nil {
			r.act.Log().Warn("boot storm: could not count the booting instances, so this node's changes are paced only by its throttles (grant ec2:DescribeInstanceStatus)", "error", err)
			return
		}
		n := max(len(booting), 1)
		window := stormSpread(n, r.demand())
		turn := at.Add(turnIn(window, n, slices.Index(booting, r.InstanceID)))
		t.setStormTurn(turn)
		r.act.Log().Info("boot storm: EC2 throttles this node; its creates and attaches wait for its turn",
			"booting_instances", n, "spread", window.Round(time.Second).String(), "turn_in", time.Until(turn).Round(time.Second).String())
	})
	return t.stormTurn(), true
}

// turnIn is when, within the window, the node ranked rank (-1: not known)
// among n takes its turn. Every node of the storm sees the same booting
// instances, so each takes its own slot of window/n, at a random point in
// it: the storm then reaches the buckets at their refill rate. Turns drawn
// uniformly over the whole window cluster (at 500 x 2 one run's 20 s had 66
// nodes' attaches where 50 were due, and the attribute changes' bucket
// answered 176 throttles); a node missing from the list (EC2 shows a new
// instance's status a little later) draws over the whole window.
func turnIn(window time.Duration, n, rank int) time.Duration {
	if rank < 0 || rank >= n {
		return time.Duration(rand.Int64N(int64(window) + 1))
	}
	slot := window / time.Duration(n)
	return time.Duration(rank)*slot + time.Duration(rand.Int64N(int64(slot)+1))
}

// booting lists, sorted, the region's running instances whose first
// status checks have not passed yet: the instances booting now, this one
// among them.
func (r *run) booting(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, stormCountTimeout)
	defer cancel()
	var ids []string
	in := &ec2.DescribeInstanceStatusInput{
		Filters:    []types.Filter{filter("instance-status.status", "initializing")},
		MaxResults: aws.Int32(1000),
	}
	for {
		out, err := r.EC2.DescribeInstanceStatus(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("DescribeInstanceStatus: %w", err)
		}
		for _, st := range out.InstanceStatuses {
			ids = append(ids, aws.ToString(st.InstanceId))
		}
		if aws.ToString(out.NextToken) == "" {
			slices.Sort(ids)
			return ids, nil
		}
		in.NextToken = out.NextToken
	}
}

// demand is the mutating calls the run's interfaces still need: a create
// for each new ENI, an attach for each one not attached, and the attribute
// changes (DeleteOnTermination, and sourceDestCheck when it is to be off)
// of each ENI nodeprep attaches.
func (r *run) demand() demand {
	d := demand{}
	for _, it := range r.items {
		if it.attached != nil {
			continue
		}
		if it.orphan == nil {
			d["CreateNetworkInterface"]++
		}
		d["AttachNetworkInterface"]++
		d["ModifyNetworkInterfaceAttribute"]++
		if sdc := it.in.SourceDestCheck; sdc != nil && !*sdc {
			d["ModifyNetworkInterfaceAttribute"]++
		}
	}
	return d
}

package eni

import (
	"context"
	"fmt"
	"math/rand/v2"
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
// refill rate. The node's next create or attach then waits for a turn drawn
// uniformly within the longest of those drains, counted from its first
// answer (about when the storm began), so the storm reaches each bucket at
// about its refill rate instead of all at once. A turn already past costs
// nothing; the wait counts as throttled time (the deadline grows by it). A
// node EC2 never throttled asks nothing and never waits.
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
	t := trackerFrom(ctx)
	if t == nil || r.act.DryRun() {
		return nil
	}
	at, throttled := t.first()
	if !throttled {
		return nil
	}
	r.stormOnce.Do(func() {
		n, err := r.countBooting(ctx)
		if err != nil {
			r.act.Log().Warn("boot storm: could not count the booting instances, so this node's changes are paced only by its throttles (grant ec2:DescribeInstanceStatus)", "error", err)
			return
		}
		window := stormSpread(n, r.demand())
		turn := at.Add(time.Duration(rand.Int64N(int64(window) + 1)))
		t.setStormTurn(turn)
		r.act.Log().Info("boot storm: EC2 throttles this node; its creates and attaches wait for its turn",
			"booting_instances", n, "spread", window.Round(time.Second).String(), "turn_in", time.Until(turn).Round(time.Second).String())
	})
	turn := t.stormTurn()
	if time.Until(turn) > 0 {
		r.act.Status("waiting for this node's turn in a boot storm (%s)", time.Until(turn).Round(time.Second))
	}
	if err := t.hold(ctx, turn); err != nil {
		return &Error{Interface: name, Err: fmt.Errorf("wait for this node's turn in a boot storm: %w", err)}
	}
	return nil
}

// countBooting counts the region's running instances whose first status
// checks have not passed yet: the instances booting now, this one among
// them.
func (r *run) countBooting(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, stormCountTimeout)
	defer cancel()
	n := 0
	in := &ec2.DescribeInstanceStatusInput{
		Filters:    []types.Filter{filter("instance-status.status", "initializing")},
		MaxResults: aws.Int32(1000),
	}
	for {
		out, err := r.EC2.DescribeInstanceStatus(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("DescribeInstanceStatus: %w", err)
		}
		n += len(out.InstanceStatuses)
		if aws.ToString(out.NextToken) == "" {
			return max(n, 1), nil
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

package eni

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// errStop ends a poll with the error it wraps.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// poll calls check until it reports done, waiting between calls with a
// jittered exponential backoff from minDelay up to maxDelay, on a timer
// bounded by ctx. A check error is retried unless wrapped in errStop.
func poll(ctx context.Context, minDelay, maxDelay time.Duration, check func(context.Context) (bool, error)) error {
	var last error
	delay := minDelay
	for {
		done, err := check(ctx)
		if done {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.err
		}
		if err != nil {
			last = err
		}
		// Full delay minus up to half of it, so concurrent waiters spread out.
		d := delay - time.Duration(rand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", context.Cause(ctx), last)
			}
			return context.Cause(ctx)
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// The describes that wait for a new ENI to become visible follow EC2's
// visibility delay: one at once (EC2 is often consistent already), then,
// from half a second (the delay is rarely shorter), one every
// visibleEvery with jitter. While the run has not been throttled they
// overlap: the next describe goes before the last one is answered, up to
// visibleInFlight at a time, so the node learns the ENI is visible about
// half a period after EC2 shows it, whatever a describe's round trip
// (100-200 ms, as long as the period itself). Once EC2 throttles the run
// (a boot storm), they go one after the other, visibleEvery after the last
// answer, and the pacer spaces them further.
const (
	visibleAfter    = 500 * time.Millisecond
	visibleEvery    = 100 * time.Millisecond
	visibleInFlight = 3
	// visibleEveryThrottled is the period between one answer and the next
	// describe once the run has been throttled: in a storm the nodes take
	// their turns at the buckets' refill rate, and each new ENI's describes
	// until it shows then are most of the describe bucket's load (500 x 2
	// with sourceDestCheck unset, turns over 200 s: 19.3% of the calls
	// throttled with 300 ms, 15.8% with 700 ms; sourceDestCheck false
	// 7.5-8.5% with either, 1,000 fewer calls with 700 ms).
	visibleEveryThrottled = 700 * time.Millisecond
)

// pollVisible polls check on that schedule until it reports done or ctx
// ends. overlap says whether describes may overlap now; a check's error is
// retried like a "not yet", unless wrapped in errStop, which ends the poll
// with the error it wraps.
func pollVisible(ctx context.Context, overlap func() bool, check func(context.Context) (bool, error)) error {
	if over, err := pollEnds(check(ctx)); over {
		return err
	}
	if err := sleepCtx(ctx, visibleAfter); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the describes still out once one saw the ENI
	// seen gets nil once a describe saw the ENI, or an errStop's error.
	seen := make(chan error, 1)
	slots := make(chan struct{}, visibleInFlight)
	for {
		period := visibleEvery
		if overlap() {
			select {
			case slots <- struct{}{}:
				go func() {
					defer func() { <-slots }()
					over, err := pollEnds(check(ctx))
					if !over {
						return
					}
					select {
					case seen <- err:
					default:
					}
				}()
			default: // visibleInFlight describes are out: wait for the next tick
			}
		} else {
			if over, err := pollEnds(check(ctx)); over {
				return err
			}
			period = visibleEveryThrottled
		}
		t := time.NewTimer(period - time.Duration(rand.Int64N(int64(period/2)+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case err := <-seen:
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// pollEnds reads one check of pollVisible: whether the poll is over, and
// with what (nil: done; an errStop's error).
func pollEnds(done bool, err error) (bool, error) {
	var stop errStop
	switch {
	case done:
		return true, nil
	case errors.As(err, &stop):
		return true, stop.err
	default:
		return false, nil
	}
}

// sleepCtx waits d, or until ctx ends (its cause returned).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// describeFallbackAfter is how long the attach wait leaves to the host's
// own signals (the NIC appearing, IMDS listing its MAC) before it asks EC2;
// EC2 usually reports an attachment within a few seconds.
const describeFallbackAfter = 5 * time.Second

// waitAttached waits until the attachment is effective: the NIC shows up
// on the host, IMDS lists its MAC, or, as a fallback with backoff,
// EC2 reports it "attached". Describes are the last resort because in a
// boot storm they share a small bucket with every other node.
func (r *run) waitAttached(ctx context.Context, name, eniID, attachmentID, mac string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan struct{}, 2)
	local := 0
	if r.NICAppeared != nil && mac != "" {
		local++
		go func() {
			if err := r.NICAppeared(ctx, mac); err == nil {
				seen <- struct{}{}
			}
		}()
	}
	if r.AttachedMACs != nil && mac != "" {
		local++
		go func() {
			err := poll(ctx, pollMin, pollMax, func(ctx context.Context) (bool, error) {
				macs, err := r.AttachedMACs(ctx)
				return err == nil && slices.Contains(macs, mac), err
			})
			if err == nil {
				seen <- struct{}{}
			}
		}()
	}
	polled := make(chan error, 1)
	go func() {
		if local > 0 {
			t := time.NewTimer(describeFallbackAfter)
			defer t.Stop()
			select {
			case <-ctx.Done():
				polled <- context.Cause(ctx)
				return
			case <-t.C:
			}
		}
		polled <- poll(ctx, pollMin, describeBackoffMax, func(ctx context.Context) (bool, error) {
			return r.attachedNow(ctx, name, eniID, attachmentID)
		})
	}()
	var err error
	select {
	case <-seen:
		// The NIC is on the host: the attachment is effective, whatever
		// EC2's eventually consistent describe says yet.
		return nil
	case err = <-polled:
	}
	if err != nil {
		return callError(name, "DescribeNetworkInterfaces", fmt.Errorf("wait for %s to attach: %w", eniID, err))
	}
	return nil
}

// describeBackoffMax caps the backoff of the describe fallback.
const describeBackoffMax = 10 * time.Second

// attachedNow asks EC2 once whether the attachment is complete.
func (r *run) attachedNow(ctx context.Context, name, eniID, attachmentID string) (bool, error) {
	out, err := r.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniID}})
	if err != nil {
		// The attach succeeded, so EC2 knows the ENI: a NotFound here is a
		// describe that has not caught up yet (eventual consistency).
		return false, err
	}
	if len(out.NetworkInterfaces) != 1 {
		return false, nil
	}
	a := out.NetworkInterfaces[0].Attachment
	if a == nil || aws.ToString(a.AttachmentId) != attachmentID {
		return false, errStop{&Error{Interface: name, Call: "DescribeNetworkInterfaces", Err: fmt.Errorf("attachment %s of %s is gone", attachmentID, eniID)}}
	}
	switch a.Status {
	case types.AttachmentStatusAttached:
		return true, nil
	case types.AttachmentStatusDetaching, types.AttachmentStatusDetached:
		return false, errStop{&Error{Interface: name, Call: "DescribeNetworkInterfaces", Err: fmt.Errorf("attachment %s of %s is %s", attachmentID, eniID, a.Status)}}
	}
	return false, nil
}

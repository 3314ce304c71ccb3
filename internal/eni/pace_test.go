package eni

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// Throttles slow one action down fast, a granted call speeds it up again,
// and another action starts from what the node learned.
func TestPacerBacksOffOnThrottles(t *testing.T) {
	p := newPacer()
	now := time.Now()
	if got := p.spacing("AttachNetworkInterface", now); got != 0 {
		t.Fatalf("fresh spacing %v, want none (never throttled)", got)
	}
	// The node's first answer was granted: no wide storm (see
	// TestFirstAnswerThrottledIsAWideStorm).
	p.answered("DescribeSubnets", false)
	for range 3 {
		p.answered("AttachNetworkInterface", true)
	}
	if got := p.levelOf("AttachNetworkInterface"); got != paceGrowth*paceGrowth*paceGrowth {
		t.Errorf("level after 3 throttles %v, want %v", got, paceGrowth*paceGrowth*paceGrowth)
	}
	// Capped by a quarter of the throttled time, plus a second (half left
	// a small storm's last nodes idling long after their bucket drained).
	if got := p.spacing("AttachNetworkInterface", now.Add(20*time.Second)); got > 6*time.Second+100*time.Millisecond {
		t.Errorf("spacing after 20 s throttled %v, want at most ~6 s", got)
	}
	if got := p.spacing("AttachNetworkInterface", now.Add(10*time.Minute)); got != time.Duration(paceGrowth*paceGrowth*paceGrowth*float64(200*time.Millisecond)) {
		t.Errorf("uncapped spacing %v", got)
	}
	p.answered("ModifyNetworkInterfaceAttribute", true)
	if got := p.levelOf("ModifyNetworkInterfaceAttribute"); got != paceGrowth*paceGrowth {
		t.Errorf("a new action's first throttle: level %v, want a step below the attach's (%v)", got, paceGrowth*paceGrowth)
	}
	for range 20 {
		p.answered("AttachNetworkInterface", false)
	}
	if got := p.levelOf("AttachNetworkInterface"); got != 1 {
		t.Errorf("level after 20 granted calls %v, want 1", got)
	}
	if _, ok := p.since["AttachNetworkInterface"]; ok {
		t.Error("the throttle streak did not end")
	}
}

// A call the pacer holds back because its action was throttled is held
// back by EC2's throttling, though the call itself was never throttled
// (a node's second ModifyNetworkInterfaceAttribute behind its first one's
// throttles), so the run's deadline grows by that wait too. Before it did,
// nodes of a 500-node storm whose calls waited their paced slots ran out
// of a deadline that had grown only by their throttled answers.
func TestPacedWaitIsThrottledTime(t *testing.T) {
	sim := ec2sim.New(ec2sim.Config{Seed: 1, Timing: ec2sim.Instant()})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := ec2.NewFromConfig(ec2sim.AWSConfigFor(srv.URL, "us-west-2", "PACED"), ClientOptions(""))
	tr := &throttleTracker{waiting: map[*opState]bool{}}
	ctx := withThrottleTracker(context.Background(), tr)

	// A granted first answer: the throttles below are a small storm's
	// (a first answer throttled would spread the retry over 20 s).
	if _, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Kind: ec2sim.FaultThrottle, Count: 3})
	if _, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	before := tr.Throttled()
	if before == 0 {
		t.Fatal("three throttled answers, no throttled time")
	}
	start := time.Now()
	if _, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 200*time.Millisecond {
		t.Fatalf("the call after three throttles took %s: not paced", took)
	}
	if grew := tr.Throttled() - before; grew < took-50*time.Millisecond {
		t.Errorf("a call paced for %s grew the throttled time by %s", took, grew)
	}
}

// In a storm (another action throttled) an action's first call waits a
// slot at the pace the node learned instead of landing in the empty bucket
// every node of the storm is about to hit; a node never throttled sends
// its first calls at once.
func TestFirstCallOfAnActionInAStormIsPaced(t *testing.T) {
	alone := newPacer()
	if d := alone.reserve("ModifyNetworkInterfaceAttribute"); d != 0 {
		t.Errorf("a node never throttled waits %s for its first call", d)
	}
	p := newPacer()
	p.answered("DescribeSubnets", false)
	for range 3 {
		p.answered("CreateNetworkInterface", true)
	}
	// The streak is 20 s old, so the slot is not cut short by it.
	p.since["CreateNetworkInterface"] = time.Now().Add(-20 * time.Second)
	d := p.reserve("ModifyNetworkInterfaceAttribute")
	want := time.Duration(p.levelOf("CreateNetworkInterface") / paceGrowth * float64(refillInterval("ModifyNetworkInterfaceAttribute")))
	if d < want/2 || d >= want*3/2 {
		t.Errorf("first modify in a storm waits %s, want a jittered slot of %s", d, want)
	}
	if got := p.levelOf("ModifyNetworkInterfaceAttribute"); got != paceGrowth*paceGrowth {
		t.Errorf("first modify's level %v, want a step below the create's (%v)", got, paceGrowth*paceGrowth)
	}
}

// A node whose first EC2 answer is a throttle booted with at least a
// bucket's burst of calls: its level jumps to the burst, its retry is
// spread over waveRetrySpread refill times (not back within a second with
// the whole first wave), and its waits may last a refill time however young the
// streak. A node whose first answer was granted and that is throttled
// later (a small storm) keeps the short cap: one throttle must not cost it
// a 20 s wait.
func TestFirstAnswerThrottledIsAWideStorm(t *testing.T) {
	const op = "DescribeNetworkInterfaces"
	wide := newPacer()
	start := time.Now()
	wide.reserve(op) // sent at boot, before any answer
	wide.answered(op, true)
	if got, want := wide.levelOf(op), float64(burst(op)); got != want {
		t.Errorf("level after a first answer throttled %v, want the bucket's burst %v", got, want)
	}
	if at := wide.next[op]; at.Before(start) || at.After(time.Now().Add(waveRetrySpread*refillTime(op))) {
		t.Errorf("retry at %s from now, want within %d refill times (%s)", time.Until(at), waveRetrySpread, waveRetrySpread*refillTime(op))
	}
	if got := wide.spacing(op, time.Now()); got != refillTime(op) {
		t.Errorf("spacing in a young streak of a wide storm %s, want the refill time %s", got, refillTime(op))
	}
	// Another action throttled later in the run grows from what the node
	// learned, with the same floor.
	wide.answered("CreateNetworkInterface", true)
	if got := wide.spacing("CreateNetworkInterface", time.Now()); got != min(time.Duration(wide.levelOf("CreateNetworkInterface")*float64(refillInterval("CreateNetworkInterface"))), refillTime("CreateNetworkInterface")) {
		t.Errorf("create spacing in a wide storm %s", got)
	}

	small := newPacer()
	small.reserve(op)
	small.answered(op, false)
	small.reserve(op)
	small.answered(op, true)
	if got := small.levelOf(op); got != paceGrowth {
		t.Errorf("level after a later throttle %v, want %v", got, paceGrowth)
	}
	for range 3 {
		small.answered(op, true)
	}
	if got := small.spacing(op, time.Now()); got > time.Second+10*time.Millisecond {
		t.Errorf("spacing in a young streak of a small storm %s, want at most about a second", got)
	}
}

// Every call of the first wave (the observation's describes, sent at once
// before any answer) that is throttled is a wide storm's: each is retried
// within waveRetrySpread refill times of its bucket, not only the one
// answered first.
// Before, the second throttled answer counted as a later throttle: its
// retry came back within 1-4 s, with the whole fleet's, into the empty
// bucket (at 500 x 2, 517 of the 532 throttled DescribeSubnets came in the
// first 10 s).
func TestEveryThrottledCallOfTheFirstWaveIsSpread(t *testing.T) {
	p := newPacer()
	start := time.Now()
	p.reserve("DescribeNetworkInterfaces")
	p.reserve("DescribeSubnets")
	p.answered("DescribeNetworkInterfaces", true)
	p.answered("DescribeSubnets", true)
	for _, op := range []string{"DescribeNetworkInterfaces", "DescribeSubnets"} {
		if got, want := p.levelOf(op), float64(burst(op)); got != want {
			t.Errorf("%s: level %v after its first-wave throttle, want the burst %v", op, got, want)
		}
	}
	// The retry times are drawn: over many nodes they must fill the spread,
	// not a second or two of it.
	late := 0
	for range 200 {
		q := newPacer()
		q.reserve("DescribeNetworkInterfaces")
		q.reserve("DescribeSubnets")
		q.answered("DescribeNetworkInterfaces", true)
		q.answered("DescribeSubnets", true)
		if q.next["DescribeSubnets"].Sub(start) > waveRetrySpread*refillTime("DescribeSubnets")/2 {
			late++
		}
	}
	if late < 60 || late > 140 {
		t.Errorf("%d of 200 retries in the second half of the spread, want about half", late)
	}

	// A first answer granted and the other call of the wave throttled: its
	// bucket was empty when the node reached it, a wide storm too.
	q := newPacer()
	q.reserve("DescribeNetworkInterfaces")
	q.reserve("DescribeSubnets")
	q.answered("DescribeNetworkInterfaces", false)
	q.answered("DescribeSubnets", true)
	if got := q.levelOf("DescribeSubnets"); got != float64(burst("DescribeSubnets")) || !q.wideStorm {
		t.Errorf("level %v, wide storm %t after the wave's other call was throttled", got, q.wideStorm)
	}
}

// Two waits at once are two waits: ending one leaves the other's time
// counting. (Operations were zero-size values, whose pointers Go may make
// equal: every operation was then the same key, and the first to end
// stopped the clock for all, so a node whose three interfaces waited for
// their storm turn at once failed at its deadline with 10 s counted.)
func TestConcurrentWaitsAreEachCounted(t *testing.T) {
	tr := &throttleTracker{waiting: map[*opState]bool{}}
	a, b := &opState{}, &opState{}
	tr.heldBack(a)
	tr.heldBack(b)
	tr.answered(a, "", nil, false, true)
	before := tr.Throttled()
	time.Sleep(20 * time.Millisecond)
	if grew := tr.Throttled() - before; grew < 15*time.Millisecond {
		t.Errorf("one of two waits ended, the other's throttled time grew %s in 20 ms", grew)
	}
}

package eni

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"
)

// pacer is one EC2 client's client-side rate control: every attempt,
// retries included, waits for its action's next slot. The slots are spaced
// by the action's EC2 refill interval times the action's contention level,
// with jitter. A throttled answer multiplies the level by paceGrowth (up to
// paceMaxLevel), and at least to a step below the highest level another
// action of the client has reached; a granted one divides it by paceShrink. So a node in
// a boot storm stops hammering an empty bucket after a few throttles, and
// speeds up again as EC2 grants its calls.
//
// It is nodeprep's own rather than the SDK's adaptive retry mode
// (retry.NewAdaptiveMode): that mode keeps one rate per client for all
// actions, though EC2 has one bucket per action, and never goes below 0.5
// requests/s, so 500 nodes throttled on a 5/s bucket would still offer it
// 250 requests/s, 98% of them throttled. Here what a node learns from its
// first throttles carries over to its next action (the fleet is still
// there), and the slowest pace (paceMaxLevel) is a node's share of a 5/s
// bucket among about 100 waiting at once.
//
// The time between two attempts of an action is also at most a quarter of
// how long the action has been throttled (plus a second): a node learns the
// fleet's size only by its throttles, and the cap keeps a node that
// overshot from idling long after its bucket drained (on average at most a
// quarter past the time it already waited). Half gave a 50-node storm's
// last nodes twice the bound (makespan 1.80-2.22 x the bound over three
// seeds at 50 x 3, 1.42-1.57 with a quarter) for 4 points fewer throttled
// calls at 200 and 500 nodes.
//
// A node one of whose first-wave calls (sent before its first answer:
// the observation's describes, all at once) is throttled booted in a wide
// storm: that bucket was empty the moment the node first reached it, so at
// least a burst of calls came at once (at 500 nodes, 500 describes of the
// ENIs and 500 of the subnets for 100-token buckets). Then each throttled
// call of the wave jumps to the bucket's burst (at most paceMaxLevel), and
// its retry is spread uniformly over waveRetrySpread refill times of the
// bucket instead of coming back within a second with the whole first
// wave; and for the rest of the run the cap above is at least the action's
// refill time: while streaks are young the quarter would cap every node at
// a retry every second or two, and waiting up to a refill time costs the
// fleet nothing (the bucket was empty, and keeps what refills until
// someone takes it). A node whose first-wave calls were granted never
// waits that long: in a 50-node storm a single throttle must not cost a
// 20-40 s wait, where the whole storm's bound is 40 s.
//
// Pacing is what a node does until it knows how wide its storm is: a
// throttled run counts the booting instances and waits a turn spread over
// the time they need the buckets (storm.go); once the turn has come, the
// pace learned before it is forgotten (forgetBefore).
type pacer struct {
	mu    sync.Mutex
	level map[string]float64   // by action; missing is 1
	next  map[string]time.Time // by action: the earliest next attempt
	since map[string]time.Time // by action: the first throttle of its streak
	// heard is set by the node's first EC2 answer. wave are the actions
	// whose first call went before it (the node's observation, sent at
	// once) and are not answered yet; wideStorm is set when one of those
	// was throttled.
	heard, wideStorm bool
	wave             map[string]bool
	// turn is the node's storm turn, once it has passed (see forgetBefore).
	turn time.Time
}

const (
	// paceGrowth multiplies the level on a throttled answer: from EC2's
	// own refill interval to the slowest pace in four throttles.
	paceGrowth = 4.0
	// paceShrink divides the level on a granted call.
	paceShrink = 1.5
	// paceMaxLevel caps the level: at it a node sends one call of a 5/s
	// action every 20 s on average, so 100 nodes waiting at once offer the
	// bucket what it refills. Higher (512, a 500-node share) halved the
	// throttled calls again but doubled the makespan of a 200-node storm:
	// nodes that overshot idled while the bucket refilled.
	paceMaxLevel = 100.0
	// paceSinceDivisor: the time between two attempts is at most a second
	// plus the action's throttled time divided by it (see pacer).
	paceSinceDivisor = 4
	// waveRetrySpread: a throttled call of the first wave is retried
	// uniformly within this many refill times of its bucket (40 s for the
	// describes). At 500 nodes 400 retries of each describe then meet a
	// bucket refilling 800 in that time; over two refill times, retries at
	// the refill rate itself, clustering throttled them again (500 x 2:
	// 154 throttled describes after the first 10 s with two, 36 with four).
	waveRetrySpread = 4
)

func newPacer() *pacer {
	return &pacer{level: map[string]float64{}, next: map[string]time.Time{}, since: map[string]time.Time{}, wave: map[string]bool{}}
}

// levelOf is op's level (p.mu held).
func (p *pacer) levelOf(op string) float64 { return max(1, p.level[op]) }

// spacing is the mean time between two attempts of op (p.mu held). An
// action never throttled is not paced: a node's few calls fit in EC2's
// bucket, and a single node must not wait on itself.
func (p *pacer) spacing(op string, now time.Time) time.Duration {
	if p.levelOf(op) == 1 {
		return 0
	}
	d := time.Duration(p.levelOf(op) * float64(refillInterval(op)))
	if since, ok := p.since[op]; ok {
		limit := time.Second + now.Sub(since)/paceSinceDivisor
		if p.wideStorm {
			limit = max(limit, refillTime(op))
		}
		d = min(d, limit)
	}
	return d
}

// refillInterval is 1/(EC2's refill rate) of the action's bucket
// ("Request throttling for the Amazon EC2 API": describes 20/s when
// filtered, 10/s unfiltered, CreateTags 10/s, CreateNetworkInterface,
// DeleteNetworkInterface, ModifyNetworkInterfaceAttribute and the other
// mutating actions 5/s). Describes take the unfiltered rate, the lower one.
func refillInterval(op string) time.Duration {
	switch {
	case strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "Get"), op == "CreateTags":
		return 100 * time.Millisecond
	default:
		return 200 * time.Millisecond
	}
}

// burst is the size of op's bucket (the same page: 100 tokens for the
// describes and the uncategorized ENI actions, 50 for the other mutating
// ones: AttachNetworkInterface, DetachNetworkInterface and
// AssignIpv6Addresses among nodeprep's calls).
func burst(op string) int {
	switch op {
	case "AttachNetworkInterface", "DetachNetworkInterface", "AssignIpv6Addresses":
		return 50
	default:
		return 100
	}
}

// refillTime is how long op's bucket takes to refill its whole burst at
// refillInterval (describes: the filtered bucket's 100 tokens at the
// unfiltered rate, the slowest a describe may refill at).
func refillTime(op string) time.Duration {
	return time.Duration(burst(op)) * refillInterval(op)
}

// jittered spreads d over [d/2, 3d/2), so nodes throttled together do not
// come back together.
func jittered(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

// reserve books op's next slot (and the one after it) and returns how long
// the caller must wait for it: zero unless EC2 throttled op lately.
func (p *pacer) reserve(op string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.heard {
		p.wave[op] = true
	}
	at, used := p.next[op]
	if !used {
		at = p.firstSlot(op, now)
	}
	if at.Before(now) {
		at = now
	}
	p.next[op] = at.Add(jittered(p.spacing(op, now)))
	return at.Sub(now)
}

// firstSlot is when op's first call goes (p.mu held): at once, unless EC2
// is throttling another action of this node. Then the node is in a boot
// storm and every node of it needs op next, so op's bucket is as busy: op
// starts a step below the busiest level the node has learned, in a streak
// as old as the oldest one, and its first call waits a jittered slot at
// that pace instead of landing in an empty bucket. In a 500-node storm
// this halved the throttled creates and attaches at the same makespan. A
// node EC2 never throttled sends every first call at once.
func (p *pacer) firstSlot(op string, now time.Time) time.Time {
	learned, oldest := 1.0, now
	for other, since := range p.since {
		learned = max(learned, p.levelOf(other)/paceGrowth)
		if since.Before(oldest) {
			oldest = since
		}
	}
	if learned == 1 {
		return now
	}
	p.level[op], p.since[op] = learned, oldest
	return now.Add(jittered(p.spacing(op, now)))
}

// forgetBefore drops, once the node's storm turn has come, what the
// node's throttles taught it before the turn: the turn is spread past the
// storm's first wave, so the slow pace learned in that wave would only
// stretch the node's own chain (at 500 x 3, 1.15 x the bound with it).
// Throttles after the turn teach it again.
func (p *pacer) forgetBefore(turn time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if turn.IsZero() || !p.turn.Before(turn) || time.Now().Before(turn) {
		return
	}
	p.turn = turn
	for op, since := range p.since {
		if since.Before(turn) {
			delete(p.since, op)
			delete(p.level, op)
			delete(p.next, op)
		}
	}
	p.wideStorm = false
}

// answered adapts the level to one attempt's answer.
func (p *pacer) answered(op string, throttled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	first := p.wave[op]
	delete(p.wave, op)
	p.heard = true
	if !throttled {
		p.level[op] = max(1, p.levelOf(op)/paceShrink)
		if p.level[op] == 1 {
			delete(p.since, op)
		}
		return
	}
	if _, ok := p.since[op]; !ok {
		p.since[op] = now
	}
	if first {
		p.wideStorm = true
		p.level[op] = min(paceMaxLevel, max(p.levelOf(op), float64(burst(op))))
		if at := now.Add(time.Duration(rand.Int64N(int64(waveRetrySpread * refillTime(op))))); at.After(p.next[op]) {
			p.next[op] = at
		}
		return
	}
	// Another action's level says the fleet is busy, but not how busy
	// this action's bucket is: start from a step below it.
	learned := 1.0
	for _, l := range p.level {
		learned = max(learned, l/paceGrowth)
	}
	p.level[op] = min(paceMaxLevel, max(p.levelOf(op)*paceGrowth, learned))
	// The bucket is empty now: the next attempt of op waits a full slot
	// at the new level, whatever was booked before.
	if at := now.Add(jittered(p.spacing(op, now))); at.After(p.next[op]) {
		p.next[op] = at
	}
}

// isThrottle is the SDK's own throttle classification (RequestLimitExceeded,
// Throttling, ... and HTTP 429).
var isThrottle = retry.IsErrorThrottles(retry.DefaultThrottles)

// throttleTracker measures, for one Reconcile, how long the node was held
// back by EC2's throttling (the time during which at least one of its calls
// was waiting to retry after a throttled answer) and the last EC2 error
// code any call got. The run's deadline grows with the first.
type throttleTracker struct {
	mu        sync.Mutex
	waiting   map[*opState]bool
	since     time.Time
	throttled time.Duration
	lastCode  string
	lastCall  string
	// firstAt is when the run's first EC2 answer came (about when the
	// storm began, if it is in one) and throttles how many throttled
	// answers it has had: once EC2 throttles it, the run asks how wide the
	// storm is (stormTurn).
	firstAt   time.Time
	throttles int
	// turn is the run's storm turn, once decided (stormTurn); the pacer
	// forgets the pace learned before it.
	turn time.Time
	// turnGate, once the run is planned, waits for the storm turn: the
	// retries of a throttled create or attach go through it.
	turnGate func(context.Context) error
}

// gatedRetry reports whether op's retries after a throttle wait for the
// run's storm turn: the actions the turn is for (stormTurn).
func gatedRetry(op string) bool {
	return op == "CreateNetworkInterface" || op == "AttachNetworkInterface"
}

// setTurnGate sets the wait of the retries of gatedRetry's actions.
func (t *throttleTracker) setTurnGate(gate func(context.Context) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.turnGate = gate
}

func (t *throttleTracker) gate() func(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.turnGate
}

type ungatedKey struct{}

// ungated marks a context whose calls never wait for the storm turn: the
// cleanups that run on a short context of their own.
func ungated(ctx context.Context) context.Context {
	return context.WithValue(ctx, ungatedKey{}, true)
}

// opState is one operation's key among the waiting ones, and whether its
// last attempt was throttled. It must not be zero-size: Go may give every
// pointer to a zero-size value one address, and the operations would all
// be one key.
type opState struct{ throttled atomic.Bool }

type throttleKey struct{}
type opKey struct{}

func withThrottleTracker(ctx context.Context, t *throttleTracker) context.Context {
	return context.WithValue(ctx, throttleKey{}, t)
}

func trackerFrom(ctx context.Context) *throttleTracker {
	t, _ := ctx.Value(throttleKey{}).(*throttleTracker)
	return t
}

// Throttled is the throttled time so far, an ongoing wait included.
func (t *throttleTracker) Throttled() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.throttled
	if len(t.waiting) > 0 {
		d += time.Since(t.since)
	}
	return d
}

// last is the last EC2 error code and the call that got it.
func (t *throttleTracker) last() (code, call string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastCode, t.lastCall
}

// heldBack records that op waits for its paced slot: the pacer slows an
// action only because EC2 throttled it, so the wait is throttled time too,
// though this operation itself has not been throttled yet (a node's second
// ModifyNetworkInterfaceAttribute waits behind its first one's throttles).
// The next answer ends it, as after a throttled answer.
func (t *throttleTracker) heldBack(op *opState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.waiting) == 0 {
		t.since = time.Now()
	}
	t.waiting[op] = true
}

// heard records one EC2 answer (not a timeout or a dropped connection).
func (t *throttleTracker) heard(throttled bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstAt.IsZero() {
		t.firstAt = time.Now()
	}
	if throttled {
		t.throttles++
	}
}

// first is when the run's first EC2 answer came and whether EC2 has
// throttled the run since; zero before any answer.
func (t *throttleTracker) first() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstAt, t.throttles > 0
}

// setStormTurn records the run's storm turn.
func (t *throttleTracker) setStormTurn(turn time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.turn = turn
}

// stormTurn is the run's storm turn; zero until decided.
func (t *throttleTracker) stormTurn() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.turn
}

// hold waits until until (or ctx's end) as throttled time: the run is
// held back by the storm as by a paced wait, and its deadline grows by it.
func (t *throttleTracker) hold(ctx context.Context, until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	op := &opState{}
	t.heldBack(op)
	err := sleepCtx(ctx, d)
	t.answered(op, "", nil, false, true)
	return err
}

// answered records one attempt's answer; done ends the operation.
func (t *throttleTracker) answered(op *opState, call string, err error, throttled, done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if code := errorCode(err); code != "" {
		t.lastCode, t.lastCall = code, call
	}
	if throttled && !done {
		if len(t.waiting) == 0 {
			t.since = time.Now()
		}
		t.waiting[op] = true
		return
	}
	if t.waiting[op] {
		delete(t.waiting, op)
		if len(t.waiting) == 0 {
			t.throttled += time.Since(t.since)
		}
	}
}

// installPacing adds, around every operation, the state the throttle
// tracker needs, and after the retry middleware (so per attempt) the
// pacer's wait and the recording of the answer.
func installPacing(p *pacer) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("nodeprep/throttleOp", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			t := trackerFrom(ctx)
			if t == nil {
				return next.HandleInitialize(ctx, in)
			}
			op := &opState{}
			out, md, err := next.HandleInitialize(context.WithValue(ctx, opKey{}, op), in)
			t.answered(op, awsmiddleware.GetOperationName(ctx), err, false, true)
			return out, md, err
		}), middleware.After)
		if err != nil {
			return err
		}
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("nodeprep/pace", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			name := awsmiddleware.GetOperationName(ctx)
			t, op := trackerFrom(ctx), opFrom(ctx)
			tracked := t != nil && op != nil
			if tracked && op.throttled.Load() && gatedRetry(name) && ctx.Value(ungatedKey{}) == nil {
				if gate := t.gate(); gate != nil {
					if err := gate(ctx); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
				}
			}
			if t != nil {
				p.forgetBefore(t.stormTurn())
			}
			if d := p.reserve(name); d > 0 {
				if tracked {
					t.heldBack(op)
				}
				if err := sleepCtx(ctx, d); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
			}
			out, md, err := next.HandleFinalize(ctx, in)
			throttled := err != nil && isThrottle.IsErrorThrottle(err) == aws.TrueTernary
			if err == nil || errorCode(err) != "" {
				// An EC2 answer (not a timeout or a dropped connection).
				p.answered(name, throttled)
				if t != nil {
					t.heard(throttled)
				}
			}
			if tracked {
				op.throttled.Store(throttled)
				t.answered(op, name, err, throttled, false)
			}
			return out, md, err
		}), "Retry", middleware.After)
	}
}

func opFrom(ctx context.Context) *opState {
	op, _ := ctx.Value(opKey{}).(*opState)
	return op
}

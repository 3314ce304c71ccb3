package ec2sim

import (
	"sync"

	"golang.org/x/time/rate"
)

// EC2's request-rate throttling, from "Request throttling for the Amazon EC2
// API", section "Request token bucket sizes and refill rates"
// (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
// Every bucket is per account, per region and per action: two nodes calling
// CreateNetworkInterface draw from one bucket; CreateNetworkInterface and
// AttachNetworkInterface never share one.
var (
	// "Mutating actions": all mutating actions not listed elsewhere
	// (AttachNetworkInterface, DetachNetworkInterface here): 50 tokens, 5/s.
	defaultMutatingBucket = Bucket{Burst: 50, RefillPerSecond: 5}
	// "Non-mutating actions": Describe*, List*, Search*, Get*: 100 tokens, 20/s.
	defaultNonMutatingBucket = Bucket{Burst: 100, RefillPerSecond: 20}
	// "Unfiltered and unpaginated non-mutating actions": DescribeInstances,
	// DescribeNetworkInterfaces (and others this simulator does not serve)
	// sent with neither a filter nor pagination: 50 tokens, 10/s.
	defaultUnfilteredBucket = Bucket{Burst: 50, RefillPerSecond: 10}
)

// defaultActionBuckets are the "Uncategorized actions" of the same page that
// this simulator serves; each has its own size and refill rate.
func defaultActionBuckets() map[string]Bucket {
	return map[string]Bucket{
		"CreateNetworkInterface":          {Burst: 100, RefillPerSecond: 5},  // uncategorized: 100, 5
		"DeleteNetworkInterface":          {Burst: 100, RefillPerSecond: 5},  // uncategorized: 100, 5
		"ModifyNetworkInterfaceAttribute": {Burst: 100, RefillPerSecond: 5},  // uncategorized: 100, 5
		"AssignPrivateIpAddresses":        {Burst: 100, RefillPerSecond: 5},  // uncategorized: 100, 5
		"CreateTags":                      {Burst: 100, RefillPerSecond: 10}, // uncategorized: 100, 10
	}
}

// unfilteredActions are the served actions of the "Unfiltered and
// unpaginated non-mutating actions" category.
var unfilteredActions = map[string]bool{"DescribeInstances": true, "DescribeNetworkInterfaces": true}

// DefaultThrottle returns EC2's documented buckets.
func DefaultThrottle() ThrottleConfig {
	return ThrottleConfig{
		Mutating:    defaultMutatingBucket,
		NonMutating: defaultNonMutatingBucket,
		Unfiltered:  defaultUnfilteredBucket,
		PerAction:   defaultActionBuckets(),
	}
}

type throttler struct {
	clock    Clock
	mu       sync.Mutex
	cfg      ThrottleConfig
	limiters map[string]*rate.Limiter
}

func newThrottler(cfg ThrottleConfig, clock Clock) *throttler {
	def := DefaultThrottle()
	if cfg.Mutating == (Bucket{}) {
		cfg.Mutating = def.Mutating
	}
	if cfg.NonMutating == (Bucket{}) {
		cfg.NonMutating = def.NonMutating
	}
	if cfg.Unfiltered == (Bucket{}) {
		cfg.Unfiltered = def.Unfiltered
	}
	per := def.PerAction
	for a, b := range cfg.PerAction {
		per[a] = b
	}
	cfg.PerAction = per
	return &throttler{clock: clock, cfg: cfg, limiters: map[string]*rate.Limiter{}}
}

// bucketFor names the bucket a call draws from and its size.
func (t *throttler) bucketFor(action string, mutating, unfiltered bool) (string, Bucket) {
	if unfiltered && unfilteredActions[action] {
		key := action + " (unfiltered)"
		if b, ok := t.cfg.PerAction[key]; ok {
			return key, b
		}
		return key, t.cfg.Unfiltered
	}
	if b, ok := t.cfg.PerAction[action]; ok {
		return action, b
	}
	if mutating {
		return action, t.cfg.Mutating
	}
	return action, t.cfg.NonMutating
}

// allow takes a token from the call's bucket.
func (t *throttler) allow(action string, mutating, unfiltered bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.Disabled {
		return true
	}
	key, b := t.bucketFor(action, mutating, unfiltered)
	l, ok := t.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(b.RefillPerSecond), b.Burst)
		t.limiters[key] = l
	}
	// On the simulator's clock, so a test can hold the refill still.
	return l.AllowN(t.clock.Now(), 1)
}

// SetThrottle replaces the throttling configuration; buckets start full.
func (s *Sim) SetThrottle(cfg ThrottleConfig) {
	t := newThrottler(cfg, s.clock)
	s.throttle.mu.Lock()
	s.throttle.cfg, s.throttle.limiters = t.cfg, t.limiters
	s.throttle.mu.Unlock()
}

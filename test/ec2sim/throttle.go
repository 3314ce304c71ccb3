package ec2sim

import (
	"sync"

	"golang.org/x/time/rate"
)

// EC2's documented defaults for request-rate throttling of single actions
// (bucket size and refill rate per second), by category.
var (
	defaultMutatingBucket    = Bucket{Burst: 200, RefillPerSecond: 5}
	defaultNonMutatingBucket = Bucket{Burst: 100, RefillPerSecond: 20}
)

// DefaultThrottle returns EC2's default per-action buckets.
func DefaultThrottle() ThrottleConfig {
	return ThrottleConfig{Mutating: defaultMutatingBucket, NonMutating: defaultNonMutatingBucket}
}

type throttler struct {
	mu       sync.Mutex
	cfg      ThrottleConfig
	limiters map[string]*rate.Limiter
}

func newThrottler(cfg ThrottleConfig) *throttler {
	if cfg.Mutating == (Bucket{}) {
		cfg.Mutating = defaultMutatingBucket
	}
	if cfg.NonMutating == (Bucket{}) {
		cfg.NonMutating = defaultNonMutatingBucket
	}
	return &throttler{cfg: cfg, limiters: map[string]*rate.Limiter{}}
}

// allow takes a token from the action's bucket.
func (t *throttler) allow(action string, mutating bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.Disabled {
		return true
	}
	l, ok := t.limiters[action]
	if !ok {
		b := t.cfg.NonMutating
		if mutating {
			b = t.cfg.Mutating
		}
		if pb, ok := t.cfg.PerAction[action]; ok {
			b = pb
		}
		l = rate.NewLimiter(rate.Limit(b.RefillPerSecond), b.Burst)
		t.limiters[action] = l
	}
	return l.Allow()
}

// SetThrottle replaces the throttling configuration; buckets start full.
func (s *Sim) SetThrottle(cfg ThrottleConfig) {
	t := newThrottler(cfg)
	s.throttle.mu.Lock()
	s.throttle.cfg, s.throttle.limiters = t.cfg, t.limiters
	s.throttle.mu.Unlock()
}

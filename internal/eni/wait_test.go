package eni

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// While the run is not throttled the visibility describes overlap, so the
// wait learns of a visible ENI about half a period after EC2 shows it
// rather than a round trip plus a period; once throttled they go one at a
// time. A describe here takes 250 ms (more than the period) and EC2 shows
// the ENI from the tenth one on.
func TestPollVisibleOverlapsOnlyUnthrottled(t *testing.T) {
	for _, tc := range []struct {
		name        string
		overlap     bool
		wantOverlap bool
	}{
		{"unthrottled", true, true},
		{"throttled", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			inFlight, most := 0, 0
			var calls atomic.Int32
			check := func(ctx context.Context) (bool, error) {
				n := calls.Add(1)
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				mu.Unlock()
				defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
				if n == 1 {
					return false, nil // the first describe, at once
				}
				select {
				case <-time.After(250 * time.Millisecond):
				case <-ctx.Done():
					return false, ctx.Err()
				}
				return n >= 10, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := pollVisible(ctx, func() bool { return tc.overlap }, check); err != nil {
				t.Fatal(err)
			}
			if got := most > 1; got != tc.wantOverlap {
				t.Fatalf("at most %d describes at once: overlapping is %t, want %t", most, got, tc.wantOverlap)
			}
			if most > visibleInFlight {
				t.Fatalf("%d describes at once, more than visibleInFlight (%d)", most, visibleInFlight)
			}
		})
	}
}

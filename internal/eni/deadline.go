package eni

import (
	"context"
	"errors"
	"time"
)

// MaxDeadline is the hard upper bound of a Reconcile, however long EC2
// throttles it: the Reconciler's deadline (DefaultDeadline unless set)
// grows by the time the node spent throttled, up to MaxDeadline.
const MaxDeadline = 30 * time.Minute

// withDeadline bounds ctx by the run's deadline: base plus the time the
// throttle tracker measures, at most MaxDeadline (or base, if larger). When
// it passes, the context's cause is a *DeadlineError.
func withDeadline(ctx context.Context, base time.Duration) (context.Context, context.CancelFunc) {
	start := time.Now()
	t := &throttleTracker{waiting: map[*opState]bool{}}
	hard := max(base, MaxDeadline)
	expired := func() error {
		code, call := t.last()
		return &DeadlineError{After: time.Since(start), Base: base, Throttled: t.Throttled(), LastCode: code, LastCall: call}
	}
	ctx, cancelHard := context.WithDeadline(ctx, start.Add(hard))
	ctx, cancel := context.WithCancelCause(withThrottleTracker(ctx, t))
	stop := make(chan struct{})
	go func() {
		timer := time.NewTimer(base)
		defer timer.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					cancel(expired())
				}
				return
			case <-timer.C:
			}
			// Throttled time only grows: re-arm until base plus it is reached.
			if left := time.Until(start.Add(base + t.Throttled())); left > 0 {
				timer.Reset(left)
				continue
			}
			cancel(expired())
			return
		}
	}()
	return ctx, func() {
		close(stop)
		cancel(context.Canceled)
		cancelHard()
	}
}

// deadlinePassed returns the run's *DeadlineError if its deadline passed.
func deadlinePassed(ctx context.Context) *DeadlineError {
	var d *DeadlineError
	if errors.As(context.Cause(ctx), &d) {
		return d
	}
	return nil
}

// Package change is the one vocabulary every host area uses to report and
// make its changes: an area observes the host, returns the Changes it would
// make, and the step applies them through Actions, which records each one
// and, under `nodeprep plan`, records it without making it.
package change

import (
	"context"
	"log/slog"
)

// Change is one host change: What says it in words, Apply makes it.
type Change struct {
	What  string
	Apply func(context.Context) error
}

// Actions is what a running step uses to change the host. The engine
// implements it; packages accept it instead of importing the engine.
type Actions interface {
	// DryRun is true under `nodeprep plan`: observe, but change nothing.
	DryRun() bool
	// Do records a change and makes it with fn, except under DryRun.
	Do(ctx context.Context, what string, fn func(context.Context) error) error
	// Plan records a change a run would make that plan cannot build yet,
	// because it depends on another step's result (a NIC that is not
	// there, a driver a step before would load).
	Plan(what string)
	// Status publishes a short progress line such as "attaching ENI 2/3".
	Status(format string, args ...any)
	// Log is the step's logger; it already carries the step name.
	Log() *slog.Logger
}

// Apply makes changes in order through act, stopping at the first error.
func Apply(ctx context.Context, act Actions, changes []Change) error {
	for _, c := range changes {
		if err := act.Do(ctx, c.What, c.Apply); err != nil {
			return err
		}
	}
	return nil
}

// Kernel writes one kernel attribute (a sysfs or procfs file). The kernel
// acts on the write itself, so such files are written in place, never
// created or replaced. hostfs.Root implements it.
type Kernel interface {
	WriteAttr(hostPath, value string) error
}

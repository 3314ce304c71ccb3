// Package changetest gives unit tests the Actions a step gets, so they apply
// changes the way production does (plan, then change.Apply).
package changetest

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nodeprep/nodeprep/internal/change"
)

// Actions records every change it is given and makes it unless DryRunning.
type Actions struct {
	DryRunning bool
	mu         sync.Mutex
	done       []string
}

var _ change.Actions = (*Actions)(nil)

func (a *Actions) DryRun() bool          { return a.DryRunning }
func (a *Actions) Status(string, ...any) {}
func (a *Actions) Log() *slog.Logger     { return slog.New(slog.DiscardHandler) }

func (a *Actions) Do(ctx context.Context, what string, fn func(context.Context) error) error {
	a.record(what)
	if a.DryRunning {
		return nil
	}
	return fn(ctx)
}

func (a *Actions) Plan(what string) { a.record(what) }

func (a *Actions) record(what string) {
	a.mu.Lock()
	a.done = append(a.done, what)
	a.mu.Unlock()
}

// Changes lists what was done or planned, in order.
func (a *Actions) Changes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.done...)
}

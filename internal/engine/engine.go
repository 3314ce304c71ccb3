// Package engine runs a bootstrap as a graph of named, idempotent steps.
// Independent steps run concurrently; a step starts once everything it comes
// after has succeeded, and is skipped if any of those failed.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/logging"
)

// Step is one node of the graph.
type Step struct {
	Name  string
	After []string
	Run   func(ctx context.Context, act change.Actions) error
	// Finally, set instead of Run, makes a step that runs once every other
	// step has ended, whatever their outcome, and is told which failed. No
	// step can come after it. Its changes, outcome and error are recorded
	// like any step's (the nodeadm drop-in that taints a failed node).
	Finally func(ctx context.Context, act change.Actions, failed []string) error
	// Writes are the host directories the step writes files into, each
	// through a temp file renamed into place. Before any step starts, a
	// run removes the temp files a killed run left there (WrittenDirs), so
	// a writer that declares its directories cannot be forgotten.
	Writes []string
	// Reads and Makes name the facts the step takes from other steps and
	// the facts it produces for them (e.g. "eni", the attachments). When
	// a step declares Reads, Validate proves its After edges are exactly
	// justified: it comes after every step that makes what it reads, and
	// each step it names in After makes something it reads.
	Reads, Makes []string
}

// WrittenDirs is every directory the steps write files into, sorted.
func WrittenDirs(steps []Step) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range steps {
		for _, d := range s.Writes {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Outcome is how a step ended.
type Outcome string

const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	// Skipped means a step it comes after did not succeed.
	Skipped Outcome = "skipped"
)

// ChangeRecord is one change a step made, or would make under DryRun.
type ChangeRecord struct {
	What string `json:"what"`
	// Started places the change on the run's timeline (status --timeline).
	Started  time.Time     `json:"started,omitzero"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// Result is the record of one step.
type Result struct {
	Name string `json:"name"`
	// After are the steps this one waited for, so a timeline can trace the
	// critical path.
	After    []string       `json:"after,omitempty"`
	Outcome  Outcome        `json:"outcome"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration"`
	Error    string         `json:"error,omitempty"`
	Changes  []ChangeRecord `json:"changes,omitempty"`
}

// Report is the record of a whole run, in the order steps finished.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	DryRun   bool          `json:"dryRun"`
	Steps    []Result      `json:"steps"`
}

// Failed lists the steps that failed.
func (r Report) Failed() []string {
	var names []string
	for _, s := range r.Steps {
		if s.Outcome == Failed {
			names = append(names, s.Name)
		}
	}
	return names
}

// Changes counts the changes made (or planned) across all steps.
func (r Report) Changes() int {
	n := 0
	for _, s := range r.Steps {
		n += len(s.Changes)
	}
	return n
}

// Options tune a run.
type Options struct {
	DryRun bool
	Logger *slog.Logger
	// Status receives every progress line (systemd STATUS=).
	Status func(string)
	// OnResult is called as each step finishes, e.g. to persist state.
	OnResult func(Result)
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// StepError says which step failed and why.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// ErrInvalidGraph is returned for duplicate names, unknown dependencies or cycles.
var ErrInvalidGraph = errors.New("invalid step graph")

// Validate checks the graph without running it.
func Validate(steps []Step) error {
	byName := make(map[string]Step, len(steps))
	for _, s := range steps {
		if s.Name == "" || (s.Run == nil) == (s.Finally == nil) {
			return fmt.Errorf("%w: step %q needs a name and one of Run and Finally", ErrInvalidGraph, s.Name)
		}
		if s.Finally != nil && len(s.After) > 0 {
			return fmt.Errorf("%w: step %q runs finally, after every other step; it takes no After", ErrInvalidGraph, s.Name)
		}
		if _, dup := byName[s.Name]; dup {
			return fmt.Errorf("%w: duplicate step %q", ErrInvalidGraph, s.Name)
		}
		byName[s.Name] = s
	}
	for _, s := range steps {
		for _, d := range s.After {
			if _, ok := byName[d]; !ok {
				return fmt.Errorf("%w: step %q comes after unknown step %q", ErrInvalidGraph, s.Name, d)
			}
			if byName[d].Finally != nil {
				return fmt.Errorf("%w: step %q comes after %q, which runs finally", ErrInvalidGraph, s.Name, d)
			}
		}
	}
	const (
		unseen = iota
		visiting
		done
	)
	mark := make(map[string]int, len(steps))
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch mark[name] {
		case visiting:
			return fmt.Errorf("%w: cycle %s", ErrInvalidGraph, strings.Join(append(path, name), " -> "))
		case done:
			return nil
		}
		mark[name] = visiting
		for _, d := range byName[name].After {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		mark[name] = done
		return nil
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	return checkReads(byName, names)
}

// checkReads proves the After edges against the declared reads.
func checkReads(byName map[string]Step, names []string) error {
	makers := map[string][]string{}
	for _, n := range names {
		for _, f := range byName[n].Makes {
			makers[f] = append(makers[f], n)
		}
	}
	var ancestors func(name string, seen map[string]bool)
	ancestors = func(name string, seen map[string]bool) {
		for _, d := range byName[name].After {
			if !seen[d] {
				seen[d] = true
				ancestors(d, seen)
			}
		}
	}
	for _, n := range names {
		s := byName[n]
		if len(s.Reads) == 0 {
			continue
		}
		before := map[string]bool{}
		ancestors(n, before)
		for _, f := range s.Reads {
			for _, m := range makers[f] {
				if m != n && !before[m] && byName[m].Finally == nil {
					return fmt.Errorf("%w: step %q reads %q, which %q makes, but does not come after it", ErrInvalidGraph, n, f, m)
				}
			}
		}
		for _, d := range s.After {
			if !slices.ContainsFunc(byName[d].Makes, func(f string) bool { return slices.Contains(s.Reads, f) }) {
				return fmt.Errorf("%w: step %q comes after %q but reads nothing it makes", ErrInvalidGraph, n, d)
			}
		}
	}
	return nil
}

// Subgraph returns the named steps of a graph with everything they come
// after, directly or not, replaced by a stub that succeeds without acting.
// Every other step is left out, except the Finally steps, which run after
// any graph. The edges stay the graph's own, so a test or tool that runs
// part of the graph runs it as production orders it.
func Subgraph(steps []Step, names ...string) ([]Step, error) {
	byName := make(map[string]Step, len(steps))
	for _, s := range steps {
		byName[s.Name] = s
	}
	keep := map[string]bool{}
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			return nil, fmt.Errorf("%w: no step %q", ErrInvalidGraph, n)
		}
		keep[n] = true
	}
	stub := map[string]bool{}
	var mark func(name string)
	mark = func(name string) {
		for _, d := range byName[name].After {
			if !keep[d] && !stub[d] {
				stub[d] = true
				mark(d)
			}
		}
	}
	for _, n := range names {
		mark(n)
	}
	var out []Step
	for _, s := range steps {
		switch {
		case keep[s.Name], s.Finally != nil:
			out = append(out, s)
		case stub[s.Name]:
			out = append(out, Step{Name: s.Name, After: s.After, Writes: s.Writes, Reads: s.Reads, Makes: s.Makes, Run: func(context.Context, change.Actions) error { return nil }})
		}
	}
	return out, nil
}

// Run executes the graph. It returns the report and, if any step failed, an
// error joining each failed step's StepError.
func Run(ctx context.Context, steps []Step, opts Options) (Report, error) {
	if err := Validate(steps); err != nil {
		return Report{}, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &runner{opts: opts, done: make(map[string]chan struct{}), outcome: make(map[string]Outcome)}
	for _, s := range steps {
		r.done[s.Name] = make(chan struct{})
	}
	start := opts.Now()
	var wg sync.WaitGroup
	var finally []Step
	for _, s := range steps {
		if s.Finally != nil {
			finally = append(finally, s)
			continue
		}
		wg.Add(1)
		go func(s Step) {
			defer wg.Done()
			defer close(r.done[s.Name])
			r.runStep(ctx, s)
		}(s)
	}
	wg.Wait()
	for _, s := range finally {
		// Even on a canceled context: a step that must run whatever else
		// happened decides itself what it can still do.
		r.runFinally(ctx, s)
	}
	report := Report{Started: start, Duration: opts.Now().Sub(start), DryRun: opts.DryRun, Steps: r.results}
	return report, errors.Join(r.errs...)
}

type runner struct {
	opts    Options
	done    map[string]chan struct{}
	mu      sync.Mutex
	outcome map[string]Outcome
	results []Result
	errs    []error
}

func (r *runner) runStep(ctx context.Context, s Step) {
	for _, d := range s.After {
		select {
		case <-r.done[d]:
		case <-ctx.Done():
		}
	}
	log := r.opts.Logger.With(logging.Step(s.Name))
	res := Result{Name: s.Name, After: s.After, Started: r.opts.Now()}
	if blocked := r.blockedBy(s.After); blocked != "" {
		res.Outcome = Skipped
		res.Error = fmt.Sprintf("skipped: %s did not succeed", blocked)
		log.Warn("step skipped", "because", blocked)
		r.finish(res, nil)
		return
	}
	if err := ctx.Err(); err != nil {
		res.Outcome = Skipped
		res.Error = err.Error()
		r.finish(res, nil)
		return
	}
	act := &stepActions{runner: r, step: s.Name, log: log}
	log.Debug("step started")
	r.ended(res, act, s.Run(ctx, act), log)
}

// ended records how a step that ran ended.
func (r *runner) ended(res Result, act *stepActions, err error, log *slog.Logger) {
	res.Duration = r.opts.Now().Sub(res.Started)
	res.Changes = act.changes
	if err != nil {
		res.Outcome = Failed
		res.Error = err.Error()
		log.Error("step failed", "error", err, "duration", res.Duration)
		r.finish(res, &StepError{Step: res.Name, Err: err})
		return
	}
	res.Outcome = Succeeded
	log.Info("step succeeded", "duration", res.Duration, "changes", len(res.Changes))
	r.finish(res, nil)
}

func (r *runner) runFinally(ctx context.Context, s Step) {
	log := r.opts.Logger.With(logging.Step(s.Name))
	r.mu.Lock()
	var failed []string
	for _, res := range r.results {
		if res.Outcome == Failed {
			failed = append(failed, res.Name)
		}
	}
	r.mu.Unlock()
	sort.Strings(failed)
	res := Result{Name: s.Name, Started: r.opts.Now()}
	act := &stepActions{runner: r, step: s.Name, log: log}
	err := s.Finally(ctx, act, failed)
	r.ended(res, act, err, log)
}

func (r *runner) blockedBy(after []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range after {
		if r.outcome[d] != Succeeded {
			return d
		}
	}
	return ""
}

func (r *runner) finish(res Result, err error) {
	r.mu.Lock()
	r.outcome[res.Name] = res.Outcome
	r.results = append(r.results, res)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	r.mu.Unlock()
	if r.opts.OnResult != nil {
		r.opts.OnResult(res)
	}
}

type stepActions struct {
	runner  *runner
	step    string
	log     *slog.Logger
	mu      sync.Mutex
	changes []ChangeRecord
}

func (a *stepActions) DryRun() bool      { return a.runner.opts.DryRun }
func (a *stepActions) Log() *slog.Logger { return a.log }

func (a *stepActions) Status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.log.Debug("status", "status", msg)
	if a.runner.opts.Status != nil {
		a.runner.opts.Status(msg)
	}
}

func (a *stepActions) Do(ctx context.Context, what string, fn func(context.Context) error) error {
	if a.DryRun() {
		a.Plan(what)
		return nil
	}
	start := a.runner.opts.Now()
	err := fn(ctx)
	c := ChangeRecord{What: what, Started: start, Duration: a.runner.opts.Now().Sub(start)}
	if err != nil {
		c.Error = err.Error()
		a.log.Error("change failed", "change", what, "error", err)
	} else {
		a.log.Info("changed", "change", what, "duration", c.Duration)
	}
	a.record(c)
	return err
}

// Plan records a change the step could not build. Outside DryRun a step
// must make its changes, so a planned-only change is recorded as an error.
func (a *stepActions) Plan(what string) {
	c := ChangeRecord{What: what}
	if a.DryRun() {
		a.log.Info("would change", "change", what)
	} else {
		c.Error = "planned but not made"
		a.log.Error("change planned but not made", "change", what)
	}
	a.record(c)
}

func (a *stepActions) record(c ChangeRecord) {
	a.mu.Lock()
	a.changes = append(a.changes, c)
	a.mu.Unlock()
}

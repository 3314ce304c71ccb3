// Package watch re-runs doctor's cheap checks when the node changes and
// reports drift: a link or driver change (netlink, kernel uevents), a file
// of nodeprep's changed or removed (inotify), and, at a slow period, the
// checks that ask EC2. It repairs only what is safe to repair under running
// pods: a conflist is rewritten; a device is never rebound or detached by
// the watcher, and when a pod holds it (kubelet's pod-resources API) the
// report says so.
package watch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// DefaultEC2Period is how often the watcher asks EC2: one
// DescribeNetworkInterfaces per node per period. 10 minutes is 1.7
// requests a second for a 1000-node account, a tenth of EC2's describe
// refill rate (20/s), so the watcher never competes with booting nodes.
const DefaultEC2Period = 10 * time.Minute

// Trigger is one event that makes the watcher re-check.
type Trigger struct {
	Source string // netlink, uevent, inotify, timer
	Detail string
	// EC2 asks for the checks that call EC2 too.
	EC2 bool
}

// Holders tells which pods hold a device (kubelet's pod-resources API).
type Holders interface {
	Holders(ctx context.Context, resource, deviceID string) ([]string, error)
}

// Drift is one finding that went from ok to bad, and what was done.
type Drift struct {
	Trigger Trigger
	Finding doctor.Finding
	// Repair is "repaired", "refused" (unsafe: a pod holds the device) or
	// "not repaired" (the watcher does not repair this kind), with Why.
	Repair string
	Why    string
}

// Sink receives what the watcher finds.
type Sink interface {
	// Report is called after every check round with the full report and
	// the standing drifts among its findings: each finding of r that is
	// still bad since it drifted, with what the watcher decided then (a
	// refusal to rebind under a pod stands as long as the device is off
	// its driver, not only in the round that saw the change).
	Report(ctx context.Context, r doctor.Report, standing []Drift)
	// Drifted is called once per finding that went bad, before the
	// round's Report.
	Drifted(ctx context.Context, d Drift)
}

// Watcher holds the last verdict of each finding.
type Watcher struct {
	Node    *doctor.Node
	Checks  []doctor.Check
	Holders Holders
	Sink    Sink
	Log     *slog.Logger
	last    map[string]doctor.Verdict
	// open is the last drift of each finding that has not been ok since.
	open map[string]Drift
}

func key(f doctor.Finding) string { return f.Check + "\x00" + f.Subject }

// Run handles triggers until ctx ends or triggers closes.
func (w *Watcher) Run(ctx context.Context, triggers <-chan Trigger) error {
	w.Round(ctx, Trigger{Source: "start", EC2: true})
	for {
		select {
		case <-ctx.Done():
			return nil
		case t, ok := <-triggers:
			if !ok {
				return nil
			}
			// Coalesce a burst (a rebind is an unbind, a remove and an
			// add): take what is queued now, then check once.
		drain:
			for {
				select {
				case more, ok := <-triggers:
					if !ok {
						break drain
					}
					t.EC2 = t.EC2 || more.EC2
				default:
					break drain
				}
			}
			w.Round(ctx, t)
		}
	}
}

// Round runs the checks once for trigger t and reports what drifted.
func (w *Watcher) Round(ctx context.Context, t Trigger) []Drift {
	checks := doctor.Cheap(w.Checks)
	if t.EC2 {
		checks = w.Checks
	}
	r := doctor.Run(ctx, w.Node, checks)
	if w.last == nil {
		w.last = map[string]doctor.Verdict{}
		w.open = map[string]Drift{}
	}
	var drifts, standing []Drift
	for _, f := range r.Findings {
		prev, seen := w.last[key(f)]
		w.last[key(f)] = f.Verdict
		if f.Verdict == doctor.OK {
			delete(w.open, key(f))
			continue
		}
		if (seen && prev == f.Verdict) || (!seen && t.Source == "start" && f.Verdict != doctor.Fail) {
			if d, ok := w.open[key(f)]; ok {
				d.Finding = f
				standing = append(standing, d)
			}
			continue
		}
		d := Drift{Trigger: t, Finding: f}
		d.Repair, d.Why = w.repair(ctx, f)
		drifts = append(drifts, d)
		standing = append(standing, d)
		w.open[key(f)] = d
	}
	// Drift first: it is the local report (the journal), which must not
	// wait on the API server that Report publishes to.
	if w.Sink != nil {
		for _, d := range drifts {
			w.Sink.Drifted(ctx, d)
		}
		w.Sink.Report(ctx, r, standing)
	}
	// A repair changes what the checks see: take the new verdicts now, so
	// a repaired finding is not reported again as new.
	if repaired(drifts) {
		for _, f := range doctor.Run(ctx, w.Node, doctor.Cheap(w.Checks)).Findings {
			w.last[key(f)] = f.Verdict
			if f.Verdict == doctor.OK {
				delete(w.open, key(f))
			}
		}
	}
	return drifts
}

func repaired(ds []Drift) bool {
	for _, d := range ds {
		if d.Repair == "repaired" {
			return true
		}
	}
	return false
}

// repair fixes what is safe and says why it left the rest.
func (w *Watcher) repair(ctx context.Context, f doctor.Finding) (string, string) {
	switch f.Check {
	case "conflist":
		if err := w.rewriteConflists(ctx); err != nil {
			return "failed", err.Error()
		}
		return "repaired", "rewrote the conflists from the last run's record"
	case "driver":
		return w.deviceVerdict(ctx, f.Subject)
	}
	return "not repaired", "the watcher repairs conflists only; run nodeprep run"
}

// deviceVerdict: the watcher never rebinds; it says whether a pod holds
// the device, which decides whether `nodeprep run` may rebind it.
func (w *Watcher) deviceVerdict(ctx context.Context, name string) (string, string) {
	var resource, bdf string
	if w.Node.Config != nil {
		for _, in := range w.Node.Config.Spec.Interfaces {
			if in.Name == name {
				resource = w.Node.Config.Spec.DevicePlugin.ResourcePrefix + "/" + in.ResourceName
			}
		}
	}
	if w.Node.State != nil {
		in := w.Node.State.Interfaces[name]
		bdf = in.Device.Device.Address
		if bdf == "" {
			bdf = in.Link.PCIAddress
		}
	}
	if w.Holders == nil || bdf == "" {
		return "not repaired", "the watcher never rebinds a device; cannot ask kubelet which pods hold " + bdf
	}
	pods, err := w.Holders.Holders(ctx, resource, bdf)
	if err != nil {
		return "not repaired", "the watcher never rebinds a device; kubelet's pod-resources API: " + err.Error()
	}
	if len(pods) > 0 {
		return "refused", fmt.Sprintf("%s is held by pod %v: not rebinding under it; drain the pod, then nodeprep run", bdf, pods)
	}
	return "not repaired", bdf + " is held by no pod: nodeprep run rebinds it (the watcher never rebinds)"
}

// StepRepairConflists is the watcher's one repair step.
const StepRepairConflists = "repair-conflists"

// Steps are the watcher's repairs, each an engine step declaring the
// directories it writes: besides its metrics file they are all the watcher
// writes, so its unit's writable paths derive from them (test/systemd).
// The conflists are rendered at run time, from the state then on disk.
func Steps(n *doctor.Node) []engine.Step {
	m := n.Config.Spec.Multus
	return []engine.Step{{Name: StepRepairConflists, Writes: []string{m.NetworkConfDir}, Run: func(ctx context.Context, act change.Actions) error {
		if n.State == nil {
			return fmt.Errorf("no state to render the conflists from")
		}
		enis, err := bootstrap.PodNetworks(n.Config, n.State.Interfaces)
		if err != nil {
			return err
		}
		changes, err := netconf.Plan(n.Root, m.NetworkConfDir, enis, netconf.Options{CNIVersion: m.CNIVersion})
		if err != nil {
			return err
		}
		return change.Apply(ctx, act, changes)
	}}}
}

// rewriteConflists rewrites the pod-network conflists as a one-step engine
// run, so the write is a recorded change like every write nodeprep makes.
func (w *Watcher) rewriteConflists(ctx context.Context) error {
	if w.Node.Config == nil {
		return fmt.Errorf("no config to render the conflists from")
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	_, err := engine.Run(ctx, Steps(w.Node), engine.Options{Logger: log})
	return err
}

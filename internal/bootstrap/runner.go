package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/notify"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

// EffectiveConfigPath is where a run leaves the merged, defaulted config it
// acted on, for `nodeprep status` and for people reading the node.
const EffectiveConfigPath = "/run/nodeprep/config.yaml"

// Errors a run can end with; the agent maps them to exit codes.
var (
	// ErrUserData means user data could not be read.
	ErrUserData = errors.New("cannot read user data")
	// ErrCloud means the AWS clients (instance identity, credentials)
	// could not be set up for the EC2-managed interfaces: the ENI step
	// fails with it, and the run goes on like after any step failure.
	ErrCloud = errors.New("cannot set up the AWS clients")
	// ErrConfig means the config is invalid; the node was not touched.
	ErrConfig = errors.New("invalid config")
	// ErrStepsFailed means at least one step failed.
	ErrStepsFailed = errors.New("steps failed")
)

// Runner runs one `nodeprep run` or `nodeprep plan`.
type Runner struct {
	Host     Host
	Log      *slog.Logger
	Notifier notify.Notifier
	// UserData fetches raw user data (IMDS, or a file for offline runs).
	UserData func(context.Context) ([]byte, error)
	// NewCloud builds the AWS clients; it is called only when the config has
	// EC2-managed interfaces.
	NewCloud func(context.Context) (*Cloud, error)
	DryRun   bool
	// Only, when set, runs just these steps of the graph; the steps they
	// come after are stubbed out (engine.Subgraph).
	Only []string
	Now  func() time.Time
	// faults, in tests, changes the node and its steps before they run, to
	// make one of them fail.
	faults func(*Node, []engine.Step) []engine.Step
}

// Summary is what the agent needs to decide its exit.
type Summary struct {
	// NoConfig is true when user data held no part for nodeprep.
	NoConfig bool
	Config   *api.NodePrepConfig
	Report   engine.Report
	// Tainted is true when steps failed under failurePolicy Taint and the
	// nodeadm drop-in registers the node with a NoSchedule taint instead of
	// blocking it. When even the taint could not be written it is false,
	// and the run fails as under Block: the node never joins untainted.
	Tainted bool
}

// Run fetches the config and runs the step graph. Under DryRun nothing on
// the host changes: the run's record stays in memory.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	command := "run"
	if r.DryRun {
		command = "plan"
	}
	root := r.Host.Root
	started := r.Now()
	r.status("reading user data")
	raw, err := r.UserData(ctx)
	if errors.Is(err, imds.ErrNoUserData) {
		// An instance launched without user data: the baked config, if
		// any, is the whole config; without one there is nothing to do.
		raw, err = nil, nil
	}
	if err != nil {
		// Recorded, so that `nodeprep status` tells a run that could not
		// read its user data from one that never ran.
		err = fmt.Errorf("%w: %w", ErrUserData, err)
		return Summary{}, errors.Join(err, r.finishWithoutSteps(command, started, state.ResultFailed, err))
	}
	sources, err := ConfigSources(root, raw)
	warnSkippedParts(raw, r.Log)
	if errors.Is(err, userdata.ErrNoConfig) {
		r.Log.Info("user data has no application/nodeprep.dev part and there is no "+api.DefaultBakedConfigPath+"; nothing to do", logging.Step(StepConfig))
		return Summary{NoConfig: true}, r.finishWithoutSteps(command, started, state.ResultNoConfig, nil)
	}
	if err != nil {
		return Summary{}, r.refuseConfig(command, started, err)
	}
	cfg, err := api.Load(sources...)
	if err != nil {
		return Summary{}, r.refuseConfig(command, started, err)
	}
	if !r.DryRun {
		unlock, err := root.Lock(RunLockPath)
		if err != nil {
			return Summary{Config: cfg}, err
		}
		defer unlock()
	}
	loaded := r.Now()
	r.Log.Info("config loaded", logging.Step(StepConfig), "sources", len(sources), "interfaces", len(cfg.Spec.Interfaces), "duration", loaded.Sub(started))

	open := state.Open
	if r.DryRun {
		open = state.OpenInMemory
	}
	store, err := open(root, command, started)
	if err != nil {
		return Summary{}, err
	}
	node := &Node{Host: r.Host, Log: r.Log, Config: cfg, model: &model{store: store}, NodeadmConfigs: nodeadmConfigs(raw, r.Log)}
	if needsCloud(cfg) && r.NewCloud != nil {
		// A failure is the ENI step's: the other steps and the nodeadm
		// drop-in (with its failure taint) still run.
		if node.Cloud, err = r.NewCloud(ctx); err != nil {
			node.Cloud, node.cloudErr = nil, fmt.Errorf("%w: %w", ErrCloud, err)
		}
	}
	node.loadTime = loaded.Sub(started)
	steps := node.Steps()
	if !r.DryRun {
		// Before any step writes: the state file's own directory too.
		r.removeStaleTemps(append(engine.WrittenDirs(steps), path.Dir(state.Path)))
	}
	if len(r.Only) > 0 {
		if steps, err = engine.Subgraph(steps, r.Only...); err != nil {
			return Summary{Config: cfg}, err
		}
	}
	if r.faults != nil {
		steps = r.faults(node, steps)
	}
	report, runErr := engine.Run(ctx, steps, engine.Options{
		DryRun:   r.DryRun,
		Logger:   r.Log,
		Status:   r.status,
		OnResult: func(res engine.Result) { _ = store.RecordStep(res) },
		Now:      r.Now,
	})
	out := Summary{Config: cfg, Report: report}
	if runErr != nil {
		out.Tainted = cfg.Spec.FailurePolicy == api.FailurePolicyTaint && !r.DryRun && node.tainted.Load()
		return out, r.fail(store, fmt.Errorf("%w: %w", ErrStepsFailed, runErr))
	}
	r.status(fmt.Sprintf("ready: %d steps in %s", len(report.Steps), r.Now().Sub(started).Round(time.Millisecond)))
	return out, store.Finish(state.ResultSucceeded, nil, r.Now())
}

func (r *Runner) status(line string) {
	if r.Notifier != nil {
		_ = r.Notifier.Status(line)
	}
}

func (r *Runner) fail(store *state.Store, err error) error {
	r.status("failed: " + err.Error())
	if ferr := store.Finish(state.ResultFailed, err, r.Now()); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// refuseConfig ends a run whose config is invalid: nothing on the node is
// changed, but the refusal is recorded, so `nodeprep status` shows it (with
// the field paths) instead of the last run before it.
func (r *Runner) refuseConfig(command string, started time.Time, cause error) error {
	err := fmt.Errorf("%w: %w", ErrConfig, cause)
	return errors.Join(err, r.finishWithoutSteps(command, started, state.ResultInvalidConfig, err))
}

func (r *Runner) finishWithoutSteps(command string, started time.Time, result string, runErr error) error {
	if r.DryRun {
		return nil
	}
	store, err := state.Open(r.Host.Root, command, started)
	if err != nil {
		return err
	}
	return store.Finish(result, runErr, r.Now())
}

// ConfigSources returns the baked-in config file, when present, followed by
// the user data parts, so user data wins. The baked config applies on its
// own when user data has no nodeprep part or there is no user data at all
// (nil). It returns userdata.ErrNoConfig only when neither holds a config.
func ConfigSources(root hostfs.Root, userData []byte) ([]api.Source, error) {
	var parts []api.Source
	if len(userData) > 0 {
		var err error
		parts, err = userdata.Extract(userData)
		if err != nil && !errors.Is(err, userdata.ErrNoConfig) {
			return nil, err
		}
	}
	baked, err := root.ReadFile(api.DefaultBakedConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		if len(parts) == 0 {
			return nil, userdata.ErrNoConfig
		}
		return parts, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.DefaultBakedConfigPath, err)
	}
	return append([]api.Source{{Name: api.DefaultBakedConfigPath, Data: baked}}, parts...), nil
}

// warnSkippedParts logs the user data parts nodeprep skipped that nothing
// on the node reads, as `nodeprep validate` prints them.
func warnSkippedParts(raw []byte, log *slog.Logger) {
	found, err := userdata.Scan(raw)
	if err != nil {
		return // ConfigSources reports it
	}
	for _, w := range found.Warnings {
		log.Warn("user data part skipped", logging.Step(StepConfig), "part", w.Part, "reason", w.Reason)
	}
}

// nodeadmConfigs are the NodeConfig documents in user data. A part nodeadm
// cannot read fails nodeadm itself; here it only means nothing is inherited.
func nodeadmConfigs(raw []byte, log *slog.Logger) [][]byte {
	parts, err := userdata.ExtractNodeadm(raw)
	if err != nil {
		log.Warn("cannot read user data's nodeadm parts; the drop-in inherits no taints from them", logging.Step(StepConfig), "error", err)
	}
	docs := make([][]byte, len(parts))
	for i, p := range parts {
		docs[i] = p.Data
	}
	return docs
}

func needsCloud(cfg *api.NodePrepConfig) bool {
	for _, in := range cfg.Spec.Interfaces {
		if in.Managed() {
			return true
		}
	}
	return false
}

// configStep records the config the run acts on. Loading happened before
// the graph, so that a bad config stops the run with the node untouched.
func (n *Node) configStep() engine.Step {
	return engine.Step{Name: StepConfig, Makes: []string{factConfig}, Writes: []string{path.Dir(EffectiveConfigPath)}, Run: func(ctx context.Context, act change.Actions) error {
		act.Log().Debug("config fetched and validated", "duration", n.loadTime)
		data, err := yaml.Marshal(n.Config)
		if err != nil {
			return err
		}
		differs, err := n.Host.Root.Differs(EffectiveConfigPath, data, 0o644)
		if err != nil || !differs {
			return err
		}
		return act.Do(ctx, "write "+EffectiveConfigPath, func(context.Context) error {
			_, err := n.Host.Root.WriteFile(EffectiveConfigPath, data, 0o644)
			return err
		})
	}}
}

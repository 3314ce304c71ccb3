package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/metrics"
	"github.com/nodeprep/nodeprep/internal/notify"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

// nodeFlags are the flags shared by the commands that act on a node.
type nodeFlags struct {
	root         string
	imdsEndpoint string
	ec2Endpoint  string
	userDataFile string
	logLevel     string
	timeout      time.Duration
	metricsDir   string
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.root, "root", env("NODEPREP_ROOT", "/"), "host root prefix")
	fs.StringVar(&f.imdsEndpoint, "imds-endpoint", env("NODEPREP_IMDS_ENDPOINT", ""), "IMDS endpoint")
	fs.StringVar(&f.ec2Endpoint, "ec2-endpoint", env("NODEPREP_EC2_ENDPOINT", ""), "EC2 endpoint")
	fs.StringVar(&f.userDataFile, "user-data", env("NODEPREP_USER_DATA", ""), "read user data from this file instead of IMDS")
	fs.StringVar(&f.logLevel, "log-level", env("NODEPREP_LOG_LEVEL", "info"), "log level")
	fs.StringVar(&f.metricsDir, "metrics-dir", env("NODEPREP_METRICS_DIR", metrics.DefaultDir), "node_exporter textfile directory for nodeprep.prom; empty: none")
	timeout, err := time.ParseDuration(env("NODEPREP_TIMEOUT", "8m"))
	if err != nil {
		timeout = 8 * time.Minute
	}
	fs.DurationVar(&f.timeout, "timeout", timeout, "overall deadline")
}

func env(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return fallback
}

// userDataSource reads user data from a file for offline runs, else IMDS.
func (f *nodeFlags) userDataSource() func(context.Context) ([]byte, error) {
	if f.userDataFile != "" {
		return func(context.Context) ([]byte, error) { return userdata.ReadFile(f.userDataFile) }
	}
	client := imds.New(f.imdsEndpoint)
	return client.UserData
}

func cmdRun(ctx context.Context, args []string, dryRun bool, stdout, stderr io.Writer) int {
	name := "run"
	if dryRun {
		name = "plan"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var nf nodeFlags
	nf.register(fs)
	if !parseFlags(fs, args, stderr) {
		return exitInvalid
	}
	level, err := logLevel(nf.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep:", err)
		return exitInvalid
	}
	log := logging.New(logging.Options{Level: level, Stderr: stderr})
	ctx, cancel := context.WithTimeout(ctx, nf.timeout)
	defer cancel()

	notifier := notify.Systemd{}
	runMetrics := metrics.NewRun()
	runner := &bootstrap.Runner{
		Host:     bootstrap.NewHost(hostfs.New(nf.root), nil),
		Log:      log,
		Notifier: notifier,
		UserData: nf.userDataSource(),
		NewCloud: func(ctx context.Context) (*bootstrap.Cloud, error) {
			cloud, err := nf.newCloud(ctx)
			if err == nil {
				cloud.EC2 = metrics.CountEC2(cloud.EC2, runMetrics)
			}
			return cloud, err
		},
		DryRun: dryRun,
	}
	started := time.Now()
	out, err := runner.Run(ctx)
	if !dryRun {
		writeRunMetrics(hostfs.New(nf.root), nf.metricsDir, runMetrics, log)
	}
	if dryRun {
		printPlan(stdout, out, err)
	}
	switch {
	case err == nil && out.NoConfig:
		_ = notifier.Ready()
		return exitOK
	case err == nil:
		if !dryRun {
			log.Info("node ready", "steps", len(out.Report.Steps), "changes", out.Report.Changes(), "duration", time.Since(started).Round(time.Millisecond))
		}
		_ = notifier.Ready()
		return exitOK
	case out.Tainted:
		// Under failurePolicy Taint kubelet starts, and the drop-in written
		// after the steps registers the node with a NoSchedule taint.
		log.Error("node prepared with failures; it registers tainted", "error", err, "failed", strings.Join(out.Report.Failed(), ","))
		_ = notifier.Ready()
		return exitOK
	case errors.Is(err, bootstrap.ErrConfig):
		log.Error("invalid config; the node was not touched", "error", err)
		return exitInvalid
	case errors.Is(err, bootstrap.ErrUserData):
		log.Error("cannot read user data", "error", err)
		return exitUserData
	case dryRun:
		log.Error("plan could not plan every step", "error", err, "failed", strings.Join(out.Report.Failed(), ","))
		return exitFailed
	default:
		msg := "node preparation failed; kubelet will not start (failurePolicy Block)"
		if out.Config != nil && out.Config.Spec.FailurePolicy == api.FailurePolicyTaint {
			msg = "node preparation failed and not even the failure taint could be written; kubelet will not start"
		}
		log.Error(msg, "error", err, "failed", strings.Join(out.Report.Failed(), ","))
		return exitFailed
	}
}

// printPlan lists the changes a run would make, grouped by step, and names
// every step it could not plan; it only says "no changes" when every step
// was planned.
func printPlan(w io.Writer, out bootstrap.Summary, err error) {
	if out.NoConfig {
		fmt.Fprintln(w, "No nodeprep config in user data: run would do nothing.")
		return
	}
	if out.Config == nil {
		return
	}
	if len(out.Report.Steps) == 0 && err != nil {
		fmt.Fprintf(w, "Could not plan: %v\n", err)
		return
	}
	steps := append([]engine.Result(nil), out.Report.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Started.Before(steps[j].Started) })
	var unplanned []string
	for _, s := range steps {
		if s.Outcome != engine.Succeeded {
			unplanned = append(unplanned, s.Name)
		}
	}
	switch total := out.Report.Changes(); {
	case total == 0 && len(unplanned) == 0:
		fmt.Fprintln(w, "No changes: the node already matches its config.")
	case total == 0:
		fmt.Fprintln(w, "No changes in the steps nodeprep could plan.")
	default:
		fmt.Fprintf(w, "nodeprep would make %d change(s):\n", total)
	}
	for _, s := range steps {
		for _, c := range s.Changes {
			fmt.Fprintf(w, "  %-13s %s\n", s.Name, c.What)
		}
	}
	if len(unplanned) > 0 {
		fmt.Fprintf(w, "Could not plan %d step(s):\n", len(unplanned))
		for _, s := range steps {
			if s.Outcome != engine.Succeeded {
				fmt.Fprintf(w, "  %-13s %s: %s\n", s.Name, s.Outcome, s.Error)
			}
		}
	}
}

// writeRunMetrics writes nodeprep.prom from the run's state record, after
// the run: the metrics never delay kubelet, and a failure to write them is
// logged, not a failed run.
func writeRunMetrics(root hostfs.Root, dir string, m *metrics.Run, log *slog.Logger) {
	if dir == "" {
		return
	}
	f, err := state.Read(root)
	if err != nil {
		log.Warn("metrics: no run record", "error", err)
		return
	}
	m.Record(f)
	if err := m.Write(root, dir); err != nil {
		log.Warn("metrics not written", "error", err)
	}
}

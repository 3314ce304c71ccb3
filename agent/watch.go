package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/metrics"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nodestatus"
	"github.com/nodeprep/nodeprep/internal/watch"
)

// cmdWatch is the drift watcher: a long-running unit, since an idle
// process blocked on netlink and inotify costs ~30 MiB RSS and no CPU, while
// a timer re-reading everything would both cost more and see a change only
// at its next tick.
func cmdWatch(ctx context.Context, args []string, stderr io.Writer) int {
	fset := flag.NewFlagSet("watch", flag.ContinueOnError)
	var df doctorFlags
	df.register(fset)
	ec2Period := fset.Duration("ec2-period", watch.DefaultEC2Period, "how often to ask EC2 about the ENIs")
	metricsDir := fset.String("metrics-dir", env("NODEPREP_METRICS_DIR", metrics.DefaultDir), "node_exporter textfile directory; empty: no metrics")
	kubeconfig := fset.String("kubeconfig", env("NODEPREP_KUBECONFIG", multus.DefaultKubeletKubeconfig), "kubeconfig for the Node condition; empty: no condition")
	nodeName := fset.String("node-name", env("NODE_NAME", ""), "this node's name in the cluster (default: the hostname)")
	podResources := fset.String("pod-resources", watch.DefaultPodResourcesSocket, "kubelet's pod-resources socket")
	level := fset.String("log-level", env("NODEPREP_LOG_LEVEL", "info"), "log level")
	if !parseFlags(fset, args, stderr) {
		return exitInvalid
	}
	lvl, err := logLevel(*level)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep:", err)
		return exitInvalid
	}
	log := logging.New(logging.Options{Level: lvl, Stderr: stderr})
	df.timeout = time.Minute
	setup, cancel := context.WithTimeout(ctx, df.timeout)
	node, err := loadDoctorNode(setup, df)
	cancel()
	if err != nil {
		log.Error("watch: cannot load the node", "error", err)
		return exitFailed
	}
	// Long-running: remember the CNI binaries' hashes, so a round reads
	// only a binary that changed.
	node.CNIHashes = &cnibundle.HashCache{}
	s := &watchSink{log: log, root: node.Root, metricsDir: *metricsDir, metrics: metrics.NewDoctor(), checks: doctor.Checks()}
	if *kubeconfig != "" && node.Root.Exists(*kubeconfig) {
		name := *nodeName
		if name == "" {
			name, _ = os.Hostname()
		}
		if p, err := nodestatus.New(*kubeconfig, name); err != nil {
			log.Warn("watch: no Node condition", "error", err)
		} else {
			s.node = p
		}
	}
	triggers := make(chan watch.Trigger, 16)
	if err := watch.Links(ctx, nil, triggers); err != nil {
		log.Warn("watch: no netlink link events", "error", err)
	}
	if err := watch.Uevents(ctx, triggers); err != nil {
		log.Warn("watch: no uevents", "error", err)
	}
	if err := watch.Files(ctx, watchedDirs(node), triggers); err != nil {
		log.Warn("watch: no file events", "error", err)
	}
	if node.EC2 != nil && *ec2Period > 0 {
		go func() {
			t := time.NewTicker(*ec2Period)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					triggers <- watch.Trigger{Source: "timer", EC2: true}
				}
			}
		}()
	}
	w := &watch.Watcher{Node: node, Checks: doctor.Checks(), Holders: watch.PodResources{Socket: *podResources}, Sink: s, Log: log}
	log.Info("watch: watching", "ec2Period", *ec2Period, "metrics", *metricsDir, "nodeCondition", s.node != nil)
	if err := w.Run(ctx, triggers); err != nil {
		log.Error("watch", "error", err)
		return exitFailed
	}
	return exitOK
}

// watchedDirs are the real directories of the files the checks read.
func watchedDirs(n *doctor.Node) []string {
	cfg := n.Config.Spec
	var out []string
	for _, d := range []string{cfg.Multus.NetworkConfDir, cfg.Multus.ConfDir, cfg.Multus.BinDir, dirOf(cfg.DevicePlugin.ConfigPath), "/etc/systemd/network", "/etc/modprobe.d"} {
		if p, err := n.Root.Path(d); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// watchSink logs drift at warning (journalctl -p warning -u nodeprep-watch),
// writes the doctor textfile and publishes the Node condition.
type watchSink struct {
	log        *slog.Logger
	root       hostfs.Root
	metricsDir string
	metrics    *metrics.Doctor
	checks     []doctor.Check
	node       *nodestatus.Publisher
}

func (s *watchSink) Report(ctx context.Context, r doctor.Report, standing []watch.Drift) {
	s.metrics.Record(r, s.checks, float64(time.Now().UnixNano())/1e9)
	s.flush()
	if s.node != nil {
		if changed, err := s.node.Publish(ctx, nodestatus.FromReport(r, standing...)); err != nil {
			s.log.Warn("watch: Node condition", "error", err)
		} else if changed {
			s.log.Info("watch: Node condition changed", "condition", nodestatus.ConditionType, "worst", r.Worst())
		}
	}
}

func (s *watchSink) Drifted(_ context.Context, d watch.Drift) {
	s.metrics.Drift(d.Finding.Check)
	s.metrics.Repair(d.Finding.Check, d.Repair)
	s.flush()
	s.log.Warn("drift", "check", d.Finding.Check, "subject", d.Finding.Subject, "verdict", d.Finding.Verdict,
		"evidence", d.Finding.Evidence, "trigger", d.Trigger.Source+" "+d.Trigger.Detail, "repair", d.Repair, "why", d.Why)
}

func (s *watchSink) flush() {
	if s.metricsDir == "" {
		return
	}
	if err := s.metrics.Write(s.root, s.metricsDir); err != nil {
		s.log.Warn("watch: metrics", "error", err)
	}
}

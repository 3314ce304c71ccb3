// Package metrics writes nodeprep's node_exporter textfiles. Every writer
// builds its own registry (no global one), fills it from what it knows and
// writes the text format atomically, so node_exporter never reads half a
// file. The run writes RunFile; doctor and the watcher write DoctorFile:
// node_exporter merges every *.prom of its textfile directory, and two
// processes never write one file.
package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"path"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
)

// DefaultDir is node_exporter's --collector.textfile.directory as the EKS
// and Prometheus community charts mount it on the host.
const DefaultDir = "/var/lib/node_exporter/textfile_collector"

// File names in the textfile directory.
const (
	RunFile    = "nodeprep.prom"
	DoctorFile = "nodeprep_doctor.prom"
)

// Run is the metrics of one `nodeprep run`.
type Run struct {
	reg          *prometheus.Registry
	runDuration  *prometheus.GaugeVec
	runSuccess   *prometheus.GaugeVec
	runTimestamp prometheus.Gauge
	stepDuration *prometheus.GaugeVec
	stepOutcome  *prometheus.GaugeVec
	stepChanges  *prometheus.GaugeVec
	ec2Calls     *prometheus.CounterVec
	eniStage     *prometheus.GaugeVec
	attachToNIC  *prometheus.GaugeVec
	attachHist   prometheus.Histogram
}

// NewRun builds the run's registry.
func NewRun() *Run {
	r := &Run{reg: prometheus.NewRegistry()}
	r.runDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_run_duration_seconds", Help: "How long the last nodeprep run or plan took."}, []string{"command"})
	r.runSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_run_success", Help: "1 when the last run succeeded (or had no config), 0 when it failed."}, []string{"command", "result"})
	r.runTimestamp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeprep_run_finished_timestamp_seconds", Help: "When the last run finished, in Unix seconds."})
	r.stepDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_step_duration_seconds", Help: "How long each step of the last run took."}, []string{"step"})
	r.stepOutcome = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_step_outcome", Help: "1 for the outcome each step of the last run ended with."}, []string{"step", "outcome"})
	r.stepChanges = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_step_changes", Help: "Changes each step of the last run made to the node."}, []string{"step"})
	r.ec2Calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodeprep_ec2_requests_total", Help: "EC2 API requests of the last run, every retry attempt counted, by action and error code (ok for success)."}, []string{"action", "code"})
	r.eniStage = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_eni_stage_duration_seconds", Help: "How long each stage (create, visible, attach, attached, nic up) of each ENI the last run worked on took."}, []string{"interface", "stage"})
	r.attachToNIC = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_eni_attach_to_nic_seconds", Help: "Time from sending an ENI's attach to its NIC being ready on the host, per ENI the last run attached."}, []string{"interface"})
	// Buckets span EC2's usual attach (a few seconds) to a throttled boot
	// storm (minutes).
	r.attachHist = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nodeprep_eni_attach_to_nic_duration_seconds", Help: "Distribution of the attach-to-NIC times of the ENIs the last run attached.", Buckets: []float64{0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120}})
	r.reg.MustRegister(r.runDuration, r.runSuccess, r.runTimestamp, r.stepDuration, r.stepOutcome, r.stepChanges, r.ec2Calls, r.eniStage, r.attachToNIC, r.attachHist)
	return r
}

// EC2Request counts one EC2 request attempt.
func (r *Run) EC2Request(action string, err error) {
	r.ec2Calls.WithLabelValues(action, ErrorCode(err)).Inc()
}

// ErrorCode is the EC2 error code of err ("ok" for nil): the API's own code
// when EC2 answered, else the kind of failure.
func ErrorCode(err error) string {
	if err == nil {
		return "ok"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	var cancel *smithy.CanceledError
	if errors.As(err, &cancel) {
		return "canceled"
	}
	return "transport"
}

// Record fills the run and step metrics from the run's state record.
func (r *Run) Record(f *state.File) {
	r.runDuration.WithLabelValues(f.Command).Set(f.Duration.Seconds())
	ok := 0.0
	if f.Result == state.ResultSucceeded || f.Result == state.ResultNoConfig {
		ok = 1
	}
	r.runSuccess.WithLabelValues(f.Command, f.Result).Set(ok)
	if !f.Finished.IsZero() {
		r.runTimestamp.Set(float64(f.Finished.UnixNano()) / 1e9)
	}
	for _, s := range f.Steps {
		r.stepDuration.WithLabelValues(s.Name).Set(s.Duration.Seconds())
		for _, o := range []engine.Outcome{engine.Succeeded, engine.Failed, engine.Skipped} {
			v := 0.0
			if s.Outcome == o {
				v = 1
			}
			r.stepOutcome.WithLabelValues(s.Name, string(o)).Set(v)
		}
		r.stepChanges.WithLabelValues(s.Name).Set(float64(len(s.Changes)))
	}
	for name, in := range f.Interfaces {
		for _, sp := range in.ENISpans(f.Started) {
			r.eniStage.WithLabelValues(name, sp.Stage).Set(sp.Duration().Seconds())
		}
		if d, ok := in.AttachToNIC(f.Started); ok {
			r.attachToNIC.WithLabelValues(name).Set(d.Seconds())
			r.attachHist.Observe(d.Seconds())
		}
	}
}

// Gatherer exposes the registry (for tests and promlint).
func (r *Run) Gatherer() prometheus.Gatherer { return r.reg }

// Write writes the run's file into dir under root.
func (r *Run) Write(root hostfs.Root, dir string) error {
	return write(root, path.Join(dir, RunFile), r.reg)
}

// Doctor is the metrics of doctor runs and the watcher's drift events.
type Doctor struct {
	reg      *prometheus.Registry
	verdicts *prometheus.GaugeVec
	duration prometheus.Gauge
	stamp    prometheus.Gauge
	drift    *prometheus.CounterVec
	repairs  *prometheus.CounterVec
}

// NewDoctor builds the doctor's registry.
func NewDoctor() *Doctor {
	d := &Doctor{reg: prometheus.NewRegistry()}
	d.verdicts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeprep_doctor_findings", Help: "Findings of the last doctor run, by check and verdict."}, []string{"check", "verdict"})
	d.duration = prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeprep_doctor_duration_seconds", Help: "How long the last doctor run took."})
	d.stamp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "nodeprep_doctor_last_run_timestamp_seconds", Help: "When the last doctor run finished, in Unix seconds."})
	d.drift = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodeprep_drift_events_total", Help: "Checks that went from ok to warn or fail while the watcher ran, by check."}, []string{"check"})
	d.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nodeprep_drift_repairs_total", Help: "Drift the watcher repaired, by check and result (repaired, refused, failed)."}, []string{"check", "result"})
	d.reg.MustRegister(d.verdicts, d.duration, d.stamp, d.drift, d.repairs)
	return d
}

// Record sets the verdict gauges from one report, every check and verdict
// present (0 when none), so a cleared problem reads 0 and not absent.
func (d *Doctor) Record(r doctor.Report, checks []doctor.Check, finished float64) {
	d.verdicts.Reset()
	for _, c := range checks {
		for _, v := range []doctor.Verdict{doctor.OK, doctor.Warn, doctor.Fail} {
			d.verdicts.WithLabelValues(c.Name, string(v))
		}
	}
	for _, f := range r.Findings {
		d.verdicts.WithLabelValues(f.Check, string(f.Verdict)).Inc()
	}
	d.duration.Set(r.Duration.Seconds())
	d.stamp.Set(finished)
}

// Drift counts one check that went bad.
func (d *Doctor) Drift(check string) { d.drift.WithLabelValues(check).Inc() }

// Repair counts one repair attempt's result.
func (d *Doctor) Repair(check, result string) { d.repairs.WithLabelValues(check, result).Inc() }

// Gatherer exposes the registry.
func (d *Doctor) Gatherer() prometheus.Gatherer { return d.reg }

// Write writes the doctor's file into dir under root.
func (d *Doctor) Write(root hostfs.Root, dir string) error {
	return write(root, path.Join(dir, DoctorFile), d.reg)
}

// Encode renders a registry in the text exposition format.
func Encode(g prometheus.Gatherer) ([]byte, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// write renders g and replaces hostPath atomically (hostfs writes a temp
// file and renames it).
func write(root hostfs.Root, hostPath string, g prometheus.Gatherer) error {
	data, err := Encode(g)
	if err != nil {
		return fmt.Errorf("metrics %s: %w", hostPath, err)
	}
	if _, err := root.WriteFile(hostPath, data, 0o644); err != nil {
		return fmt.Errorf("metrics %s: %w", hostPath, err)
	}
	return nil
}

package metrics

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/state"
)

func sampleRun() *state.File {
	t0 := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	return &state.File{Command: "run", Result: state.ResultSucceeded, Started: t0, Finished: t0.Add(41 * time.Second), Duration: 41 * time.Second,
		Steps: []engine.Result{
			{Name: "enis", Outcome: engine.Succeeded, Started: t0, Duration: 35 * time.Second, Changes: []engine.ChangeRecord{{What: "create"}, {What: "attach"}}},
			{Name: "cni", Outcome: engine.Failed, Started: t0, Duration: time.Second},
		}}
}

// lint runs promlint, the linter behind `promtool check metrics`, on the
// file as node_exporter would read it.
func lint(t *testing.T, data []byte) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(string(data))).Lint()
	if err != nil {
		t.Fatalf("promlint: %v\n%s", err, data)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestRunFileIsLintCleanAndCarriesTheRun(t *testing.T) {
	root := hostfs.New(t.TempDir())
	m := NewRun()
	m.Record(sampleRun())
	m.EC2Request("CreateNetworkInterface", nil)
	m.EC2Request("CreateNetworkInterface", &smithy.GenericAPIError{Code: "RequestLimitExceeded"})
	m.EC2Request("AttachNetworkInterface", errors.New("dial tcp: connection refused"))
	if err := m.Write(root, DefaultDir); err != nil {
		t.Fatal(err)
	}
	data, err := root.ReadFile(DefaultDir + "/" + RunFile)
	if err != nil {
		t.Fatal(err)
	}
	lint(t, data)
	t.Logf("\n%s", data)
	// What the file says is what was recorded, read back by the
	// Prometheus text parser.
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := mfs["nodeprep_step_outcome"]; got == nil || len(got.Metric) != 6 {
		t.Fatalf("step outcomes: %v", got)
	}
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(`
# HELP nodeprep_ec2_requests_total EC2 API requests of the last run, every retry attempt counted, by action and error code (ok for success).
# TYPE nodeprep_ec2_requests_total counter
nodeprep_ec2_requests_total{action="AttachNetworkInterface",code="transport"} 1
nodeprep_ec2_requests_total{action="CreateNetworkInterface",code="RequestLimitExceeded"} 1
nodeprep_ec2_requests_total{action="CreateNetworkInterface",code="ok"} 1
# HELP nodeprep_run_success 1 when the last run succeeded (or had no config), 0 when it failed.
# TYPE nodeprep_run_success gauge
nodeprep_run_success{command="run",result="succeeded"} 1
# HELP nodeprep_step_changes Changes each step of the last run made to the node.
# TYPE nodeprep_step_changes gauge
nodeprep_step_changes{step="cni"} 0
nodeprep_step_changes{step="enis"} 2
`), "nodeprep_ec2_requests_total", "nodeprep_run_success", "nodeprep_step_changes"); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorFileIsLintCleanAndZeroesClearedProblems(t *testing.T) {
	root := hostfs.New(t.TempDir())
	d := NewDoctor()
	checks := doctor.Checks()
	d.Record(doctor.Report{Findings: []doctor.Finding{{Check: "driver", Verdict: doctor.Fail}}, Duration: 3 * time.Millisecond}, checks, 1764680000)
	d.Drift("driver")
	d.Repair("conflist", "repaired")
	d.Record(doctor.Report{Findings: []doctor.Finding{{Check: "driver", Verdict: doctor.OK}}}, checks, 1764680001)
	if err := d.Write(root, DefaultDir); err != nil {
		t.Fatal(err)
	}
	data, err := root.ReadFile(DefaultDir + "/" + DoctorFile)
	if err != nil {
		t.Fatal(err)
	}
	lint(t, data)
	if !strings.Contains(string(data), `nodeprep_doctor_findings{check="driver",verdict="fail"} 0`) {
		t.Fatalf("a cleared failure must read 0:\n%s", data)
	}
	if !strings.Contains(string(data), `nodeprep_drift_events_total{check="driver"} 1`) {
		t.Fatalf("drift not counted:\n%s", data)
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	root := hostfs.New(dir)
	m := NewRun()
	m.Record(sampleRun())
	if err := m.Write(root, DefaultDir); err != nil {
		t.Fatal(err)
	}
	p, _ := root.Path(DefaultDir)
	entries, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	// node_exporter reads every *.prom: no temp file may be left with that suffix.
	for _, e := range entries {
		if e.Name() != RunFile {
			t.Errorf("left %s in the textfile directory", e.Name())
		}
	}
}

// The judge can fail: promlint rejects what a careless metric would be.
func TestPromlintRejectsABadMetric(t *testing.T) {
	bad := "# HELP nodeprep_requests_total x\n# TYPE nodeprep_requests_total gauge\nnodeprep_requests_total 1\n"
	problems, err := promlint.New(strings.NewReader(bad)).Lint()
	if err != nil || len(problems) == 0 {
		t.Fatalf("promlint accepted a gauge named _total: %v %v", problems, err)
	}
}

// The run file carries each ENI's stages and attach-to-NIC time: only of
// ENIs this run attached (n4 was adopted, its record an earlier run's).
func TestRunFileCarriesTheENIStages(t *testing.T) {
	f := sampleRun()
	at := func(ms int) time.Time { return f.Started.Add(time.Duration(ms) * time.Millisecond) }
	f.Interfaces = map[string]state.Interface{
		"n2": {Name: "n2", ENI: eni.Attachment{Stages: eni.Stages{Begin: at(0), Created: at(500), Visible: at(1500), Attach: at(1600), Attached: at(4000)}}, Link: link.Info{Ready: at(4500)}},
		"n3": {Name: "n3", ENI: eni.Attachment{Stages: eni.Stages{Begin: at(0), Attach: at(100), Attached: at(1000)}}, Link: link.Info{Ready: at(1100)}},
		"n4": {Name: "n4", ENI: eni.Attachment{Stages: eni.Stages{Begin: at(-9000), Attach: at(-8000)}}, Link: link.Info{Ready: at(1000)}},
	}
	m := NewRun()
	m.Record(f)
	data, err := Encode(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	lint(t, data)
	t.Logf("\n%s", data)
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(`
# HELP nodeprep_eni_attach_to_nic_seconds Time from sending an ENI's attach to its NIC being ready on the host, per ENI the last run attached.
# TYPE nodeprep_eni_attach_to_nic_seconds gauge
nodeprep_eni_attach_to_nic_seconds{interface="n2"} 3
nodeprep_eni_attach_to_nic_seconds{interface="n3"} 1.1
# HELP nodeprep_eni_attach_to_nic_duration_seconds Distribution of the attach-to-NIC times of the ENIs the last run attached.
# TYPE nodeprep_eni_attach_to_nic_duration_seconds histogram
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="0.5"} 0
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="1"} 0
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="2"} 1
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="3"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="5"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="8"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="13"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="20"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="30"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="60"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="120"} 2
nodeprep_eni_attach_to_nic_duration_seconds_bucket{le="+Inf"} 2
nodeprep_eni_attach_to_nic_duration_seconds_sum 4.1
nodeprep_eni_attach_to_nic_duration_seconds_count 2
`), "nodeprep_eni_attach_to_nic_seconds", "nodeprep_eni_attach_to_nic_duration_seconds"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `nodeprep_eni_stage_duration_seconds{interface="n2",stage="attached"} 2.4`) {
		t.Errorf("stage durations missing")
	}
}

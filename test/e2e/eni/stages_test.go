package eni_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/metrics"
	"github.com/nodeprep/nodeprep/internal/timeline"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// TestENIStagesAreRecordedInOrderAndCharted runs the ENI and link steps
// against the simulator, with EC2's visibility and attach delays, and reads
// back from the state file each ENI's stages: every one passed, in order,
// closed by the NIC being ready; the timeline draws them with the critical
// ENI marked, and the run's metrics carry the attach-to-NIC time, lint
// clean. A re-run, which only adopts, records no stages of its own.
func TestENIStagesAreRecordedInOrderAndCharted(t *testing.T) {
	ms := time.Millisecond
	e := newEnv(t, envSpec{timing: ec2sim.Timing{
		Visibility:  ec2sim.Latency{Base: 100 * ms, Jitter: 200 * ms},
		AttachDelay: ec2sim.Latency{Base: 200 * ms, Jitter: 300 * ms},
	}})
	ifaces := threeInterfaces(e)
	res := e.run(context.Background(), ifaces, false)
	if res.err != nil {
		t.Fatalf("run: %v", res.err)
	}
	f := res.state
	for _, in := range ifaces {
		rec := f.Interfaces[in.Name]
		st := rec.ENI.Stages
		stamps := []struct {
			name string
			at   time.Time
		}{{"run start", f.Started}, {"begin", st.Begin}, {"created", st.Created}, {"visible", st.Visible}, {"attach", st.Attach}, {"attached", st.Attached}, {"nic ready", rec.Link.Ready}}
		for i, s := range stamps {
			if s.at.IsZero() {
				t.Errorf("%s: stage %s not recorded: %+v", in.Name, s.name, st)
				continue
			}
			if i > 0 && s.at.Before(stamps[i-1].at) {
				t.Errorf("%s: %s (%s) before %s (%s)", in.Name, s.name, s.at.Format(time.StampMicro), stamps[i-1].name, stamps[i-1].at.Format(time.StampMicro))
			}
		}
		var names []string
		for _, sp := range rec.ENISpans(f.Started) {
			names = append(names, sp.Stage)
		}
		if got, want := strings.Join(names, ","), strings.Join(eni.StageNames(), ","); got != want {
			t.Errorf("%s: spans %s, want %s", in.Name, got, want)
		}
	}

	var chart bytes.Buffer
	if err := timeline.Write(&chart, &f, timeline.Options{Width: 50}); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", chart.String())
	out := chart.String()
	crit := timeline.ENIs(&f)[timeline.CriticalENI(timeline.ENIs(&f))].Interface
	for _, in := range ifaces {
		line := lineStarting(out, in.Name+" "+f.Interfaces[in.Name].ENI.ENIID)
		if line == "" {
			t.Errorf("no ENI line for %s", in.Name)
			continue
		}
		if marked := strings.HasPrefix(line, "* "); marked != (in.Name == crit) {
			t.Errorf("%s marked critical=%t, critical ENI is %s: %q", in.Name, marked, crit, line)
		}
	}
	for _, stage := range eni.StageNames() {
		if strings.Count(out, "    "+stage+" ") != len(ifaces) {
			t.Errorf("stage %q not drawn for each of %d ENIs", stage, len(ifaces))
		}
	}

	m := metrics.NewRun()
	m.Record(&f)
	data, err := metrics.Encode(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(bytes.NewReader(data)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if g := mfs["nodeprep_eni_attach_to_nic_seconds"]; g == nil || len(g.Metric) != len(ifaces) {
		t.Errorf("attach-to-NIC gauge: %v", g)
	} else {
		for _, mt := range g.Metric {
			if mt.GetGauge().GetValue() <= 0 {
				t.Errorf("attach-to-NIC %v", mt)
			}
		}
	}
	if h := mfs["nodeprep_eni_attach_to_nic_duration_seconds"]; h == nil || h.Metric[0].GetHistogram().GetSampleCount() != uint64(len(ifaces)) {
		t.Errorf("attach-to-NIC histogram: %v", h)
	}

	again := e.run(context.Background(), ifaces, false)
	if again.err != nil {
		t.Fatalf("re-run: %v", again.err)
	}
	if got := timeline.ENIs(&again.state); len(got) != 0 {
		t.Errorf("the re-run adopted every ENI, yet it shows stages: %+v", got)
	}
}

func lineStarting(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " *"), prefix) {
			return l
		}
	}
	return ""
}

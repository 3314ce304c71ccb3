package timeline

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/state"
)

// run is a run shaped like a real one: config first; enis and hugepages
// in parallel after it; links after enis; cni after config.
func run() *state.File {
	t0 := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return &state.File{
		Command: "run", Result: state.ResultSucceeded, Started: t0, Duration: ms(40000),
		Steps: []engine.Result{
			{Name: "config", Outcome: engine.Succeeded, Started: at(0), Duration: ms(5)},
			{Name: "hugepages", After: []string{"config"}, Outcome: engine.Succeeded, Started: at(5), Duration: ms(1200)},
			{Name: "cni", After: []string{"config"}, Outcome: engine.Succeeded, Started: at(5), Duration: ms(800)},
			{Name: "enis", After: []string{"config"}, Outcome: engine.Succeeded, Started: at(5), Duration: ms(35000), Changes: []engine.ChangeRecord{
				{What: "create ENI for n2", Started: at(10), Duration: ms(900)},
				{What: "attach eni-1 for n2", Started: at(950), Duration: ms(34000)},
			}},
			{Name: "links", After: []string{"enis"}, Outcome: engine.Succeeded, Started: at(35005), Duration: ms(4990), Changes: []engine.ChangeRecord{
				{What: "set eth1 (n2) up", Started: at(39000), Duration: ms(10)},
			}},
		},
	}
}

func TestCriticalPathFollowsTheLongestWait(t *testing.T) {
	if got := strings.Join(CriticalPath(run().Steps), ","); got != "config,enis,links" {
		t.Fatalf("critical path %s", got)
	}
}

func TestCriticalPathWithoutRecordedAfter(t *testing.T) {
	f := run()
	for i := range f.Steps {
		f.Steps[i].After = nil
	}
	if got := strings.Join(CriticalPath(f.Steps), ","); got != "config,enis,links" {
		t.Fatalf("critical path %s", got)
	}
}

func TestChartMarksCriticalStepsAndPlacesBars(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, run(), Options{Width: 40, Changes: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " *"), prefix) {
				return l
			}
		}
		t.Fatalf("no line for %s in\n%s", prefix, out)
		return ""
	}
	if l := find("enis"); !strings.HasPrefix(l, "* ") || !strings.Contains(l, "█") {
		t.Errorf("enis not marked critical: %q", l)
	}
	if l := find("hugepages"); strings.HasPrefix(l, "* ") || !strings.Contains(l, "░") {
		t.Errorf("hugepages marked critical: %q", l)
	}
	// links starts at 35 s of 40 s: its bar begins at column 35/40*40 = 35.
	l := find("links")
	bar := []rune(l)[labelWidth+1:]
	if i := strings.IndexRune(string(bar), '█'); len([]rune(string(bar)[:i])) != 35 {
		t.Errorf("links bar starts at column %d: %q", len([]rune(string(bar)[:i])), l)
	}
	if !strings.Contains(out, "attach eni-1 for n2") {
		t.Errorf("changes not drawn")
	}
}

// withENIs adds two ENIs to run(): n2's attach takes 34 s, n3 is quick
// but its NIC is readied last (the links step readies all at once, so that
// order is noise); n4's record is left from an earlier run.
func withENIs() *state.File {
	f := run()
	at := func(ms int) time.Time { return f.Started.Add(time.Duration(ms) * time.Millisecond) }
	f.Interfaces = map[string]state.Interface{
		"n2": {Name: "n2", ENI: eni.Attachment{ENIID: "eni-2", Stages: eni.Stages{Begin: at(10), Created: at(900), Visible: at(1500), Attach: at(1600), Attached: at(34950)}}, Link: link.Info{Ready: at(39000)}},
		"n3": {Name: "n3", ENI: eni.Attachment{ENIID: "eni-3", Stages: eni.Stages{Begin: at(10), Created: at(500), Visible: at(1000), Attach: at(1100), Attached: at(4000)}}, Link: link.Info{Ready: at(39500)}},
		"n4": {Name: "n4", ENI: eni.Attachment{ENIID: "eni-4", Stages: eni.Stages{Begin: at(-60000), Created: at(-59000), Attach: at(-58000), Attached: at(-50000)}}, Link: link.Info{Ready: at(-49000)}},
	}
	return f
}

func TestChartDrawsEachENIsStagesWithTheCriticalOneMarked(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, withENIs(), Options{Width: 40}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	idx := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " *"), prefix) {
				return i
			}
		}
		return -1
	}
	n2, n3 := idx("n2 eni-2"), idx("n3 eni-3")
	if n2 < 0 || n3 < 0 {
		t.Fatalf("ENI lines missing:\n%s", out)
	}
	if idx("n4 eni-4") >= 0 {
		t.Errorf("the earlier run's ENI is drawn")
	}
	if !strings.HasPrefix(lines[n2], "* ") || strings.HasPrefix(lines[n3], "* ") {
		t.Errorf("n2 (attached last) not the one marked critical:\n%s\n%s", lines[n2], lines[n3])
	}
	if !strings.Contains(out, "* critical: n2 (longest stage: attached, 33.35s)") {
		t.Errorf("no critical ENI summary")
	}
	var stages []string
	for _, l := range lines[n2+1 : n3] {
		stages = append(stages, strings.Fields(l)[0])
	}
	if got := strings.Join(stages, ","); got != "create,visible,attach,attached,nic" {
		t.Errorf("n2 stages drawn %s", got)
	}
	// n2's attached stage runs 1.6 s to 34.95 s of 40 s: columns 1 to 34.
	bar := []rune(lines[n2+4])[labelWidth+1:]
	if i := strings.IndexRune(string(bar), '█'); len([]rune(string(bar)[:i])) != 1 || strings.Count(string(bar), "█") != 34-1 {
		t.Errorf("attached bar misplaced: %q", lines[n2+4])
	}
}

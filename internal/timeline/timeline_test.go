package timeline

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
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

package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nodeprep/nodeprep/internal/change"
)

func TestRunOrdersDependenciesAndOverlapsIndependentSteps(t *testing.T) {
	// hugepages and enis share no edge, so each must be able to start while
	// the other is still running: each waits for the other to have started.
	hpStarted, eniStarted := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	steps := []Step{
		{Name: "config", Run: func(context.Context, change.Actions) error { note("config"); return nil }},
		{Name: "hugepages", After: []string{"config"}, Run: func(ctx context.Context, _ change.Actions) error {
			close(hpStarted)
			<-eniStarted
			note("hugepages")
			return nil
		}},
		{Name: "enis", After: []string{"config"}, Run: func(ctx context.Context, _ change.Actions) error {
			close(eniStarted)
			<-hpStarted
			note("enis")
			return nil
		}},
		{Name: "bind", After: []string{"enis", "hugepages"}, Run: func(context.Context, change.Actions) error { note("bind"); return nil }},
	}
	rep, err := Run(context.Background(), steps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if order[0] != "config" || order[3] != "bind" {
		t.Errorf("order = %v", order)
	}
	if len(rep.Steps) != 4 {
		t.Errorf("report has %d steps", len(rep.Steps))
	}
}

func TestFailureSkipsDependentsButNotIndependents(t *testing.T) {
	boom := errors.New("boom")
	ran := map[string]bool{}
	var mu sync.Mutex
	mark := func(n string) { mu.Lock(); ran[n] = true; mu.Unlock() }
	steps := []Step{
		{Name: "enis", Run: func(context.Context, change.Actions) error { mark("enis"); return boom }},
		{Name: "bind", After: []string{"enis"}, Run: func(context.Context, change.Actions) error { mark("bind"); return nil }},
		{Name: "hugepages", Run: func(context.Context, change.Actions) error { mark("hugepages"); return nil }},
	}
	rep, err := Run(context.Background(), steps, Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	var se *StepError
	if !errors.As(err, &se) || se.Step != "enis" {
		t.Errorf("StepError = %v", se)
	}
	if ran["bind"] || !ran["hugepages"] {
		t.Errorf("ran = %v", ran)
	}
	outcomes := map[string]Outcome{}
	for _, s := range rep.Steps {
		outcomes[s.Name] = s.Outcome
	}
	want := map[string]Outcome{"enis": Failed, "bind": Skipped, "hugepages": Succeeded}
	for k, v := range want {
		if outcomes[k] != v {
			t.Errorf("%s = %s, want %s", k, outcomes[k], v)
		}
	}
	if got := rep.Failed(); len(got) != 1 || got[0] != "enis" {
		t.Errorf("Failed() = %v", got)
	}
}

func TestDryRunRecordsButDoesNotAct(t *testing.T) {
	acted := false
	var statuses []string
	steps := []Step{{Name: "cni", Run: func(ctx context.Context, act change.Actions) error {
		act.Status("installing %d plugins", 3)
		return act.Do(ctx, "install multus", func(context.Context) error { acted = true; return nil })
	}}}
	rep, err := Run(context.Background(), steps, Options{DryRun: true, Status: func(s string) { statuses = append(statuses, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if acted {
		t.Error("DryRun ran the change")
	}
	if rep.Changes() != 1 || rep.Steps[0].Changes[0].What != "install multus" {
		t.Errorf("changes = %+v", rep.Steps[0].Changes)
	}
	if len(statuses) != 1 || statuses[0] != "installing 3 plugins" {
		t.Errorf("statuses = %v", statuses)
	}
}

func TestValidateRejectsBadGraphs(t *testing.T) {
	nop := func(context.Context, change.Actions) error { return nil }
	cases := map[string][]Step{
		"duplicate": {{Name: "a", Run: nop}, {Name: "a", Run: nop}},
		"unknown":   {{Name: "a", After: []string{"zz"}, Run: nop}},
		"cycle":     {{Name: "a", After: []string{"b"}, Run: nop}, {Name: "b", After: []string{"a"}, Run: nop}},
		"no run":    {{Name: "a"}},
	}
	for name, steps := range cases {
		if err := Validate(steps); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestCancelledContextSkipsWaitingSteps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	steps := []Step{
		{Name: "a", Run: func(context.Context, change.Actions) error { cancel(); return nil }},
		{Name: "b", After: []string{"a"}, Run: func(context.Context, change.Actions) error { t.Error("b ran after cancel"); return nil }},
	}
	rep, _ := Run(ctx, steps, Options{})
	for _, s := range rep.Steps {
		if s.Name == "b" && s.Outcome != Skipped {
			t.Errorf("b = %s", s.Outcome)
		}
	}
}

// A sub-graph keeps the graph's own edges: the steps asked for run, what they
// come after is stubbed, and the rest is left out.
func TestSubgraphStubsPredecessors(t *testing.T) {
	var mu sync.Mutex
	ran := map[string]bool{}
	step := func(name string, after ...string) Step {
		return Step{Name: name, After: after, Run: func(context.Context, change.Actions) error {
			mu.Lock()
			ran[name] = true
			mu.Unlock()
			return nil
		}}
	}
	graph := []Step{step("config"), step("enis", "config"), step("links", "enis"), step("modules", "config"), step("bind", "links", "modules"), step("cni", "config")}
	sub, err := Subgraph(graph, "modules", "bind")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), sub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 5 {
		t.Errorf("ran %d steps, want config, enis, links stubbed and modules, bind", len(rep.Steps))
	}
	for name, want := range map[string]bool{"config": false, "enis": false, "links": false, "modules": true, "bind": true, "cni": false} {
		if ran[name] != want {
			t.Errorf("%s ran = %t, want %t", name, ran[name], want)
		}
	}
	if _, err := Subgraph(graph, "nope"); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("unknown step: %v", err)
	}
}

// Plan outside a dry run means a step skipped a change it had to make.
func TestPlanOutsideDryRunIsAnError(t *testing.T) {
	steps := []Step{{Name: "links", Run: func(ctx context.Context, act change.Actions) error {
		act.Plan("wait for the NIC")
		return nil
	}}}
	for _, dry := range []bool{true, false} {
		rep, _ := Run(context.Background(), steps, Options{DryRun: dry})
		c := rep.Steps[0].Changes
		if len(c) != 1 || (c[0].Error == "") != dry {
			t.Errorf("dryRun %t: %+v", dry, c)
		}
	}
}

// The declared reads prove the After edges, both ways.
func TestAfterEdgesMatchDeclaredReads(t *testing.T) {
	nop := func(context.Context, change.Actions) error { return nil }
	good := []Step{
		{Name: "enis", Makes: []string{"eni"}, Run: nop},
		{Name: "links", After: []string{"enis"}, Reads: []string{"eni"}, Makes: []string{"link"}, Run: nop},
		{Name: "bind", After: []string{"links"}, Reads: []string{"eni", "link"}, Run: nop},
	}
	if err := Validate(good); err != nil {
		t.Fatal(err)
	}
	missing := slices.Clone(good)
	missing[2].After = nil // reads link and eni without coming after their makers
	if err := Validate(missing); !errors.Is(err, ErrInvalidGraph) || !strings.Contains(err.Error(), `does not come after`) {
		t.Errorf("a read without its edge: %v", err)
	}
	unjustified := slices.Clone(good)
	unjustified[2].Reads = []string{"eni"} // after links, but reads nothing links makes
	if err := Validate(unjustified); !errors.Is(err, ErrInvalidGraph) || !strings.Contains(err.Error(), `reads nothing it makes`) {
		t.Errorf("an edge without a read: %v", err)
	}
}

package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestRunOrdersDependenciesAndOverlapsIndependentSteps(t *testing.T) {
	// hugepages and enis share no edge, so each must be able to start while
	// the other is still running: each waits for the other to have started.
	hpStarted, eniStarted := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	steps := []Step{
		{Name: "config", Run: func(context.Context, Actions) error { note("config"); return nil }},
		{Name: "hugepages", After: []string{"config"}, Run: func(ctx context.Context, _ Actions) error {
			close(hpStarted)
			<-eniStarted
			note("hugepages")
			return nil
		}},
		{Name: "enis", After: []string{"config"}, Run: func(ctx context.Context, _ Actions) error {
			close(eniStarted)
			<-hpStarted
			note("enis")
			return nil
		}},
		{Name: "bind", After: []string{"enis", "hugepages"}, Run: func(context.Context, Actions) error { note("bind"); return nil }},
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
		{Name: "enis", Run: func(context.Context, Actions) error { mark("enis"); return boom }},
		{Name: "bind", After: []string{"enis"}, Run: func(context.Context, Actions) error { mark("bind"); return nil }},
		{Name: "hugepages", Run: func(context.Context, Actions) error { mark("hugepages"); return nil }},
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
	steps := []Step{{Name: "cni", Run: func(ctx context.Context, act Actions) error {
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
	nop := func(context.Context, Actions) error { return nil }
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
		{Name: "a", Run: func(context.Context, Actions) error { cancel(); return nil }},
		{Name: "b", After: []string{"a"}, Run: func(context.Context, Actions) error { t.Error("b ran after cancel"); return nil }},
	}
	rep, _ := Run(ctx, steps, Options{})
	for _, s := range rep.Steps {
		if s.Name == "b" && s.Outcome != Skipped {
			t.Errorf("b = %s", s.Outcome)
		}
	}
}

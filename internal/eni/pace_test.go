package eni

import (
	"testing"
	"time"
)

// Throttles slow one action down fast, a granted call speeds it up again,
// and another action starts from what the node learned.
func TestPacerBacksOffOnThrottles(t *testing.T) {
	p := newPacer()
	now := time.Now()
	if got := p.spacing("AttachNetworkInterface", now); got != 0 {
		t.Fatalf("fresh spacing %v, want none (never throttled)", got)
	}
	for range 3 {
		p.answered("AttachNetworkInterface", true)
	}
	if got := p.levelOf("AttachNetworkInterface"); got != paceGrowth*paceGrowth*paceGrowth {
		t.Errorf("level after 3 throttles %v, want %v", got, paceGrowth*paceGrowth*paceGrowth)
	}
	// Capped by half the throttled time, plus a second.
	if got := p.spacing("AttachNetworkInterface", now.Add(20*time.Second)); got > 11*time.Second+time.Second {
		t.Errorf("spacing after 20 s throttled %v, want at most ~11 s", got)
	}
	if got := p.spacing("AttachNetworkInterface", now.Add(10*time.Minute)); got != time.Duration(paceGrowth*paceGrowth*paceGrowth*float64(200*time.Millisecond)) {
		t.Errorf("uncapped spacing %v", got)
	}
	p.answered("ModifyNetworkInterfaceAttribute", true)
	if got := p.levelOf("ModifyNetworkInterfaceAttribute"); got != paceGrowth*paceGrowth {
		t.Errorf("a new action's first throttle: level %v, want a step below the attach's (%v)", got, paceGrowth*paceGrowth)
	}
	for range 20 {
		p.answered("AttachNetworkInterface", false)
	}
	if got := p.levelOf("AttachNetworkInterface"); got != 1 {
		t.Errorf("level after 20 granted calls %v, want 1", got)
	}
	if _, ok := p.since["AttachNetworkInterface"]; ok {
		t.Error("the throttle streak did not end")
	}
}

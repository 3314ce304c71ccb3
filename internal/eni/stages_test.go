package eni

import (
	"testing"
	"time"
)

func TestSpansFollowTheStagesPassed(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name  string
		st    Stages
		nicUp time.Time
		want  []Span
		a2n   time.Duration
	}{
		{"created", Stages{Begin: at(0), Created: at(300), Visible: at(900), Attach: at(1000), Attached: at(4000)}, at(4500),
			[]Span{{StageCreate, at(0), at(300)}, {StageVisible, at(300), at(900)}, {StageAttach, at(900), at(1000)}, {StageAttached, at(1000), at(4000)}, {StageNICUp, at(4000), at(4500)}}, 3600 * time.Millisecond},
		// The visibility window closed unseen: the attach spans the wait.
		{"never visible", Stages{Begin: at(0), Created: at(300), Attach: at(20300), Attached: at(21000)}, time.Time{},
			[]Span{{StageCreate, at(0), at(300)}, {StageAttach, at(300), at(20300)}, {StageAttached, at(20300), at(21000)}}, 0},
		{"reattached", Stages{Begin: at(0), Attach: at(200), Attached: at(2000)}, at(2100),
			[]Span{{StageAttach, at(0), at(200)}, {StageAttached, at(200), at(2000)}, {StageNICUp, at(2000), at(2100)}}, 2100 * time.Millisecond},
		// A clock step back draws an empty span, never a negative one.
		{"clock step", Stages{Begin: at(1000), Created: at(900)}, time.Time{}, []Span{{StageCreate, at(1000), at(1000)}}, 0},
		{"adopted", Stages{}, at(50), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.st.Spans(tc.nicUp)
			if len(got) != len(tc.want) {
				t.Fatalf("spans %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("span %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			d, ok := tc.st.AttachToNIC(tc.nicUp)
			if ok != (tc.a2n != 0) || d != tc.a2n {
				t.Errorf("attach to NIC %s %t, want %s", d, ok, tc.a2n)
			}
		})
	}
}

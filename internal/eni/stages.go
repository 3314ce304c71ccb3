package eni

import "time"

// Stages are the moments one ENI passed on its way to the host in this
// run, stamped where each happens (ensure, attach, the attach wait): the
// one home of these times. An adopted ENI has none (nothing was done); a
// reattached one starts at its attach. `status --timeline` draws them and
// the run's metrics export the attach-to-NIC time from them.
type Stages struct {
	// Begin is when this run started on the ENI: the create sent, or for
	// a reattached ENI the attach.
	Begin time.Time `json:"begin,omitzero"`
	// Created is when CreateNetworkInterface answered with the ENI.
	Created time.Time `json:"created,omitzero"`
	// Visible is when a filtered describe first showed the new ENI (zero
	// when the visibility window closed first and the attach was tried
	// anyway).
	Visible time.Time `json:"visible,omitzero"`
	// Attach is when AttachNetworkInterface accepted the attach.
	Attach time.Time `json:"attach,omitzero"`
	// Attached is when the attachment was seen effective: the NIC on the
	// host, IMDS listing its MAC, or EC2 saying "attached".
	Attached time.Time `json:"attached,omitzero"`
}

// Stage names, in the order an ENI passes them. StageNICUp ends at a time
// the links step records (link.Info.Ready), given to Spans.
const (
	StageCreate   = "create"
	StageVisible  = "visible"
	StageAttach   = "attach"
	StageAttached = "attached"
	StageNICUp    = "nic up"
)

// Span is one stage: from the previous stage's end to its own.
type Span struct {
	Stage      string
	Start, End time.Time
}

// Duration is the span's length.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Spans are the stages passed, in order, each from the end of the one
// before (Begin for the first); nicUp, when not zero, closes the last,
// "nic up". A stage not passed (zero) is left out and the next one spans
// its time. Nothing when the run did not work on the ENI.
func (s Stages) Spans(nicUp time.Time) []Span {
	if s.Begin.IsZero() {
		return nil
	}
	var out []Span
	prev := s.Begin
	for _, e := range s.ends(nicUp) {
		if e.at.IsZero() {
			continue
		}
		// Stamps of one run are ordered; a clock step must not draw a
		// negative span.
		end := e.at
		if end.Before(prev) {
			end = prev
		}
		out = append(out, Span{Stage: e.stage, Start: prev, End: end})
		prev = end
	}
	return out
}

type stageEnd struct {
	stage string
	at    time.Time
}

// ends are the stages in order, each with the time it ended.
func (s Stages) ends(nicUp time.Time) []stageEnd {
	return []stageEnd{{StageCreate, s.Created}, {StageVisible, s.Visible}, {StageAttach, s.Attach}, {StageAttached, s.Attached}, {StageNICUp, nicUp}}
}

// StageNames are the stages in the order an ENI passes them.
func StageNames() []string {
	var out []string
	for _, e := range (Stages{}).ends(time.Time{}) {
		out = append(out, e.stage)
	}
	return out
}

// AttachToNIC is the time from sending the attach to the NIC being ready
// on the host, false when the run did not attach the ENI or no NIC time is
// known.
func (s Stages) AttachToNIC(nicUp time.Time) (time.Duration, bool) {
	for _, sp := range s.Spans(nicUp) {
		if sp.Stage == StageAttach && !nicUp.IsZero() {
			return nicUp.Sub(sp.Start), true
		}
	}
	return 0, false
}

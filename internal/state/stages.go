package state

import (
	"time"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// ENISpans are the interface's ENI stages in the run that started at
// started, create to NIC up: the ENI step's stamps closed by the links
// step's ready time. A record kept from an earlier run (this one did not
// reach the ENI) shows none, and a NIC readied before this run's ENI work
// does not close it.
func (i Interface) ENISpans(started time.Time) []eni.Span {
	st := i.ENI.Stages
	if st.Begin.Before(started) {
		return nil
	}
	return st.Spans(i.nicUp())
}

// AttachToNIC is the ENI's attach-to-NIC time in the run that started at
// started, false when this run did not attach it or readied no NIC.
func (i Interface) AttachToNIC(started time.Time) (time.Duration, bool) {
	if i.ENI.Stages.Begin.Before(started) {
		return 0, false
	}
	return i.ENI.Stages.AttachToNIC(i.nicUp())
}

func (i Interface) nicUp() time.Time {
	if i.Link.Ready.Before(i.ENI.Stages.Begin) {
		return time.Time{}
	}
	return i.Link.Ready
}

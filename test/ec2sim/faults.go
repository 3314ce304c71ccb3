package ec2sim

import (
	"math/rand/v2"
	"net/url"
)

type faultState struct {
	id      int
	f       Fault
	skipped int
	hits    int
}

// InjectFault adds a fault and returns its ID for RemoveFault. Faults are
// checked in the order they were added, before throttling.
func (s *Sim) InjectFault(f Fault) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFault++
	s.faults = append(s.faults, &faultState{id: s.nextFault, f: f})
	return s.nextFault
}

// RemoveFault removes one injected fault.
func (s *Sim) RemoveFault(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fs := range s.faults {
		if fs.id == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return
		}
	}
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FaultHits returns how many times fault id has fired.
func (s *Sim) FaultHits(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fs := range s.faults {
		if fs.id == id {
			return fs.hits
		}
	}
	return 0
}

// pickFault returns the fault that fires for this call, if any (s.mu held).
// Expired faults stay listed so FaultHits keeps answering.
func (s *Sim) pickFault(action string, form url.Values, rng *rand.Rand) *Fault {
	for _, fs := range s.faults {
		f := fs.f
		if f.Action != "" && f.Action != action {
			continue
		}
		if f.Param != "" && (!form.Has(f.Param) || f.Value != "" && form.Get(f.Param) != f.Value) {
			continue
		}
		if f.Count > 0 && fs.hits >= f.Count {
			continue
		}
		if fs.skipped < f.Skip {
			fs.skipped++
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && rng.Float64() >= f.Probability {
			continue
		}
		fs.hits++
		return &f
	}
	return nil
}

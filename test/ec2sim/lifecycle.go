package ec2sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// AddSecurityGroup creates a security group in the VPC and returns it. An
// empty id is generated. ENIs may only name groups that exist: EC2 answers
// InvalidGroup.NotFound otherwise.
func (s *Sim) AddSecurityGroup(id, name string) (SecurityGroup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		id = s.newID("sg-")
	} else if _, dup := s.groups[id]; dup {
		return SecurityGroup{}, fmt.Errorf("security group %s already exists", id)
	} else if !strings.HasPrefix(id, "sg-") {
		return SecurityGroup{}, fmt.Errorf("security group ID %q: want sg-...", id)
	}
	s.ids[id] = true
	g := &SecurityGroup{ID: id, VPCID: s.vpcID, Name: name}
	s.groups[id] = g
	return *g, nil
}

// SecurityGroups returns every security group, sorted by ID; the first
// one created is the VPC's default group.
func (s *Sim) SecurityGroups() []SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SecurityGroup, 0, len(s.groups))
	for _, id := range sortedKeys(s.groups) {
		out = append(out, *s.groups[id])
	}
	return out
}

// ensureGroupsLocked registers groups named at setup (AddInstance specs),
// as the launch template that named them implies they exist (s.mu held).
func (s *Sim) ensureGroupsLocked(ids []string) {
	for _, id := range ids {
		if _, ok := s.groups[id]; !ok {
			s.groups[id] = &SecurityGroup{ID: id, VPCID: s.vpcID}
			s.ids[id] = true
		}
	}
}

// checkGroups answers InvalidGroup.NotFound for the first unknown group
// (s.mu held).
func (s *Sim) checkGroups(ids []string) *apiError {
	for _, id := range ids {
		if _, ok := s.groups[id]; !ok {
			return &apiError{Code: "InvalidGroup.NotFound", Message: fmt.Sprintf("The security group '%s' does not exist", id)}
		}
	}
	return nil
}

// TerminateInstance terminates an instance as EC2 does: every ENI attached
// with DeleteOnTermination is deleted, every other one is detached and
// stays "available" (and keeps its addresses) until someone deletes it. The
// instance stays listed as "terminated"; calls naming it answer
// IncorrectInstanceState. OnDetach hooks run for the detached ENIs.
func (s *Sim) TerminateInstance(id string) (Termination, error) {
	s.mu.Lock()
	inst, ok := s.instances[id]
	if !ok {
		s.mu.Unlock()
		return Termination{}, fmt.Errorf("instance %s not found", id)
	}
	if inst.Terminated {
		s.mu.Unlock()
		return Termination{}, fmt.Errorf("instance %s is already terminated", id)
	}
	inst.Terminated = true
	var t Termination
	var events []AttachEvent
	for _, e := range s.instanceENIs(id) {
		events = append(events, attachEvent(e))
		if e.Attachment.DeleteOnTermination {
			t.Deleted = append(t.Deleted, e.ID)
			s.releaseENI(e)
			continue
		}
		t.Detached = append(t.Detached, e.ID)
		delete(s.attachments, e.Attachment.ID)
		e.Attachment = nil
		e.Status = "available"
	}
	hooks := slices.Clone(s.detachHooks)
	s.notifyLocked()
	s.mu.Unlock()
	for _, ev := range events {
		s.runHooks(hooks, ev, "detach")
	}
	sort.Strings(t.Deleted)
	sort.Strings(t.Detached)
	return t, nil
}

// UnattachedENIs returns the ENIs no instance holds ("available"), sorted
// by ID: after a run they are leaks unless someone still means to attach
// them.
func (s *Sim) UnattachedENIs() []ENI {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ENI
	for _, id := range sortedKeys(s.enis) {
		if e := s.enis[id]; e.Attachment == nil {
			out = append(out, cloneENI(e))
		}
	}
	return out
}

// liveInstance finds an instance that calls may act on (s.mu held).
func (s *Sim) liveInstance(id string) (*Instance, *apiError) {
	inst, ok := s.instances[id]
	if !ok {
		return nil, errInstanceNotFound(id)
	}
	if inst.Terminated {
		return nil, &apiError{Code: "IncorrectInstanceState", Message: fmt.Sprintf("The instance '%s' is not in a valid state for this operation.", id)}
	}
	return inst, nil
}

package ec2sim

import (
	"context"
	"net/http"
	"sync"
)

// Sim is a simulated EC2 region with one VPC's worth of subnets, instances
// and ENIs. It is safe for concurrent use.
type Sim struct {
	mu  sync.Mutex
	cfg Config
}

// New returns a simulator with no subnets or instances.
func New(cfg Config) *Sim {
	return &Sim{cfg: cfg}
}

// AddSubnet creates a subnet.
func (s *Sim) AddSubnet(spec SubnetSpec) (Subnet, error) { return Subnet{}, errNotImplemented }

// AddSubnetCidrReservation reserves cidr inside a subnet. Type is
// "explicit" or "prefix".
func (s *Sim) AddSubnetCidrReservation(subnetID, cidr, typ, description string) (CidrReservation, error) {
	return CidrReservation{}, errNotImplemented
}

// AddInstance creates a running instance with its primary ENI (device
// index 0) and any launch-template ENIs already attached.
func (s *Sim) AddInstance(spec InstanceSpec) (Instance, error) { return Instance{}, errNotImplemented }

// SetUserData replaces the user data an instance's IMDS serves.
func (s *Sim) SetUserData(instanceID string, data []byte) error { return errNotImplemented }

// Handler returns the EC2 Query API handler.
func (s *Sim) Handler() http.Handler { return http.NotFoundHandler() }

// IMDSHandler returns an IMDSv2 handler serving instanceID's metadata.
func (s *Sim) IMDSHandler(instanceID string) http.Handler { return http.NotFoundHandler() }

// OnAttach registers a hook run when an attachment reaches "attached".
// Hooks run in order, outside the simulator's lock; their errors are kept
// in HookErrors.
func (s *Sim) OnAttach(fn func(AttachEvent) error) {}

// OnDetach registers a hook run when an attachment reaches "detached".
func (s *Sim) OnDetach(fn func(AttachEvent) error) {}

// OnMutation registers a hook run after a mutating call has been applied
// and before its response is written; n counts mutating calls from 1.
func (s *Sim) OnMutation(fn func(action string, n int)) {}

// HookErrors returns the errors returned by OnAttach/OnDetach hooks.
func (s *Sim) HookErrors() []error { return nil }

// InjectFault adds a fault and returns its ID for RemoveFault.
func (s *Sim) InjectFault(f Fault) int { return 0 }

// RemoveFault removes one injected fault.
func (s *Sim) RemoveFault(id int) {}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {}

// SetTiming replaces the latency model at run time.
func (s *Sim) SetTiming(t Timing) {}

// Calls returns a copy of the call log.
func (s *Sim) Calls() []Call { return nil }

// CallCounts returns how many mutating and non-mutating calls were served
// since the last ResetCalls.
func (s *Sim) CallCounts() (mutating, nonMutating int) { return 0, 0 }

// ResetCalls clears the call log and counters.
func (s *Sim) ResetCalls() {}

// ENIs returns every ENI, sorted by ID.
func (s *Sim) ENIs() []ENI { return nil }

// ENI returns one ENI.
func (s *Sim) ENI(id string) (ENI, bool) { return ENI{}, false }

// Instance returns one instance.
func (s *Sim) Instance(id string) (Instance, bool) { return Instance{}, false }

// Subnets returns every subnet, sorted by ID.
func (s *Sim) Subnets() []Subnet { return nil }

// WaitIdle blocks until no attachment is in a transitional state
// (attaching/detaching) or ctx is done.
func (s *Sim) WaitIdle(ctx context.Context) error { return errNotImplemented }

// Close stops pending state transitions and releases held requests.
func (s *Sim) Close() {}

package bootstrap

import (
	"slices"
	"sync"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/state"
)

// The facts steps hand each other (engine.Step Reads and Makes): the
// engine checks that every step comes after the steps making what it reads.
const (
	factConfig  = "config"  // the loaded config, recorded
	factENI     = "eni"     // eni.Attachment per managed interface
	factLink    = "link"    // link.Info: the NIC is there, claimed and ready
	factModules = "modules" // the DPDK drivers are loaded
	factDevice  = "device"  // pci.Binding per DPDK interface
)

// model is the node as the steps found and made it, one record per
// configured interface. bootstrap is its only writer: each step records its
// producer's typed result here as is, and a step that needs another step's
// output reads it here. It is kept in the state file, or in memory under plan.
type model struct {
	store *state.Store
	// cpu is the cpu-profile step's profile. It stays in memory: it is a
	// function of the config and the topology that step recomputes on every
	// run, so the state file would hold nothing a re-run lacks.
	cpuMu sync.Mutex
	cpu   *cpuprofile.Profile
}

// recordCPUProfile keeps the profile the cpu-profile step resolved.
func (m *model) recordCPUProfile(p *cpuprofile.Profile) {
	m.cpuMu.Lock()
	defer m.cpuMu.Unlock()
	m.cpu = p
}

// cpuProfile is the recorded profile, or false when none was recorded.
func (m *model) cpuProfile() (*cpuprofile.Profile, bool) {
	m.cpuMu.Lock()
	defer m.cpuMu.Unlock()
	return m.cpu, m.cpu != nil
}

// iface is what is known of one interface; the zero record if nothing.
func (m *model) iface(name string) state.Interface {
	in, _ := m.store.Interface(name)
	return in
}

// recordENI keeps what the ENI step attached.
func (m *model) recordENI(a eni.Attachment) error {
	return m.store.UpdateInterface(a.Interface, func(s *state.Interface) { s.ENI = a })
}

// recordDeleted keeps the ENIs the ENI step deleted after giving up on
// them, added to those earlier runs deleted.
func (m *model) recordDeleted(name string, ids []string) error {
	return m.store.UpdateInterface(name, func(s *state.Interface) {
		for _, id := range ids {
			if !slices.Contains(s.DeletedENIs, id) {
				s.DeletedENIs = append(s.DeletedENIs, id)
			}
		}
	})
}

// deletedENIs are the ENIs runs deleted after giving up, per interface.
func (m *model) deletedENIs(ifs []api.Interface) map[string][]string {
	out := map[string][]string{}
	for _, in := range ifs {
		if ids := m.iface(in.Name).DeletedENIs; len(ids) > 0 {
			out[in.Name] = ids
		}
	}
	return out
}

// recordLink keeps the netdev the links step readied.
func (m *model) recordLink(name string, info link.Info) error {
	return m.store.UpdateInterface(name, func(s *state.Interface) { s.Link = info })
}

// recordBinding keeps a DPDK device: before its netdev goes away on
// unbind (so a re-run finds it by MAC), and once it is bound. A binding
// made once the netdev is gone keeps the netdev's MAC and name from before.
func (m *model) recordBinding(b pci.Binding) error {
	return m.store.UpdateInterface(b.Name, func(s *state.Interface) {
		if b.MAC == "" {
			b.MAC = s.Device.MAC
		}
		if b.IfName == "" {
			b.IfName = s.Device.IfName
		}
		s.Device = b
	})
}

// device is the PCI function a DPDK interface was bound as, or false when
// the bind step recorded none.
func (m *model) device(name string) (pci.Device, bool) { return boundDevice(m.iface(name)) }

// boundDevice is the PCI device the bind step recorded for an interface,
// if it recorded all of it.
func boundDevice(rec state.Interface) (pci.Device, bool) {
	d := rec.Device.Device
	return d, d.Address != "" && d.Vendor != "" && d.Device != ""
}

// known are the records of the interfaces that have one, by name: what
// the steps that render from the state (pod networks, the device plugin)
// and the doctor take.
func (m *model) known(ifaces []api.Interface) map[string]state.Interface {
	out := map[string]state.Interface{}
	for _, in := range ifaces {
		if rec, ok := m.store.Interface(in.Name); ok {
			out[in.Name] = rec
		}
	}
	return out
}

func (m *model) setInstanceID(id string) error { return m.store.SetInstanceID(id) }

// knownLimits are the instance type's limits an earlier run on this
// instance asked EC2 for, nil when none did.
func (m *model) knownLimits(instanceID, instanceType string) *eni.Limits {
	if m == nil || m.store == nil {
		// A Node outside a run (no record): nothing is known.
		return nil
	}
	return m.store.KnownLimits(instanceID, instanceType)
}

// setLimits keeps the instance type's limits for the next run.
func (m *model) setLimits(instanceID string, l eni.Limits) error {
	return m.store.SetLimits(instanceID, l)
}

func (m *model) setFact(key, value string) error { return m.store.SetFact(key, value) }

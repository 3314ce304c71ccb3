package bootstrap

import (
	"strings"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/state"
)

// model is the node as the steps found and made it, one record per
// configured interface. bootstrap is its only writer: each step records its
// own typed result here, and a step that needs another step's output reads
// it here. It is kept in the state file, or in memory under plan.
type model struct {
	store *state.Store
}

// iface is what is known of one interface; the zero record if nothing.
func (m *model) iface(name string) state.Interface {
	in, _ := m.store.Interface(name)
	return in
}

// recordENI keeps what the ENI step attached.
func (m *model) recordENI(r eni.Result) error {
	return m.store.UpdateInterface(r.Name, func(s *state.Interface) {
		s.ENIID, s.AttachmentID, s.MAC = r.ENIID, r.AttachmentID, r.MAC
		s.DeviceIndex, s.NetworkCardIndex = r.DeviceIndex, r.NetworkCardIndex
		s.PrivateIP, s.SubnetCIDR = r.PrivateIP, r.SubnetCIDR
	})
}

// recordLink keeps the netdev the links step readied.
func (m *model) recordLink(name string, info link.Info) error {
	return m.store.UpdateInterface(name, func(s *state.Interface) {
		s.MAC, s.IfName = info.MAC, info.IfName
		if info.PCIAddress != "" {
			s.PCIAddress = info.PCIAddress
		}
	})
}

// recordBinding keeps a DPDK device: before its netdev goes away on
// unbind (so a re-run finds it by MAC), and once it is bound.
func (m *model) recordBinding(b pci.Binding) error {
	return m.store.UpdateInterface(b.Name, func(s *state.Interface) {
		if b.MAC != "" {
			s.MAC = b.MAC
		}
		if b.IfName != "" {
			s.IfName = b.IfName
		}
		s.PCIAddress, s.PCIID, s.Driver = b.Device.Address, b.Device.ID(), b.Device.Driver
	})
}

// recordedDevice is what the bind step needs of an earlier run.
func (m *model) recordedDevice(name string) pci.Recorded {
	in := m.iface(name)
	return pci.Recorded{MAC: in.MAC, PCIAddress: in.PCIAddress, PCIID: in.PCIID}
}

// device is the PCI function a DPDK interface was bound as, with its
// vendor and device IDs, or false when the bind step recorded none.
func (m *model) device(name string) (address, vendor, device string, ok bool) {
	in := m.iface(name)
	vendor, device, found := strings.Cut(in.PCIID, ":")
	if in.PCIAddress == "" || !found {
		return "", "", "", false
	}
	return in.PCIAddress, vendor, device, true
}

func (m *model) setInstanceID(id string) error { return m.store.SetInstanceID(id) }

func (m *model) setFact(key, value string) error { return m.store.SetFact(key, value) }

package ec2sim

// VethHotplug plugs a veth carrying an attached ENI's MAC into a network
// namespace, standing in for the kernel seeing a new PCI NIC.
//
// Install it with sim.OnAttach(h.Attach) and sim.OnDetach(h.Detach), or
// h.Install(sim).
type VethHotplug struct {
	// NetNS is the node's namespace: a name under /run/netns or a path.
	NetNS string
	// PeerNetNS holds the other veth end; when empty it stays in NetNS.
	PeerNetNS string
	// IfName names the interface; default "ens<5+device index>" on card 0 and
	// "enc<card>d<device index>" on other cards.
	IfName func(AttachEvent) string
}

// Install registers Attach and Detach as sim hooks.
func (h *VethHotplug) Install(s *Sim) {
	s.OnAttach(h.Attach)
	s.OnDetach(h.Detach)
}

// Attach creates the veth with ev.MAC in NetNS and sets it down (like a fresh NIC).
func (h *VethHotplug) Attach(ev AttachEvent) error { return errNotImplemented }

// Detach removes the link whose MAC is ev.MAC from NetNS.
func (h *VethHotplug) Detach(ev AttachEvent) error { return errNotImplemented }

package ec2sim

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// VethHotplug plugs a veth carrying an attached ENI's MAC into a network
// namespace, standing in for the kernel seeing a new PCI NIC, and unplugs
// it on detach. The link is left down, like a NIC nobody configured yet.
//
// Install it with h.Install(sim), or register h.Attach and h.Detach with
// sim.OnAttach and sim.OnDetach yourself.
type VethHotplug struct {
	// NetNS is the node's namespace: a name under /run/netns or a path.
	NetNS string
	// PeerNetNS holds the other veth end; when empty it stays in NetNS.
	PeerNetNS string
	// InstanceID limits the hot-plug to one instance's attachments
	// (empty: every instance).
	InstanceID string
	// SkipPrimary leaves the primary ENI (card 0, device 0) alone.
	SkipPrimary bool
	// IfName names the interface; default IfNameNitro.
	IfName func(AttachEvent) string

	mu sync.Mutex
}

// IfNameNitro names interfaces the way systemd predictable naming does on
// Nitro instances for card 0 (device index N -> ens(5+N)), and "enc<card>d<N>"
// on other cards.
func IfNameNitro(ev AttachEvent) string {
	if ev.NetworkCardIndex == 0 {
		return fmt.Sprintf("ens%d", 5+ev.DeviceIndex)
	}
	return fmt.Sprintf("enc%dd%d", ev.NetworkCardIndex, ev.DeviceIndex)
}

// Install registers Attach and Detach as sim hooks and plugs the ENIs that
// are attached already (primary and launch-template ENIs).
func (h *VethHotplug) Install(s *Sim) error {
	s.OnAttach(h.Attach)
	s.OnDetach(h.Detach)
	var errs []error
	for _, e := range s.ENIs() {
		if e.Attachment == nil || e.Attachment.Status != "attached" {
			continue
		}
		errs = append(errs, h.Attach(attachEvent(&e)))
	}
	return errors.Join(errs...)
}

func openNS(name string) (netns.NsHandle, error) {
	if strings.Contains(name, "/") {
		return netns.GetFromPath(name)
	}
	return netns.GetFromName(name)
}

func (h *VethHotplug) wants(ev AttachEvent) bool {
	if ev.NICWithheld || h.InstanceID != "" && ev.InstanceID != h.InstanceID {
		return false
	}
	return !(h.SkipPrimary && ev.DeviceIndex == 0 && ev.NetworkCardIndex == 0)
}

// Attach creates the veth with ev.MAC in NetNS. It is a no-op when a link
// with that MAC exists already.
func (h *VethHotplug) Attach(ev AttachEvent) error {
	return h.inNode(ev, "hot-plug", func(nl *netlink.Handle, mac net.HardwareAddr, existing netlink.Link) error {
		if existing != nil {
			return nil
		}
		name := IfNameNitro(ev)
		if h.IfName != nil {
			name = h.IfName(ev)
		}
		veth := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac},
			// The peer name must be unique in its namespace and at most 15 bytes.
			PeerName: "sim" + strings.ReplaceAll(ev.MAC, ":", "")[2:],
		}
		if h.PeerNetNS != "" {
			peer, err := openNS(h.PeerNetNS)
			if err != nil {
				return fmt.Errorf("hot-plug %s: open peer netns %q: %w", ev.ENIID, h.PeerNetNS, err)
			}
			defer peer.Close()
			veth.PeerNamespace = netlink.NsFd(int(peer))
		}
		if err := nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("hot-plug %s: add veth %s (%s) in %q: %w", ev.ENIID, name, ev.MAC, h.NetNS, err)
		}
		return nil
	})
}

// Detach removes the link whose MAC is ev.MAC from NetNS (and with it the
// peer). A missing link is not an error.
func (h *VethHotplug) Detach(ev AttachEvent) error {
	return h.inNode(ev, "unplug", func(nl *netlink.Handle, _ net.HardwareAddr, existing netlink.Link) error {
		if existing == nil {
			return nil
		}
		if err := nl.LinkDel(existing); err != nil {
			return fmt.Errorf("unplug %s: delete %s: %w", ev.ENIID, existing.Attrs().Name, err)
		}
		return nil
	})
}

// inNode runs fn with netlink in the node's namespace and the link that
// already carries ev's MAC, if any, one event at a time.
func (h *VethHotplug) inNode(ev AttachEvent, verb string, fn func(nl *netlink.Handle, mac net.HardwareAddr, existing netlink.Link) error) error {
	if !h.wants(ev) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	mac, err := net.ParseMAC(ev.MAC)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, ev.ENIID, err)
	}
	ns, err := openNS(h.NetNS)
	if err != nil {
		return fmt.Errorf("%s %s: open netns %q: %w", verb, ev.ENIID, h.NetNS, err)
	}
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("%s %s: netlink in %q: %w", verb, ev.ENIID, h.NetNS, err)
	}
	defer nl.Close()
	existing, err := linkByMAC(nl, mac)
	if err != nil {
		return err
	}
	return fn(nl, mac, existing)
}

func linkByMAC(nl *netlink.Handle, mac net.HardwareAddr) (netlink.Link, error) {
	links, err := nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac.String() {
			return l, nil
		}
	}
	return nil, nil
}

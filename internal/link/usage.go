package link

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/pci"
)

// NICUsage answers pci.Links, who uses a NIC and taking it down, from the
// kernel's routing tables and address lists in one network namespace.
type NICUsage struct {
	// NetNS holds the NICs; nil is the caller's own namespace.
	NetNS *netns.NsHandle
}

// OpenNetlink returns a route netlink handle in ns, or in the caller's
// namespace when ns is nil. The caller closes it. Only NETLINK_ROUTE: a
// minimal kernel lacks the other families (xfrm), and links need none.
func OpenNetlink(ns *netns.NsHandle) (*netlink.Handle, error) {
	if ns != nil {
		return netlink.NewHandleAt(*ns, unix.NETLINK_ROUTE)
	}
	return netlink.NewHandle(unix.NETLINK_ROUTE)
}

// Usage reports default routes (in any routing table, since policy routing
// puts secondary ENIs' defaults in their own tables) and global addresses.
func (l NICUsage) Usage(_ context.Context, ifname string) (pci.Usage, error) {
	var u pci.Usage
	h, err := OpenNetlink(l.NetNS)
	if err != nil {
		return u, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return u, fmt.Errorf("link %s: %w", ifname, err)
	}
	idx := link.Attrs().Index
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return u, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if !isDefault(r.Dst) {
			continue
		}
		if r.LinkIndex == idx {
			u.DefaultRoute = true
		}
		for _, nh := range r.MultiPath {
			if nh.LinkIndex == idx {
				u.DefaultRoute = true
			}
		}
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return u, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			u.Addresses = append(u.Addresses, a.IPNet.String())
		}
	}
	return u, nil
}

// SetDown takes the link down before its driver goes away.
func (l NICUsage) SetDown(_ context.Context, ifname string) error {
	h, err := OpenNetlink(l.NetNS)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("link %s: %w", ifname, err)
	}
	return h.LinkSetDown(link)
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified()
}

package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkLinks reads links through a netlink handle (the host's, or a
// test's network namespace).
type NetlinkLinks struct{ Handle *netlink.Handle }

// Link implements Links.
func (l NetlinkLinks) Link(_ context.Context, ifname string) (LinkInfo, error) {
	lk, err := l.Handle.LinkByName(ifname)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return LinkInfo{}, fmt.Errorf("%w: %w", ErrNoLink, err)
	}
	if err != nil {
		return LinkInfo{}, err
	}
	info := LinkInfo{MTU: lk.Attrs().MTU, AltNames: lk.Attrs().AltNames}
	addrs, err := l.Handle.AddrList(lk, netlink.FAMILY_ALL)
	if err != nil {
		return info, err
	}
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local IPv6 is the kernel's, not a manager's
		}
		if p, ok := netip.AddrFromSlice(a.IP); ok {
			ones, _ := a.Mask.Size()
			info.Addresses = append(info.Addresses, netip.PrefixFrom(p.Unmap(), ones))
		}
	}
	routes, err := l.Handle.RouteList(lk, netlink.FAMILY_ALL)
	if err != nil {
		return info, err
	}
	for _, r := range routes {
		if r.Dst != nil && (r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast()) {
			continue // the kernel's own fe80::/64 and multicast routes
		}
		info.Routes++
	}
	return info, nil
}

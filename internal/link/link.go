// Package link makes a Multus NIC ready on the host: it keeps
// systemd-networkd (and the AL2023 / amazon-ec2-net-utils configs that
// drive it) off the NIC, waits for the netdev on a netlink subscription
// instead of sleeping, and configures kernel-driver NICs.
package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// NetworkdDir holds nodeprep's .network files. /etc, not /run: the ENI
// stays attached across reboots and networkd must not grab it at boot
// before nodeprep runs again.
const NetworkdDir = "/etc/systemd/network"

// networkFilePrefix sorts before the files that would otherwise match an
// ENI: nodeadm's /run/systemd/network/70-eks-<if>.network,
// amazon-ec2-net-utils' /run/systemd/network/70-<if>.network and its
// /usr/lib/systemd/network/80-ec2.network. networkd applies the first
// file, in file-name order across its directories, whose [Match] fits.
const networkFilePrefix = "05-nodeprep-"

// NetworkFile is the networkd file that claims an interface.
func NetworkFile(name string) string {
	return NetworkdDir + "/" + networkFilePrefix + name + ".network"
}

// UnmanagedNetwork is a .network file that matches one MAC and tells
// networkd to leave the link alone (no DHCP, no addresses, no routes).
func UnmanagedNetwork(name, mac string) []byte {
	return fmt.Appendf(nil, "# Written by nodeprep: %s is a Multus interface, not for the host.\n[Match]\nMACAddress=%s\n\n[Link]\nUnmanaged=yes\n", name, mac)
}

// Reloader makes systemd-networkd re-read its files.
type Reloader interface {
	Reload(ctx context.Context) error
}

// Manager readies NICs in one network namespace.
type Manager struct {
	Root hostfs.Root
	// NetNS is where the NICs live; nil is the current namespace.
	NetNS *netns.NsHandle
	// Kernel writes the per-interface sysctls (rp_filter).
	Kernel change.Kernel
	// Reloader, when set, reloads networkd after a .network file changed.
	Reloader Reloader
	Log      *slog.Logger
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Claim writes the Unmanaged .network file for the NIC with mac, before it
// is attached, and reloads networkd when the file changed.
func (m *Manager) Claim(ctx context.Context, act change.Actions, name, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("interface %s: MAC %q: %w", name, mac, err)
	}
	path := NetworkFile(name)
	want := UnmanagedNetwork(name, hw.String())
	if differs, err := m.Root.Differs(path, want, 0o644); err != nil || !differs {
		return err
	}
	return act.Do(ctx, fmt.Sprintf("write %s (Unmanaged=yes for %s)", path, hw), func(ctx context.Context) error {
		if _, err := m.Root.WriteFile(path, want, 0o644); err != nil {
			return err
		}
		if m.Reloader != nil {
			if err := m.Reloader.Reload(ctx); err != nil {
				return fmt.Errorf("reload systemd-networkd: %w", err)
			}
		}
		return nil
	})
}

// LinkByMAC returns the link with mac if it exists now, without waiting:
// `nodeprep plan` reports a NIC that is not there instead of waiting for it.
func (m *Manager) LinkByMAC(mac string) (netlink.Link, bool, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, false, fmt.Errorf("MAC %q: %w", mac, err)
	}
	h, err := OpenNetlink(m.NetNS)
	if err != nil {
		return nil, false, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, false, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, hw) {
			return l, true, nil
		}
	}
	return nil, false, nil
}

// WaitForMAC blocks until a link with mac exists and returns it. It reads
// the existing links and then the kernel's link events on one netlink
// subscription, so a NIC that appears at any moment is seen.
func (m *Manager) WaitForMAC(ctx context.Context, mac string) (netlink.Link, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("MAC %q: %w", mac, err)
	}
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err = netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace:    m.NetNS,
		ListExisting: true,
		// The callback also reports messages the library skipped, such as
		// another subscriber's dump request ("wrong sender portid",
		// vishvananda/netlink#786). A fatal error closes updates instead.
		ErrorCallback: func(err error) {
			m.log().Debug("netlink link subscription", "error", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link events: %w", err)
	}
	defer func() {
		close(done)
		// The subscription's reader closes updates once it sees done; drain
		// so it never blocks on a full channel.
		go func() {
			for range updates {
			}
		}()
	}()
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				return nil, errors.New("link event subscription closed")
			}
			if u.Header.Type != unix.RTM_NEWLINK || u.Link == nil {
				continue
			}
			if bytes.Equal(u.Link.Attrs().HardwareAddr, hw) {
				return u.Link, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("no NIC with MAC %s appeared: %w", hw, ctx.Err())
		}
	}
}

// Info is what Ready found: the one home of a readied NIC's facts. The
// state file stores it as is.
type Info struct {
	IfName string `json:"ifName"`
	MAC    string `json:"mac"`
	// PCIAddress is the NIC's PCI function, e.g. 0000:00:06.0, or "" when
	// the netdev has no PCI device (veth in tests).
	PCIAddress string `json:"pciAddress,omitempty"`
	// Ready is when Ready finished with the NIC: present and, for a
	// kernel-driver interface, up. It ends an ENI's "nic up" stage on the
	// timeline and its attach-to-NIC time in the metrics.
	Ready time.Time `json:"readyAt,omitzero"`
}

// Ready waits for the NIC with mac and, for kernel-driver interfaces,
// brings it up with the configured MTU, the logical name as altname and
// rp_filter. DPDK interfaces are left down for the bind step.
func (m *Manager) Ready(ctx context.Context, act change.Actions, in api.Interface, mac string) (Info, error) {
	l, err := m.WaitForMAC(ctx, mac)
	if err != nil {
		return Info{}, fmt.Errorf("interface %s: %w", in.Name, err)
	}
	info := Info{IfName: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String()}
	info.PCIAddress = m.pciAddress(info.IfName)
	if in.Driver != api.DriverKernel && in.Driver != "" {
		info.Ready = time.Now()
		return info, nil
	}
	h, err := OpenNetlink(m.NetNS)
	if err != nil {
		return info, fmt.Errorf("interface %s: %w", in.Name, err)
	}
	defer h.Close()
	// Re-read: the event may predate a rename by udev.
	l, err = h.LinkByIndex(l.Attrs().Index)
	if err != nil {
		return info, fmt.Errorf("interface %s: read link: %w", in.Name, err)
	}
	a := l.Attrs()
	info.IfName = a.Name
	ifname := a.Name
	var errs []error
	if in.MTU > 0 && a.MTU != in.MTU {
		errs = append(errs, act.Do(ctx, fmt.Sprintf("set MTU %d on %s (%s)", in.MTU, ifname, in.Name), func(context.Context) error {
			return h.LinkSetMTU(l, in.MTU)
		}))
	}
	if ifname != in.Name && !slices.Contains(a.AltNames, in.Name) && a.Alias != in.Name {
		errs = append(errs, act.Do(ctx, fmt.Sprintf("name %s %s (altname)", ifname, in.Name), func(context.Context) error {
			err := h.LinkAddAltName(l, in.Name)
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				// Kernels before 5.5 have no altnames: use ifalias instead.
				return h.LinkSetAlias(l, in.Name)
			}
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("altname %s is taken by another link: %w", in.Name, err)
			}
			return err
		}))
	}
	if in.RPFilter != nil {
		errs = append(errs, m.setRPFilter(ctx, act, ifname, *in.RPFilter))
	}
	if a.Flags&net.FlagUp == 0 {
		errs = append(errs, act.Do(ctx, fmt.Sprintf("set %s (%s) up", ifname, in.Name), func(context.Context) error {
			return h.LinkSetUp(l)
		}))
	}
	if err := errors.Join(errs...); err != nil {
		return info, fmt.Errorf("interface %s: %w", in.Name, err)
	}
	info.Ready = time.Now()
	return info, nil
}

// setRPFilter sets net.ipv4.conf.<if>.rp_filter through the kernel writer.
func (m *Manager) setRPFilter(ctx context.Context, act change.Actions, ifname string, value int) error {
	attr := "/proc/sys/net/ipv4/conf/" + ifname + "/rp_filter"
	have, err := m.Root.ReadFile(attr)
	if err != nil {
		return fmt.Errorf("read rp_filter of %s: %w", ifname, err)
	}
	if strings.TrimSpace(string(have)) == strconv.Itoa(value) {
		return nil
	}
	return act.Do(ctx, fmt.Sprintf("set rp_filter=%d on %s", value, ifname), func(context.Context) error {
		return m.Kernel.WriteAttr(attr, strconv.Itoa(value))
	})
}

// pciAddress is the NIC's PCI function, "" for a netdev without one (veth).
func (m *Manager) pciAddress(ifname string) string {
	bdf, err := pci.Sysfs{Root: m.Root}.AddressOf(ifname)
	if err != nil {
		if !errors.Is(err, pci.ErrNotFound) {
			m.log().Debug("no PCI device for link", logging.IfName(ifname), "error", err)
		}
		return ""
	}
	return bdf
}

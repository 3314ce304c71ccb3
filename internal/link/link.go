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
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
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

// Doer records and performs a change (engine.Actions satisfies it).
type Doer interface {
	Do(ctx context.Context, what string, fn func(context.Context) error) error
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
func (m *Manager) Claim(ctx context.Context, act Doer, name, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("interface %s: MAC %q: %w", name, mac, err)
	}
	path := NetworkFile(name)
	want := UnmanagedNetwork(name, hw.String())
	if have, err := m.Root.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
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

// Info is what Ready found.
type Info struct {
	IfName string
	MAC    string
	// PCIAddress is the NIC's PCI function, e.g. 0000:00:06.0, or "" when
	// the netdev has no PCI device (veth in tests).
	PCIAddress string
}

// Ready waits for the NIC with mac and, for kernel-driver interfaces,
// brings it up with the configured MTU, the logical name as altname and
// rp_filter. DPDK interfaces are left down for the bind step.
func (m *Manager) Ready(ctx context.Context, act Doer, in api.Interface, mac string) (Info, error) {
	l, err := m.WaitForMAC(ctx, mac)
	if err != nil {
		return Info{}, fmt.Errorf("interface %s: %w", in.Name, err)
	}
	info := Info{IfName: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String()}
	info.PCIAddress = m.pciAddress(info.IfName)
	if in.Driver != api.DriverKernel && in.Driver != "" {
		return info, nil
	}
	h, err := m.handle()
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
	return info, nil
}

func (m *Manager) handle() (*netlink.Handle, error) {
	if m.NetNS != nil {
		return netlink.NewHandleAt(*m.NetNS)
	}
	return netlink.NewHandle()
}

// setRPFilter writes net.ipv4.conf.<if>.rp_filter through the host root.
// procfs files are written in place: they cannot be replaced by rename.
func (m *Manager) setRPFilter(ctx context.Context, act Doer, ifname string, value int) error {
	path, err := m.Root.Path("/proc/sys/net/ipv4/conf/" + ifname + "/rp_filter")
	if err != nil {
		return err
	}
	have, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read rp_filter of %s: %w", ifname, err)
	}
	if strings.TrimSpace(string(have)) == strconv.Itoa(value) {
		return nil
	}
	return act.Do(ctx, fmt.Sprintf("set rp_filter=%d on %s", value, ifname), func(context.Context) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(strconv.Itoa(value) + "\n"); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

var rePCIAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// pciAddress resolves /sys/class/net/<if>/device to its PCI function.
func (m *Manager) pciAddress(ifname string) string {
	path, err := m.Root.Path("/sys/class/net/" + ifname + "/device")
	if err != nil {
		return ""
	}
	target, err := os.Readlink(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log().Debug("no PCI device for link", "ifname", ifname, "error", err)
		}
		return ""
	}
	if base := filepath.Base(target); rePCIAddress.MatchString(base) {
		return base
	}
	return ""
}

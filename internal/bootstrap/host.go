package bootstrap

import (
	"log/slog"
	"time"

	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// DefaultLinkDeadline bounds the wait for one NIC to appear on the host.
const DefaultLinkDeadline = 2 * time.Minute

// Host is the machine the steps change. Every area reaches the host only
// through it, so a test replaces the whole host (an emulated sysfs, a
// network namespace) in one place, and the ENI and DPDK paths can never
// look at two different network namespaces.
type Host struct {
	Root hostfs.Root
	// NetNS holds the node's NICs; nil is nodeprep's own namespace.
	NetNS *netns.NsHandle
	// NICUsage says who uses a NIC and takes it down, in NetNS.
	NICUsage pci.Links
	// Kernel writes sysfs and procfs attributes.
	Kernel   change.Kernel
	Modprobe kmod.Loader
	Mounter  hugepages.Mounter
	// Networkd reloads systemd-networkd after a .network file changed;
	// nil when there is none to reload (a root other than /).
	Networkd link.Reloader
	// LinkDeadline bounds the wait for each NIC to appear.
	LinkDeadline time.Duration
	// Commands runs grubby, update-grub and systemctl for the CPU steps.
	Commands kernelargs.Runner
}

// NewHost is the real host under root, its NICs in ns (nil: nodeprep's own
// network namespace).
func NewHost(root hostfs.Root, ns *netns.NsHandle) Host {
	h := Host{
		Root:         root,
		NetNS:        ns,
		NICUsage:     link.NICUsage{NetNS: ns},
		Kernel:       root,
		Modprobe:     kmod.Modprobe{},
		Mounter:      hugepages.SystemdMounter{},
		LinkDeadline: DefaultLinkDeadline,
		Commands:     kernelargs.Exec{},
	}
	if root.Dir() == "/" {
		h.Networkd = link.Networkctl{}
	}
	return h
}

func (h Host) linkManager(log *slog.Logger) *link.Manager {
	return &link.Manager{Root: h.Root, NetNS: h.NetNS, Kernel: h.Kernel, Reloader: h.Networkd, Log: log}
}

func (h Host) hugepages() *hugepages.Manager {
	return &hugepages.Manager{Root: h.Root, Kernel: h.Kernel, Mounter: h.Mounter}
}

func (h Host) modules() *kmod.Manager {
	return &kmod.Manager{Root: h.Root, Loader: h.Modprobe, Kernel: h.Kernel}
}

func (h Host) binder(remember func(pci.Binding) error) *pci.Binder {
	return &pci.Binder{Sysfs: pci.Sysfs{Root: h.Root}, Kernel: h.Kernel, Links: h.NICUsage, Remember: remember}
}

package bootstrap

import (
	"context"
	"fmt"
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

// NICAfterAttach bounds the wait for the NIC of an ENI that EC2 reports
// attached (the links step starts only once the ENI step saw every
// attachment effective). On Nitro the hot-plugged device is on the PCI bus
// and probed by the ENA driver about when EC2 says "attached", well within
// a second or two; the VPC CNI's ipamd looks for an attached ENI's link by
// MAC 5 times 3 s apart (amazon-vpc-cni-k8s pkg/networkutils:
// maxAttemptsLinkByMac, retryLinkByMacInterval) before it calls the ENI
// failed. 15 s is that same patience: a NIC not there by then will not
// come without someone looking at the instance (dmesg: PCI hot-plug, ENA
// probe), and waiting the link deadline for it only held every other
// interface's later steps for 2 minutes.
const NICAfterAttach = 15 * time.Second

// NICError is an ENI that EC2 attached but whose NIC never appeared on the
// host within NICAfterAttach: that interface fails alone, the others go on.
type NICError struct {
	Interface string
	ENIID     string
	MAC       string
	// Waited is how long the links step waited for the NIC.
	Waited time.Duration
}

func (e *NICError) Error() string {
	return fmt.Sprintf("interface %s: ENI %s is attached, but no NIC with MAC %s appeared on the host in %s (a NIC appears within seconds of EC2 reporting it attached): "+
		"the instance did not see the device (check dmesg for PCI hot-plug and ena errors); the ENI stays attached with DeleteOnTermination and the next run waits for it again",
		e.Interface, e.ENIID, e.MAC, e.Waited.Round(time.Millisecond))
}

// Is makes a NICError a context.DeadlineExceeded: the wait's bound passed.
func (e *NICError) Is(target error) bool { return target == context.DeadlineExceeded }

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

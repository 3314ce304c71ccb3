package vm

import (
	"bufio"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Run when a Spec leaves a field zero.
const (
	DefaultMemoryMiB = 1024
	DefaultCPUs      = 2
	DefaultTimeout   = 5 * time.Minute
	// DefaultCPU is QEMU's baseline x86-64 model plus 1 GiB pages, so the
	// guest offers hugepages-1048576kB like an EC2 instance does.
	DefaultCPU = "qemu64,+pdpe1gb"
	// BaseCmdline is always on the kernel command line; Spec.Cmdline is
	// appended. panic=-1 plus -no-reboot turn a guest panic into QEMU exiting.
	// no_timer_check: on a loaded host TCG can miss the kernel's early
	// IO-APIC timer test, which with interrupt remapping is a panic ("timer
	// doesn't work through Interrupt-remapped IO-APIC"); seen here at load 12.
	BaseCmdline = "console=ttyS0 intel_iommu=on iommu=pt panic=-1 no_timer_check"
	// FirstNICSlot is the PCI slot of Spec.NICs[0] on bus 0 of the q35
	// machine; NIC i sits at slot FirstNICSlot+i, function 0.
	FirstNICSlot = 0x10
)

// DefaultBootModules are loaded by /init before the script, so the
// virtio-net NICs have netdevs when it starts.
func DefaultBootModules() []string { return []string{"virtio_pci", "virtio_net"} }

// DefaultModules are shipped in every initramfs (with their dependencies)
// but not loaded: what DPDK host preparation needs.
func DefaultModules() []string { return []string{"vfio_pci", "vfio_iommu_type1", "uio_pci_generic"} }

// Backend is what a NIC's other end is wired to inside QEMU.
type Backend string

const (
	// BackendNone gives the NIC a private hub port: link up, no traffic.
	BackendNone Backend = "none"
	// BackendUser is QEMU user-mode networking (guest 10.0.2.15/24,
	// gateway 10.0.2.2), restricted so the guest cannot reach the outside.
	BackendUser Backend = "user"
)

// Model is the emulated NIC's QEMU device.
type Model string

const (
	// ModelVirtio is virtio-net-pci, modern only (1af4:1041), with
	// iommu_platform=on. Its netdev's "device" is the virtio device; the
	// PCI function is that device's parent.
	ModelVirtio Model = "virtio-net-pci"
	// ModelVMXNET3 is VMware's vmxnet3 (15ad:07b0, driver vmxnet3). Like
	// ENA on EC2, its netdev's "device" is the PCI function itself.
	ModelVMXNET3 Model = "vmxnet3"
)

// NIC is one PCI network function of the VM.
type NIC struct {
	MAC     string  // e.g. "52:54:00:6e:70:01"; required
	Backend Backend // default BackendNone
	Model   Model   // default ModelVirtio
	// Forwards make guest TCP connections to Guest reach Host on the host
	// (BackendUser only), e.g. {"10.0.2.100:80", "127.0.0.1:41234"} for an
	// IMDS simulator used with NODEPREP_IMDS_ENDPOINT=http://10.0.2.100.
	// QEMU only forwards addresses inside UserNet, so not 169.254.169.254.
	Forwards []Forward
}

// Forward is a QEMU user-networking guestfwd rule.
type Forward struct {
	Guest string // ip:port the guest connects to
	Host  string // ip:port QEMU connects to on the host
}

// The first BackendUser NIC is configured by /init like an instance's
// primary interface (QEMU's user network defaults).
const (
	UserNet        = "10.0.2.0/24"
	UserNICAddr    = "10.0.2.15/24"
	UserNICGateway = "10.0.2.2"
)

// driverModule is the kernel module that drives the model.
func (m Model) driverModule() string {
	if m == ModelVMXNET3 {
		return "vmxnet3"
	}
	return "virtio_net"
}

// Spec describes one VM run.
type Spec struct {
	// Script is run by /bin/sh (busybox ash) after boot, with `mark KEY
	// VALUE...` defined. Its exit status is Result.ExitCode.
	Script string
	// Files maps an absolute guest path to a host file copied there with its
	// permission bits (e.g. "/usr/bin/nodeprep": "/tmp/x/nodeprep").
	Files map[string]string
	// FileContents maps an absolute guest path to literal content (mode 0644).
	FileContents map[string][]byte
	// NICs default to a single BackendUser NIC with MAC 52:54:00:6e:70:01.
	NICs []NIC
	// Modules are extra kernel modules shipped in the initramfs (with their
	// modules.dep closure) on top of vfio_pci, vfio_iommu_type1,
	// uio_pci_generic and the boot modules. They are not loaded.
	Modules []string
	// BootModules replace the modules /init loads before the script:
	// by default virtio_pci, virtio_net and the drivers of other NIC models.
	BootModules []string
	// CPU is the QEMU -cpu model; default DefaultCPU.
	CPU string
	// NUMANodes splits memory and CPUs evenly over this many NUMA nodes,
	// one socket each; 0 or 1: one node.
	NUMANodes int
	// NoIOMMU leaves out the vIOMMU: no IOMMU groups, as on an instance
	// type whose vfio-pci needs no-IOMMU mode.
	NoIOMMU   bool
	MemoryMiB int    // default DefaultMemoryMiB
	CPUs      int    // default DefaultCPUs
	Cmdline   string // appended to BaseCmdline
	// Timeout bounds the QEMU run when ctx has no earlier deadline; default
	// DefaultTimeout.
	Timeout time.Duration
	// Console, if set, receives the serial console as it arrives (e.g. a
	// log file while debugging a hanging guest).
	Console io.Writer
}

func (s Spec) nics() []NIC {
	if len(s.NICs) == 0 {
		return []NIC{{MAC: "52:54:00:6e:70:01", Backend: BackendUser}}
	}
	return s.NICs
}

func (s Spec) bootModules() []string {
	if s.BootModules != nil {
		return s.BootModules
	}
	mods := DefaultBootModules()
	for _, n := range s.nics() {
		if m := n.Model.driverModule(); !slices.Contains(mods, m) {
			mods = append(mods, m)
		}
	}
	return mods
}

// netConfig is /etc/vm/net: "MAC CIDR GATEWAY" for the NIC /init sets up.
func (s Spec) netConfig() string {
	for _, n := range s.nics() {
		if n.Backend == BackendUser {
			return fmt.Sprintf("%s %s %s\n", strings.ToLower(n.MAC), UserNICAddr, UserNICGateway)
		}
	}
	return ""
}

func (s Spec) modules() []string {
	mods := DefaultModules()
	mods = append(mods, s.bootModules()...)
	return append(mods, s.Modules...)
}

// NICAddress is the PCI address (BDF) QEMU gives Spec.NICs[i].
func NICAddress(i int) string {
	return fmt.Sprintf("0000:00:%02x.0", FirstNICSlot+i)
}

// Result is what one VM run produced.
type Result struct {
	// Console is the serial console, '\r' stripped, kernel boot log included.
	Console string
	// Markers are the script's `mark KEY VALUE` calls, last one wins.
	Markers map[string]string
	// ExitCode is the script's exit status; -1 if the guest never reported it.
	ExitCode int
	// GuestBoot is the guest's uptime when /init started (kernel boot time).
	GuestBoot time.Duration
	// InitAfter is the host wall time from starting QEMU to /init running.
	InitAfter time.Duration
	// Duration is the host wall time of the whole QEMU run.
	Duration time.Duration
	// Kernel is the kernel release that ran, e.g. 6.1.0-56-cloud-amd64.
	Kernel string
}

// ScriptError is returned when the guest script exited non-zero.
type ScriptError struct{ Code int }

func (e *ScriptError) Error() string { return fmt.Sprintf("vm script exited %d", e.Code) }

// ErrNoExit means QEMU ended without the guest reporting the script's exit
// status: a kernel panic, /init failure or QEMU error; see Result.Console.
var ErrNoExit = errors.New("vm ended without reporting the script exit status")

// Bed is a prepared test bed: host tools installed and a kernel cached.
type Bed struct {
	Tools    Tools
	Kernel   *Kernel
	CacheDir string
}

// Setup installs the host tools and fetches the kernel if needed. Errors
// meaning the machine cannot run VMs wrap ErrUnavailable.
func Setup(ctx context.Context) (*Bed, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	unlock, err := lockDir(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tools, err := ensureTools(ctx, cache)
	if err != nil {
		return nil, err
	}
	k, err := ensureKernel(ctx, cache, tools)
	if err != nil {
		return nil, err
	}
	return &Bed{Tools: tools, Kernel: k, CacheDir: cache}, nil
}

// Run boots the VM described by spec and waits for it to power off. The
// Result carries the console even when an error is returned.
func (b *Bed) Run(ctx context.Context, spec Spec) (Result, error) {
	res := Result{ExitCode: -1, Markers: map[string]string{}, Kernel: b.Kernel.Release}
	if err := spec.validate(); err != nil {
		return res, err
	}
	work, err := os.MkdirTemp("", "nodeprep-vm-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	initrd, err := buildInitramfs(ctx, b.Tools, b.Kernel, spec, work)
	if err != nil {
		return res, fmt.Errorf("initramfs: %w", err)
	}

	timeout := spec.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, b.Tools.QEMU, b.qemuArgs(spec, initrd)...)
	cmd.Stdin = nil // the serial console's input: the guest reads EOF
	// On deadline the context kills QEMU; WaitDelay bounds Wait should the
	// console pipe stay open anyway.
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}
	var console strings.Builder
	// Returns at EOF: QEMU exited (powered off, panicked, or was killed).
	res.InitAfter = collect(stdout, &console, spec.Console, start, &res)
	waitErr := cmd.Wait()
	res.Duration = time.Since(start)
	res.Console = console.String()

	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("vm run after %s: %w", res.Duration.Round(time.Millisecond), ctx.Err())
	case waitErr != nil:
		return res, fmt.Errorf("qemu: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	case res.ExitCode < 0:
		return res, fmt.Errorf("%w (qemu stderr: %q)", ErrNoExit, strings.TrimSpace(stderr.String()))
	case res.ExitCode != 0:
		return res, &ScriptError{Code: res.ExitCode}
	}
	return res, nil
}

func (s Spec) validate() error {
	seen := map[string]bool{}
	for i, n := range s.nics() {
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || len(hw) != 6 || len(n.MAC) != 17 {
			return fmt.Errorf("Spec.NICs[%d].MAC %q: want xx:xx:xx:xx:xx:xx", i, n.MAC)
		}
		mac := hw.String()
		if seen[mac] {
			return fmt.Errorf("Spec.NICs[%d].MAC %q: duplicate", i, n.MAC)
		}
		seen[mac] = true
		switch n.Backend {
		case "", BackendNone, BackendUser:
		default:
			return fmt.Errorf("Spec.NICs[%d].Backend %q: want %q or %q", i, n.Backend, BackendNone, BackendUser)
		}
		if len(n.Forwards) > 0 && n.Backend != BackendUser {
			return fmt.Errorf("Spec.NICs[%d].Forwards: need Backend %q", i, BackendUser)
		}
		for j, f := range n.Forwards {
			g, err := netip.ParseAddrPort(f.Guest)
			if err != nil {
				return fmt.Errorf("Spec.NICs[%d].Forwards[%d].Guest %q: want ip:port: %w", i, j, f.Guest, err)
			}
			if !netip.MustParsePrefix(UserNet).Contains(g.Addr()) {
				return fmt.Errorf("Spec.NICs[%d].Forwards[%d].Guest %q: QEMU forwards only addresses in %s", i, j, f.Guest, UserNet)
			}
			if _, err := netip.ParseAddrPort(f.Host); err != nil {
				return fmt.Errorf("Spec.NICs[%d].Forwards[%d].Host %q: want ip:port: %w", i, j, f.Host, err)
			}
		}
		switch n.Model {
		case "", ModelVirtio, ModelVMXNET3:
		default:
			return fmt.Errorf("Spec.NICs[%d].Model %q: want %q or %q", i, n.Model, ModelVirtio, ModelVMXNET3)
		}
	}
	if s.MemoryMiB < 0 || s.CPUs < 0 || s.Timeout < 0 || s.NUMANodes < 0 {
		return errors.New("Spec.MemoryMiB, CPUs, NUMANodes and Timeout must not be negative")
	}
	if s.NUMANodes > 1 {
		mem, cpus := s.resources()
		if cpus%s.NUMANodes != 0 || mem%s.NUMANodes != 0 {
			return fmt.Errorf("Spec.NUMANodes %d: CPUs (%d) and MemoryMiB (%d) must be divisible by it", s.NUMANodes, cpus, mem)
		}
	}
	return nil
}

func cpuModel(s Spec) string {
	if s.CPU != "" {
		return s.CPU
	}
	return DefaultCPU
}

// resources returns the memory (MiB) and vCPU count with defaults applied.
func (s Spec) resources() (mem, cpus int) {
	return cmp.Or(s.MemoryMiB, DefaultMemoryMiB), cmp.Or(s.CPUs, DefaultCPUs)
}

// smp is the -smp value: with NUMA nodes, one socket per node.
func smp(cpus, nodes int) string {
	if nodes <= 1 {
		return strconv.Itoa(cpus)
	}
	return fmt.Sprintf("%d,sockets=%d,cores=%d,threads=1", cpus, nodes, cpus/nodes)
}

func (b *Bed) qemuArgs(spec Spec, initrd string) []string {
	mem, cpus := spec.resources()
	cmdline := BaseCmdline
	if spec.Cmdline != "" {
		cmdline += " " + spec.Cmdline
	}
	args := []string{"-accel", "tcg,thread=multi"}
	if spec.NoIOMMU {
		args = append(args, "-machine", "q35")
	} else {
		// A vIOMMU so the guest has IOMMU groups and vfio-pci works in
		// non-noiommu mode. Interrupt remapping must be on: without it
		// vfio_iommu_type1 refuses VFIO_SET_IOMMU with EPERM (unsafe
		// interrupts), i.e. DPDK could not use the device. intremap=on
		// requires kernel-irqchip=split, which TCG accepts.
		args = append(args, "-machine", "q35,kernel-irqchip=split", "-device", "intel-iommu,intremap=on")
	}
	args = append(args,
		"-cpu", cpuModel(spec),
		"-smp", smp(cpus, spec.NUMANodes),
		"-m", strconv.Itoa(mem),
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", b.Kernel.Vmlinuz,
		"-initrd", initrd,
		"-append", cmdline,
	)
	if spec.NUMANodes > 1 {
		per := mem / spec.NUMANodes
		for n := 0; n < spec.NUMANodes; n++ {
			args = append(args,
				"-object", fmt.Sprintf("memory-backend-ram,id=mem%d,size=%dM", n, per),
				"-numa", fmt.Sprintf("node,nodeid=%d,memdev=mem%d", n, n))
		}
		// One socket per node.
		for n := 0; n < spec.NUMANodes; n++ {
			args = append(args, "-numa", fmt.Sprintf("cpu,node-id=%d,socket-id=%d", n, n))
		}
	}
	for i, n := range spec.nics() {
		id := fmt.Sprintf("n%d", i)
		switch n.Backend {
		case BackendUser:
			// restrict=on: the guest reaches nothing but the forwards.
			nd := "user,id=" + id + ",restrict=on"
			for _, f := range n.Forwards {
				nd += ",guestfwd=tcp:" + f.Guest + "-tcp:" + f.Host
			}
			args = append(args, "-netdev", nd)
		default:
			args = append(args, "-netdev", fmt.Sprintf("hubport,id=%s,hubid=%d", id, 100+i))
		}
		// romfile= skips the iPXE option ROM, which costs seconds under TCG.
		dev := fmt.Sprintf("%s,netdev=%s,mac=%s,bus=pcie.0,addr=0x%02x,romfile=",
			cmp.Or(n.Model, ModelVirtio), id, strings.ToLower(n.MAC), FirstNICSlot+i)
		if cmp.Or(n.Model, ModelVirtio) == ModelVirtio {
			// Modern-only and iommu_platform=on: the device's DMA goes
			// through the vIOMMU, as a real NIC handed to vfio-pci does.
			dev += ",disable-legacy=on,iommu_platform=on"
		}
		args = append(args, "-device", dev)
	}
	return args
}

// collect reads the console until EOF, filling res from "@@VM:" lines, and
// returns the host time at which /init reported in.
func collect(r io.Reader, console *strings.Builder, tee io.Writer, start time.Time, res *Result) time.Duration {
	var initAfter time.Duration
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.ReplaceAll(line, "\r", "")
			console.WriteString(line)
			if tee != nil {
				io.WriteString(tee, line)
			}
			if i := strings.Index(line, "@@VM:"); i >= 0 {
				if parseMarker(strings.TrimSpace(line[i+len("@@VM:"):]), res) {
					initAfter = time.Since(start)
				}
			}
		}
		if err != nil {
			return initAfter
		}
	}
}

// encodeMark encodes a marker value as the guest's `mark` helper does.
func encodeMark(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }

// parseMarker applies one bed line to res; it reports whether the line was
// the /init start line.
func parseMarker(line string, res *Result) bool {
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "INIT":
		// "/proc/uptime": "<seconds> <idle seconds>"
		up, _, _ := strings.Cut(rest, " ")
		if s, err := strconv.ParseFloat(up, 64); err == nil {
			res.GuestBoot = time.Duration(s * float64(time.Second))
		}
		return true
	case "MARK":
		key, val, _ := strings.Cut(rest, " ")
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
		if err != nil {
			dec = []byte("!bad-base64: " + val)
		}
		res.Markers[key] = string(dec)
	case "EXIT":
		if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
			res.ExitCode = n
		}
	}
	return false
}

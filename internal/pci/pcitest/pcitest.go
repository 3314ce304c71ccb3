// Package pcitest emulates the parts of a Linux host that DPDK preparation
// touches: a sysfs tree of PCI network functions, drivers, netdevs, IOMMU
// groups, NUMA nodes and huge page pools, plus procfs and /dev entries, all
// under a temporary root. Its Kernel reacts to attribute writes the way the
// kernel does (bind moves the driver symlink, unbinding a kernel driver
// removes the netdev, vfio-pci creates /dev/vfio/<group>, hugepage writes
// allocate up to the free memory), so code under test runs the same
// sequence it runs on a node, and can fail the same ways.
package pcitest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// IDs of the devices the emulator knows.
const (
	VendorAmazon = "1d0f"
	DeviceENA    = "ec20"
	DeviceENALLQ = "ec21"
	VendorVirtio = "1af4"
	DeviceVirtio = "1041"
	// Release is the kernel release of the emulated host.
	Release = "6.1.0-test-amd64"
)

// NIC describes one emulated PCI network function.
type NIC struct {
	BDF    string
	Vendor string // default VendorAmazon
	Device string // default DeviceENA
	// Driver it starts on: "ena", "virtio-pci", "vfio-pci", "" for none.
	Driver string
	IfName string
	MAC    string
	// Virtio puts the netdev under a virtio<N> child, as virtio-net does.
	Virtio bool
	NUMA   int
	// IOMMUGroup is its group when the host has an IOMMU.
	IOMMUGroup int
}

// Host is an emulated host under Dir.
type Host struct {
	Dir  string
	Root hostfs.Root
	// IOMMU is whether the host has one (groups exist, vfio binds normally).
	IOMMU bool
	// NoIOMMUSupported is CONFIG_VFIO_NOIOMMU: the vfio module then has an
	// enable_unsafe_noiommu_mode parameter.
	NoIOMMUSupported bool

	mu     sync.Mutex
	nics   map[string]*NIC
	failOn map[string]error // driver -> bind error
	// free pages per size (KiB) per node the "allocator" can still hand out.
	free map[int64]map[int]int
	// compactGain is how many more pages per node compaction frees.
	compactGain int
	nextGroup   int
	nextUIO     int
	// Writes is every attribute write, "path=value", in order.
	Writes      []string
	Compactions int
	// Available are the modules modprobe can load.
	Available map[string]bool
	// Loads is every module load, "name param...".
	Loads []string
	// onlineCPUs are the CPUs SetCPUs put online.
	onlineCPUs []int
}

// New builds an empty host: no NICs, one NUMA node with no memory.
func New(t testing.TB) *Host {
	t.Helper()
	dir := t.TempDir()
	h := &Host{Dir: dir, Root: hostfs.New(dir), nics: map[string]*NIC{}, failOn: map[string]error{},
		free: map[int64]map[int]int{}, nextGroup: 100, Available: map[string]bool{}}
	for _, d := range []string{
		"/sys/bus/pci/devices", "/sys/bus/pci/drivers", "/sys/class/net", "/sys/devices/pci0000:00",
		"/sys/kernel/iommu_groups", "/sys/class/iommu", "/sys/module", "/sys/kernel/mm/hugepages",
		"/sys/devices/system/node", "/proc/sys/vm", "/proc/self", "/proc/sys/kernel", "/dev", "/etc",
		"/lib/modules/" + Release,
	} {
		h.mkdir(d)
	}
	h.write("/sys/bus/pci/drivers_probe", "")
	h.write("/proc/sys/vm/compact_memory", "")
	h.write("/proc/sys/vm/drop_caches", "")
	h.write("/proc/self/mountinfo", "22 1 0:21 / /proc rw,nosuid - proc proc rw\n")
	h.write("/proc/sys/kernel/osrelease", Release+"\n")
	h.write("/lib/modules/"+Release+"/modules.dep", "")
	for _, d := range []string{"ena", "virtio-pci"} {
		h.AddDriver(d)
	}
	return h
}

// Path is the real path of a host path.
func (h *Host) Path(hostPath string) string { return filepath.Join(h.Dir, hostPath) }

func (h *Host) mkdir(hostPath string) {
	if err := os.MkdirAll(h.Path(hostPath), 0o755); err != nil {
		panic(err)
	}
}

func (h *Host) write(hostPath, data string) {
	h.mkdir(filepath.Dir(hostPath))
	if err := os.WriteFile(h.Path(hostPath), []byte(data), 0o644); err != nil {
		panic(err)
	}
}

func (h *Host) symlink(target, hostPath string) {
	h.mkdir(filepath.Dir(hostPath))
	_ = os.Remove(h.Path(hostPath))
	if err := os.Symlink(target, h.Path(hostPath)); err != nil {
		panic(err)
	}
}

func (h *Host) remove(hostPath string) { _ = os.RemoveAll(h.Path(hostPath)) }

func (h *Host) exists(hostPath string) bool {
	_, err := os.Lstat(h.Path(hostPath))
	return err == nil
}

// AddDriver registers a PCI driver directory with bind and unbind.
func (h *Host) AddDriver(name string) {
	h.write("/sys/bus/pci/drivers/"+name+"/bind", "")
	h.write("/sys/bus/pci/drivers/"+name+"/unbind", "")
	h.write("/sys/bus/pci/drivers/"+name+"/new_id", "")
}

// SetIOMMU gives the host an IOMMU (a DMAR unit) or takes it away.
func (h *Host) SetIOMMU(on bool) {
	h.IOMMU = on
	if on {
		h.mkdir("/sys/class/iommu/dmar0")
	} else {
		h.remove("/sys/class/iommu/dmar0")
	}
}

// FailBind makes every bind to driver fail with err (nil clears it).
func (h *Host) FailBind(driver string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failOn, driver)
		return
	}
	h.failOn[driver] = err
}

// AddNIC creates a PCI network function and, with a kernel driver, its netdev.
func (h *Host) AddNIC(n NIC) {
	if n.Vendor == "" {
		n.Vendor = VendorAmazon
	}
	if n.Device == "" {
		n.Device = DeviceENA
	}
	if n.IOMMUGroup == 0 {
		h.nextGroup++
		n.IOMMUGroup = h.nextGroup
	}
	dev := "/sys/devices/pci0000:00/" + n.BDF
	h.write(dev+"/vendor", "0x"+n.Vendor+"\n")
	h.write(dev+"/device", "0x"+n.Device+"\n")
	h.write(dev+"/class", "0x020000\n")
	h.write(dev+"/numa_node", strconv.Itoa(n.NUMA)+"\n")
	h.write(dev+"/driver_override", "(null)\n")
	h.symlink("../../../devices/pci0000:00/"+n.BDF, "/sys/bus/pci/devices/"+n.BDF)
	if h.IOMMU {
		g := strconv.Itoa(n.IOMMUGroup)
		h.symlink("../../../../devices/pci0000:00/"+n.BDF, "/sys/kernel/iommu_groups/"+g+"/devices/"+n.BDF)
		h.symlink("../../../kernel/iommu_groups/"+g, dev+"/iommu_group")
	}
	nn := n
	h.mu.Lock()
	h.nics[n.BDF] = &nn
	h.mu.Unlock()
	if n.Driver != "" {
		if !h.exists("/sys/bus/pci/drivers/" + n.Driver) {
			h.AddDriver(n.Driver)
		}
		if err := h.attach(&nn, n.Driver); err != nil {
			panic(err)
		}
	}
}

func (h *Host) devDir(bdf string) string { return "/sys/devices/pci0000:00/" + bdf }

func (h *Host) netdevDir(n *NIC) string {
	if n.Virtio {
		return h.devDir(n.BDF) + "/virtio" + strings.ReplaceAll(n.BDF[8:], ".", "") + "/net/" + n.IfName
	}
	return h.devDir(n.BDF) + "/net/" + n.IfName
}

func native(n *NIC) string {
	switch n.Vendor {
	case VendorAmazon:
		return "ena"
	case VendorVirtio:
		return "virtio-pci"
	}
	return ""
}

// attach binds n to driver, creating what the driver's probe creates.
func (h *Host) attach(n *NIC, driver string) error {
	dev := h.devDir(n.BDF)
	switch driver {
	case "vfio-pci":
		g := ""
		if h.exists(dev + "/iommu_group") {
			g = strconv.Itoa(n.IOMMUGroup)
			h.write("/dev/vfio/"+g, "")
		} else if h.noiommuOn() {
			// vfio creates a fake group for the device.
			h.nextGroup++
			g = strconv.Itoa(h.nextGroup)
			h.symlink("../../../../devices/pci0000:00/"+n.BDF, "/sys/kernel/iommu_groups/"+g+"/devices/"+n.BDF)
			h.symlink("../../../kernel/iommu_groups/"+g, dev+"/iommu_group")
			h.write("/sys/kernel/iommu_groups/"+g+"/name", "vfio-noiommu\n")
			h.write("/dev/vfio/noiommu-"+g, "")
		} else {
			return &os.PathError{Op: "write", Path: "bind", Err: syscall.EINVAL}
		}
	case "igb_uio":
		u := "uio" + strconv.Itoa(h.nextUIO)
		h.nextUIO++
		h.mkdir(dev + "/uio/" + u)
		h.write("/dev/"+u, "")
	default:
		if driver != native(n) {
			return &os.PathError{Op: "write", Path: "bind", Err: syscall.ENODEV}
		}
		if n.IfName != "" {
			nd := h.netdevDir(n)
			h.write(nd+"/address", n.MAC+"\n")
			up := "../../../" + n.BDF
			if n.Virtio {
				up = "../../../" + filepath.Base(filepath.Dir(filepath.Dir(nd)))
			}
			h.symlink(up, nd+"/device")
			h.symlink("../.."+strings.TrimPrefix(nd, "/sys"), "/sys/class/net/"+n.IfName)
		}
	}
	h.symlink("../../../bus/pci/drivers/"+driver, dev+"/driver")
	h.symlink("../../../../devices/pci0000:00/"+n.BDF, "/sys/bus/pci/drivers/"+driver+"/"+n.BDF)
	n.Driver = driver
	return nil
}

// detach undoes attach.
func (h *Host) detach(n *NIC) {
	dev := h.devDir(n.BDF)
	switch n.Driver {
	case "vfio-pci":
		if target, err := os.Readlink(h.Path(dev + "/iommu_group")); err == nil {
			g := filepath.Base(target)
			h.remove("/dev/vfio/" + g)
			if h.exists("/dev/vfio/noiommu-" + g) {
				h.remove("/dev/vfio/noiommu-" + g)
				h.remove("/sys/kernel/iommu_groups/" + g)
				h.remove(dev + "/iommu_group")
			}
		}
	case "igb_uio":
		if entries, err := os.ReadDir(h.Path(dev + "/uio")); err == nil {
			for _, e := range entries {
				h.remove("/dev/" + e.Name())
			}
		}
		h.remove(dev + "/uio")
	default:
		if n.IfName != "" {
			h.remove("/sys/class/net/" + n.IfName)
			h.remove(h.netdevDir(n))
			h.remove(filepath.Dir(h.netdevDir(n)))
			if n.Virtio {
				h.remove(filepath.Dir(filepath.Dir(h.netdevDir(n))))
			}
		}
	}
	h.remove(dev + "/driver")
	h.remove("/sys/bus/pci/drivers/" + n.Driver + "/" + n.BDF)
	n.Driver = ""
}

func (h *Host) noiommuOn() bool {
	b, err := os.ReadFile(h.Path("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"))
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func (h *Host) override(bdf string) string {
	b, _ := os.ReadFile(h.Path(h.devDir(bdf) + "/driver_override"))
	o := strings.TrimSpace(string(b))
	if o == "(null)" {
		return ""
	}
	return o
}

// Kernel is the emulated kernel's attribute interface.
func (h *Host) Kernel() *Kernel { return &Kernel{h: h} }

// Kernel reacts to attribute writes like the kernel.
type Kernel struct{ h *Host }

// WriteAttr implements the kernel side of one sysfs/procfs write.
func (k *Kernel) WriteAttr(hostPath, value string) error {
	h := k.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Writes = append(h.Writes, hostPath+"="+strings.TrimSpace(value))
	if _, err := h.Root.Path(hostPath); err != nil {
		return err
	}
	if !h.exists(hostPath) {
		return &os.PathError{Op: "open", Path: hostPath, Err: syscall.ENOENT}
	}
	if rest, ok := strings.CutPrefix(hostPath, "/sys/bus/pci/devices/"); ok {
		hostPath = "/sys/devices/pci0000:00/" + rest
	}
	v := strings.TrimSpace(value)
	errno := func(e syscall.Errno) error { return &os.PathError{Op: "write", Path: hostPath, Err: e} }
	parts := strings.Split(strings.TrimPrefix(hostPath, "/"), "/")
	switch {
	case strings.HasPrefix(hostPath, "/sys/bus/pci/drivers/") && len(parts) == 6 && (parts[5] == "bind" || parts[5] == "unbind"):
		driver := parts[4]
		n, ok := h.nics[v]
		if !ok {
			return errno(syscall.ENODEV)
		}
		if parts[5] == "unbind" {
			if n.Driver != driver {
				return errno(syscall.ENODEV)
			}
			h.detach(n)
			return nil
		}
		if n.Driver != "" {
			return errno(syscall.EBUSY)
		}
		if o := h.override(n.BDF); o != "" && o != driver {
			return errno(syscall.ENODEV)
		}
		if (driver == "vfio-pci" || driver == "igb_uio") && h.override(n.BDF) != driver {
			return errno(syscall.ENODEV) // no new_id: only the override matches
		}
		if err := h.failOn[driver]; err != nil {
			return err
		}
		return h.attach(n, driver)
	case hostPath == "/sys/bus/pci/drivers_probe":
		n, ok := h.nics[v]
		if !ok {
			return errno(syscall.ENODEV)
		}
		if n.Driver != "" {
			return nil
		}
		d := h.override(n.BDF)
		if d == "" {
			d = native(n)
		}
		if !h.exists("/sys/bus/pci/drivers/"+d) || h.failOn[d] != nil {
			return nil // probe finds no driver: the kernel reports success
		}
		_ = h.attach(n, d)
		return nil
	case strings.HasPrefix(hostPath, "/sys/devices/pci0000:00/") && strings.HasSuffix(hostPath, "/driver_override"):
		if v == "" {
			v = "(null)"
		}
		h.write(hostPath, v+"\n")
		return nil
	case hostPath == "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode":
		switch v {
		case "1", "Y", "y":
			h.write(hostPath, "Y\n")
		case "0", "N", "n":
			h.write(hostPath, "N\n")
		default:
			return errno(syscall.EINVAL)
		}
		return nil
	case hostPath == "/proc/sys/vm/compact_memory":
		h.Compactions++
		for _, nodes := range h.free {
			for n := range nodes {
				nodes[n] += h.compactGain
			}
		}
		return nil
	case hostPath == "/proc/sys/vm/drop_caches":
		return nil
	case strings.HasSuffix(hostPath, "/nr_hugepages"):
		want, err := strconv.Atoi(v)
		if err != nil || want < 0 {
			return errno(syscall.EINVAL)
		}
		return h.setHugepages(hostPath, want)
	}
	if handled, err := h.cpuWrite(hostPath, v); handled {
		return err
	}
	return fmt.Errorf("pcitest: the emulated kernel has no handler for %s", hostPath)
}

// Memory gives the host MemTotal and NUMA nodes, with free huge pages
// allocatable per node and size (KiB), and how many more per node each
// compaction frees.
func (h *Host) Memory(memTotalKiB int64, defaultKiB int64, nodes int, free map[int64]int, compactGain int) {
	h.write("/proc/meminfo", fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nHugepagesize:       %d kB\n", memTotalKiB, memTotalKiB/2, defaultKiB))
	h.compactGain = compactGain
	for kib, perNode := range free {
		h.free[kib] = map[int]int{}
		h.write(fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages", kib), "0\n")
		for n := 0; n < nodes; n++ {
			h.free[kib][n] = perNode
			h.write(fmt.Sprintf("/sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages", n, kib), "0\n")
		}
	}
	h.write("/sys/devices/system/node/online", fmt.Sprintf("0-%d\n", nodes-1))
}

// setHugepages allocates like the kernel: a total is spread over the nodes
// round-robin; each node gives at most its free pages.
func (h *Host) setHugepages(hostPath string, want int) error {
	var kib int64
	node := -1
	for _, p := range strings.Split(hostPath, "/") {
		if s, ok := strings.CutPrefix(p, "hugepages-"); ok {
			k, err := strconv.ParseInt(strings.TrimSuffix(s, "kB"), 10, 64)
			if err != nil {
				return err
			}
			kib = k
		}
		if s, ok := strings.CutPrefix(p, "node"); ok {
			if n, err := strconv.Atoi(s); err == nil {
				node = n
			}
		}
	}
	free, ok := h.free[kib]
	if !ok {
		return fmt.Errorf("pcitest: no %d kB pool", kib)
	}
	cur := map[int]int{}
	nodes := make([]int, 0, len(free))
	for n := range free {
		nodes = append(nodes, n)
		cur[n] = h.readInt(fmt.Sprintf("/sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages", n, kib))
	}
	sort.Ints(nodes)
	grow := func(n, target int) {
		for cur[n] < target && free[n] > 0 {
			cur[n]++
			free[n]--
		}
		for cur[n] > target {
			cur[n]--
			free[n]++
		}
	}
	if node >= 0 {
		grow(node, want)
	} else {
		total := 0
		for _, n := range nodes {
			total += cur[n]
		}
		for total > want {
			for _, n := range nodes {
				if total > want && cur[n] > 0 {
					cur[n]--
					free[n]++
					total--
				}
			}
		}
		for total < want {
			progress := false
			for _, n := range nodes {
				if total < want && free[n] > 0 {
					cur[n]++
					free[n]--
					total++
					progress = true
				}
			}
			if !progress {
				break
			}
		}
	}
	total := 0
	for _, n := range nodes {
		total += cur[n]
		h.write(fmt.Sprintf("/sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages", n, kib), strconv.Itoa(cur[n])+"\n")
	}
	h.write(fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages", kib), strconv.Itoa(total)+"\n")
	return nil
}

func (h *Host) readInt(hostPath string) int {
	b, err := os.ReadFile(h.Path(hostPath))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// ReadInt reads an integer attribute (0 when missing).
func (h *Host) ReadInt(hostPath string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.readInt(hostPath)
}

// Driver is the driver a device is on now, "" for none.
func (h *Host) Driver(bdf string) string {
	target, err := os.Readlink(h.Path(h.devDir(bdf) + "/driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// Exists reports whether a host path exists (without following symlinks).
func (h *Host) Exists(hostPath string) bool { return h.exists(hostPath) }

// AddModule makes a module available to modprobe (listed in modules.dep).
func (h *Host) AddModule(name, relPath string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Available[strings.ReplaceAll(name, "-", "_")] = true
	dep := h.Path("/lib/modules/" + Release + "/modules.dep")
	f, err := os.OpenFile(dep, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s:\n", relPath)
}

// Modprobe is the emulated module loader.
func (h *Host) Modprobe() *Modprobe { return &Modprobe{h: h} }

// Modprobe loads emulated modules and creates what loading them creates.
type Modprobe struct{ h *Host }

// Load loads a module with parameters, like `modprobe name k=v...`.
func (m *Modprobe) Load(_ context.Context, name string, params ...string) error {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	mod := strings.ReplaceAll(name, "-", "_")
	h.Loads = append(h.Loads, strings.TrimSpace(mod+" "+strings.Join(params, " ")))
	if !h.Available[mod] {
		return fmt.Errorf("modprobe: FATAL: Module %s not found in directory /lib/modules/%s", name, Release)
	}
	switch mod {
	case "vfio_pci":
		h.loadVFIO(params)
		h.mkdir("/sys/module/vfio_iommu_type1")
		h.mkdir("/sys/module/vfio_pci")
		if !h.exists("/sys/bus/pci/drivers/vfio-pci") {
			h.write("/sys/bus/pci/drivers/vfio-pci/bind", "")
			h.write("/sys/bus/pci/drivers/vfio-pci/unbind", "")
			h.write("/sys/bus/pci/drivers/vfio-pci/new_id", "")
		}
	case "vfio":
		h.loadVFIO(params)
	case "uio":
		h.mkdir("/sys/module/uio")
	case "igb_uio":
		if !h.exists("/sys/module/uio") {
			return fmt.Errorf("igb_uio: Unknown symbol uio_register_device")
		}
		h.mkdir("/sys/module/igb_uio")
		if !h.exists("/sys/bus/pci/drivers/igb_uio") {
			h.write("/sys/bus/pci/drivers/igb_uio/bind", "")
			h.write("/sys/bus/pci/drivers/igb_uio/unbind", "")
			h.write("/sys/bus/pci/drivers/igb_uio/new_id", "")
		}
	default:
		h.mkdir("/sys/module/" + mod)
	}
	return nil
}

func (h *Host) loadVFIO(params []string) {
	if h.exists("/sys/module/vfio") {
		return // already loaded: modprobe ignores new parameters
	}
	h.mkdir("/sys/module/vfio")
	h.write("/dev/vfio/vfio", "")
	if h.NoIOMMUSupported {
		v := "N"
		for _, p := range params {
			if p == "enable_unsafe_noiommu_mode=1" || p == "enable_unsafe_noiommu_mode=Y" {
				v = "Y"
			}
		}
		h.write("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", v+"\n")
	}
}

// Links is an emulated netlink view: per-interface usage, and link state.
type Links struct {
	mu    sync.Mutex
	h     *Host
	usage map[string]pci.Usage
	// Down lists the links set down, in order.
	Down []string
}

// Links returns the host's emulated netlink view.
func (h *Host) Links() *Links { return &Links{h: h, usage: map[string]pci.Usage{}} }

// Use marks an interface as used by the node.
func (l *Links) Use(ifname string, u pci.Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.usage[ifname] = u
}

// Usage implements pci.Links.
func (l *Links) Usage(_ context.Context, ifname string) (pci.Usage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.h.exists("/sys/class/net/" + ifname) {
		return pci.Usage{}, fmt.Errorf("link %s: Link not found", ifname)
	}
	return l.usage[ifname], nil
}

// SetDown implements pci.Links.
func (l *Links) SetDown(_ context.Context, ifname string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.h.exists("/sys/class/net/" + ifname) {
		return fmt.Errorf("link %s: Link not found", ifname)
	}
	l.Down = append(l.Down, ifname)
	return nil
}

// Snapshot maps every path under dir to its content, symlink target or
// "dir", with its mode, so a test can assert a tree is byte-for-byte unchanged.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "dir " + info.Mode().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = info.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Diff lists the paths whose snapshot entries differ.
func Diff(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if w != v {
			out = append(out, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	sort.Strings(out)
	return out
}

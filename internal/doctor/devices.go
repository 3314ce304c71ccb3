package doctor

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// Host paths the device checks read.
const (
	osRelease      = "/proc/sys/kernel/osrelease"
	PATMemtypeList = "/sys/kernel/debug/x86/pat_memtype_list"
	pciDevices     = "/sys/bus/pci/devices"
)

// checkDrivers: each configured interface's PCI function is on the driver
// the config asks for, and is still the device the run recorded.
func checkDrivers(_ context.Context, n *Node) []Finding {
	var out []Finding
	sys := pci.Sysfs{Root: n.Root}
	for _, i := range n.interfaces() {
		name := i.Config.Name
		if !i.Known || i.pciAddress() == "" {
			if i.Config.DPDK() {
				out = append(out, fail(name, "no PCI address recorded in "+stateFile(), "run nodeprep run (journalctl -u nodeprep shows why the bind step did not record it)"))
			}
			continue
		}
		bdf := i.pciAddress()
		d, err := sys.Device(bdf)
		if err != nil {
			out = append(out, fail(name, fmt.Sprintf("PCI %s: %v", bdf, err), "the device is gone: check the ENI attachment in EC2 and re-run nodeprep"))
			continue
		}
		if i.pciID() != "" && d.ID() != i.pciID() {
			out = append(out, fail(name, fmt.Sprintf("PCI %s is %s, the run recorded %s", bdf, d.ID(), i.pciID()), "the device at that address changed: re-run nodeprep run"))
			continue
		}
		want := string(i.driver())
		got := d.Driver
		switch {
		case i.Config.DPDK() && got != want:
			out = append(out, fail(name, fmt.Sprintf("PCI %s on %s, config says %s", bdf, orNone(got), want),
				fmt.Sprintf("something rebound it (dpdk-devbind, a udev rule): stop that, then nodeprep run rebinds it to %s", want)))
		case !i.Config.DPDK() && (got == string(api.DriverVFIOPCI) || got == string(api.DriverIGBUIO) || got == ""):
			out = append(out, fail(name, fmt.Sprintf("PCI %s on %s, config says the kernel driver", bdf, orNone(got)),
				"bind it back to ena (echo "+bdf+" > /sys/bus/pci/drivers/ena/bind) or set driver in the config"))
		default:
			out = append(out, ok(name, fmt.Sprintf("PCI %s (%s) on %s", bdf, d.ID(), got)))
		}
	}
	return out
}

// checkModules asks kmod's own planner what it would still do: a module
// not loaded, or modules-load.d / modprobe.d not as the config says.
func checkModules(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	spec := kmod.SpecFor(n.Config.Spec)
	if !spec.VFIO && !spec.IGBUIO {
		return nil
	}
	m := &kmod.Manager{Root: n.Root}
	_, changes, err := m.Plan(spec)
	if err != nil {
		return []Finding{fail("", err.Error(), "install the module for the running kernel (rebuild the AMI with the matching kernel-devel), then nodeprep run")}
	}
	if len(changes) > 0 {
		var what []string
		for _, c := range changes {
			what = append(what, c.What)
		}
		return []Finding{fail("", "nodeprep would still: "+strings.Join(what, "; "), "nodeprep run (or nodeprep plan to see the same list)")}
	}
	return []Finding{ok("", "every DPDK module loaded and persisted as configured")}
}

// dpdkModules are the modules whose build must match the running kernel.
func dpdkModules(s api.Spec) []string {
	spec := kmod.SpecFor(s)
	var out []string
	if spec.VFIO {
		out = append(out, "vfio", "vfio_pci")
	}
	if spec.IGBUIO {
		out = append(out, "uio", "igb_uio")
	}
	return out
}

// checkVermagic: each DPDK module's file is built for `uname -r`. A module
// built for another kernel (igb_uio built on the AMI builder's kernel, then
// the kernel updated) does not load, or loads forced and misbehaves.
func checkVermagic(_ context.Context, n *Node) []Finding {
	if n.Config == nil {
		return nil
	}
	mods := dpdkModules(n.Config.Spec)
	if len(mods) == 0 {
		return nil
	}
	rel, err := n.Root.ReadFile(osRelease)
	if err != nil {
		return []Finding{fail("", "cannot read "+osRelease+": "+err.Error(), "")}
	}
	release := strings.TrimSpace(string(rel))
	files, builtin, err := moduleFiles(n, release)
	if err != nil {
		return []Finding{fail("", err.Error(), "run depmod -a for kernel "+release)}
	}
	var out []Finding
	for _, mod := range mods {
		if builtin[mod] {
			out = append(out, ok(mod, "built into kernel "+release))
			continue
		}
		rel, found := files[mod]
		if !found {
			out = append(out, fail(mod, fmt.Sprintf("not in /lib/modules/%s/modules.dep", release), "install "+mod+" built for "+release+" (the AMI's DPDK module build), then depmod -a"))
			continue
		}
		file := "/lib/modules/" + release + "/" + rel
		vm, err := vermagic(n, file)
		switch {
		case errors.Is(err, errCompressed):
			out = append(out, warn(mod, file+" is compressed; its vermagic is not read here", "modinfo -F vermagic "+mod))
		case err != nil:
			out = append(out, fail(mod, err.Error(), "reinstall "+mod+" for kernel "+release))
		case strings.Fields(vm)[0] != release:
			out = append(out, fail(mod, fmt.Sprintf("%s vermagic %q, running kernel %s", file, vm, release),
				"rebuild "+mod+" against kernel-devel-"+release+" (or boot the kernel it was built for)"))
		default:
			out = append(out, ok(mod, fmt.Sprintf("vermagic %q matches %s", vm, release)))
		}
	}
	return out
}

// moduleFiles reads modules.dep (name -> relative file) and modules.builtin.
func moduleFiles(n *Node, release string) (map[string]string, map[string]bool, error) {
	files, builtin := map[string]string{}, map[string]bool{}
	for _, f := range []string{"modules.dep", "modules.builtin"} {
		b, err := n.Root.ReadFile("/lib/modules/" + release + "/" + f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			file, _, _ := strings.Cut(sc.Text(), ":")
			file = strings.TrimSpace(file)
			if file == "" {
				continue
			}
			name := moduleName(file)
			if f == "modules.builtin" {
				builtin[name] = true
			} else {
				files[name] = file
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, err
		}
	}
	return files, builtin, nil
}

func moduleName(file string) string {
	base := file[strings.LastIndex(file, "/")+1:]
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

var errCompressed = errors.New("compressed module")

// vermagic reads the vermagic= entry of a module's .modinfo ELF section,
// as modinfo does.
func vermagic(n *Node, file string) (string, error) {
	if !strings.HasSuffix(file, ".ko") {
		return "", errCompressed
	}
	p, err := n.Root.Path(file)
	if err != nil {
		return "", err
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return "", fmt.Errorf("%s: no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("%s: .modinfo: %w", file, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, []byte("vermagic=")); found && len(bytes.TrimSpace(v)) > 0 {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("%s: .modinfo has no vermagic", file)
}

// checkVFIOMode: vfio's unsafe no-IOMMU mode is on exactly when the node
// has no IOMMU. Without an IOMMU and without the mode, vfio-pci's probe
// fails with -22 (EINVAL); with an IOMMU the mode gives up DMA isolation
// for nothing.
func checkVFIOMode(_ context.Context, n *Node) []Finding {
	if n.Config == nil || !kmod.SpecFor(n.Config.Spec).VFIO {
		return nil
	}
	iommu, err := (&kmod.Manager{Root: n.Root}).HasIOMMU()
	if err != nil {
		return []Finding{fail("", "cannot tell whether the node has an IOMMU: "+err.Error(), "")}
	}
	mode := "absent"
	if b, err := n.Root.ReadFile(kmod.NoIOMMUParam); err == nil {
		mode = strings.TrimSpace(string(b))
	}
	noiommu := mode == "Y"
	var out []Finding
	switch {
	case !iommu && !noiommu:
		out = append(out, fail("", fmt.Sprintf("no IOMMU, and %s is %s: vfio-pci cannot bind (probe error -22)", kmod.NoIOMMUParam, mode),
			"set spec.kernelModules.vfio.noiommu: auto (or use driver igb_uio) and re-run nodeprep run"))
	case iommu && noiommu:
		out = append(out, warn("", "the node has an IOMMU but vfio runs in unsafe no-IOMMU mode", "reload vfio without enable_unsafe_noiommu_mode (remove it from "+kmod.ModprobeConf+") and reboot"))
	case iommu:
		out = append(out, ok("", "IOMMU present, vfio in IOMMU mode"))
	default:
		out = append(out, ok("", "no IOMMU, vfio in no-IOMMU mode"))
	}
	for _, i := range n.interfaces() {
		if i.Config.Driver != api.DriverVFIOPCI || i.pciAddress() == "" {
			continue
		}
		d, err := (pci.Sysfs{Root: n.Root}).Device(i.pciAddress())
		if err != nil || d.Driver != string(api.DriverVFIOPCI) {
			continue // the driver check reports it
		}
		dev := "/dev/vfio/" + d.IOMMUGroup
		if noiommu {
			dev = "/dev/vfio/noiommu-" + d.IOMMUGroup
		}
		if d.IOMMUGroup == "" || !n.Root.Exists(dev) {
			out = append(out, fail(i.Config.Name, fmt.Sprintf("PCI %s on vfio-pci but %s is missing", d.Address, dev), "unbind and rebind the device (nodeprep run) after fixing the vfio mode"))
			continue
		}
		out = append(out, ok(i.Config.Name, "group device "+dev))
	}
	return out
}

// checkIGBUIOWC: igb_uio is loaded with wc_activate=1, which ENA's LLQ
// needs. igb_uio declares the parameter with mode 0, so the kernel does not
// show it: the evidence is the options modprobe applied (modprobe.d or the
// kernel command line), read where the kernel shows it, when it does.
func checkIGBUIOWC(_ context.Context, n *Node) []Finding {
	if n.Config == nil || !kmod.SpecFor(n.Config.Spec).IGBUIO {
		return nil
	}
	if !kmod.SpecFor(n.Config.Spec).WCActivate {
		return []Finding{warn("", "spec.kernelModules.igbUIO.wcActivate is false: ENA LLQ runs without write-combining, Tx is slow or fails", "remove wcActivate: false")}
	}
	if b, err := n.Root.ReadFile("/sys/module/igb_uio/parameters/wc_activate"); err == nil {
		if v := strings.TrimSpace(string(b)); v != "1" {
			return []Finding{fail("", "/sys/module/igb_uio/parameters/wc_activate is "+v, "rmmod igb_uio; modprobe igb_uio wc_activate=1 (after the DPDK apps stop)")}
		}
		return []Finding{ok("", "/sys/module/igb_uio/parameters/wc_activate is 1")}
	}
	if !n.Root.Exists("/sys/module/igb_uio") {
		return []Finding{fail("", "igb_uio is not loaded", "nodeprep run")}
	}
	var sources []string
	if b, err := n.Root.ReadFile(kmod.ModprobeConf); err == nil && hasOption(string(b), "igb_uio", "wc_activate=1") {
		sources = append(sources, kmod.ModprobeConf)
	}
	if b, err := n.Root.ReadFile(procCmdline); err == nil && hasArg(strings.Fields(string(b)), "igb_uio.wc_activate=1") {
		sources = append(sources, procCmdline)
	}
	if len(sources) == 0 {
		return []Finding{fail("", "igb_uio loaded, and neither "+kmod.ModprobeConf+" nor "+procCmdline+" gives it wc_activate=1",
			"nodeprep run writes the option; then reload igb_uio after the DPDK apps stop")}
	}
	return []Finding{ok("", "igb_uio loaded; wc_activate=1 from "+join(sources)+" (the kernel hides the parameter)")}
}

func hasOption(conf, module, opt string) bool {
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "options" && strings.ReplaceAll(f[1], "-", "_") == module && hasArg(f[2:], opt) {
			return true
		}
	}
	return false
}

func hasArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

// Resource flags of /sys/bus/pci/devices/*/resource (include/linux/ioport.h).
const (
	ioresourceMem      = 0x00000200
	ioresourcePrefetch = 0x00002000
)

// bar is one PCI memory region.
type bar struct {
	index      int
	start, end uint64
}

func prefetchableBARs(n *Node, bdf string) ([]bar, error) {
	b, err := n.Root.ReadFile(pciDevices + "/" + bdf + "/resource")
	if err != nil {
		return nil, err
	}
	var out []bar
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || i > 5 {
			continue
		}
		start, e1 := strconv.ParseUint(f[0], 0, 64)
		end, e2 := strconv.ParseUint(f[1], 0, 64)
		flags, e3 := strconv.ParseUint(f[2], 0, 64)
		if e1 != nil || e2 != nil || e3 != nil || start == 0 {
			continue
		}
		if flags&ioresourceMem != 0 && flags&ioresourcePrefetch != 0 {
			out = append(out, bar{index: i, start: start, end: end})
		}
	}
	return out, nil
}

// patEntry is one line of pat_memtype_list: "PAT: [mem 0x...-0x...] write-combining".
type patEntry struct {
	start, end uint64
	kind       string
}

func readPAT(n *Node) ([]patEntry, error) {
	b, err := n.Root.ReadFile(PATMemtypeList)
	if err != nil {
		return nil, err
	}
	var out []patEntry
	for _, line := range strings.Split(string(b), "\n") {
		rest, found := strings.CutPrefix(strings.TrimSpace(line), "PAT: [mem ")
		if !found {
			continue
		}
		rng, kind, found := strings.Cut(rest, "] ")
		if !found {
			continue
		}
		s, e, found := strings.Cut(rng, "-")
		if !found {
			continue
		}
		start, e1 := strconv.ParseUint(s, 0, 64)
		end, e2 := strconv.ParseUint(e, 0, 64)
		if e1 != nil || e2 != nil {
			continue
		}
		out = append(out, patEntry{start: start, end: end, kind: strings.TrimSpace(kind)})
	}
	return out, nil
}

// checkWriteCombining: each DPDK device's prefetchable BAR (ENA's LLQ
// memory) is mapped write-combining. The kernel lists a mapping's memory
// type only while a process maps it, so with no DPDK app running the
// verdict is "not verifiable now", never a guess.
func checkWriteCombining(_ context.Context, n *Node) []Finding {
	var dpdk []iface
	for _, i := range n.interfaces() {
		if i.Config.DPDK() && i.pciAddress() != "" {
			dpdk = append(dpdk, i)
		}
	}
	if len(dpdk) == 0 {
		return nil
	}
	pat, patErr := readPAT(n)
	var out []Finding
	sys := pci.Sysfs{Root: n.Root}
	for _, i := range dpdk {
		name, bdf := i.Config.Name, i.pciAddress()
		// On another driver the BAR's mapping is that driver's (a kernel
		// NIC maps it uncached): it says nothing of the DPDK app's, and the
		// driver check already fails the device.
		if d, err := sys.Device(bdf); err == nil && d.Driver != string(i.driver()) {
			out = append(out, warn(name, fmt.Sprintf("not verifiable now: PCI %s is on %s, not %s (see the driver check)", bdf, orNone(d.Driver), i.driver()), "nodeprep run rebinds it, then rerun while the DPDK app runs"))
			continue
		}
		bars, err := prefetchableBARs(n, bdf)
		if err != nil {
			out = append(out, warn(name, "cannot read the BARs of "+bdf+": "+err.Error(), ""))
			continue
		}
		if len(bars) == 0 {
			out = append(out, warn(name, "PCI "+bdf+" shows no prefetchable memory BAR", "not verifiable on this device"))
			continue
		}
		if patErr != nil {
			out = append(out, warn(name, "not verifiable now: "+PATMemtypeList+" unreadable ("+patErr.Error()+")", "mount -t debugfs none /sys/kernel/debug (x86 only) and rerun while the DPDK app runs"))
			continue
		}
		for _, b := range bars {
			var kinds []string
			for _, p := range pat {
				if p.start < b.end+1 && b.start < p.end {
					kinds = append(kinds, p.kind)
				}
			}
			subject := fmt.Sprintf("%s BAR%d", name, b.index)
			rng := fmt.Sprintf("[0x%x-0x%x]", b.start, b.end)
			switch {
			case len(kinds) == 0:
				out = append(out, warn(subject, "not verifiable now: no mapping of "+rng+" in "+PATMemtypeList+" (the kernel lists it only while an app maps the BAR)", "rerun while the DPDK app runs"))
			case allAre(kinds, "write-combining"):
				out = append(out, ok(subject, rng+" mapped write-combining"))
			default:
				fix := "load igb_uio with wc_activate=1"
				if i.Config.Driver == api.DriverVFIOPCI {
					fix = "use a vfio-pci with write-combining support (kernel 6.x with the vfio WC patch, or ENA's vfio-wc patch), or igb_uio wc_activate=1"
				}
				out = append(out, fail(subject, rng+" mapped "+strings.Join(kinds, ", ")+": write-combining is not active, ENA LLQ Tx stalls", fix))
			}
		}
	}
	return out
}

func allAre(s []string, v string) bool {
	for _, x := range s {
		if x != v {
			return false
		}
	}
	return len(s) > 0
}

func orNone(s string) string {
	if s == "" {
		return "no driver"
	}
	return s
}

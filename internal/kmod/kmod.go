// Package kmod loads the DPDK kernel drivers (vfio-pci; uio and igb_uio),
// decides vfio's unsafe no-IOMMU mode from the host's IOMMU, and persists
// both to modules-load.d and modprobe.d so a reboot loads them the same way.
package kmod

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Host paths.
const (
	ModulesLoadConf = "/etc/modules-load.d/nodeprep.conf"
	ModprobeConf    = "/etc/modprobe.d/nodeprep.conf"
	NoIOMMUParam    = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"
	osRelease       = "/proc/sys/kernel/osrelease"
)

// Errors callers match with errors.Is.
var (
	// ErrMissing: the module is not installed for the running kernel.
	ErrMissing = errors.New("kernel module not installed")
	// ErrNoIOMMU: vfio-pci is needed, the host has no IOMMU and the config
	// forbids no-IOMMU mode.
	ErrNoIOMMU = errors.New("no IOMMU and no-IOMMU mode not allowed")
	// ErrNoIOMMUUnsupported: the kernel lacks CONFIG_VFIO_NOIOMMU.
	ErrNoIOMMUUnsupported = errors.New("kernel has no vfio no-IOMMU support")
	// ErrNotLoaded: modprobe returned but /sys/module shows no module.
	ErrNotLoaded = errors.New("module did not load")
)

// providers names what puts each module on the AMI, for the error message.
var providers = map[string]string{
	"igb_uio":          `the AMI build step "build igb_uio from dpdk-kmods"`,
	"uio":              "the kernel package (CONFIG_UIO)",
	"vfio":             "the kernel package (CONFIG_VFIO)",
	"vfio_pci":         "the kernel's vfio-pci module (CONFIG_VFIO_PCI) in the AMI's kernel package",
	"vfio_iommu_type1": "the kernel package (CONFIG_VFIO_IOMMU_TYPE1)",
}

// Loader loads a kernel module with parameters.
type Loader interface {
	Load(ctx context.Context, name string, params ...string) error
}

// Modprobe loads modules with the modprobe binary; arguments are passed as
// an argv, never through a shell.
type Modprobe struct {
	// Path defaults to "modprobe" from PATH.
	Path string
}

// Load runs `modprobe name params...`.
func (m Modprobe) Load(ctx context.Context, name string, params ...string) error {
	bin := m.Path
	if bin == "" {
		bin = "modprobe"
	}
	out, err := exec.CommandContext(ctx, bin, append([]string{name}, params...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("modprobe %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Spec is what the node's interfaces need.
type Spec struct {
	VFIO       bool
	IGBUIO     bool
	NoIOMMU    api.NoIOMMU
	WCActivate bool
}

// SpecFor derives the modules from a defaulted config.
func SpecFor(s api.Spec) Spec {
	out := Spec{NoIOMMU: s.KernelModules.VFIO.NoIOMMU, WCActivate: s.KernelModules.IGBUIO.WCActivate == nil || *s.KernelModules.IGBUIO.WCActivate}
	for _, in := range s.Interfaces {
		switch in.Driver {
		case api.DriverVFIOPCI:
			out.VFIO = true
		case api.DriverIGBUIO:
			out.IGBUIO = true
		}
	}
	return out
}

// Status is what Plan observed and decided.
type Status struct {
	IOMMU bool
	// NoIOMMU: vfio's unsafe no-IOMMU mode is (to be) enabled.
	NoIOMMU bool
	// Loaded lists the wanted modules already loaded.
	Loaded []string
}

// Manager loads and persists modules on one host.
type Manager struct {
	Root   hostfs.Root
	Loader Loader
	Kernel change.Kernel
}

// HasIOMMU reports whether the kernel drives an IOMMU: a unit under
// /sys/class/iommu (DMAR, AMD-Vi, virtio-iommu), or an IOMMU group that is
// not one of vfio's own no-IOMMU groups (named "vfio-noiommu"), which exist
// exactly when there is no IOMMU.
func (m *Manager) HasIOMMU() (bool, error) {
	units, err := m.Root.ReadDirNames("/sys/class/iommu")
	if err != nil || len(units) > 0 {
		return len(units) > 0, err
	}
	groups, err := m.Root.ReadDirNames("/sys/kernel/iommu_groups")
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		name, err := m.Root.ReadFile("/sys/kernel/iommu_groups/" + g + "/name")
		if err == nil && strings.TrimSpace(string(name)) == "vfio-noiommu" {
			continue
		}
		return true, nil
	}
	return false, nil
}

type module struct {
	name   string // as modprobe takes it
	params []string
}

// Plan decides the modules, options and files. It only reads.
func (m *Manager) Plan(s Spec) (Status, []change.Change, error) {
	var st Status
	iommu, err := m.HasIOMMU()
	if err != nil {
		return st, nil, err
	}
	st.IOMMU = iommu
	if s.VFIO && !iommu {
		if s.NoIOMMU == api.NoIOMMUOff {
			return st, nil, fmt.Errorf("spec.kernelModules.vfio.noiommu: off, but the node has no IOMMU, so vfio-pci cannot bind devices: set it to auto, or use driver igb_uio: %w", ErrNoIOMMU)
		}
		st.NoIOMMU = true
	}
	var mods []module
	var load, opts []string
	if s.VFIO {
		var p []string
		if st.NoIOMMU {
			p = []string{"enable_unsafe_noiommu_mode=1"}
			opts = append(opts, "options vfio enable_unsafe_noiommu_mode=1")
		}
		mods = append(mods, module{"vfio", p}, module{"vfio-pci", nil})
		load = append(load, "vfio-pci")
		if iommu {
			// The type1 backend lets DPDK attach a group to a container.
			// kmod's modprobe pulls it in as vfio's softdep; busybox and
			// other minimal loaders do not, so load it by name.
			mods = append(mods, module{"vfio_iommu_type1", nil})
			load = append(load, "vfio_iommu_type1")
		}
	}
	if s.IGBUIO {
		var p []string
		if s.WCActivate {
			p = []string{"wc_activate=1"}
			opts = append(opts, "options igb_uio wc_activate=1")
		}
		mods = append(mods, module{"uio", nil}, module{"igb_uio", p})
		load = append(load, "uio", "igb_uio")
	}
	var changes []change.Change
	for _, f := range []struct {
		path  string
		lines []string
	}{{ModulesLoadConf, load}, {ModprobeConf, opts}} {
		c, err := m.planFile(f.path, f.lines)
		if err != nil {
			return st, nil, err
		}
		if c != nil {
			changes = append(changes, *c)
		}
	}
	var release string
	for _, mod := range mods {
		sysName := strings.ReplaceAll(mod.name, "-", "_")
		if m.Root.Exists("/sys/module/" + sysName) {
			st.Loaded = append(st.Loaded, mod.name)
			continue
		}
		if release == "" {
			if release, err = m.release(); err != nil {
				return st, nil, err
			}
		}
		if ok, err := m.installed(release, sysName); err != nil {
			return st, nil, err
		} else if !ok {
			return st, nil, fmt.Errorf("%s is not installed for kernel %s (no %s in /lib/modules/%s/modules.dep): %s provides it: %w",
				mod.name, release, mod.name, release, providers[sysName], ErrMissing)
		}
		changes = append(changes, m.loadChange(mod, sysName))
	}
	if st.NoIOMMU && m.Root.Exists("/sys/module/vfio") {
		// vfio is already in (loaded earlier, or built in): modprobe would
		// ignore the option, so set the parameter at run time too.
		c, err := m.planNoIOMMUParam()
		if err != nil {
			return st, nil, err
		}
		if c != nil {
			changes = append(changes, *c)
		}
	}
	return st, changes, nil
}

func (m *Manager) loadChange(mod module, sysName string) change.Change {
	what := "load module " + strings.TrimSpace(mod.name+" "+strings.Join(mod.params, " "))
	return change.Change{What: what, Apply: func(ctx context.Context) error {
		if err := m.Loader.Load(ctx, mod.name, mod.params...); err != nil {
			return err
		}
		if !m.Root.Exists("/sys/module/" + sysName) {
			return fmt.Errorf("%s: no /sys/module/%s after modprobe: %w", mod.name, sysName, ErrNotLoaded)
		}
		if sysName == "vfio" && len(mod.params) > 0 {
			return m.checkNoIOMMU()
		}
		return nil
	}}
}

func (m *Manager) planNoIOMMUParam() (*change.Change, error) {
	b, err := m.Root.ReadFile(NoIOMMUParam)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the node has no IOMMU and vfio has no enable_unsafe_noiommu_mode parameter (kernel built without CONFIG_VFIO_NOIOMMU): %w", ErrNoIOMMUUnsupported)
	}
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(b)) == "Y" {
		return nil, nil
	}
	return &change.Change{What: "enable vfio unsafe no-IOMMU mode (the node has no IOMMU)", Apply: func(context.Context) error {
		if err := m.Kernel.WriteAttr(NoIOMMUParam, "1"); err != nil {
			return fmt.Errorf("enable vfio no-IOMMU mode: %w", err)
		}
		return m.checkNoIOMMU()
	}}, nil
}

func (m *Manager) checkNoIOMMU() error {
	b, err := m.Root.ReadFile(NoIOMMUParam)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vfio loaded without an enable_unsafe_noiommu_mode parameter (kernel built without CONFIG_VFIO_NOIOMMU): %w", ErrNoIOMMUUnsupported)
	}
	if err != nil {
		return err
	}
	if v := strings.TrimSpace(string(b)); v != "Y" {
		return fmt.Errorf("%s reads %q after enabling it: %w", NoIOMMUParam, v, ErrNoIOMMUUnsupported)
	}
	return nil
}

// planFile writes (or, with no lines, removes) one of nodeprep's config files.
func (m *Manager) planFile(hostPath string, lines []string) (*change.Change, error) {
	if len(lines) == 0 {
		if !m.Root.Exists(hostPath) {
			return nil, nil
		}
		return &change.Change{What: "remove " + hostPath + " (no DPDK modules configured)", Apply: func(context.Context) error {
			_, err := m.Root.Remove(hostPath)
			return err
		}}, nil
	}
	data := []byte("# Written by nodeprep from its config; edits are overwritten.\n" + strings.Join(lines, "\n") + "\n")
	if differs, err := m.Root.Differs(hostPath, data, 0o644); err != nil || !differs {
		return nil, err
	}
	return &change.Change{What: "write " + hostPath + ": " + strings.Join(lines, "; "), Apply: func(context.Context) error {
		_, err := m.Root.WriteFile(hostPath, data, 0o644)
		return err
	}}, nil
}

func (m *Manager) release() (string, error) {
	b, err := m.Root.ReadFile(osRelease)
	if err != nil {
		return "", err
	}
	r := strings.TrimSpace(string(b))
	if r == "" || strings.ContainsAny(r, "/") || r == "." || r == ".." {
		return "", fmt.Errorf("%s: unusable kernel release %q", osRelease, r)
	}
	return r, nil
}

// installed looks the module up in modules.dep (loadable) and
// modules.builtin (built in), as modprobe does.
func (m *Manager) installed(release, sysName string) (bool, error) {
	for _, f := range []string{"modules.dep", "modules.builtin"} {
		b, err := m.Root.ReadFile("/lib/modules/" + release + "/" + f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			file, _, _ := strings.Cut(sc.Text(), ":")
			if moduleName(file) == sysName {
				return true, nil
			}
		}
		if err := sc.Err(); err != nil {
			return false, err
		}
	}
	return false, nil
}

// moduleName turns kernel/drivers/vfio/pci/vfio-pci.ko.xz into vfio_pci.
func moduleName(file string) string {
	base := path.Base(strings.TrimSpace(file))
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

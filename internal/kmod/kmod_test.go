package kmod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

func newHost(t testing.TB, iommu, noiommuSupported bool) (*pcitest.Host, *Manager) {
	h := pcitest.New(t)
	h.SetIOMMU(iommu)
	h.NoIOMMUSupported = noiommuSupported
	h.AddModule("vfio", "kernel/drivers/vfio/vfio.ko.xz")
	h.AddModule("vfio-pci", "kernel/drivers/vfio/pci/vfio-pci.ko.xz")
	h.AddModule("vfio_iommu_type1", "kernel/drivers/vfio/vfio_iommu_type1.ko.xz")
	h.AddModule("uio", "kernel/drivers/uio/uio.ko.xz")
	return h, &Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()}
}

// ensure runs Plan and applies its changes the way the modules step does.
func ensure(m *Manager, s Spec) (Status, []change.Change, error) {
	st, changes, err := m.Plan(s)
	if err != nil {
		return st, nil, err
	}
	return st, changes, change.Apply(context.Background(), &changetest.Actions{}, changes)
}

func read(t *testing.T, h *pcitest.Host, p string) string {
	t.Helper()
	b, err := os.ReadFile(h.Path(p))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestVFIOWithIOMMU(t *testing.T) {
	h, m := newHost(t, true, true)
	spec := Spec{VFIO: true, NoIOMMU: api.NoIOMMUAuto}
	st, _, err := ensure(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IOMMU || st.NoIOMMU {
		t.Fatalf("status %+v", st)
	}
	if strings.Join(h.Loads, ",") != "vfio,vfio_pci,vfio_iommu_type1" {
		t.Fatalf("loads %v", h.Loads)
	}
	if got := read(t, h, ModulesLoadConf); !strings.HasSuffix(got, "\nvfio-pci\nvfio_iommu_type1\n") {
		t.Fatalf("modules-load.d: %q", got)
	}
	if h.Exists(ModprobeConf) {
		t.Fatal("modprobe.d written though no option is needed")
	}
	before := pcitest.Snapshot(t, h.Dir)
	_, changes, err := ensure(m, spec)
	if err != nil || len(changes) != 0 {
		t.Fatalf("second run: %v %v", changes, err)
	}
	if d := pcitest.Diff(before, pcitest.Snapshot(t, h.Dir)); len(d) > 0 {
		t.Fatal(d)
	}
}

func TestNoIOMMUAutoLoadsWithOption(t *testing.T) {
	h, m := newHost(t, false, true)
	st, _, err := ensure(m, Spec{VFIO: true, NoIOMMU: api.NoIOMMUAuto})
	if err != nil {
		t.Fatal(err)
	}
	if st.IOMMU || !st.NoIOMMU {
		t.Fatalf("status %+v", st)
	}
	if h.Loads[0] != "vfio enable_unsafe_noiommu_mode=1" {
		t.Fatalf("loads %v", h.Loads)
	}
	if got := read(t, h, NoIOMMUParam); got != "Y\n" {
		t.Fatalf("param %q", got)
	}
	if got := read(t, h, ModprobeConf); !strings.Contains(got, "\noptions vfio enable_unsafe_noiommu_mode=1\n") {
		t.Fatalf("modprobe.d %q", got)
	}
}

func TestNoIOMMUOnAlreadyLoadedVFIO(t *testing.T) {
	h, m := newHost(t, false, true)
	if err := h.Modprobe().Load(context.Background(), "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	h.Loads = nil
	_, changes, err := ensure(m, Spec{VFIO: true, NoIOMMU: api.NoIOMMUOn})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Loads) != 0 {
		t.Fatalf("reloaded %v", h.Loads)
	}
	if got := read(t, h, NoIOMMUParam); got != "Y\n" {
		t.Fatalf("param %q after %d changes", got, len(changes))
	}
	if got := read(t, h, ModprobeConf); !strings.Contains(got, "options vfio enable_unsafe_noiommu_mode=1") {
		t.Fatalf("option not persisted: %q", got)
	}
}

func TestNoIOMMUUnsupportedKernel(t *testing.T) {
	_, m := newHost(t, false, false)
	_, _, err := ensure(m, Spec{VFIO: true, NoIOMMU: api.NoIOMMUAuto})
	if !errors.Is(err, ErrNoIOMMUUnsupported) || !strings.Contains(err.Error(), "CONFIG_VFIO_NOIOMMU") {
		t.Fatalf("err = %v", err)
	}
}

func TestIGBUIOWithWriteCombining(t *testing.T) {
	h, m := newHost(t, false, false)
	h.AddModule("igb_uio", "extra/dpdk/igb_uio.ko")
	if _, _, err := ensure(m, Spec{IGBUIO: true, WCActivate: true, NoIOMMU: api.NoIOMMUAuto}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(h.Loads, ",") != "uio,igb_uio wc_activate=1" {
		t.Fatalf("loads %v", h.Loads)
	}
	if got := read(t, h, ModprobeConf); !strings.Contains(got, "\noptions igb_uio wc_activate=1\n") {
		t.Fatalf("modprobe.d %q", got)
	}
	if got := read(t, h, ModulesLoadConf); !strings.HasSuffix(got, "\nuio\nigb_uio\n") {
		t.Fatalf("modules-load.d %q", got)
	}
}

func TestNothingConfiguredRemovesOldFiles(t *testing.T) {
	h, m := newHost(t, true, true)
	if _, _, err := ensure(m, Spec{VFIO: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensure(m, Spec{}); err != nil {
		t.Fatal(err)
	}
	if h.Exists(ModulesLoadConf) {
		t.Fatal("stale modules-load.d file kept")
	}
}

// Bad input and missing modules: a clear error and the host untouched.
func TestRefusalsLeaveHostUntouched(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want error
		says string
	}{
		{"noiommu off without IOMMU", Spec{VFIO: true, NoIOMMU: api.NoIOMMUOff}, ErrNoIOMMU, "spec.kernelModules.vfio.noiommu"},
		{"igb_uio not built", Spec{IGBUIO: true, WCActivate: true}, ErrMissing, `"build igb_uio from dpdk-kmods"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, m := newHost(t, false, true)
			before := pcitest.Snapshot(t, h.Dir)
			_, _, err := ensure(m, tc.spec)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %s", err, tc.want, tc.says)
			}
			if d := pcitest.Diff(before, pcitest.Snapshot(t, h.Dir)); len(d) > 0 || len(h.Loads) > 0 || len(h.Writes) > 0 {
				t.Fatalf("host touched: %v %v %v", d, h.Loads, h.Writes)
			}
		})
	}
}

func TestVFIOPCIMissingNamesKernel(t *testing.T) {
	h := pcitest.New(t)
	h.SetIOMMU(true)
	m := &Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()}
	_, _, err := m.Plan(Spec{VFIO: true})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "vfio") || !strings.Contains(err.Error(), "kernel") {
		t.Fatalf("err = %v", err)
	}
}

func TestHasIOMMUFromGroups(t *testing.T) {
	h, m := newHost(t, false, false)
	if ok, _ := m.HasIOMMU(); ok {
		t.Fatal("IOMMU found on a host without one")
	}
	if err := os.MkdirAll(h.Path("/sys/kernel/iommu_groups/0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.HasIOMMU(); !ok {
		t.Fatal("IOMMU group not seen")
	}
}

// TestModprobeArgv runs a stand-in modprobe and checks it got an argv,
// not a shell string.
func TestModprobeArgv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	bin := filepath.Join(dir, "modprobe")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> " + out + "; done\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Modprobe{Path: bin}.Load(context.Background(), "igb_uio", "wc_activate=1", "x=$(reboot)")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "igb_uio\nwc_activate=1\nx=$(reboot)\n" {
		t.Fatalf("argv %q", b)
	}
}

func TestSpecFor(t *testing.T) {
	c := api.NodePrepConfig{Spec: api.Spec{Interfaces: []api.Interface{
		{Name: "a", MAC: "0a:00:00:00:00:01", Driver: api.DriverVFIOPCI},
		{Name: "b", MAC: "0a:00:00:00:00:02", Driver: api.DriverIGBUIO},
	}}}
	api.SetDefaults(&c)
	s := SpecFor(c.Spec)
	if !s.VFIO || !s.IGBUIO || !s.WCActivate || s.NoIOMMU != api.NoIOMMUAuto {
		t.Fatalf("%+v", s)
	}
}

func BenchmarkPlanLoaded(b *testing.B) {
	_, m := newHost(b, true, true)
	spec := Spec{VFIO: true, NoIOMMU: api.NoIOMMUAuto}
	if _, _, err := ensure(m, spec); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, c, err := m.Plan(spec); err != nil || len(c) != 0 {
			b.Fatal(err)
		}
	}
}

func TestNoIOMMUGroupsAreNotAnIOMMU(t *testing.T) {
	h, m := newHost(t, false, true)
	if err := os.MkdirAll(h.Path("/sys/kernel/iommu_groups/7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path("/sys/kernel/iommu_groups/7/name"), []byte("vfio-noiommu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.HasIOMMU(); ok {
		t.Fatal("a vfio no-IOMMU group counted as an IOMMU")
	}
}

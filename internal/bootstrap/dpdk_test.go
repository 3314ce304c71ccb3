package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/internal/state"
)

type dpdkTestMounter struct{}

func (dpdkTestMounter) Mount(string, string, string, uintptr, string) error { return nil }

type dpdkFixture struct {
	host  *pcitest.Host
	links *pcitest.Links
	node  *Node
	h     dpdkHost
}

// newDPDKFixture: an instance without an IOMMU (as most EC2 instance types),
// its primary ENA with the default route, two more ENAs for DPDK.
func newDPDKFixture(t *testing.T, ifs []api.Interface) *dpdkFixture {
	t.Helper()
	h := pcitest.New(t)
	h.NoIOMMUSupported = true
	h.Memory(8<<20, 2048, 1, map[int64]int{2048: 2048}, 0)
	h.AddNIC(pcitest.NIC{BDF: "0000:00:05.0", Driver: "ena", IfName: "ens5", MAC: "0a:00:00:00:00:05"})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "ens6", MAC: "0a:00:00:00:00:06"})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Device: pcitest.DeviceENALLQ, Driver: "ena", IfName: "ens7", MAC: "0a:00:00:00:00:07"})
	h.AddModule("vfio", "kernel/drivers/vfio/vfio.ko.xz")
	h.AddModule("vfio-pci", "kernel/drivers/vfio/pci/vfio-pci.ko.xz")
	links := h.Links()
	links.Use("ens5", pci.Usage{DefaultRoute: true, Addresses: []string{"10.0.0.5/24"}})
	cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: ifs, Hugepages: []api.Hugepages{{Size: "2Mi", Count: 8}}}}
	api.SetDefaults(cfg)
	if err := api.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return &dpdkFixture{host: h, links: links, node: &Node{Root: h.Root, Config: cfg}, h: dpdkHost{
		hugepages: &hugepages.Manager{Root: h.Root, Kernel: h.Kernel(), Mounter: dpdkTestMounter{}},
		modules:   &kmod.Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()},
		kernel:    h.Kernel(),
		links:     links,
	}}
}

func (f *dpdkFixture) run(t *testing.T, dryRun bool) (engine.Report, error) {
	t.Helper()
	st, err := state.Open(f.node.Root, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.node.State = st
	noop := func(context.Context, engine.Actions) error { return nil }
	steps := append([]engine.Step{{Name: StepConfig, Run: noop}, {Name: StepLinks, After: []string{StepConfig}, Run: noop}}, f.node.dpdkStepsWith(f.h)...)
	return engine.Run(context.Background(), steps, engine.Options{DryRun: dryRun})
}

var twoDPDK = []api.Interface{
	{Name: "dpdk-a", MAC: "0a:00:00:00:00:06", Driver: api.DriverVFIOPCI},
	{Name: "dpdk-b", PCIAddress: "0000:00:07.0", Driver: api.DriverVFIOPCI, ResourceName: "dpdk_a"},
}

func TestDPDKStepsBindAndWriteConfig(t *testing.T) {
	f := newDPDKFixture(t, twoDPDK)
	report, err := f.run(t, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, bdf := range []string{"0000:00:06.0", "0000:00:07.0"} {
		if d := f.host.Driver(bdf); d != "vfio-pci" {
			t.Errorf("%s on %q", bdf, d)
		}
	}
	if f.host.Driver("0000:00:05.0") != "ena" {
		t.Error("primary moved")
	}
	if got := f.host.ReadInt("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"); got != 8 {
		t.Errorf("hugepages %d", got)
	}
	b, err := os.ReadFile(f.host.Path(api.DefaultDevicePluginConfig))
	if err != nil {
		t.Fatal(err)
	}
	var doc deviceplugin.ResourceConfList
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.ResourceList) != 1 || doc.ResourceList[0].ResourceName != "dpdk_a" ||
		strings.Join(doc.ResourceList[0].Selectors.PciAddresses, ",") != "0000:00:06.0,0000:00:07.0" {
		t.Fatalf("config.json:\n%s", b)
	}
	if report.Changes() == 0 {
		t.Fatal("no changes recorded")
	}

	// A second run changes nothing, though the netdevs are gone.
	before := pcitest.Snapshot(t, f.host.Dir)
	report, err = f.run(t, false)
	if err != nil {
		t.Fatal(err)
	}
	if report.Changes() != 0 {
		t.Fatalf("second run made %d changes: %+v", report.Changes(), report.Steps)
	}
	diff := pcitest.Diff(before, pcitest.Snapshot(t, f.host.Dir))
	for _, d := range diff {
		if !strings.Contains(d, "run/nodeprep/state.json") {
			t.Errorf("second run changed %s", d)
		}
	}
}

func TestDPDKPlanChangesNothing(t *testing.T) {
	f := newDPDKFixture(t, twoDPDK)
	before := pcitest.Snapshot(t, f.host.Dir)
	report, err := f.run(t, true)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, s := range report.Steps {
		for _, c := range s.Changes {
			whats = append(whats, c.What)
		}
	}
	joined := strings.Join(whats, "\n")
	for _, want := range []string{"reserve 8 × 2Mi", "load module vfio enable_unsafe_noiommu_mode=1", "bind dpdk-a (PCI 0000:00:06.0", "bind dpdk-b (PCI 0000:00:07.0"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan lacks %q:\n%s", want, joined)
		}
	}
	diff := pcitest.Diff(before, pcitest.Snapshot(t, f.host.Dir))
	for _, d := range diff {
		if !strings.Contains(d, "run/nodeprep") {
			t.Errorf("plan changed %s", d)
		}
	}
	if len(f.host.Writes) > 0 || len(f.host.Loads) > 0 {
		t.Fatalf("plan wrote %v loaded %v", f.host.Writes, f.host.Loads)
	}
}

func TestDPDKRefusesPrimaryENI(t *testing.T) {
	f := newDPDKFixture(t, []api.Interface{{Name: "oops", MAC: "0a:00:00:00:00:05", Driver: api.DriverVFIOPCI}})
	report, err := f.run(t, false)
	var se *engine.StepError
	if !errors.As(err, &se) || !errors.Is(err, pci.ErrInUse) || !strings.Contains(err.Error(), "default route") {
		t.Fatalf("err = %v", err)
	}
	if f.host.Driver("0000:00:05.0") != "ena" || !f.host.Exists("/sys/class/net/ens5") {
		t.Fatal("primary touched")
	}
	for _, s := range report.Steps {
		if s.Name == StepDevicePlugin && s.Outcome != engine.Skipped {
			t.Errorf("device plugin step %s after a failed bind", s.Outcome)
		}
	}
	if f.host.Exists(api.DefaultDevicePluginConfig) {
		t.Error("config.json written")
	}
}

func BenchmarkDPDKStepsSecondRun(b *testing.B) {
	f := newDPDKFixtureB(b)
	for b.Loop() {
		st, _ := state.Open(f.node.Root, "bench", time.Now())
		f.node.State = st
		noop := func(context.Context, engine.Actions) error { return nil }
		steps := append([]engine.Step{{Name: StepConfig, Run: noop}, {Name: StepLinks, After: []string{StepConfig}, Run: noop}}, f.node.dpdkStepsWith(f.h)...)
		rep, err := engine.Run(context.Background(), steps, engine.Options{})
		if err != nil || rep.Changes() != 0 {
			b.Fatal(err, rep.Changes())
		}
	}
}

func newDPDKFixtureB(b *testing.B) *dpdkFixture {
	h := pcitest.New(b)
	h.NoIOMMUSupported = true
	h.Memory(8<<20, 2048, 1, map[int64]int{2048: 2048}, 0)
	h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "ens6", MAC: "0a:00:00:00:00:06"})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Driver: "ena", IfName: "ens7", MAC: "0a:00:00:00:00:07"})
	h.AddModule("vfio", "vfio.ko")
	h.AddModule("vfio-pci", "vfio-pci.ko")
	cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: twoDPDK, Hugepages: []api.Hugepages{{Size: "2Mi", Count: 512}}}}
	api.SetDefaults(cfg)
	f := &dpdkFixture{host: h, node: &Node{Root: h.Root, Config: cfg}, h: dpdkHost{
		hugepages: &hugepages.Manager{Root: h.Root, Kernel: h.Kernel(), Mounter: dpdkTestMounter{}},
		modules:   &kmod.Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()},
		kernel:    h.Kernel(),
		links:     h.Links(),
	}}
	st, _ := state.Open(h.Root, "bench", time.Now())
	f.node.State = st
	noop := func(context.Context, engine.Actions) error { return nil }
	steps := append([]engine.Step{{Name: StepConfig, Run: noop}, {Name: StepLinks, After: []string{StepConfig}, Run: noop}}, f.node.dpdkStepsWith(f.h)...)
	if _, err := engine.Run(context.Background(), steps, engine.Options{}); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkDPDKStepsFirstRun is a whole first run on the emulated host:
// 512 × 2Mi huge pages, vfio/vfio-pci loaded, two ENAs bound, config.json
// written. nodeprep-ms/op is the steps' time minus the time inside the
// (emulated) kernel calls: nodeprep's own overhead.
func BenchmarkDPDKStepsFirstRun(b *testing.B) {
	var own, kernel time.Duration
	for b.Loop() {
		b.StopTimer()
		f := newDPDKFixtureFresh(b)
		clocks := map[string]*kernelClock{StepHugepages: {}, StepModules: {}, StepBind: {}, StepDevicePlugin: {}}
		h := f.h
		h.hugepages.Kernel = timedKernel{h.hugepages.Kernel, clocks[StepHugepages]}
		h.hugepages.Mounter = timedMounter{h.hugepages.Mounter, clocks[StepHugepages]}
		h.modules.Loader = timedLoader{h.modules.Loader, clocks[StepModules]}
		h.modules.Kernel = timedKernel{h.modules.Kernel, clocks[StepModules]}
		h.kernel = timedKernel{h.kernel, clocks[StepBind]}
		h.links = timedLinks{h.links, clocks[StepBind]}
		noop := func(context.Context, engine.Actions) error { return nil }
		steps := append([]engine.Step{{Name: StepConfig, Run: noop}, {Name: StepLinks, After: []string{StepConfig}, Run: noop}}, f.node.dpdkStepsWith(h)...)
		b.StartTimer()
		rep, err := engine.Run(context.Background(), steps, engine.Options{})
		b.StopTimer()
		if err != nil || rep.Changes() < 5 {
			b.Fatal(err, rep.Changes())
		}
		for _, s := range rep.Steps {
			if c, ok := clocks[s.Name]; ok {
				k, _ := c.total()
				own += s.Duration - k
				kernel += k
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(own.Microseconds())/1000/float64(b.N), "nodeprep-ms/op")
	b.ReportMetric(float64(kernel.Microseconds())/1000/float64(b.N), "kernel-ms/op")
}

func newDPDKFixtureFresh(b *testing.B) *dpdkFixture {
	h := pcitest.New(b)
	h.NoIOMMUSupported = true
	h.Memory(8<<20, 2048, 1, map[int64]int{2048: 2048}, 0)
	h.AddNIC(pcitest.NIC{BDF: "0000:00:05.0", Driver: "ena", IfName: "ens5", MAC: "0a:00:00:00:00:05"})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "ens6", MAC: "0a:00:00:00:00:06"})
	h.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Driver: "ena", IfName: "ens7", MAC: "0a:00:00:00:00:07"})
	h.AddModule("vfio", "vfio.ko")
	h.AddModule("vfio-pci", "vfio-pci.ko")
	links := h.Links()
	links.Use("ens5", pci.Usage{DefaultRoute: true})
	cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: twoDPDK, Hugepages: []api.Hugepages{{Size: "2Mi", Count: 512}}}}
	api.SetDefaults(cfg)
	st, _ := state.Open(h.Root, "bench", time.Now())
	return &dpdkFixture{host: h, links: links, node: &Node{Root: h.Root, Config: cfg, State: st}, h: dpdkHost{
		hugepages: &hugepages.Manager{Root: h.Root, Kernel: h.Kernel(), Mounter: dpdkTestMounter{}},
		modules:   &kmod.Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()},
		kernel:    h.Kernel(),
		links:     links,
	}}
}

func TestDPDKSharedIOMMUGroup(t *testing.T) {
	ifs := []api.Interface{{Name: "g8", PCIAddress: "0000:00:08.0", Driver: api.DriverVFIOPCI}}
	f := newDPDKFixture(t, ifs)
	f.host.SetIOMMU(true)
	f.host.AddModule("vfio_iommu_type1", "vfio_iommu_type1.ko")
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:08.0", Driver: "ena", IfName: "ens8", MAC: "0a:00:00:00:00:08", IOMMUGroup: 7})
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:09.0", Driver: "ena", IfName: "ens9", MAC: "0a:00:00:00:00:09", IOMMUGroup: 7})
	_, err := f.run(t, false)
	if !errors.Is(err, pci.ErrGroupInUse) || !strings.Contains(err.Error(), "0000:00:09.0 (ena)") {
		t.Fatalf("err = %v", err)
	}
	// Binding the whole group is fine.
	f.node.Config.Spec.Interfaces = append(f.node.Config.Spec.Interfaces, api.Interface{Name: "g9", PCIAddress: "0000:00:09.0", Driver: api.DriverVFIOPCI, ResourceName: "g8"})
	if _, err := f.run(t, false); err != nil {
		t.Fatal(err)
	}
}

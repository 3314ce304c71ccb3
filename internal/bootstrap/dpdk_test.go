package bootstrap

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/internal/state"
)

// dpdkStepNames are the DPDK area's steps; runs stub what they come after.
var dpdkStepNames = []string{StepHugepages, StepModules, StepBind, StepDevicePlugin}

type dpdkTestMounter struct{}

func (dpdkTestMounter) Mount(string, string, string, uintptr, string) error { return nil }

type dpdkFixture struct {
	host  *pcitest.Host
	links *pcitest.Links
	cfg   *api.NodePrepConfig
	h     Host
}

// emulatedHost is the Host of a pcitest tree: emulated sysfs writes,
// modprobe and links.
func emulatedHost(h *pcitest.Host, links *pcitest.Links) Host {
	return Host{Root: h.Root, NICUsage: links, Kernel: h.Kernel(), Modprobe: h.Modprobe(), Mounter: dpdkTestMounter{}}
}

// newDPDKFixture: an instance without an IOMMU (as most EC2 instance types),
// its primary ENA with the default route, two more ENAs for DPDK.
func newDPDKFixture(t testing.TB, ifs []api.Interface, pages int) *dpdkFixture {
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
	cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: ifs, Hugepages: []api.Hugepages{{Size: "2Mi", Count: pages}}}}
	api.SetDefaults(cfg)
	if err := api.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	return &dpdkFixture{host: h, links: links, cfg: cfg, h: emulatedHost(h, links)}
}

func (f *dpdkFixture) run(t testing.TB, dryRun bool) (engine.Report, error) {
	t.Helper()
	out, err := runGraph(t, f.h, f.cfg, dryRun, dpdkStepNames...)
	return out.Report, err
}

var twoDPDK = []api.Interface{
	{Name: "dpdk-a", MAC: "0a:00:00:00:00:06", Driver: api.DriverVFIOPCI},
	{Name: "dpdk-b", PCIAddress: "0000:00:07.0", Driver: api.DriverVFIOPCI, ResourceName: "dpdk_a"},
}

func TestDPDKStepsBindAndWriteConfig(t *testing.T) {
	f := newDPDKFixture(t, twoDPDK, 8)
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
	st, err := state.Read(f.h.Root)
	if err != nil {
		t.Fatal(err)
	}
	if rec := st.Interfaces["dpdk-a"]; rec.Device.Device.Address != "0000:00:06.0" || rec.MAC() != "0a:00:00:00:00:06" || rec.Device.Device.Driver != "vfio-pci" || rec.Device.Device.ID() != "1d0f:ec20" {
		t.Errorf("state of dpdk-a: %+v", rec)
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
	f := newDPDKFixture(t, twoDPDK, 8)
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
	for _, want := range []string{"reserve 8 × 2Mi", "load module vfio enable_unsafe_noiommu_mode=1", "bind dpdk-a (PCI 0000:00:06.0", "bind dpdk-b (PCI 0000:00:07.0", "write " + api.DefaultDevicePluginConfig} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan lacks %q:\n%s", want, joined)
		}
	}
	if diff := pcitest.Diff(before, pcitest.Snapshot(t, f.host.Dir)); len(diff) > 0 {
		t.Errorf("plan changed %v", diff)
	}
	if len(f.host.Writes) > 0 || len(f.host.Loads) > 0 {
		t.Fatalf("plan wrote %v loaded %v", f.host.Writes, f.host.Loads)
	}
}

func TestDPDKRefusesPrimaryENI(t *testing.T) {
	f := newDPDKFixture(t, []api.Interface{{Name: "oops", MAC: "0a:00:00:00:00:05", Driver: api.DriverVFIOPCI}}, 8)
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

func TestDPDKSharedIOMMUGroup(t *testing.T) {
	ifs := []api.Interface{{Name: "g8", PCIAddress: "0000:00:08.0", Driver: api.DriverVFIOPCI}}
	f := newDPDKFixture(t, ifs, 8)
	f.host.SetIOMMU(true)
	f.host.AddModule("vfio_iommu_type1", "vfio_iommu_type1.ko")
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:08.0", Driver: "ena", IfName: "ens8", MAC: "0a:00:00:00:00:08", IOMMUGroup: 7})
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:09.0", Driver: "ena", IfName: "ens9", MAC: "0a:00:00:00:00:09", IOMMUGroup: 7})
	_, err := f.run(t, false)
	if !errors.Is(err, pci.ErrGroupInUse) || !strings.Contains(err.Error(), "0000:00:09.0 (ena)") {
		t.Fatalf("err = %v", err)
	}
	// Binding the whole group is fine.
	f.cfg.Spec.Interfaces = append(f.cfg.Spec.Interfaces, api.Interface{Name: "g9", PCIAddress: "0000:00:09.0", Driver: api.DriverVFIOPCI, ResourceName: "g8"})
	if _, err := f.run(t, false); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkDPDKStepsSecondRun(b *testing.B) {
	f := newDPDKFixture(b, twoDPDK, 512)
	if _, err := f.run(b, false); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rep, err := f.run(b, false)
		if err != nil || rep.Changes() != 0 {
			b.Fatal(err, rep.Changes())
		}
	}
}

// BenchmarkDPDKStepsFirstRun is a whole first run on the emulated host:
// 512 × 2Mi huge pages, vfio/vfio-pci loaded, two ENAs bound, config.json
// written. nodeprep-ms/op is the steps' time minus the time inside the
// (emulated) kernel calls: nodeprep's own overhead.
func BenchmarkDPDKStepsFirstRun(b *testing.B) {
	var own, kernel time.Duration
	for b.Loop() {
		b.StopTimer()
		f := newDPDKFixture(b, twoDPDK, 512)
		clocks := newKernelClocks()
		f.h = timedHost(f.h, clocks)
		b.StartTimer()
		rep, err := f.run(b, false)
		b.StopTimer()
		if err != nil || rep.Changes() < 5 {
			b.Fatal(err, rep.Changes())
		}
		o, k := clocks.split(rep)
		own += o
		kernel += k
		b.StartTimer()
	}
	b.ReportMetric(float64(own.Microseconds())/1000/float64(b.N), "nodeprep-ms/op")
	b.ReportMetric(float64(kernel.Microseconds())/1000/float64(b.N), "kernel-ms/op")
}

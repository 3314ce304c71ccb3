package pci_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

const (
	macPrimary = "0a:00:00:00:00:01"
	macDPDK    = "0a:00:00:00:00:02"
	bdfPrimary = "0000:00:05.0"
	bdfDPDK    = "0000:00:06.0"
)

type fixture struct {
	host   *pcitest.Host
	links  *pcitest.Links
	binder *pci.Binder
	// remembered is what the binder asked to keep, by interface, as the
	// node model keeps it across runs.
	remembered map[string]pci.Binding
}

// newFixture is an EC2-like host: the primary ENA (with the default route)
// and a second ENA, vfio-pci loadable.
func newFixture(t *testing.T, iommu bool) *fixture {
	t.Helper()
	h := pcitest.New(t)
	h.SetIOMMU(iommu)
	h.NoIOMMUSupported = true
	h.AddNIC(pcitest.NIC{BDF: bdfPrimary, Driver: "ena", IfName: "ens5", MAC: macPrimary})
	h.AddNIC(pcitest.NIC{BDF: bdfDPDK, Device: pcitest.DeviceENALLQ, Driver: "ena", IfName: "ens6", MAC: macDPDK, NUMA: 0})
	h.AddModule("vfio-pci", "kernel/drivers/vfio/pci/vfio-pci.ko.xz")
	h.AddModule("vfio", "kernel/drivers/vfio/vfio.ko.xz")
	h.AddModule("vfio_iommu_type1", "kernel/drivers/vfio/vfio_iommu_type1.ko.xz")
	h.AddModule("uio", "kernel/drivers/uio/uio.ko.xz")
	h.AddModule("igb_uio", "extra/dpdk/igb_uio.ko")
	links := h.Links()
	links.Use("ens5", pci.Usage{DefaultRoute: true, Addresses: []string{"10.0.0.5/24"}})
	f := &fixture{host: h, links: links, remembered: map[string]pci.Binding{}}
	f.binder = &pci.Binder{Sysfs: pci.Sysfs{Root: h.Root}, Kernel: h.Kernel(), Links: links, Remember: func(b pci.Binding) error {
		f.remembered[b.Name] = b
		return nil
	}}
	return f
}

func (f *fixture) loadVFIO(t *testing.T, noiommu bool) {
	t.Helper()
	var params []string
	if noiommu {
		params = []string{"enable_unsafe_noiommu_mode=1"}
	}
	if err := f.host.Modprobe().Load(context.Background(), "vfio", params...); err != nil {
		t.Fatal(err)
	}
	if err := f.host.Modprobe().Load(context.Background(), "vfio-pci"); err != nil {
		t.Fatal(err)
	}
}

// bind plans and applies like the bind step, with what the last run remembered.
func (f *fixture) bind(t *testing.T, tg pci.Target) (pci.Binding, bool, error) {
	t.Helper()
	if b, ok := f.remembered[tg.Name]; ok {
		tg.Previous = b
	}
	res, changes, err := f.binder.Plan(context.Background(), tg)
	if err != nil || len(changes) == 0 {
		return res, false, err
	}
	return res, true, change.Apply(context.Background(), &changetest.Actions{}, changes)
}

func TestBindENAByMACWithIOMMU(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	tg := pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI}
	res, changed, err := f.bind(t, tg)
	if err != nil || !changed {
		t.Fatalf("bind: changed=%v err=%v", changed, err)
	}
	if res.Device.Address != bdfDPDK || res.IfName != "ens6" {
		t.Fatalf("resolved %s/%s, want %s/ens6", res.Device.Address, res.IfName, bdfDPDK)
	}
	if d := f.host.Driver(bdfDPDK); d != "vfio-pci" {
		t.Fatalf("driver %q, want vfio-pci", d)
	}
	dev, err := f.binder.Sysfs.Device(bdfDPDK)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Override != "vfio-pci" {
		t.Errorf("driver_override %q: it must stay, so a re-probe keeps the device on vfio-pci", dev.Override)
	}
	if !f.host.Exists("/dev/vfio/" + dev.IOMMUGroup) {
		t.Errorf("no /dev/vfio/%s", dev.IOMMUGroup)
	}
	if f.host.Exists("/sys/class/net/ens6") {
		t.Error("ens6 still exists after unbinding ena")
	}
	if len(f.links.Down) != 1 || f.links.Down[0] != "ens6" {
		t.Errorf("links set down %v, want [ens6]", f.links.Down)
	}
	if f.host.Driver(bdfPrimary) != "ena" {
		t.Error("primary ENI moved")
	}
	rec, ok := f.remembered["dpdk0"]
	if !ok || rec.Device.Address != bdfDPDK || rec.MAC != macDPDK || rec.Device.Driver != "vfio-pci" || rec.IfName != "ens6" {
		t.Errorf("remembered %+v", rec)
	}

	// Second run: the netdev is gone; the record finds the device, nothing changes.
	writes := len(f.host.Writes)
	res, changed, err = f.bind(t, tg)
	if err != nil || changed {
		t.Fatalf("re-run: changed=%v err=%v", changed, err)
	}
	if res.Device.Address != bdfDPDK || len(f.host.Writes) != writes {
		t.Fatalf("re-run resolved %s and wrote %v", res.Device.Address, f.host.Writes[writes:])
	}
}

func TestBindWritesInOrder(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	if _, _, err := f.bind(t, pci.Target{Name: "dpdk0", PCIAddress: bdfDPDK, Driver: api.DriverVFIOPCI}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/sys/bus/pci/devices/" + bdfDPDK + "/driver_override=vfio-pci",
		"/sys/bus/pci/drivers/ena/unbind=" + bdfDPDK,
		"/sys/bus/pci/drivers/vfio-pci/bind=" + bdfDPDK,
	}
	if strings.Join(f.host.Writes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("writes:\n%s\nwant:\n%s", strings.Join(f.host.Writes, "\n"), strings.Join(want, "\n"))
	}
}

func TestBindVirtioNetByMAC(t *testing.T) {
	f := newFixture(t, true)
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:10.0", Vendor: pcitest.VendorVirtio, Device: pcitest.DeviceVirtio, Driver: "virtio-pci", IfName: "eth1", MAC: "52:54:00:00:00:10", Virtio: true})
	f.loadVFIO(t, false)
	res, changed, err := f.bind(t, pci.Target{Name: "v0", MAC: "52:54:00:00:00:10", Driver: api.DriverVFIOPCI})
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if res.Device.Address != "0000:00:10.0" || f.host.Driver("0000:00:10.0") != "vfio-pci" {
		t.Fatalf("resolved %s, driver %s", res.Device.Address, f.host.Driver("0000:00:10.0"))
	}
}

func TestBindNoIOMMU(t *testing.T) {
	f := newFixture(t, false)
	f.loadVFIO(t, true)
	if _, _, err := f.bind(t, pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI}); err != nil {
		t.Fatal(err)
	}
	dev, _ := f.binder.Sysfs.Device(bdfDPDK)
	if dev.IOMMUGroup == "" || !f.host.Exists("/dev/vfio/noiommu-"+dev.IOMMUGroup) {
		t.Fatalf("no noiommu group node for group %q", dev.IOMMUGroup)
	}
}

func TestBindWithoutIOMMUOrNoIOMMUFailsAndRestores(t *testing.T) {
	f := newFixture(t, false)
	f.loadVFIO(t, false) // vfio without noiommu: probe fails with EINVAL
	_, _, err := f.bind(t, pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI})
	if !errors.Is(err, pci.ErrBind) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("err = %v, want ErrBind wrapping EINVAL", err)
	}
	assertRestored(t, f)
}

func TestBindFailureRestoresOriginalDriver(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	f.host.FailBind("vfio-pci", &pcitestErr{syscall.EIO})
	_, _, err := f.bind(t, pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI})
	if !errors.Is(err, pci.ErrBind) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("err = %v, want ErrBind wrapping EIO", err)
	}
	assertRestored(t, f)
}

type pcitestErr struct{ errno syscall.Errno }

func (e *pcitestErr) Error() string { return "write bind: " + e.errno.Error() }
func (e *pcitestErr) Unwrap() error { return e.errno }

func assertRestored(t *testing.T, f *fixture) {
	t.Helper()
	if d := f.host.Driver(bdfDPDK); d != "ena" {
		t.Fatalf("driver after failed bind %q, want ena restored", d)
	}
	if !f.host.Exists("/sys/class/net/ens6") {
		t.Error("ens6 not back")
	}
	dev, _ := f.binder.Sysfs.Device(bdfDPDK)
	if dev.Override != "" {
		t.Errorf("driver_override %q left behind", dev.Override)
	}
}

func TestAlreadyBoundChangesNothing(t *testing.T) {
	h := pcitest.New(t)
	h.SetIOMMU(true)
	h.AddModule("vfio-pci", "kernel/drivers/vfio/pci/vfio-pci.ko.xz")
	if err := h.Modprobe().Load(context.Background(), "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	h.AddNIC(pcitest.NIC{BDF: bdfDPDK, Driver: "vfio-pci"})
	b := &pci.Binder{Sysfs: pci.Sysfs{Root: h.Root}, Kernel: h.Kernel(), Links: h.Links()}
	before := pcitest.Snapshot(t, h.Dir)
	res, c, err := b.Plan(context.Background(), pci.Target{Name: "dpdk0", PCIAddress: bdfDPDK, Driver: api.DriverVFIOPCI})
	if err != nil || len(c) != 0 {
		t.Fatalf("change=%v err=%v", c, err)
	}
	if res.Device.Driver != "vfio-pci" {
		t.Fatalf("observed driver %q", res.Device.Driver)
	}
	if d := pcitest.Diff(before, pcitest.Snapshot(t, h.Dir)); len(d) > 0 || len(h.Writes) > 0 {
		t.Fatalf("tree changed: %v, writes %v", d, h.Writes)
	}
}

func TestCrashAfterUnbindConverges(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	tg := pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI}
	res, c, err := f.binder.Plan(context.Background(), tg)
	if err != nil || len(c) == 0 {
		t.Fatal(err)
	}
	// The first run remembered the device, set the override, unbound, then died.
	f.remembered[tg.Name] = res
	k := f.host.Kernel()
	if err := k.WriteAttr("/sys/bus/pci/devices/"+bdfDPDK+"/driver_override", "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	if err := k.WriteAttr("/sys/bus/pci/drivers/ena/unbind", bdfDPDK); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := f.bind(t, tg); err != nil || !changed {
		t.Fatalf("re-run: changed=%v err=%v", changed, err)
	}
	if f.host.Driver(bdfDPDK) != "vfio-pci" {
		t.Fatal("re-run did not bind")
	}
	if rec := f.remembered["dpdk0"]; rec.Device.Address != bdfDPDK || rec.Device.Driver != "vfio-pci" {
		t.Errorf("remembered after the re-run: %+v", rec)
	}
}

func TestIGBUIO(t *testing.T) {
	f := newFixture(t, false)
	for _, m := range []string{"uio", "igb_uio"} {
		if err := f.host.Modprobe().Load(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.bind(t, pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverIGBUIO}); err != nil {
		t.Fatal(err)
	}
	if f.host.Driver(bdfDPDK) != "igb_uio" || !f.host.Exists("/dev/uio0") {
		t.Fatal("not on igb_uio with /dev/uio0")
	}
}

// Refusals: each is a clear error, and the tree is byte-for-byte unchanged.
func TestRefusals(t *testing.T) {
	idx0 := int32(0)
	cases := []struct {
		name   string
		target pci.Target
		setup  func(*fixture)
		want   error
		says   string
	}{
		{"primary ENI by device index", pci.Target{Name: "x", MAC: macDPDK, Driver: api.DriverVFIOPCI, DeviceIndex: &idx0}, nil, pci.ErrInUse, "primary ENI"},
		{"NIC with the default route", pci.Target{Name: "x", MAC: macPrimary, Driver: api.DriverVFIOPCI}, nil, pci.ErrInUse, "default route"},
		{"primary by PCI address", pci.Target{Name: "x", PCIAddress: bdfPrimary, Driver: api.DriverVFIOPCI}, nil, pci.ErrInUse, "ens5"},
		{"NIC with an address", pci.Target{Name: "x", MAC: macDPDK, Driver: api.DriverVFIOPCI}, func(f *fixture) {
			f.links.Use("ens6", pci.Usage{Addresses: []string{"10.0.1.9/24"}})
		}, pci.ErrInUse, "10.0.1.9/24"},
		{"path traversal in BDF", pci.Target{Name: "x", PCIAddress: "../../../../etc", Driver: api.DriverVFIOPCI}, nil, pci.ErrInvalid, "PCI address"},
		{"BDF with a suffix", pci.Target{Name: "x", PCIAddress: bdfDPDK + "/../../x", Driver: api.DriverVFIOPCI}, nil, pci.ErrInvalid, "PCI address"},
		{"upper-case BDF", pci.Target{Name: "x", PCIAddress: "0000:00:0A.0", Driver: api.DriverVFIOPCI}, nil, pci.ErrInvalid, "PCI address"},
		{"bad MAC", pci.Target{Name: "x", MAC: "0a:00:00:00:00:02/..", Driver: api.DriverVFIOPCI}, nil, pci.ErrInvalid, "MAC"},
		{"kernel driver target", pci.Target{Name: "x", MAC: macDPDK, Driver: "ena"}, nil, pci.ErrInvalid, "driver"},
		{"unknown MAC", pci.Target{Name: "x", MAC: "0a:00:00:00:00:99", Driver: api.DriverVFIOPCI}, nil, pci.ErrNotFound, "no interface has MAC"},
		{"driver not loaded", pci.Target{Name: "x", MAC: macDPDK, Driver: api.DriverIGBUIO}, nil, pci.ErrNoDriver, "igb_uio"},
		{"malicious driver link in sysfs", pci.Target{Name: "x", PCIAddress: "0000:00:07.0", Driver: api.DriverVFIOPCI}, func(f *fixture) {
			f.host.AddNIC(pcitest.NIC{BDF: "0000:00:07.0"})
			mustSymlink(t, "../../../../../..", f.host.Path("/sys/devices/pci0000:00/0000:00:07.0/driver"))
		}, pci.ErrInvalid, "driver name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, true)
			f.loadVFIO(t, false)
			if tc.setup != nil {
				tc.setup(f)
			}
			before := pcitest.Snapshot(t, f.host.Dir)
			_, c, err := f.binder.Plan(context.Background(), tc.target)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
			if len(c) != 0 {
				t.Fatal("a change was planned")
			}
			if d := pcitest.Diff(before, pcitest.Snapshot(t, f.host.Dir)); len(d) > 0 || len(f.host.Writes) > 0 || len(f.links.Down) > 0 {
				t.Fatalf("host touched: %v writes %v down %v", d, f.host.Writes, f.links.Down)
			}
		})
	}
}

func BenchmarkPlanBound(b *testing.B) {
	h := pcitest.New(b)
	h.SetIOMMU(true)
	h.AddModule("vfio-pci", "x.ko")
	_ = h.Modprobe().Load(context.Background(), "vfio-pci")
	h.AddNIC(pcitest.NIC{BDF: bdfDPDK, Driver: "vfio-pci"})
	bd := &pci.Binder{Sysfs: pci.Sysfs{Root: h.Root}, Kernel: h.Kernel(), Links: h.Links()}
	tg := pci.Target{Name: "dpdk0", PCIAddress: bdfDPDK, Driver: api.DriverVFIOPCI}
	b.ResetTimer()
	for b.Loop() {
		if _, c, err := bd.Plan(context.Background(), tg); err != nil || len(c) != 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkBindTwoNICs(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		h := pcitest.New(b)
		h.SetIOMMU(true)
		h.AddModule("vfio-pci", "x.ko")
		_ = h.Modprobe().Load(context.Background(), "vfio-pci")
		h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "ens6", MAC: "0a:00:00:00:00:06"})
		h.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Driver: "ena", IfName: "ens7", MAC: "0a:00:00:00:00:07"})
		bd := &pci.Binder{Sysfs: pci.Sysfs{Root: h.Root}, Kernel: h.Kernel(), Links: h.Links()}
		b.StartTimer()
		for _, mac := range []string{"0a:00:00:00:00:06", "0a:00:00:00:00:07"} {
			_, c, err := bd.Plan(context.Background(), pci.Target{Name: "n" + mac[16:], MAC: mac, Driver: api.DriverVFIOPCI})
			if err != nil {
				b.Fatal(err)
			}
			if err := change.Apply(context.Background(), &changetest.Actions{}, c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestGroupBlockers(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:08.0", Driver: "ena", IfName: "ens8", MAC: "0a:00:00:00:00:08", IOMMUGroup: 7})
	f.host.AddNIC(pcitest.NIC{BDF: "0000:00:09.0", Driver: "ena", IfName: "ens9", MAC: "0a:00:00:00:00:09", IOMMUGroup: 7})
	if _, _, err := f.bind(t, pci.Target{Name: "g8", PCIAddress: "0000:00:08.0", Driver: api.DriverVFIOPCI}); err != nil {
		t.Fatal(err)
	}
	got, err := f.binder.Sysfs.GroupBlockers("0000:00:08.0")
	if err != nil || len(got) != 1 || got[0] != "0000:00:09.0 (ena)" {
		t.Fatalf("blockers %v, %v", got, err)
	}
	if _, _, err := f.bind(t, pci.Target{Name: "g9", PCIAddress: "0000:00:09.0", Driver: api.DriverVFIOPCI}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.binder.Sysfs.GroupBlockers("0000:00:08.0"); err != nil || len(got) != 0 {
		t.Fatalf("blockers after binding the whole group: %v, %v", got, err)
	}
}

func TestRecordedAddressWithAnotherDeviceIsRejected(t *testing.T) {
	f := newFixture(t, true)
	f.loadVFIO(t, false)
	tg := pci.Target{Name: "dpdk0", MAC: macDPDK, Driver: api.DriverVFIOPCI}
	if _, _, err := f.bind(t, tg); err != nil {
		t.Fatal(err)
	}
	if rec := f.remembered["dpdk0"]; rec.Device.ID() != "1d0f:ec21" {
		t.Fatalf("recorded PCI ID %q", rec.Device.ID())
	}
	// Another device now sits at the recorded address (a different
	// instance's state file, a re-plugged slot): the record is not trusted.
	if err := os.WriteFile(f.host.Path("/sys/devices/pci0000:00/"+bdfDPDK+"/device"), []byte("0xec20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.bind(t, tg)
	if !errors.Is(err, pci.ErrNotFound) || !strings.Contains(err.Error(), "1d0f:ec20") {
		t.Fatalf("err = %v", err)
	}
}

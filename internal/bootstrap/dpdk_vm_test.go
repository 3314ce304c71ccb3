package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hugepages"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/test/vm"
)

const (
	vmPrimaryMAC = "52:54:00:6e:70:01"
	vmVirtioMAC  = "52:54:00:6e:70:02"
	vmVMXNET3MAC = "52:54:00:6e:70:03"
	vmHugepages  = 512
)

// kernelClock adds up the time spent inside the kernel (sysfs writes,
// modprobe, mount, netlink), so a step's own overhead is its duration minus
// this.
type kernelClock struct {
	mu sync.Mutex
	d  time.Duration
	n  int
}

func (c *kernelClock) since(start time.Time) {
	c.mu.Lock()
	c.d += time.Since(start)
	c.n++
	c.mu.Unlock()
}

func (c *kernelClock) total() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d, c.n
}

// kernelClocks times each DPDK step's kernel calls.
type kernelClocks map[string]*kernelClock

func newKernelClocks() kernelClocks {
	return kernelClocks{StepHugepages: {}, StepModules: {}, StepBind: {}, StepDevicePlugin: {}}
}

// all is the one clock every kernel call of the host is timed on. Steps
// overlap, so split gives each step the kernel time inside its own window.
func (c kernelClocks) all() *kernelClock { return c[StepBind] }

// split returns nodeprep's own time (steps minus kernel) and the kernel's.
func (c kernelClocks) split(rep engine.Report) (own, kernel time.Duration) {
	for _, s := range rep.Steps {
		if _, ok := c[s.Name]; ok {
			own += s.Duration
		}
	}
	k, _ := c.all().total()
	return own - k, k
}

type timedKernel struct {
	inner change.Kernel
	c     *kernelClock
}

func (k timedKernel) WriteAttr(p, v string) error {
	defer k.c.since(time.Now())
	return k.inner.WriteAttr(p, v)
}

type timedLoader struct {
	inner kmod.Loader
	c     *kernelClock
}

func (l timedLoader) Load(ctx context.Context, name string, params ...string) error {
	defer l.c.since(time.Now())
	return l.inner.Load(ctx, name, params...)
}

type timedMounter struct {
	inner hugepages.Mounter
	c     *kernelClock
}

func (m timedMounter) Mount(s, t, f string, fl uintptr, d string) error {
	defer m.c.since(time.Now())
	return m.inner.Mount(s, t, f, fl, d)
}

type timedLinks struct {
	inner pci.Links
	c     *kernelClock
}

func (l timedLinks) Usage(ctx context.Context, n string) (pci.Usage, error) {
	defer l.c.since(time.Now())
	return l.inner.Usage(ctx, n)
}

func (l timedLinks) SetDown(ctx context.Context, n string) error {
	defer l.c.since(time.Now())
	return l.inner.SetDown(ctx, n)
}

// timedHost is h with every kernel call timed.
func timedHost(h Host, clocks kernelClocks) Host {
	c := clocks.all()
	h.Kernel = timedKernel{h.Kernel, c}
	h.Mounter = timedMounter{h.Mounter, c}
	h.Modprobe = timedLoader{h.Modprobe, c}
	h.NICUsage = timedLinks{h.NICUsage, c}
	return h
}

// TestVMDPDKSteps runs the DPDK steps against a real kernel: QEMU q35 with
// a vIOMMU, a primary NIC with the default route, a virtio-net NIC (netdev
// under a virtio child) and a vmxnet3 NIC (netdev on the PCI function, like
// ENA), both picked by MAC.
func TestVMDPDKSteps(t *testing.T) {
	if vm.InGuest() {
		guestDPDKSteps(t)
		return
	}
	bed := vm.NewT(t)
	check := filepath.Join(t.TempDir(), "vfiocheck")
	if err := vm.BuildStatic(t.Context(), "./test/vm/testdata/vfiocheck", check); err != nil {
		t.Fatal(err)
	}
	res := bed.RunTestInGuest(t, vm.Spec{
		NICs: []vm.NIC{
			{MAC: vmPrimaryMAC, Backend: vm.BackendUser},
			{MAC: vmVirtioMAC},
			{MAC: vmVMXNET3MAC, Model: vm.ModelVMXNET3},
		},
		MemoryMiB: 2048,
		Files:     map[string]string{"/usr/bin/vfiocheck": check},
		// The primary NIC carries the node's address and default route,
		// as on EC2.
		Script: `p=$(for n in /sys/class/net/*; do [ "$(cat $n/address)" = "` + vmPrimaryMAC + `" ] && basename $n; done)
ip link set "$p" up && ip addr add 10.0.2.15/24 dev "$p" && ip route add default via 10.0.2.2 dev "$p"`,
	})
	t.Logf("kernel %s, guest boot %s, whole VM run %s", res.Kernel, res.GuestBoot, res.Duration)
	for _, k := range []string{"timing.hugepages", "timing.modules", "timing.bind", "timing.deviceplugin", "timing.kernel", "timing.overhead", "timing.plan", "timing.rerun", "calibration", "config.json", "refused"} {
		t.Logf("%s: %s", k, res.Markers[k])
	}
	if guest, err := time.ParseDuration(res.Markers["calibration"]); err == nil {
		host := calibrate()
		t.Logf("TCG slowdown of Go code: guest %s / host %s = %.1fx", guest, host, float64(guest)/float64(host))
	}
}

// calibrate times a fixed CPU-bound Go workload of plain integer, map and
// string operations (nothing TCG's CPU model lacks, such as SHA or AVX
// instructions), in the guest and on the host, to tell TCG's slowdown apart
// from nodeprep's own cost.
func calibrate() time.Duration {
	start := time.Now()
	m := make(map[string]int, 1<<15)
	x := uint64(1)
	for i := 0; i < 1<<17; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		m[fmt.Sprint(x%(1<<15))] += i
	}
	if len(m) == 0 {
		panic("calibrate")
	}
	return time.Since(start)
}

func guestDPDKSteps(t *testing.T) {
	root := hostfs.New("/")
	ifs := []api.Interface{
		{Name: "dpdk-virtio", MAC: vmVirtioMAC, Driver: api.DriverVFIOPCI, ResourceName: "dpdk"},
		{Name: "dpdk-vmxnet3", MAC: vmVMXNET3MAC, Driver: api.DriverVFIOPCI, ResourceName: "dpdk"},
	}
	run := func(ifs []api.Interface, clocks kernelClocks, dryRun bool) (engine.Report, error) {
		cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: ifs, Hugepages: []api.Hugepages{{Size: "2Mi", Count: vmHugepages}}}}
		api.SetDefaults(cfg)
		if err := api.Validate(cfg); err != nil {
			t.Fatal(err)
		}
		out, err := runGraph(t, timedHost(NewHost(root, nil), clocks), cfg, dryRun, dpdkStepNames...)
		return out.Report, err
	}

	vm.Mark("calibration", calibrate().String())
	// nodeprep plan first: it reads everything run reads, and under TCG
	// the first execution of any code pays for its translation, which a
	// real CPU does not. Timed separately.
	start := time.Now()
	if _, err := run(ifs, newKernelClocks(), true); err != nil {
		t.Fatalf("plan: %v", err)
	}
	vm.Mark("timing.plan", time.Since(start).String())
	clocks := newKernelClocks()
	report, err := run(ifs, clocks, false)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	overhead, kernel := clocks.split(report)
	for _, s := range report.Steps {
		if _, ok := clocks[s.Name]; !ok {
			continue
		}
		vm.Mark("timing."+s.Name, fmt.Sprintf("step %s; %d changes", s.Duration, len(s.Changes)))
		for _, ch := range s.Changes {
			t.Logf("%s: %s (%s)", s.Name, ch.What, ch.Duration)
		}
	}
	_, calls := clocks.all().total()
	vm.Mark("timing.kernel", fmt.Sprintf("%s in %d calls", kernel, calls))
	vm.Mark("timing.overhead", overhead.String())

	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(vmHugepages) {
		t.Errorf("nr_hugepages %q, %v", b, err)
	}
	sysfs := pci.Sysfs{Root: root}
	for i := 1; i <= 2; i++ {
		bdf := vm.NICAddress(i)
		dev, err := sysfs.Device(bdf)
		if err != nil {
			t.Fatal(err)
		}
		if dev.Driver != "vfio-pci" || dev.Override != "vfio-pci" {
			t.Errorf("%s: driver %q override %q", bdf, dev.Driver, dev.Override)
		}
		if fi, err := os.Stat("/dev/vfio/" + dev.IOMMUGroup); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s: /dev/vfio/%s: %v", bdf, dev.IOMMUGroup, err)
		}
		// Open it the way DPDK does: container, type1 IOMMU, group, device.
		out, err := exec.Command("/usr/bin/vfiocheck", dev.IOMMUGroup, bdf).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "vfiocheck: ok") {
			t.Errorf("%s: vfiocheck: %v: %s", bdf, err, out)
		}
	}
	cfgJSON, err := os.ReadFile(api.DefaultDevicePluginConfig)
	if err != nil {
		t.Fatal(err)
	}
	vm.Mark("config.json", string(cfgJSON))
	for i := 1; i <= 2; i++ {
		if !strings.Contains(string(cfgJSON), `"`+vm.NICAddress(i)+`"`) {
			t.Errorf("config.json lacks %s:\n%s", vm.NICAddress(i), cfgJSON)
		}
	}

	// Second run: the netdevs are gone; the state file finds the devices.
	start = time.Now()
	report, err = run(ifs, newKernelClocks(), false)
	if err != nil || report.Changes() != 0 {
		t.Fatalf("second run: %d changes, %v: %+v", report.Changes(), err, report.Steps)
	}
	vm.Mark("timing.rerun", time.Since(start).String())

	// The primary NIC is refused and stays where it was.
	primary := append(ifs[:2:2], api.Interface{Name: "primary", MAC: vmPrimaryMAC, Driver: api.DriverVFIOPCI})
	_, err = run(primary, newKernelClocks(), false)
	if !errors.Is(err, pci.ErrInUse) {
		t.Fatalf("primary as a DPDK target: err = %v, want ErrInUse", err)
	}
	vm.Mark("refused", err.Error())
	if dev, _ := sysfs.Device(vm.NICAddress(0)); dev.Driver != "virtio-pci" || len(dev.Netdevs) != 1 {
		t.Errorf("primary NIC now on %q with netdevs %v", dev.Driver, dev.Netdevs)
	}
}

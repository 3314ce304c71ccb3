package vm

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeKernel writes a kernel cache dir with the given modules.dep, softdep
// and builtin lists, as ensureKernel leaves it.
func fakeKernel(t *testing.T, dep, softdep, builtin string) *Kernel {
	t.Helper()
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib", "modules", "6.1.0-test")
	for name, data := range map[string]string{"modules.dep": dep, "modules.softdep": softdep, "modules.builtin": builtin} {
		if err := writeFile(filepath.Join(mods, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFile(filepath.Join(dir, "kernel.info"), []byte("package=linux-image-test\nrelease=6.1.0-test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := loadKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const fakeDep = `kernel/drivers/vfio/vfio.ko:
kernel/drivers/vfio/vfio_iommu_type1.ko: kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/pci/vfio-pci-core.ko: kernel/drivers/vfio/vfio.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
`

func TestModuleClosureFollowsDepsAndSoftdeps(t *testing.T) {
	k := fakeKernel(t, fakeDep, "softdep vfio post: vfio_iommu_type1 vfio_iommu_spapr_tce\n", "kernel/drivers/pci/pci-stub.ko\n")
	got, err := k.moduleClosure([]string{"vfio-pci", "pci_stub"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/vfio/pci/vfio-pci-core.ko",
		"kernel/drivers/vfio/pci/vfio-pci.ko",
		"kernel/drivers/vfio/vfio.ko",
		"kernel/drivers/vfio/vfio_iommu_type1.ko", // softdep; spapr one absent and skipped
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("closure = %v, want %v", got, want)
	}
	if _, err := k.moduleClosure([]string{"igb_uio"}); err == nil || !strings.Contains(err.Error(), "igb_uio") {
		t.Errorf("unknown module: err = %v, want one naming igb_uio", err)
	}
}

func TestStageModulesWritesTrimmedModulesDep(t *testing.T) {
	k := fakeKernel(t, fakeDep, "", "")
	for _, p := range []string{"kernel/drivers/net/virtio_net.ko", "kernel/drivers/virtio/virtio.ko"} {
		if err := writeFile(filepath.Join(k.ModulesDir, p), []byte("ko:"+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFile(filepath.Join(k.ModulesDir, "modules.order"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := stageModules(k, []string{"virtio_net"}, root); err != nil {
		t.Fatal(err)
	}
	dep, err := os.ReadFile(filepath.Join(root, "lib/modules/6.1.0-test/modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	want := "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio.ko:\n"
	if string(dep) != want {
		t.Errorf("modules.dep = %q, want %q", dep, want)
	}
	ko, err := os.ReadFile(filepath.Join(root, "lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko"))
	if err != nil || string(ko) != "ko:kernel/drivers/virtio/virtio.ko" {
		t.Errorf("virtio.ko = %q, %v", ko, err)
	}
}

func TestCollectParsesBedLines(t *testing.T) {
	console := "[    0.1] booting\r\n" +
		"@@VM:INIT 4.25 1.50\r\n" +
		"[    5.0] noise @@VM:MARK spaced aGVsbG8gd29ybGQKbGluZTI=\r\n" +
		"@@VM:MARK empty \r\n" +
		"@@VM:MARK spaced bGFzdA==\r\n" +
		"@@VM:EXIT 3\r\n"
	res := Result{ExitCode: -1, Markers: map[string]string{}}
	var b strings.Builder
	collect(strings.NewReader(console), &b, nil, time.Now(), &res)
	if strings.Contains(b.String(), "\r") || !strings.Contains(b.String(), "booting\n") {
		t.Errorf("console not normalised: %q", b.String())
	}
	if res.GuestBoot != 4250*time.Millisecond {
		t.Errorf("GuestBoot = %s", res.GuestBoot)
	}
	if res.ExitCode != 3 {
		t.Errorf("ExitCode = %d", res.ExitCode)
	}
	want := map[string]string{"spaced": "last", "empty": ""}
	if !reflect.DeepEqual(res.Markers, want) {
		t.Errorf("Markers = %q, want %q", res.Markers, want)
	}
}

func TestSpecValidate(t *testing.T) {
	for name, spec := range map[string]Spec{
		"bad mac":     {NICs: []NIC{{MAC: "52:54:00"}}},
		"dup mac":     {NICs: []NIC{{MAC: "52:54:00:00:00:01"}, {MAC: "52:54:00:00:00:01"}}},
		"bad backend": {NICs: []NIC{{MAC: "52:54:00:00:00:01", Backend: "tap"}}},
		"bad model":   {NICs: []NIC{{MAC: "52:54:00:00:00:01", Model: "e1000"}}},
		"negative":    {MemoryMiB: -1},
		"numa cpus":   {NUMANodes: 2, CPUs: 3},
		"fwd no user": {NICs: []NIC{{MAC: "52:54:00:00:00:01", Forwards: []Forward{{"10.0.2.100:80", "127.0.0.1:1"}}}}},
		"fwd outside": {NICs: []NIC{{MAC: "52:54:00:00:00:01", Backend: BackendUser, Forwards: []Forward{{"169.254.169.254:80", "127.0.0.1:1"}}}}},
	} {
		if err := spec.validate(); err == nil {
			t.Errorf("%s: validate() = nil", name)
		}
	}
	if err := (Spec{}).validate(); err != nil {
		t.Errorf("zero Spec: %v", err)
	}
}

func TestQEMUArgsPlaceNICs(t *testing.T) {
	b := &Bed{Kernel: &Kernel{Vmlinuz: "/k/vmlinuz"}}
	args := b.qemuArgs(Spec{NICs: []NIC{{MAC: "52:54:00:AA:00:01", Backend: BackendUser}, {MAC: "52:54:00:aa:00:02"}}, Cmdline: "hugepages=8"}, "/i.gz")
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-netdev user,id=n0,restrict=on",
		"virtio-net-pci,netdev=n0,mac=52:54:00:aa:00:01,bus=pcie.0,addr=0x10,",
		"-netdev hubport,id=n1,hubid=101",
		"mac=52:54:00:aa:00:02,bus=pcie.0,addr=0x11,",
		"-append " + BaseCmdline + " hugepages=8",
		"intel-iommu,intremap=on",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("qemu args lack %q:\n%s", want, joined)
		}
	}
	if got := (Spec{NICs: []NIC{{MAC: "52:54:00:00:00:01", Model: ModelVMXNET3}}}).bootModules(); !slices.Contains(got, "vmxnet3") {
		t.Errorf("boot modules %v lack vmxnet3 for a vmxnet3 NIC", got)
	}
	if NICAddress(1) != "0000:00:11.0" {
		t.Errorf("NICAddress(1) = %s", NICAddress(1))
	}
	if !slices.Contains(args, "-no-reboot") {
		t.Error("qemu args lack -no-reboot: a guest panic would loop")
	}
}

func TestQEMUArgsNUMAAndNoIOMMU(t *testing.T) {
	b := &Bed{Kernel: &Kernel{Vmlinuz: "/k/vmlinuz"}}
	joined := strings.Join(b.qemuArgs(Spec{NUMANodes: 2, CPUs: 4, MemoryMiB: 2048, NoIOMMU: true}, "/i.gz"), " ")
	for _, want := range []string{
		"-smp 4,sockets=2,cores=2,threads=1",
		"-object memory-backend-ram,id=mem1,size=1024M -numa node,nodeid=1,memdev=mem1",
		"-numa cpu,node-id=1,socket-id=1",
		"-machine q35 ",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("qemu args lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "intel-iommu") {
		t.Errorf("NoIOMMU args still have a vIOMMU:\n%s", joined)
	}
}

func TestGuestPathRejectsRelativeAndRoot(t *testing.T) {
	for _, p := range []string{"etc/x", "/", ""} {
		if _, err := guestPath("/stage", p); err == nil {
			t.Errorf("guestPath(%q) = nil error", p)
		}
	}
	if got, err := guestPath("/stage", "/usr/bin/../bin/nodeprep"); err != nil || got != "/stage/usr/bin/nodeprep" {
		t.Errorf("guestPath = %q, %v", got, err)
	}
}

func TestTestRunPatternAnchorsEachLevel(t *testing.T) {
	if got, want := testRunPattern("TestX/sub_case#01"), `^TestX$/^sub_case#01$`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := testRunPattern("TestX/a.b"); got != `^TestX$/^a\.b$` {
		t.Errorf("got %q", got)
	}
}

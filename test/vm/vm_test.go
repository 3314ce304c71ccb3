package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	primaryMAC = "52:54:00:6e:70:01"
	dpdkMAC    = "52:54:00:6e:70:02"
)

// bindScript finds the NIC by MAC, resolves its PCI function through the
// virtio device, moves it from virtio-pci to vfio-pci the way nodeprep will
// (driver_override + unbind + drivers_probe), opens it through VFIO and
// allocates 2Mi hugepages.
const bindScript = `
set -u
fail() { echo "FAIL: $*"; exit 1; }
modprobe vfio-pci || fail "modprobe vfio-pci"
# busybox modprobe ignores softdeps; vfio needs the type1 backend for containers.
modprobe vfio_iommu_type1 || fail "modprobe vfio_iommu_type1"
mac=` + dpdkMAC + `
dev=
for n in /sys/class/net/*; do
	[ "$(cat $n/address)" = "$mac" ] && dev=$n
done
[ -n "$dev" ] || fail "no netdev with MAC $mac"
mark ifname "${dev##*/}"
# For virtio the netdev's device is the virtio device; its parent is the PCI function.
vdev=$(readlink -f $dev/device)
mark virtio_dev "${vdev##*/}"
pci=$(dirname $vdev)
bdf=${pci##*/}
mark bdf "$bdf"
sys=/sys/bus/pci/devices/$bdf
mark vendor_device "$(cat $sys/vendor):$(cat $sys/device)"
mark driver_before "$(basename $(readlink $sys/driver))"
echo vfio-pci > $sys/driver_override
echo $bdf > $sys/driver/unbind
echo $bdf > /sys/bus/pci/drivers_probe
mark driver_after "$(basename $(readlink $sys/driver))"
group=$(basename $(readlink $sys/iommu_group))
mark group "$group"
[ -c /dev/vfio/$group ] && mark group_dev "/dev/vfio/$group"
[ -c /dev/vfio/vfio ] && mark container_dev /dev/vfio/vfio
[ -e $dev ] && mark netdev_after present || mark netdev_after gone
mark vfiocheck "$(/usr/bin/vfiocheck $group $bdf 2>&1)"
for n in /sys/class/net/*; do
	[ "$(cat $n/address)" = "` + primaryMAC + `" ] && mark primary_driver "$(basename $(readlink $(dirname $(readlink -f $n/device))/driver))"
done
echo 64 > /proc/sys/vm/nr_hugepages
mark nr_hugepages "$(cat /proc/sys/vm/nr_hugepages)"
mark hugepages_free "$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)"
mark hugepagesize "$(awk '/^Hugepagesize:/ {print $2 $3}' /proc/meminfo)"
mark hugetlbfs "$(awk '$2 == "/dev/hugepages" {print $3}' /proc/mounts)"
`

func TestVMBindVirtioNICToVFIO(t *testing.T) {
	bed := NewT(t)
	check := filepath.Join(t.TempDir(), "vfiocheck")
	if err := BuildStatic(t.Context(), "./test/vm/testdata/vfiocheck", check); err != nil {
		t.Fatal(err)
	}
	res, err := bed.Run(t.Context(), Spec{
		Script: bindScript,
		Files:  map[string]string{"/usr/bin/vfiocheck": check},
		NICs:   []NIC{{MAC: primaryMAC, Backend: BackendUser}, {MAC: dpdkMAC}},
	})
	if err != nil {
		t.Fatalf("vm run: %v\nconsole:\n%s", err, res.Console)
	}
	t.Logf("kernel %s: guest boot %s, /init after %s, whole run %s", res.Kernel, res.GuestBoot, res.InitAfter, res.Duration)

	want := map[string]string{
		"bdf":            NICAddress(1),
		"vendor_device":  "0x1af4:0x1041", // modern-only virtio-net
		"driver_before":  "virtio-pci",
		"driver_after":   "vfio-pci",
		"netdev_after":   "gone",
		"container_dev":  "/dev/vfio/vfio",
		"primary_driver": "virtio-pci",
		"nr_hugepages":   "64",
		"hugepages_free": "64",
		"hugepagesize":   "2048kB",
		"hugetlbfs":      "hugetlbfs",
	}
	for k, v := range want {
		if got, ok := res.Markers[k]; !ok || got != v {
			t.Errorf("marker %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	group := res.Markers["group"]
	if group == "" || res.Markers["group_dev"] != "/dev/vfio/"+group {
		t.Errorf("iommu group %q: group_dev marker %q", group, res.Markers["group_dev"])
	}
	if !strings.HasPrefix(res.Markers["vfiocheck"], "vfiocheck: ok group="+group+" device="+NICAddress(1)) {
		t.Errorf("vfiocheck: %q", res.Markers["vfiocheck"])
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}

func TestVMScriptFailureIsReported(t *testing.T) {
	bed := NewT(t)
	res, err := bed.Run(t.Context(), Spec{Script: "mark before yes\nexit 7\nmark after yes"})
	var se *ScriptError
	if !errors.As(err, &se) || se.Code != 7 {
		t.Fatalf("err = %v, want ScriptError{7}\nconsole:\n%s", err, res.Console)
	}
	if res.Markers["before"] != "yes" || res.Markers["after"] != "" {
		t.Errorf("markers %v", res.Markers)
	}
}

func TestVMTimeoutKillsVM(t *testing.T) {
	bed := NewT(t)
	start := time.Now()
	// The guest script never ends; the deadline must end the run.
	res, err := bed.Run(t.Context(), Spec{Script: "sleep 3600", Timeout: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded\nconsole:\n%s", err, res.Console)
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("run took %s after a 10s timeout", d)
	}
}

func TestVMGuestPanicEndsRun(t *testing.T) {
	bed := NewT(t)
	// sysrq 'c' crashes the kernel; panic=-1 and -no-reboot must end QEMU
	// at once rather than waiting for the timeout.
	res, err := bed.Run(t.Context(), Spec{Script: "echo c > /proc/sysrq-trigger; sleep 3600", Timeout: 2 * time.Minute})
	if !errors.Is(err, ErrNoExit) {
		t.Fatalf("err = %v, want ErrNoExit\nconsole:\n%s", err, res.Console)
	}
	if !strings.Contains(res.Console, "Kernel panic") {
		t.Errorf("console lacks the panic:\n%s", res.Console)
	}
}

func TestVMKernelHasDPDKModules(t *testing.T) {
	bed := NewT(t)
	k := bed.Kernel
	for _, m := range []string{"vfio", "vfio_pci", "vfio_iommu_type1", "virtio_net", "virtio_pci", "uio_pci_generic"} {
		builtin, err := k.Builtin(m)
		if err != nil {
			t.Fatal(err)
		}
		if !k.HasModule(m) && !builtin {
			t.Errorf("kernel %s: %s neither modular nor built-in", k.Release, m)
		}
		t.Logf("%s: modular=%v builtin=%v", m, k.HasModule(m), builtin)
	}
	for _, opt := range []string{"VFIO_NOIOMMU", "IOMMUFD", "INTEL_IOMMU", "HUGETLBFS"} {
		v, err := k.ConfigValue(opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("CONFIG_%s=%q", opt, v)
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		t.Error(err)
	}
}

func BenchmarkBootPowerOff(b *testing.B) {
	bed := NewT(b)
	var boot time.Duration
	n := 0
	for b.Loop() {
		n++
		res, err := bed.Run(b.Context(), Spec{Script: "true"})
		if err != nil {
			b.Fatalf("%v\n%s", err, res.Console)
		}
		boot += res.GuestBoot
	}
	b.ReportMetric(boot.Seconds()/float64(n), "guest-boot-s/op")
}

// TestVMGoTestInGuest runs itself in the guest: the pattern other packages
// use to test Go code against the real kernel.
func TestVMGoTestInGuest(t *testing.T) {
	sys := "/sys/bus/pci/devices/" + NICAddress(0)
	if InGuest() {
		vendor, err := os.ReadFile(sys + "/vendor")
		if err != nil {
			t.Fatal(err)
		}
		drv, err := os.Readlink(sys + "/driver")
		if err != nil {
			t.Fatal(err)
		}
		version, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			t.Fatal(err)
		}
		Mark("vendor", strings.TrimSpace(string(vendor)))
		Mark("driver", filepath.Base(drv))
		Mark("osrelease", strings.TrimSpace(string(version)))
		return
	}
	bed := NewT(t)
	res := bed.RunTestInGuest(t, Spec{})
	want := map[string]string{"vendor": "0x1af4", "driver": "virtio-pci", "osrelease": bed.Kernel.Release}
	for k, v := range want {
		if res.Markers[k] != v {
			t.Errorf("marker %s = %q, want %q", k, res.Markers[k], v)
		}
	}
}

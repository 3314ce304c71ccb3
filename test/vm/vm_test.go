package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	primaryMAC = "52:54:00:6e:70:01"
	virtioMAC  = "52:54:00:6e:70:02"
	vmxnet3MAC = "52:54:00:6e:70:03"
)

// bindScript moves each NIC named by MAC from its kernel driver to vfio-pci
// the way nodeprep will (driver_override, unbind, drivers_probe), opens it
// through VFIO like DPDK, then allocates 2Mi hugepages. Markers are
// prefixed with the NIC's label.
const bindScript = `
set -u
fail() { echo "FAIL: $*"; exit 1; }
modprobe vfio-pci || fail "modprobe vfio-pci"
# busybox modprobe ignores softdeps; vfio needs the type1 backend for containers.
modprobe vfio_iommu_type1 || fail "modprobe vfio_iommu_type1"

netdev_by_mac() {
	for n in /sys/class/net/*; do
		[ "$(cat $n/address)" = "$1" ] && echo $n
	done
}

# pci_function NETDEV: the PCI function behind a netdev. For virtio the
# netdev's device is the virtio device, whose parent is the PCI function;
# for vmxnet3 (and ENA) it is the PCI function itself.
pci_function() {
	d=$(readlink -f $1/device)
	[ "$(basename $(readlink $d/subsystem))" = pci ] || d=$(dirname $d)
	basename $d
}

bind() {
	label=$1 mac=$2
	dev=$(netdev_by_mac $mac)
	[ -n "$dev" ] || fail "no netdev with MAC $mac"
	bdf=$(pci_function $dev)
	mark $label.bdf "$bdf"
	sys=/sys/bus/pci/devices/$bdf
	mark $label.vendor_device "$(cat $sys/vendor):$(cat $sys/device)"
	mark $label.driver_before "$(basename $(readlink $sys/driver))"
	echo vfio-pci > $sys/driver_override
	echo $bdf > $sys/driver/unbind
	echo $bdf > /sys/bus/pci/drivers_probe
	mark $label.driver_after "$(basename $(readlink $sys/driver))"
	group=$(basename $(readlink $sys/iommu_group))
	mark $label.group "$group"
	[ -c /dev/vfio/$group ] && mark $label.group_dev "/dev/vfio/$group"
	[ -e $dev ] && mark $label.netdev_after present || mark $label.netdev_after gone
	mark $label.vfiocheck "$(/usr/bin/vfiocheck $group $bdf 2>&1)"
}

bind virtio ` + virtioMAC + `
bind vmxnet3 ` + vmxnet3MAC + `
[ -c /dev/vfio/vfio ] && mark container_dev /dev/vfio/vfio
mark primary_driver "$(basename $(readlink /sys/bus/pci/devices/$(pci_function $(netdev_by_mac ` + primaryMAC + `))/driver))"

echo 64 > /proc/sys/vm/nr_hugepages
mark nr_hugepages "$(cat /proc/sys/vm/nr_hugepages)"
mark hugepages_free "$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)"
mark hugepagesize "$(awk '/^Hugepagesize:/ {print $2 $3}' /proc/meminfo)"
mark hugetlbfs "$(awk '$2 == "/dev/hugepages" {print $3}' /proc/mounts)"
`

func TestVMBindNICsToVFIO(t *testing.T) {
	bed := NewT(t)
	check := filepath.Join(t.TempDir(), "vfiocheck")
	if err := BuildStatic(t.Context(), "./test/vm/testdata/vfiocheck", check); err != nil {
		t.Fatal(err)
	}
	res, err := bed.Run(t.Context(), Spec{
		Script: bindScript,
		Files:  map[string]string{"/usr/bin/vfiocheck": check},
		NICs: []NIC{
			{MAC: primaryMAC, Backend: BackendUser},
			{MAC: virtioMAC},
			{MAC: vmxnet3MAC, Model: ModelVMXNET3},
		},
	})
	if err != nil {
		t.Fatalf("vm run: %v\nconsole:\n%s", err, res.Console)
	}
	t.Logf("kernel %s: guest boot %s, /init after %s, whole run %s", res.Kernel, res.GuestBoot, res.InitAfter, res.Duration)

	want := map[string]string{
		"virtio.bdf":            NICAddress(1),
		"virtio.vendor_device":  "0x1af4:0x1041", // modern-only virtio-net
		"virtio.driver_before":  "virtio-pci",
		"virtio.driver_after":   "vfio-pci",
		"virtio.netdev_after":   "gone",
		"vmxnet3.bdf":           NICAddress(2),
		"vmxnet3.vendor_device": "0x15ad:0x07b0",
		"vmxnet3.driver_before": "vmxnet3",
		"vmxnet3.driver_after":  "vfio-pci",
		"vmxnet3.netdev_after":  "gone",
		"container_dev":         "/dev/vfio/vfio",
		"primary_driver":        "virtio-pci",
		"nr_hugepages":          "64",
		"hugepages_free":        "64",
		"hugepagesize":          "2048kB",
		"hugetlbfs":             "hugetlbfs",
	}
	for k, v := range want {
		if got, ok := res.Markers[k]; !ok || got != v {
			t.Errorf("marker %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for i, label := range []string{"virtio", "vmxnet3"} {
		group := res.Markers[label+".group"]
		if group == "" || res.Markers[label+".group_dev"] != "/dev/vfio/"+group {
			t.Errorf("%s: iommu group %q, group_dev marker %q", label, group, res.Markers[label+".group_dev"])
		}
		if !strings.HasPrefix(res.Markers[label+".vfiocheck"], "vfiocheck: ok group="+group+" device="+NICAddress(i+1)) {
			t.Errorf("%s: vfiocheck: %q", label, res.Markers[label+".vfiocheck"])
		}
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
	t.Parallel() // the guest idles in sleep; other VM tests can use the CPUs
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
	var boot, initAfter time.Duration
	n := 0
	for b.Loop() {
		n++
		res, err := bed.Run(b.Context(), Spec{Script: "true"})
		if err != nil {
			b.Fatalf("%v\n%s", err, res.Console)
		}
		boot += res.GuestBoot
		initAfter += res.InitAfter
	}
	b.ReportMetric(boot.Seconds()/float64(n), "guest-boot-s/op")
	b.ReportMetric(initAfter.Seconds()/float64(n), "host-to-init-s/op")
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

// TestVMForwardReachesHost makes a host HTTP server reachable from the
// guest, as an IMDS/EC2 simulator would be for an end-to-end nodeprep run,
// and reads it with Go's HTTP client like nodeprep does.
func TestVMForwardReachesHost(t *testing.T) {
	const url = "http://10.0.2.100/latest/meta-data/instance-id"
	if InGuest() {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		Mark("body", string(body))
		return
	}
	bed := NewT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer srv.Close()
	res := bed.RunTestInGuest(t, Spec{
		NICs: []NIC{{MAC: primaryMAC, Backend: BackendUser, Forwards: []Forward{
			{Guest: "10.0.2.100:80", Host: strings.TrimPrefix(srv.URL, "http://")},
		}}},
		Script: `
mark addr "$(ip -4 -o addr show | awk '$2 != "lo" {print $4}')"
mark route "$(ip route | grep ^default)"
`,
	})
	want := map[string]string{
		"addr":  UserNICAddr,
		"route": "default via " + UserNICGateway + " dev eth0 ",
		"body":  "hello /latest/meta-data/instance-id",
	}
	for k, v := range want {
		if res.Markers[k] != v {
			t.Errorf("marker %s = %q, want %q", k, res.Markers[k], v)
		}
	}
}

// TestVMNodeprepBinaryRuns boots the real static nodeprep binary with a
// config where the DPDK tests will put it.
func TestVMNodeprepBinaryRuns(t *testing.T) {
	bed := NewT(t)
	bin, err := BuildNodeprep(t.Context(), t.TempDir())
	if errors.Is(err, ErrNoAgent) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	res, err := bed.Run(t.Context(), Spec{
		Files: map[string]string{
			"/usr/bin/nodeprep":         bin,
			"/etc/nodeprep/config.yaml": filepath.Join(root, "configs/examples/dpdk-vfio.yaml"),
		},
		Script: `
mark version "$(nodeprep version)"
nodeprep validate /etc/nodeprep/config.yaml
mark validate_exit $?
`,
	})
	if err != nil {
		t.Fatalf("vm run: %v\nconsole:\n%s", err, res.Console)
	}
	if !strings.HasPrefix(res.Markers["version"], "nodeprep ") || res.Markers["validate_exit"] != "0" {
		t.Errorf("markers %q\nconsole:\n%s", res.Markers, res.Console)
	}
}

func TestVMNUMAAndNoIOMMU(t *testing.T) {
	bed := NewT(t)
	res, err := bed.Run(t.Context(), Spec{
		NUMANodes: 2,
		NoIOMMU:   true,
		Script: `
mark nodes "$(ls -d /sys/devices/system/node/node* | wc -l)"
echo 8 > /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages
mark node1_2m "$(cat /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages)"
mark node0_2m "$(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)"
mark iommu_groups "$(ls /sys/kernel/iommu_groups | wc -l)"
`,
	})
	if err != nil {
		t.Fatalf("vm run: %v\nconsole:\n%s", err, res.Console)
	}
	want := map[string]string{"nodes": "2", "node1_2m": "8", "node0_2m": "0", "iommu_groups": "0"}
	for k, v := range want {
		if res.Markers[k] != v {
			t.Errorf("marker %s = %q, want %q", k, res.Markers[k], v)
		}
	}
}

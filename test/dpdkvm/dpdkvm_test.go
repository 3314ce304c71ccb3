// Package dpdkvm runs the real nodeprep binary in a QEMU guest with a real
// kernel (test/vm) and checks DPDK host preparation end to end: huge pages,
// vfio-pci, binding NICs chosen by MAC, refusing the primary NIC, and the
// device plugin config. No EC2 is involved: the NICs are unmanaged
// interfaces picked by MAC, as on a node whose ENIs someone else attached.
package dpdkvm

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/test/vm"
)

const (
	primaryMAC = "52:54:00:6e:70:01"
	virtioMAC  = "52:54:00:6e:70:02"
	vmxnet3MAC = "52:54:00:6e:70:03"
)

const goodConfig = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  multus:
    install: false
  hugepages:
  - size: 2Mi
    count: 512
  interfaces:
  - name: dpdk-virtio
    mac: "` + virtioMAC + `"
    driver: vfio-pci
    resourceName: dpdk
  - name: dpdk-vmxnet3
    mac: "` + vmxnet3MAC + `"
    driver: vfio-pci
    resourceName: dpdk
`

// The same plus the primary NIC, which nodeprep must refuse.
const primaryConfig = goodConfig + `  - name: primary
    mac: "` + primaryMAC + `"
    driver: vfio-pci
`

const script = `
set -u
p=$(for n in /sys/class/net/*; do [ "$(cat $n/address)" = "` + primaryMAC + `" ] && basename $n; done)
ip link set "$p" up && ip addr add 10.0.2.15/24 dev "$p" && ip route add default via 10.0.2.2 dev "$p"

echo "=== nodeprep run (1)"
nodeprep run --user-data /etc/np/good.yaml 2>&1; mark run1 $?
mark nr_hugepages "$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"
for bdf in ` + "0000:00:11.0 0000:00:12.0" + `; do
	s=/sys/bus/pci/devices/$bdf
	mark $bdf.driver "$(basename $(readlink $s/driver))"
	g=$(basename $(readlink $s/iommu_group))
	[ -c /dev/vfio/$g ] && mark $bdf.vfio "/dev/vfio/$g"
done
mark config "$(cat /etc/pcidp/config.json)"
mark modules_load "$(cat /etc/modules-load.d/nodeprep.conf)"
nodeprep status --json > /tmp/status.json; mark status "$(cat /tmp/status.json)"

echo "=== nodeprep run (2)"
nodeprep run --user-data /etc/np/good.yaml 2>&1; mark run2 $?
nodeprep status --json > /tmp/status2.json; mark status2 "$(cat /tmp/status2.json)"

echo "=== nodeprep run (3): primary NIC as a DPDK target"
nodeprep run --user-data /etc/np/primary.yaml > /tmp/run3.log 2>&1; mark run3 $?
cat /tmp/run3.log; mark run3.log "$(cat /tmp/run3.log)"
mark primary.driver "$(basename $(readlink /sys/bus/pci/devices/0000:00:10.0/driver))"
mark primary.route "$(ip route show default)"
mark primary.networkd "$(ls /etc/systemd/network/ 2>/dev/null | grep primary || echo none)"
`

// status is the part of `nodeprep status --json` the test reads.
type status struct {
	Result string `json:"result"`
	Steps  []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Changes []struct {
			What string `json:"what"`
		} `json:"changes"`
	} `json:"steps"`
	Interfaces map[string]state.Interface `json:"interfaces"`
}

func TestVMAgentDPDK(t *testing.T) {
	bed := vm.NewT(t)
	dir := t.TempDir()
	bin, err := vm.BuildNodeprep(t.Context(), dir)
	if errors.Is(err, vm.ErrNoAgent) {
		t.Skip("no agent/ in the repo yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	good, primary := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "primary.yaml")
	if err := os.WriteFile(good, []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(primary, []byte(primaryConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := bed.Run(t.Context(), vm.Spec{
		Script:    script,
		MemoryMiB: 2048,
		Files: map[string]string{
			"/usr/bin/nodeprep":    bin,
			"/etc/np/good.yaml":    good,
			"/etc/np/primary.yaml": primary,
		},
		NICs: []vm.NIC{
			{MAC: primaryMAC, Backend: vm.BackendUser},
			{MAC: virtioMAC},
			{MAC: vmxnet3MAC, Model: vm.ModelVMXNET3},
		},
	})
	if err != nil {
		t.Fatalf("vm: %v\nconsole:\n%s", err, res.Console)
	}
	defer func() {
		if t.Failed() {
			t.Logf("console:\n%s", res.Console)
		}
	}()
	m := res.Markers
	want := map[string]string{
		"run1": "0", "run2": "0", "run3": "1",
		"nr_hugepages":        "512",
		"0000:00:11.0.driver": "vfio-pci",
		"0000:00:12.0.driver": "vfio-pci",
		"primary.driver":      "virtio-pci",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	for _, bdf := range []string{"0000:00:11.0", "0000:00:12.0"} {
		if !strings.HasPrefix(m[bdf+".vfio"], "/dev/vfio/") {
			t.Errorf("%s: no /dev/vfio group node (%q)", bdf, m[bdf+".vfio"])
		}
		if !strings.Contains(m["config"], `"`+bdf+`"`) {
			t.Errorf("config.json lacks %s:\n%s", bdf, m["config"])
		}
	}
	if !strings.Contains(m["modules_load"], "vfio-pci") {
		t.Errorf("modules-load.d: %q", m["modules_load"])
	}
	if !strings.Contains(m["run3.log"], "refusing to take") || !strings.Contains(m["run3.log"], "default route") {
		t.Errorf("run 3 did not refuse the primary NIC clearly:\n%s", m["run3.log"])
	}
	if m["primary.networkd"] != "none" {
		t.Errorf("a networkd claim was written for the primary NIC: %q", m["primary.networkd"])
	}
	if !strings.Contains(m["primary.route"], "default via 10.0.2.2") {
		t.Errorf("primary lost its default route: %q", m["primary.route"])
	}
	var s1, s2 status
	if err := json.Unmarshal([]byte(m["status"]), &s1); err != nil {
		t.Fatalf("status: %v: %q", err, m["status"])
	}
	if err := json.Unmarshal([]byte(m["status2"]), &s2); err != nil {
		t.Fatalf("status2: %v", err)
	}
	if rec := s1.Interfaces["dpdk-virtio"]; rec.Device.Device.Address != "0000:00:11.0" || rec.Device.Device.Driver != "vfio-pci" || rec.Device.Device.Vendor == "" || rec.MAC() != virtioMAC {
		t.Errorf("state of dpdk-virtio: %+v", rec)
	}
	for _, st := range s2.Steps {
		switch st.Name {
		case "hugepages", "modules", "bind", "deviceplugin":
			if st.Outcome != "succeeded" || len(st.Changes) != 0 {
				t.Errorf("second run: step %s %s with changes %v", st.Name, st.Outcome, st.Changes)
			}
		}
	}
	t.Logf("VM run %s (kernel %s)", res.Duration, res.Kernel)
	for _, line := range strings.Split(res.Console, "\n") {
		if strings.HasPrefix(line, "===") || strings.HasPrefix(line, "level=") {
			t.Log(line)
		}
	}
}

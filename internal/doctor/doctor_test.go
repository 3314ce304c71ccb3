package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/kmod"
)

func TestHealthyNodeIsAllOK(t *testing.T) {
	f := newFixture(t)
	r := f.run()
	for _, x := range r.Findings {
		if x.Verdict != OK {
			t.Errorf("%s %s: %s: %s", x.Check, x.Subject, x.Verdict, x.Evidence)
		}
	}
	// Every check that applies to this config spoke.
	for _, c := range []string{"driver", "modules", "vermagic", "vfio-iommu", "igb_uio-wc", "write-combining", "hugepages", "hugepages-numa", "kubelet-hugepages", "kernel-args", "link", "device-plugin"} {
		if len(findings(r, c)) == 0 {
			t.Errorf("check %s said nothing", c)
		}
	}
	if r.Worst() != OK {
		t.Errorf("worst = %s", r.Worst())
	}
	var table, js bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Findings) != len(r.Findings) {
		t.Fatalf("JSON round trip: %v, %d findings", err, len(back.Findings))
	}
	t.Logf("\n%s", table.String())
}

// Each fault is injected into a healthy node the way it happens on one; the
// named check must fail (or warn) for that reason, and no other check may
// fail: a fault reported as something else is not a diagnosis.
func TestFaultsFailTheRightCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inject  func(f *fixture)
		check   string
		verdict Verdict
		// evidence must appear in the failing finding.
		evidence string
		// also may fail as a consequence of the same fault.
		also []string
	}{
		{
			name: "DPDK device rebound to ena",
			inject: func(f *fixture) {
				k := f.h.Kernel()
				if err := k.WriteAttr("/sys/bus/pci/drivers/vfio-pci/unbind", bdfVFIO); err != nil {
					f.t.Fatal(err)
				}
				if err := k.WriteAttr("/sys/bus/pci/drivers/ena/bind", bdfVFIO); err != nil {
					f.t.Fatal(err)
				}
			},
			check: "driver", verdict: Fail, evidence: "on ena, config says vfio-pci",
			also: []string{"write-combining"},
		},
		{
			// ena maps the BAR uncached: that is ena's mapping, not a DPDK
			// app's, so it is no write-combining failure (the boot bed's
			// watch reported one for a device rebound to virtio-pci).
			name: "DPDK device rebound, its BAR mapped by the kernel driver",
			inject: func(f *fixture) {
				k := f.h.Kernel()
				if err := k.WriteAttr("/sys/bus/pci/drivers/vfio-pci/unbind", bdfVFIO); err != nil {
					f.t.Fatal(err)
				}
				if err := k.WriteAttr("/sys/bus/pci/drivers/ena/bind", bdfVFIO); err != nil {
					f.t.Fatal(err)
				}
				f.write(PATMemtypeList, "PAT: [mem 0x00000000fe800000-0x00000000fe900000] uncached-minus\nPAT: [mem 0x00000000fe900000-0x00000000fea00000] uncached-minus\n")
			},
			check: "write-combining", verdict: Warn, evidence: "not verifiable now: PCI " + bdfVFIO + " is on ena, not vfio-pci",
			also: []string{"driver"},
		},
		{
			name: "module built for another kernel",
			inject: func(f *fixture) {
				f.write("/lib/modules/"+release+"/extra/igb_uio.ko", string(moduleELF("vermagic=5.10.0-old SMP mod_unload ")))
			},
			check: "vermagic", verdict: Fail, evidence: `vermagic "5.10.0-old SMP mod_unload ", running kernel ` + release,
		},
		{
			name: "module missing for the running kernel",
			inject: func(f *fixture) {
				f.write("/lib/modules/"+release+"/modules.dep", "kernel/drivers/vfio/vfio.ko:\nkernel/drivers/vfio/pci/vfio-pci.ko:\nkernel/drivers/uio/uio.ko:\n")
			},
			check: "vermagic", verdict: Fail, evidence: "not in /lib/modules/" + release + "/modules.dep",
		},
		{
			name:   "module unloaded",
			inject: func(f *fixture) { f.remove("/sys/module/igb_uio") },
			check:  "modules", verdict: Fail, evidence: "load module igb_uio wc_activate=1",
			also: []string{"igb_uio-wc"},
		},
		{
			name: "vfio in IOMMU mode on a node without one",
			inject: func(f *fixture) {
				f.h.SetIOMMU(false)
				f.remove("/sys/kernel/iommu_groups")
				f.write(kmod.NoIOMMUParam, "N\n")
			},
			check: "vfio-iommu", verdict: Fail, evidence: "vfio-pci cannot bind (probe error -22)",
			also: []string{"modules"},
		},
		{
			name:   "vfio in no-IOMMU mode though the node has an IOMMU",
			inject: func(f *fixture) { f.write(kmod.NoIOMMUParam, "Y\n") },
			check:  "vfio-iommu", verdict: Warn, evidence: "unsafe no-IOMMU mode",
			also: []string{"vfio-iommu"},
		},
		{
			name:   "igb_uio without wc_activate",
			inject: func(f *fixture) { f.write(kmod.ModprobeConf, "# edited by hand\n") },
			check:  "igb_uio-wc", verdict: Fail, evidence: "gives it wc_activate=1",
			also: []string{"modules"},
		},
		{
			name: "BAR mapped uncached",
			inject: func(f *fixture) {
				f.write(PATMemtypeList, "PAT: [mem 0x00000000fe800000-0x00000000fe900000] uncached-minus\nPAT: [mem 0x00000000fe900000-0x00000000fea00000] write-combining\n")
			},
			check: "write-combining", verdict: Fail, evidence: "mapped uncached-minus: write-combining is not active",
		},
		{
			name: "no DPDK app maps the BAR",
			inject: func(f *fixture) {
				f.write(PATMemtypeList, "PAT: [mem 0x00000000febf0000-0x00000000febf4000] uncached-minus\n")
			},
			check: "write-combining", verdict: Warn, evidence: "not verifiable now",
		},
		{
			name:   "hugepages short",
			inject: func(f *fixture) { f.write("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "100\n") },
			check:  "hugepages", verdict: Fail, evidence: "100 allocated, 512 requested",
		},
		{
			name: "no hugepages on the DPDK NIC's NUMA node",
			inject: func(f *fixture) {
				f.write("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "0\n")
			},
			check: "hugepages-numa", verdict: Fail, evidence: "NUMA node 0, which has no hugepages",
		},
		{
			name:   "kubelet started before the reservation",
			inject: func(f *fixture) { f.kubeletStartedAt(2 * time.Second) },
			check:  "kubelet-hugepages", verdict: Fail, evidence: "kubelet's capacity lacks them",
		},
		{
			name:   "kernel argument not booted",
			inject: func(f *fixture) { f.write(grubDefault, "GRUB_CMDLINE_LINUX=\"iommu=pt hugepagesz=1G hugepages=4\"\n") },
			check:  "kernel-args", verdict: Fail, evidence: "not on /proc/cmdline: hugepagesz=1G hugepages=4",
		},
		{
			name:   "networkd file removed",
			inject: func(f *fixture) { f.remove("/etc/systemd/network/05-nodeprep-n2.network") },
			check:  "link", verdict: Fail, evidence: "missing or changed",
		},
		{
			name:   "MTU changed",
			inject: func(f *fixture) { f.write("/sys/class/net/eth2/mtu", "1500\n") },
			check:  "link", verdict: Fail, evidence: "MTU 1500, config 9001",
		},
		{
			name: "device plugin config lists another device",
			inject: func(f *fixture) {
				f.write(f.node.Config.Spec.DevicePlugin.ConfigPath, `{"resourceList":[{"resourceName":"dpdk_n3","selectors":{"pciAddresses":["0000:00:08.0"]}}]}`)
			},
			check: "device-plugin", verdict: Fail, evidence: "lists dpdk_n3=0000:00:08.0; bound: 0000:00:06.0, 0000:00:07.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.inject(f)
			r := f.run()
			var hit bool
			for _, x := range r.Findings {
				switch {
				case x.Check == tc.check && x.Verdict == tc.verdict && strings.Contains(x.Evidence, tc.evidence):
					hit = true
					t.Logf("%s  %s  %s  %s\n    fix: %s", x.Verdict, x.Check, x.Subject, x.Evidence, x.Fix)
					if x.Fix == "" && x.Verdict != OK {
						t.Errorf("%s: no fix given", x.Check)
					}
				case x.Verdict != OK && x.Check != tc.check && !contains(tc.also, x.Check):
					t.Errorf("unrelated %s from %s %s: %s", x.Verdict, x.Check, x.Subject, x.Evidence)
				}
			}
			if !hit {
				var b bytes.Buffer
				_ = WriteTable(&b, r)
				t.Fatalf("no %s from %s with %q:\n%s", tc.verdict, tc.check, tc.evidence, b.String())
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRunStopsOnCancelledContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, f.node, Checks())
	if r.Worst() != Warn || len(r.Findings) != len(Checks()) {
		t.Fatalf("got %+v", r.Findings)
	}
}

// BenchmarkDoctor is one full offline doctor run on the fake kernel: every
// check, the default a user gets from `nodeprep doctor --root`.
func BenchmarkDoctor(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if r := Run(context.Background(), f.node, Checks()); r.Worst() != OK {
			b.Fatal(r.Findings)
		}
	}
}

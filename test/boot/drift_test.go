package boot

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// driftNode is a node with a kernel ENI n2 that has pod addresses (so the
// run writes its pod-network conflist) and a DPDK ENI n3 on vfio-pci.
var driftNode = nodeprepPart(`      mtu: 9001
      secondaryIPCount: 2
    - name: n3
      subnetID: ` + SubnetMultusB + `
      securityGroupIDs: [` + SecurityGroup + `]
      driver: vfio-pci
`)

// The watcher's files in the guest.
const (
	guestConflist = "/etc/cni/multus/net.d/n2.conflist"
	// guestPodResources is the bed's pod-resources stand-in, uploaded by the
	// test; it serves on the socket the watch asks (its default, kubelet's).
	guestPodResources       = "/usr/local/bin/bed-podresources"
	watchPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	guestDoctorProm         = "/var/lib/node_exporter/textfile_collector/nodeprep_doctor.prom"
	// reportWithin is issue 20's bound from a local change to the report.
	reportWithin = 10 * time.Second
	// guestDoctor runs nodeprep doctor as an admin would on the node, with
	// the bed's EC2 endpoint (credentials come from IMDS); it exits 1 on a
	// problem, which is what the test wants to see.
	guestDoctor = "NODEPREP_EC2_ENDPOINT=http://169.254.169.254:8773 nodeprep doctor; echo exit=$?"
)

// TestBootWatchReportsDrift: after boot, nodeprep-watch, as the image ships
// and enables it, sees a DPDK device rebound to its kernel driver, a
// deleted conflist and an ENI detached through the EC2 API. Each is in its
// journal at warning within 10 s of the change (both times on the guest's
// clock, so the bound is the product's and not the loaded host's), counted
// in the drift metric and published as the Node condition (a PATCH the
// fake API server records). The conflist is rewritten; the device is not
// rebound and the ENI not touched.
func TestBootWatchReportsDrift(t *testing.T) {
	b := Boot(t, Spec{NodeprepPart: driftNode})
	if _, ok := guestFile(t, b, guestConflist); !ok {
		t.Fatalf("no %s after boot:\n%s", guestConflist, b.MustSSH(t, "ls -l /etc/cni/multus/net.d/ || true"))
	}
	// Enabled by the provisioner, started at boot after nodeprep: its first
	// round writes the metrics file, so the baseline is taken once it is
	// there. Nothing made the textfile directory but the unit itself.
	if _, err := b.SSH(`for i in $(seq 600); do test -s ` + guestDoctorProm + ` && exit 0; sleep 0.1; done; exit 1`); err != nil {
		t.Fatalf("no %s from the watch: %v\n%s", guestDoctorProm, err, b.MustSSH(t, "systemctl status --no-pager nodeprep-watch; journalctl -b -u nodeprep-watch --no-pager | tail -n 30"))
	}
	if out := b.MustSSH(t, "journalctl -b -u nodeprep-watch --no-pager -o cat | grep -iE 'read-only|credential|no EC2' || true"); strings.TrimSpace(out) != "" {
		t.Errorf("the watch at start:\n%s", out)
	}
	t.Logf("nodeprep doctor, healthy node:\n%s", b.MustSSH(t, guestDoctor))
	// The boot's own run, as an admin would chart it on the node.
	t.Logf("nodeprep status --timeline:\n%s", b.MustSSH(t, "nodeprep status --timeline"))
	t.Logf("watch at rest: %s", watchAtRest(t, b))
	if len(b.KubeAPI.Patches()) == 0 {
		t.Errorf("the watch published no Node condition at start (API server: %v)", b.KubeAPI.Errors())
	}

	t.Run("DPDKRebindIsReportedNotRepaired", func(t *testing.T) {
		eni := eniInSubnet(t, b, SubnetMultusB)
		addr := b.PCIAddress(t, eni.ID)
		dev := "/sys/bus/pci/devices/" + addr
		from := len(b.KubeAPI.Patches())
		// As an admin or a stray script would: take it from vfio-pci and
		// let the kernel probe its own driver.
		// The change is made when the kernel driver has the device: the
		// bound is taken from then (the unbind alone takes seconds under
		// TCG); the log shows the time from the start too.
		out := b.MustSSH(t, "date +%s%6N; echo "+addr+" > "+dev+"/driver/unbind; echo > "+dev+"/driver_override; echo "+addr+" > /sys/bus/pci/drivers_probe; date +%s%6N")
		start, at := guestMicros(t, out), guestMicros(t, strings.SplitN(out, "\n", 2)[1])
		t.Logf("rebind took %s in the guest", time.Duration(at-start)*time.Microsecond)
		d := driftEntry(t, b, "driver", start)
		checkWithin(t, "driver", at, d)
		// No kubelet answers on its pod-resources socket here: the watch
		// cannot tell who holds the device, and says so.
		if r, why := d.str("NODEPREP_REPAIR"), d.str("NODEPREP_WHY"); r != "not repaired" || !strings.Contains(why, "pod-resources") {
			t.Errorf("rebind with no pod-resources API: repair %q (%s), want not repaired, naming kubelet's pod-resources API", r, why)
		}
		if drv := filepath.Base(strings.TrimSpace(b.MustSSH(t, "readlink -f "+dev+"/driver"))); drv == "vfio-pci" {
			t.Errorf("%s is on vfio-pci again: the watcher must not rebind", addr)
		}
		checkProm(t, b, `nodeprep_drift_events_total{check="driver"}`)
		checkPatched(t, b, from, "driver n3:")
		t.Logf("nodeprep doctor, %s rebound:\n%s", addr, b.MustSSH(t, guestDoctor))
		restoreVFIO(t, b, addr)
	})

	t.Run("DPDKHeldByPodIsRefused", func(t *testing.T) {
		eni := eniInSubnet(t, b, SubnetMultusB)
		addr := b.PCIAddress(t, eni.ID)
		dev := "/sys/bus/pci/devices/" + addr
		// kubelet's pod-resources API, with default/dpdk-app holding what
		// the node's device plugin config (as nodeprep wrote it) lists.
		b.Upload(t, GuestBinary(t, "github.com/nodeprep/nodeprep/test/podresources/cmd/podresources"), guestPodResources)
		began := time.Now()
		if out, err := b.SSH("systemd-run --unit=bed-podresources -p Type=notify " + guestPodResources); err != nil {
			t.Fatalf("pod-resources stand-in: %v\n%s", err, b.MustSSH(t, "journalctl -u bed-podresources --no-pager -o cat; cat /etc/pcidp/config.json"))
		} else {
			t.Logf("pod-resources stand-in ready in %s: %s %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(out),
				strings.TrimSpace(b.MustSSH(t, "journalctl -u bed-podresources --no-pager -o cat | grep holds")))
		}
		t.Cleanup(func() { _, _ = b.SSH("systemctl stop bed-podresources") })
		if out := b.MustSSH(t, "ls -l "+watchPodResourcesSocket); !strings.HasPrefix(out, "s") {
			t.Fatalf("%s is not a socket: %s", watchPodResourcesSocket, out)
		}
		from, fromEvents := len(b.KubeAPI.Patches()), len(b.KubeAPI.Events())
		out := b.MustSSH(t, "date +%s%6N; echo "+addr+" > "+dev+"/driver/unbind; echo > "+dev+"/driver_override; echo "+addr+" > /sys/bus/pci/drivers_probe; date +%s%6N; readlink -f "+dev+"/driver")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		start, at, kernelDriver := guestMicros(t, lines[0]), guestMicros(t, lines[1]), filepath.Base(lines[len(lines)-1])
		t.Logf("rebind to %s took %s in the guest", kernelDriver, time.Duration(at-start)*time.Microsecond)
		if kernelDriver == "vfio-pci" || kernelDriver == "." {
			t.Fatalf("the rebind left %s on %q", addr, kernelDriver)
		}
		d := driftEntry(t, b, "driver", start)
		checkWithin(t, "driver", at, d)
		why := d.str("NODEPREP_WHY")
		if r := d.str("NODEPREP_REPAIR"); r != "refused" {
			t.Errorf("a device default/dpdk-app holds: repair %q (%s), want refused", r, why)
		}
		for _, want := range []string{addr, "default/dpdk-app", "not rebinding"} {
			if !strings.Contains(why, want) {
				t.Errorf("the watch's journal says %q: lacks %q", why, want)
			}
		}
		checkProm(t, b, `nodeprep_drift_repairs_total{check="driver",result="refused"} 1`)
		checkPatched(t, b, from, "driver n3:", "default/dpdk-app", "not rebinding")
		checkEvent(t, b, fromEvents, "default/dpdk-app", "not rebinding")
		// Whatever the watch did after its report: the device is still on
		// the driver the kernel gave it.
		if drv := filepath.Base(strings.TrimSpace(b.MustSSH(t, "readlink -f "+dev+"/driver"))); drv != kernelDriver {
			t.Errorf("%s is on %s, was on %s after the rebind: the watch must not rebind a device a pod holds", addr, drv, kernelDriver)
		}
		b.MustSSH(t, "systemctl stop bed-podresources")
		restoreVFIO(t, b, addr)
	})

	t.Run("ConflistDeletedIsReportedAndRepaired", func(t *testing.T) {
		from := len(b.KubeAPI.Patches())
		at := guestMicros(t, b.MustSSH(t, "date +%s%6N; rm "+guestConflist))
		d := driftEntry(t, b, "conflist", at)
		checkWithin(t, "conflist", at, d)
		if r := d.str("NODEPREP_REPAIR"); r != "repaired" {
			t.Errorf("conflist drift repair %q, want repaired", r)
		}
		if _, ok := guestFile(t, b, guestConflist); !ok {
			t.Errorf("%s not rewritten", guestConflist)
		}
		checkProm(t, b, `nodeprep_drift_events_total{check="conflist"} 1`, `nodeprep_drift_repairs_total{check="conflist",result="repaired"} 1`)
		checkPatched(t, b, from, "conflist n2")
		t.Logf("nodeprep doctor, conflist deleted and rewritten:\n%s", b.MustSSH(t, guestDoctor))
	})

	t.Run("ENIDetachedIsReported", func(t *testing.T) {
		eni := eniInSubnet(t, b, SubnetMultusA)
		from := len(b.KubeAPI.Patches())
		at := guestMicros(t, b.MustSSH(t, "date +%s%6N"))
		client := ec2.NewFromConfig(b.EC2.AWSConfig())
		if _, err := client.DetachNetworkInterface(t.Context(), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(eni.Attachment.ID)}); err != nil {
			t.Fatalf("DetachNetworkInterface: %v", err)
		}
		if errs := b.Sim.HookErrors(); len(errs) != 0 {
			t.Fatalf("hot-unplug: %v", errs)
		}
		d := driftEntry(t, b, "link", at)
		checkWithin(t, "link", at, d)
		if r := d.str("NODEPREP_REPAIR"); r == "repaired" {
			t.Errorf("the watcher says it repaired a detached ENI")
		}
		if e, ok := b.Sim.ENI(eni.ID); !ok || e.Attachment != nil && e.Attachment.Status != "" {
			t.Errorf("%s attached again: %+v", eni.ID, e.Attachment)
		}
		checkProm(t, b, `nodeprep_drift_events_total{check="link"}`)
		checkPatched(t, b, from, "link n2")
		t.Logf("nodeprep doctor, %s detached:\n%s", eni.ID, b.MustSSH(t, guestDoctor))
	})
}

// watchAtRest is the watch's memory and CPU time, 30 s apart, with nothing
// changing on the node.
func watchAtRest(t *testing.T, b *Bed) string {
	t.Helper()
	out := b.MustSSH(t, "systemctl show -p MemoryCurrent,CPUUsageNSec nodeprep-watch; sleep 30; systemctl show -p MemoryCurrent,CPUUsageNSec nodeprep-watch")
	return strings.ReplaceAll(strings.TrimSpace(out), "\n", " ")
}

// driftEntry waits (bounded, in the guest) for the watcher's first drift
// warning about check logged at or after at (µs, guest clock) and returns it.
func driftEntry(t *testing.T, b *Bed, check string, at int64) journalEntry {
	t.Helper()
	since := fmt.Sprintf("@%d", at/1e6)
	for range 5 {
		// Bounded by the guest's clock: under TCG one journalctl takes
		// a good part of a second.
		out, err := b.SSH(`end=$(($(date +%s) + 120)); while [ $(date +%s) -lt $end ]; do
  out=$(journalctl -b -u nodeprep-watch.service -p warning -o json --no-pager --since ` + since + ` NODEPREP_CHECK=` + check + ` | grep '"MESSAGE":"drift ')
  [ -n "$out" ] && { echo "$out"; exit 0; }
  sleep 0.1
done; exit 1`)
		if err != nil {
			t.Fatalf("no drift warning for %s in the watcher's journal: %v\n%s", check, err, b.MustSSH(t, "journalctl -b -u nodeprep-watch --no-pager | tail -n 30"))
		}
		for _, e := range parseJournal(t, out) {
			// MESSAGE carries the attributes after the message ("drift check=...").
			if ts, _ := strconv.ParseInt(e.str("__REALTIME_TIMESTAMP"), 10, 64); ts >= at && strings.HasPrefix(e.str("MESSAGE"), "drift ") {
				return e
			}
		}
		// Only entries before the change, or other warnings: wait on.
		since = fmt.Sprintf("@%d", at/1e6+1)
	}
	t.Fatalf("no drift warning for %s after the change", check)
	return nil
}

// checkWithin fails when the journal entry came more than reportWithin after
// the change at (both on the guest's clock, in microseconds).
func checkWithin(t *testing.T, what string, at int64, e journalEntry) {
	t.Helper()
	ts, err := strconv.ParseInt(e.str("__REALTIME_TIMESTAMP"), 10, 64)
	if err != nil {
		t.Fatalf("%s drift entry: __REALTIME_TIMESTAMP: %v", what, err)
	}
	lag := time.Duration(ts-at) * time.Microsecond
	t.Logf("%s: reported %s after the change: %s %s repair=%s (%s)", what, lag, e.str("MESSAGE"), e.str("NODEPREP_EVIDENCE"), e.str("NODEPREP_REPAIR"), e.str("NODEPREP_WHY"))
	if lag > reportWithin {
		t.Errorf("%s drift reported %s after the change, want within %s", what, lag, reportWithin)
	}
}

func checkProm(t *testing.T, b *Bed, want ...string) {
	t.Helper()
	prom := b.MustSSH(t, "cat "+guestDoctorProm)
	for _, w := range want {
		if !strings.Contains(prom, w) {
			t.Errorf("%s lacks %s:\n%s", guestDoctorProm, w, prom)
		}
	}
}

// checkPatched: among the status PATCHes the fake API server got after the
// first from (those before the change), one sets nodeprep's condition with
// a message naming the finding ("<check> <subject>") and saying all of
// finding. The watch logs the drift before it publishes the round's report
// (the journal does not wait on the API server), so the PATCH may come
// after the journal entry: it is waited for, a minute at most.
func checkPatched(t *testing.T, b *Bed, from int, finding ...string) {
	t.Helper()
	var n int
	ok := within(time.Minute, func() bool {
		ps := b.KubeAPI.Patches()
		n = len(ps) - from
		for _, p := range ps[min(from, len(ps)):] {
			if strings.Contains(p.Body, `"NodeprepReady"`) && containsAll(p.Body, finding) {
				t.Logf("Node %s condition PATCH: %s", p.Node, p.Body)
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("no Node condition PATCH naming %q among %d after the change (API server errors %v)", finding, n, b.KubeAPI.Errors())
	}
}

// checkEvent: among the Events after the first from, a Warning about the
// Node says all of want (waited for as checkPatched).
func checkEvent(t *testing.T, b *Bed, from int, want ...string) {
	t.Helper()
	var n int
	ok := within(time.Minute, func() bool {
		evs := b.KubeAPI.Events()
		n = len(evs) - from
		for _, e := range evs[min(from, len(evs)):] {
			if e.InvolvedObject.Kind == "Node" && e.Type == "Warning" && containsAll(e.Message, want) {
				t.Logf("Event %s %s: %s", e.Type, e.Reason, e.Message)
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("no Warning Event about the Node saying %q among %d after the change", want, n)
	}
}

// within polls cond (the fake API server's records, in the test process)
// until it holds or d has passed.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// restoreVFIO puts the DPDK device back on vfio-pci, as nodeprep run would
// once no pod holds it, so the next fault is the only one.
func restoreVFIO(t *testing.T, b *Bed, addr string) {
	t.Helper()
	dev := "/sys/bus/pci/devices/" + addr
	b.MustSSH(t, "echo vfio-pci > "+dev+"/driver_override; echo "+addr+" > "+dev+"/driver/unbind; echo "+addr+" > /sys/bus/pci/drivers_probe")
	// The watch has seen it back when its condition no longer names the
	// device: only then is a later rebind a new drift.
	if !within(2*time.Minute, func() bool {
		ps := b.KubeAPI.Patches()
		return len(ps) > 0 && !strings.Contains(ps[len(ps)-1].Body, "driver n3")
	}) {
		t.Fatalf("the watch's condition still names driver n3 after %s was put back on vfio-pci", addr)
	}
}

func guestMicros(t *testing.T, out string) int64 {
	t.Helper()
	us, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), 10, 64)
	if err != nil {
		t.Fatalf("guest clock %q: %v", out, err)
	}
	return us
}

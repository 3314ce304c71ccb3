package boot

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/vm"
)

// nodeprepPart is a NodePrepConfig whose first interface is the kernel ENI
// n2 in SubnetMultusA; more is the rest of its spec, indented under it.
func nodeprepPart(more string) string {
	return `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
    - name: n2
      subnetID: ` + SubnetMultusA + `
      securityGroupIDs: [` + SecurityGroup + `]
` + more
}

// twoENIs is the nodeprep part of a healthy node: a kernel ENI with jumbo
// MTU, a DPDK ENI for vfio-pci and 2 MiB hugepages.
var twoENIs = nodeprepPart(`      mtu: 9001
    - name: n3
      subnetID: ` + SubnetMultusB + `
      securityGroupIDs: [` + SecurityGroup + `]
      driver: vfio-pci
  hugepages:
    - size: 2Mi
      count: 64
  failurePolicy: Block
`)

// statusRecorder keeps what `systemctl status nodeprep` showed each time
// the agent called AttachNetworkInterface: the call is blocked in the
// simulator's hook then, so the agent is mid-attach.
type statusRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *statusRecorder) install(b *Bed) {
	b.Sim.OnMutation(func(action string, _ int) {
		if action != "AttachNetworkInterface" {
			return
		}
		out, err := b.SSH("systemctl status --no-pager --lines=0 nodeprep.service")
		if err != nil {
			// systemctl status exits 3 for a unit that is still activating.
			out = err.Error()
		}
		r.mu.Lock()
		r.seen = append(r.seen, out)
		r.mu.Unlock()
	})
}

func (r *statusRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestBootNode boots the image on a healthy node and checks, in order, what
// systemd, journald, the kernel and systemd-networkd make of the run.
func TestBootNode(t *testing.T) {
	var status statusRecorder
	b := Boot(t, Spec{
		NodeprepPart: twoENIs,
		// Attachments stay "attaching" for a second, as EC2's do.
		Timing:     ec2sim.Timing{AttachDelay: ec2sim.Latency{Base: time.Second}},
		BeforeBoot: status.install,
	})

	t.Run("ReadyBeforeKubelet", func(t *testing.T) { checkReadyBeforeKubelet(t, b) })
	t.Run("StatusWhileAttaching", func(t *testing.T) { checkStatusWhileAttaching(t, status.all()) })
	t.Run("Journal", func(t *testing.T) { checkJournal(t, b) })
	t.Run("KernelNIC", func(t *testing.T) { checkKernelNIC(t, b) })
	t.Run("DPDKBind", func(t *testing.T) { checkDPDKBind(t, b) })
	t.Run("HotplugLog", func(t *testing.T) {
		log := b.HotplugLog()
		t.Logf("hot-plug log:\n  %s", strings.Join(log, "\n  "))
		if len(log) != 2 {
			t.Fatalf("want 2 hot-plugged NICs (n2, n3), got %d", len(log))
		}
	})
	// Last: they change the guest.
	t.Run("Reboot", func(t *testing.T) { checkReboot(t, b) })
	t.Run("DetachUnplugs", func(t *testing.T) { checkDetachUnplugs(t, b) })
}

// checkDetachUnplugs: detaching an ENI through the EC2 API removes its NIC
// from the running guest (device_del, acknowledged by the guest kernel).
func checkDetachUnplugs(t *testing.T, b *Bed) {
	eni := eniInSubnet(t, b, SubnetMultusA)
	client := ec2.NewFromConfig(b.EC2.AWSConfig())
	if _, err := client.DetachNetworkInterface(t.Context(), &ec2.DetachNetworkInterfaceInput{
		AttachmentId: aws.String(eni.Attachment.ID),
	}); err != nil {
		t.Fatalf("DetachNetworkInterface: %v", err)
	}
	if errs := b.Sim.HookErrors(); len(errs) != 0 {
		t.Fatalf("hot-unplug: %v", errs)
	}
	if _, ok := linkByMAC(guestLinks(t, b), eni.MAC); ok {
		t.Errorf("the guest still has a link with %s's MAC %s after the detach", eni.ID, eni.MAC)
	}
	if _, err := PCIAddress(t.Context(), b.QMP, eni.ID); err == nil {
		t.Errorf("QEMU still has %s's NIC after the detach", eni.ID)
	}
	t.Logf("hot-plug log:\n  %s", strings.Join(b.HotplugLog(), "\n  "))
}

// checkReboot: after a reboot nodeprep converges again without a single
// mutating EC2 call, every ENI keeps its PCI address and MAC, and
// `nodeprep status` shows the new run.
func checkReboot(t *testing.T, b *Bed) {
	// ENI -> its MAC and PCI address in QEMU, and what the guest kernel
	// sees at that address: the netdev's MAC for a kernel NIC, the driver
	// for a DPDK one. (Interface names may change: net.ifnames=0 numbers
	// eth* in probe order.)
	type nic struct{ mac, pci, guest string }
	mapping := func() map[string]nic {
		m := map[string]nic{}
		for _, e := range b.Sim.ENIs() {
			if e.ID == b.Instance.PrimaryENIID {
				continue
			}
			pci := b.PCIAddress(t, e.ID)
			dev := "/sys/bus/pci/devices/" + pci
			guest := strings.TrimSpace(b.MustSSH(t, "cat "+dev+"/virtio*/net/*/address 2>/dev/null || readlink -f "+dev+"/driver"))
			m[e.ID] = nic{mac: e.MAC, pci: pci, guest: guest}
		}
		return m
	}
	before := mapping()
	b.Sim.ResetCalls()
	b.Reboot(t)

	np := unitProps(t, b, "nodeprep.service", "ActiveState", "Result", "ActiveEnterTimestampMonotonic")
	if np["ActiveState"] != "active" {
		t.Fatalf("after reboot nodeprep.service: %v", np)
	}
	mutating, describes := b.Sim.CallCounts()
	var mutatingCalls []string
	for _, c := range b.Sim.Calls() {
		if c.Mutating {
			mutatingCalls = append(mutatingCalls, c.Action)
		}
	}
	t.Logf("after reboot: %d mutating and %d describe EC2 calls", mutating, describes)
	if mutating != 0 {
		t.Errorf("the re-run after reboot made %d mutating EC2 calls: %v", mutating, mutatingCalls)
	}
	after := mapping()
	for id, n := range before {
		if after[id] != n {
			t.Errorf("%s: before reboot %+v, after %+v", id, n, after[id])
		}
	}
	t.Logf("ENI -> MAC, PCI address, guest view (same before and after reboot): %+v", after)
	status := b.MustSSH(t, "nodeprep status")
	t.Logf("nodeprep status after reboot:\n%s", status)
	for id, n := range before {
		if !strings.Contains(status, id) || !strings.Contains(status, n.pci) {
			t.Errorf("nodeprep status does not show %s at %s", id, n.pci)
		}
	}
	checkReadyBeforeKubelet(t, b)
}

// checkReadyBeforeKubelet: nodeprep's READY=1 (the moment systemd marks a
// Type=notify unit active) comes before kubelet and nodeadm-run start.
func checkReadyBeforeKubelet(t *testing.T, b *Bed) {
	np := unitProps(t, b, "nodeprep.service", "ActiveState", "Result", "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "StatusText")
	if np["ActiveState"] != "active" || np["Result"] != "success" {
		t.Fatalf("nodeprep.service: %v\n%s", np, b.MustSSH(t, "journalctl -b -u nodeprep --no-pager | tail -n 40"))
	}
	start := monotonic(t, np, "ExecMainStartTimestampMonotonic")
	ready := monotonic(t, np, "ActiveEnterTimestampMonotonic")
	timeline := []string{
		"nodeprep started " + start.String(),
		"nodeprep READY=1 " + ready.String() + " (STATUS=" + np["StatusText"] + ")",
	}
	for _, unit := range []string{"nodeadm-run.service", "kubelet.service"} {
		p := unitProps(t, b, unit, "ActiveState", "InactiveExitTimestampMonotonic")
		if p["ActiveState"] != "active" {
			t.Fatalf("%s is %s, want active", unit, p["ActiveState"])
		}
		began := monotonic(t, p, "InactiveExitTimestampMonotonic")
		timeline = append(timeline, unit+" started "+began.String())
		if began < ready {
			t.Errorf("%s started at %v, before nodeprep's READY=1 at %v", unit, began, ready)
		}
		// The stand-in's own record, independent of systemd's bookkeeping.
		name := strings.TrimSuffix(unit, ".service")
		rec, ok := guestFile(t, b, "/run/bed/"+name+".started")
		if !ok {
			t.Errorf("%s did not record its start", unit)
			continue
		}
		up, err := time.ParseDuration(strings.TrimSpace(rec) + "s")
		if err != nil {
			t.Fatalf("/run/bed/%s.started: %v", name, err)
		}
		if up < ready.Truncate(10*time.Millisecond) {
			t.Errorf("%s recorded its start at uptime %v, before READY=1 at %v", unit, up, ready)
		}
		if unit == "kubelet.service" {
			t.Logf("guest boot to kubelet start: %v (host: QEMU start to now %v)", began, time.Since(b.QEMUStart).Round(time.Second))
		}
	}
	t.Logf("systemd timeline (time since guest kernel start):\n  %s", strings.Join(timeline, "\n  "))
}

var attachingStatus = regexp.MustCompile(`Status: "(attaching|waiting for) ENI \d+/\d+`)

func checkStatusWhileAttaching(t *testing.T, seen []string) {
	if len(seen) == 0 {
		t.Fatal("the agent made no AttachNetworkInterface call")
	}
	for _, s := range seen {
		if attachingStatus.MatchString(s) {
			t.Logf("systemctl status nodeprep during AttachNetworkInterface:\n%s", s)
			return
		}
	}
	t.Fatalf("no `systemctl status nodeprep` taken during an attach shows an attaching STATUS line:\n%s", strings.Join(seen, "\n---\n"))
}

// readmeJournalFields returns the journal fields the README promises
// ("logs go to the journal as structured entries (`A`, `B`, ...").
func readmeJournalFields(t *testing.T) []string {
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	para := regexp.MustCompile(`(?s)logs go to the journal as structured entries \((.*?)\);`).FindSubmatch(readme)
	if para == nil {
		t.Fatal("README.md no longer lists the journal fields (\"logs go to the journal as structured entries (...)\")")
	}
	var fields []string
	for _, m := range regexp.MustCompile("`([A-Z_]+)`").FindAllSubmatch(para[1], -1) {
		fields = append(fields, string(m[1]))
	}
	if len(fields) == 0 {
		t.Fatal("no journal fields found in README.md")
	}
	return fields
}

func checkJournal(t *testing.T, b *Bed) {
	all := journal(t, b)
	if len(all) == 0 {
		t.Fatal("no journal entries for nodeprep.service")
	}
	produced := map[string]bool{}
	for _, e := range all {
		for k := range e {
			produced[k] = true
		}
	}
	for _, f := range readmeJournalFields(t) {
		if !produced[f] {
			t.Errorf("README lists journal field %s, but no nodeprep entry has it", f)
		}
	}

	query := func(match string) {
		got := journal(t, b, match)
		if len(got) == 0 {
			t.Errorf("journalctl -u nodeprep %s: no entries", match)
			return
		}
		t.Logf("journalctl -u nodeprep %s: %d entries, e.g.\n%s", match, len(got), messages(got[:1]))
	}
	query("NODEPREP_STEP=enis")
	for _, e := range b.Sim.ENIs() {
		if e.ID != b.Instance.PrimaryENIID {
			query("ENI_ID=" + e.ID)
		}
	}
	for _, e := range b.Sim.ENIs() {
		if e.ID != b.Instance.PrimaryENIID {
			query("PCI_ADDRESS=" + b.PCIAddress(t, e.ID))
		}
	}
	if errs := journal(t, b, "-p", "err"); len(errs) != 0 {
		t.Errorf("journalctl -u nodeprep -p err on a healthy node: %d entries\n%s", len(errs), messages(errs))
	}
}

package boot

import (
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/nodeadm"
)

// failingHugepages asks for eight 1 GiB pages on a 2 GiB guest: the
// hugepages step fails for real, whatever the policy.
func failingHugepages(policy string) string {
	return nodeprepPart(`  hugepages:
    - size: 1Gi
      count: 8
  failurePolicy: ` + policy + "\n")
}

// TestBootBlockKeepsKubeletDown: under failurePolicy Block a failed step
// fails nodeprep.service, and kubelet and nodeadm-run never start.
func TestBootBlockKeepsKubeletDown(t *testing.T) {
	b := Boot(t, Spec{NodeprepPart: failingHugepages("Block")})

	np := unitProps(t, b, "nodeprep.service", "ActiveState", "Result", "ExecMainStatus")
	if np["ActiveState"] != "failed" || np["ExecMainStatus"] != "1" {
		t.Fatalf("nodeprep.service: %v, want failed with exit status 1", np)
	}
	for _, unit := range []string{"kubelet.service", "nodeadm-run.service"} {
		p := unitProps(t, b, unit, "ActiveState", "InactiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic")
		if p["ActiveState"] == "active" || monotonic(t, p, "InactiveExitTimestampMonotonic") != 0 || monotonic(t, p, "ExecMainStartTimestampMonotonic") != 0 {
			t.Errorf("%s started although nodeprep failed under Block: %v", unit, p)
		}
	}
	if _, ok := guestFile(t, b, "/run/bed/kubelet.started"); ok {
		t.Error("the kubelet stand-in ran")
	}
	errs := journal(t, b, "-p", "err")
	if len(errs) == 0 {
		t.Fatal("journalctl -u nodeprep -p err: no entries for the failed step")
	}
	t.Logf("journalctl -u nodeprep -p err:\n%s", messages(errs))
	if !hasStep(errs, "hugepages") {
		t.Errorf("no error entry names the failed step (NODEPREP_STEP=hugepages)")
	}
	t.Logf("kubelet.service: %s", strings.TrimSpace(b.MustSSH(t, "systemctl status --no-pager --lines=0 kubelet.service || true")))
}

func hasStep(entries []journalEntry, step string) bool {
	for _, e := range entries {
		if e.str("NODEPREP_STEP") == step {
			return true
		}
	}
	return false
}

// TestBootTaintStartsKubeletTainted: under failurePolicy Taint the same
// failure lets kubelet start, and the nodeadm drop-in nodeadm-run read
// carries the failure taint.
func TestBootTaintStartsKubeletTainted(t *testing.T) {
	b := Boot(t, Spec{NodeprepPart: failingHugepages("Taint")})

	np := unitProps(t, b, "nodeprep.service", "ActiveState", "Result")
	if np["ActiveState"] != "active" {
		t.Fatalf("nodeprep.service: %v, want active (exit 0 under Taint)", np)
	}
	for _, unit := range []string{"kubelet.service", "nodeadm-run.service"} {
		if p := unitProps(t, b, unit, "ActiveState"); p["ActiveState"] != "active" {
			t.Errorf("%s is %s, want active", unit, p["ActiveState"])
		}
	}
	// The copy nodeadm-run's stand-in took when it started: what kubelet got.
	dropIn, ok := guestFile(t, b, "/run/bed/nodeadm.d/"+strings.TrimPrefix(nodeadm.DropInPath, nodeadm.DropInDir+"/"))
	if !ok {
		t.Fatalf("nodeadm-run started without %s", nodeadm.DropInPath)
	}
	t.Logf("%s as nodeadm-run read it:\n%s", nodeadm.DropInPath, dropIn)
	if !strings.Contains(dropIn, nodeadm.FailedTaintKey+"=true:NoSchedule") {
		t.Errorf("drop-in lacks the taint %s=true:NoSchedule", nodeadm.FailedTaintKey)
	}
	if errs := journal(t, b, "-p", "err"); !hasStep(errs, "hugepages") {
		t.Errorf("journalctl -u nodeprep -p err has no entry for the failed hugepages step:\n%s", messages(errs))
	}
}

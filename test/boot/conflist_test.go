package boot

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/test/vm"
)

// awsConflist is what aws-node writes once it runs, after kubelet started:
// the VPC CNI with the portmap plugin, hence the portMappings capability.
const awsConflist = `{
  "cniVersion": "1.0.0",
  "name": "aws-cni",
  "disableCheck": true,
  "plugins": [
    {"name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001"},
    {"type": "egress-cni", "enabled": "false"},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
`

// TestBootLateAWSConflist: 10-aws.conflist appears after boot, as aws-node
// writes it; 00-multus.conf must then follow its cniVersion and capabilities
// (hostPort needs portMappings), without waiting for the next boot.
func TestBootLateAWSConflist(t *testing.T) {
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shipped, _ := filepath.Glob(filepath.Join(root, "systemd", "*.path"))
	if len(shipped) == 0 {
		t.Fatal("systemd/ ships no path unit that re-renders 00-multus.conf when 10-aws.conflist appears")
	}
	b := Boot(t, Spec{NodeprepPart: twoENIs})
	for _, p := range shipped {
		unit := filepath.Base(p)
		if st := strings.TrimSpace(b.MustSSH(t, "systemctl is-active "+unit+" || true")); st != "active" {
			t.Errorf("%s ships with the agent but is %s in the image", unit, st)
		}
	}
	if _, ok := guestFile(t, b, "/etc/cni/net.d/10-aws.conflist"); ok {
		t.Fatal("10-aws.conflist exists at boot: the bed must start without it")
	}
	before, ok := guestFile(t, b, "/etc/cni/net.d/00-multus.conf")
	if !ok {
		t.Fatal("no 00-multus.conf after boot")
	}
	t.Logf("00-multus.conf before aws-node:\n%s", before)
	// hostPort works from the first boot: portMappings is there before
	// aws-node has written anything.
	if !strings.Contains(before, "portMappings") {
		t.Errorf("00-multus.conf lacks portMappings before 10-aws.conflist exists")
	}

	b.MustSSH(t, "cat >/etc/cni/net.d/10-aws.conflist.tmp <<'EOF'\n"+awsConflist+"EOF\nmv /etc/cni/net.d/10-aws.conflist.tmp /etc/cni/net.d/10-aws.conflist")
	// Bounded wait in the guest for the path unit's re-render.
	after := b.MustSSH(t, `for i in $(seq 120); do
  grep -Eq '"cniVersion": ?"1\.0\.0"' /etc/cni/net.d/00-multus.conf && break
  sleep 0.5
done
cat /etc/cni/net.d/00-multus.conf`)
	t.Logf("00-multus.conf after aws-node wrote 10-aws.conflist:\n%s", after)
	var conf struct {
		CNIVersion   string          `json:"cniVersion"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(after), &conf); err != nil {
		t.Fatalf("00-multus.conf: %v", err)
	}
	if conf.CNIVersion != "1.0.0" {
		t.Errorf("00-multus.conf cniVersion %q, want the conflist's 1.0.0", conf.CNIVersion)
	}
	if !conf.Capabilities["portMappings"] {
		t.Errorf("00-multus.conf capabilities %v lack portMappings", conf.Capabilities)
	}
}

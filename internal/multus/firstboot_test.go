package multus

import (
	"bytes"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
)

// vpcCNIConflist is what aws-node writes from amazon-vpc-cni-k8s
// misc/10-aws.conflist (v1.20.0 and later), its placeholders filled in.
const vpcCNIConflist = `{
  "cniVersion": "0.4.0",
  "name": "aws-cni",
  "disableCheck": true,
  "plugins": [
    {"name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001", "podSGEnforcingMode": "strict", "pluginLogFile": "/var/log/aws-routed-eni/plugin.log", "pluginLogLevel": "DEBUG", "capabilities": {"io.kubernetes.cri.pod-annotations": true}},
    {"name": "egress-cni", "type": "egress-cni", "mtu": "9001", "enabled": "false", "randomizeSNAT": "prng", "nodeIP": "", "ipam": {"type": "host-local", "ranges": [[{"subnet": "fd00::ac:00/118"}]], "routes": [{"dst": "::/0"}], "dataDir": "/run/cni/v4pd/egress-v6-ipam"}, "pluginLogFile": "/var/log/aws-routed-eni/egress-v6-plugin.log", "pluginLogLevel": "DEBUG"},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}`

// On first boot nodeprep runs before aws-node writes 10-aws.conflist. The
// 00-multus.conf it writes then must already advertise portMappings (as
// libcni reads it), or the runtime passes no port mappings and hostPort
// breaks; and it must be the same file nodeprep writes once the VPC CNI's
// conflist exists, so nothing changes when it appears.
func TestFirstBootMultusConfMatchesTheVPCCNIs(t *testing.T) {
	m := defaulted(t, false)
	render := func(host map[string]string) []byte {
		t.Helper()
		files, err := Files(hostWith(t, host), m, Options{KubeletKubeconfig: DefaultKubeletKubeconfig})
		if err != nil {
			t.Fatal(err)
		}
		return find(t, files, "/etc/cni/net.d/00-multus.conf").Data
	}
	firstBoot := render(map[string]string{DefaultKubeletKubeconfig: nodeadmKubeconfig})
	nc, err := libcni.ConfFromBytes(firstBoot)
	if err != nil {
		t.Fatalf("libcni rejects 00-multus.conf: %v\n%s", err, firstBoot)
	}
	if !nc.Network.Capabilities["portMappings"] || !nc.Network.Capabilities["io.kubernetes.cri.pod-annotations"] || nc.Network.CNIVersion != "0.4.0" {
		t.Errorf("first boot: capabilities %v, cniVersion %s; want portMappings and io.kubernetes.cri.pod-annotations at 0.4.0", nc.Network.Capabilities, nc.Network.CNIVersion)
	}
	later := render(map[string]string{DefaultKubeletKubeconfig: nodeadmKubeconfig, api.DefaultClusterNetwork: vpcCNIConflist})
	if !bytes.Equal(firstBoot, later) {
		t.Errorf("00-multus.conf changes once aws-node writes its conflist:\nfirst boot:\n%s\nlater:\n%s", firstBoot, later)
	}
	if !strings.Contains(string(later), `"portMappings": true`) {
		t.Errorf("later:\n%s", later)
	}
}

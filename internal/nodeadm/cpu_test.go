package nodeadm

import (
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

func TestDropInCarriesCPUProfile(t *testing.T) {
	empty := ""
	k := &cpuprofile.Kubelet{CPUManagerPolicy: "static", ReservedSystemCPUs: "0,4", TopologyManagerPolicy: "single-numa-node",
		CPUManagerPolicyOptions: map[string]string{"full-pcpus-only": "true"}, KubeReservedCgroup: &empty, SystemReservedCgroup: &empty}
	data, err := Render(&api.NodePrepConfig{}, Facts{MaxPods: 20, CPU: k})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maxPods: 20", "cpuManagerPolicy: static", `reservedSystemCPUs: 0,4`, "full-pcpus-only: \"true\"", `kubeReservedCgroup: ""`, `systemReservedCgroup: ""`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("drop-in lacks %q:\n%s", want, data)
		}
	}
	// Without a profile the drop-in is what it was.
	data, _ = Render(&api.NodePrepConfig{}, Facts{})
	if strings.Contains(string(data), "config:") {
		t.Errorf("no profile, no maxPods, yet a config:\n%s", data)
	}
}

func TestInheritMergesKubeletConfig(t *testing.T) {
	in, err := Inherit(hostfs.New(t.TempDir()), [][]byte{
		[]byte("spec:\n  kubelet:\n    config:\n      kubeReserved: {cpu: 100m, memory: 1Gi}\n      topologyManagerPolicy: restricted\n"),
		[]byte("spec:\n  kubelet:\n    config:\n      kubeReserved: {memory: 2Gi}\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	kr := in.KubeletConfig["kubeReserved"].(map[string]any)
	if kr["cpu"] != "100m" || kr["memory"] != "2Gi" || in.KubeletConfig["topologyManagerPolicy"] != "restricted" {
		t.Fatalf("%v", in.KubeletConfig)
	}
}

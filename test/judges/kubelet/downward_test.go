package kubelet

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/volume/downwardapi"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// networkStatusKey is the annotation Multus writes a pod's attachments to.
const networkStatusKey = "k8s.v1.cni.cncf.io/network-status"

// TestRestrictedPodReadsItsNetworkStatusThroughTheDownwardAPI judges the
// shipped example pod, configs/manifests/dpdk-pod-restricted.yaml, with
// Kubernetes' own code: pod-security-admission's checks admit it at
// "restricted" (latest version), and kubelet's downward-API volume code
// (pkg/volume/downwardapi CollectData, which resolves fieldRef with
// pkg/fieldpath) projects, from the network-status Multus wrote for a DPDK
// pod in the VM bed (testdata/network-status.json, README's example from
// TestVMMultusDPDKPodsGetTheirENIsAddresses), the file the pod reads: it
// parses as network-status with the ENI's ips and the device's PCI address.
func TestRestrictedPodReadsItsNetworkStatusThroughTheDownwardAPI(t *testing.T) {
	data, err := os.ReadFile("../../../configs/manifests/dpdk-pod-restricted.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pod v1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		t.Fatalf("the example pod: %v", err)
	}

	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	if r := policy.AggregateCheckResults(eval.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec)); !r.Allowed {
		t.Errorf("the example pod is not admitted at restricted: %s", r.ForbiddenDetail())
	}

	var items []v1.DownwardAPIVolumeFile
	var mount string
	for _, vol := range pod.Spec.Volumes {
		if vol.DownwardAPI == nil {
			continue
		}
		items = vol.DownwardAPI.Items
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name == vol.Name {
				mount = m.MountPath
			}
		}
	}
	if items == nil || mount == "" {
		t.Fatal("the example pod mounts no downward-API volume")
	}

	// Multus's annotation, as the pod object carries it once CNI ADD ran.
	status, err := os.ReadFile("testdata/network-status.json")
	if err != nil {
		t.Fatal(err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[networkStatusKey] = string(status)

	mode := v1.DownwardAPIVolumeSourceDefaultMode
	files, err := downwardapi.CollectData(items, &pod, nil, &mode, nil)
	if err != nil {
		t.Fatalf("kubelet's downward-API projection: %v", err)
	}
	var file []byte
	for path, f := range files {
		if path == "network-status" {
			file = f.Data
		}
	}
	if file == nil {
		t.Fatalf("projected files %v: no network-status (the app reads %s/network-status)", keys(files), mount)
	}

	var entries []struct {
		Name       string   `json:"name"`
		Interface  string   `json:"interface"`
		IPs        []string `json:"ips"`
		DeviceInfo *struct {
			Type string `json:"type"`
			PCI  struct {
				Address string `json:"pci-address"`
			} `json:"pci"`
		} `json:"device-info"`
	}
	if err := json.Unmarshal(file, &entries); err != nil {
		t.Fatalf("%s/network-status does not parse as network-status: %v\n%s", mount, err, file)
	}
	var dpdk int
	for _, e := range entries {
		if e.DeviceInfo == nil {
			continue
		}
		dpdk++
		if e.DeviceInfo.Type != "pci" || e.DeviceInfo.PCI.Address != "0000:00:11.0" {
			t.Errorf("entry %s: device-info %+v, want pci 0000:00:11.0", e.Name, e.DeviceInfo)
		}
		if got := strings.Join(e.IPs, ","); got != "10.0.35.66,2600:1f14:abc:de00:52c2:dab2:f81f:224b" {
			t.Errorf("entry %s: ips %s, want the ENI's IPv4 and IPv6 addresses", e.Name, got)
		}
	}
	if dpdk != 1 {
		t.Errorf("%d entries with device-info in %s/network-status, want 1:\n%s", dpdk, mount, file)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

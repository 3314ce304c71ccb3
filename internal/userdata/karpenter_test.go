package userdata

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Karpenter example's user data is what Karpenter keeps before its own
// NodeConfig: it must hold a valid nodeprep MIME part and no nodeadm part,
// and as bare YAML the same config would not be found as nodeprep's.
func TestKarpenterExampleUserData(t *testing.T) {
	data, err := os.ReadFile("../../configs/karpenter/ec2nodeclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var nodeClass struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			AMIFamily string `yaml:"amiFamily"`
			UserData  string `yaml:"userData"`
			Kubelet   struct {
				MaxPods int `yaml:"maxPods"`
			} `yaml:"kubelet"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &nodeClass); err != nil {
		t.Fatal(err)
	}
	if nodeClass.APIVersion != "karpenter.k8s.aws/v1" || nodeClass.Kind != "EC2NodeClass" || nodeClass.Spec.AMIFamily != "AL2023" {
		t.Fatalf("not an AL2023 EC2NodeClass: %+v", nodeClass)
	}
	ud := []byte(nodeClass.Spec.UserData)
	if cfg := mustLoad(t, ud); len(cfg.Spec.Interfaces) != 2 {
		t.Errorf("interfaces = %d", len(cfg.Spec.Interfaces))
	}
	if docs, err := ExtractNodeadm(ud); err != nil || len(docs) != 0 {
		t.Errorf("nodeadm parts = %d, %v; Karpenter adds its own", len(docs), err)
	}
	// The example's maxPods is c5.4xlarge's 8 ENIs less the two nodeprep ENIs.
	if nodeClass.Spec.Kubelet.MaxPods != (8-2)*(30-1)+2 {
		t.Errorf("maxPods %d", nodeClass.Spec.Kubelet.MaxPods)
	}
}

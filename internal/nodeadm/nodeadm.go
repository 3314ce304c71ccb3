// Package nodeadm hands node labels and taints to kubelet through an AL2023
// nodeadm drop-in, /etc/eks/nodeadm.d/90-nodeprep.yaml.
//
// nodeadm-run.service reads `--config-source imds://user-data --config-source
// file:///etc/eks/nodeadm.d/`: every .yaml/.yml/.json NodeConfig in the
// directory is merged over user data in file-name order, and a merged config
// that differs from the one nodeadm-config cached makes nodeadm configure
// kubelet again. kubelet.flags are appended across sources (nodeadm
// internal/api/merge.go), so --node-labels from several sources add up, while
// for --register-with-taints the last one wins and it overrides kubelet's
// registerWithTaints config; the drop-in therefore carries the union of the
// taints user data set and nodeprep's own (see Inherit). nodeprep runs after
// nodeadm-config.service and before nodeadm-run.service.
//
// The first AL2023 EKS AMI whose nodeadm-run.service reads DropInDir is
// v20251023 (amazon-eks-ami #2427). Older AMIs read user data only: the
// drop-in is written but ignored, so nodeprep's labels, taints (including the
// failurePolicy Taint taint) and maxPods do not reach kubelet there.
package nodeadm

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
)

const (
	// DropInDir is the directory nodeadm-run.service reads NodeConfigs from.
	DropInDir = "/etc/eks/nodeadm.d"
	// DropInPath is nodeprep's drop-in; 90 lets a later user file override it.
	DropInPath = DropInDir + "/90-nodeprep.yaml"

	// APIVersion and Kind of nodeadm's NodeConfig.
	APIVersion = "node.eks.aws/v1alpha1"
	Kind       = "NodeConfig"

	// DPDKReadyLabel says whether the node's DPDK interfaces are ready:
	// "true" only when DPDK interfaces are configured and no step failed.
	DPDKReadyLabel = api.LabelDPDKReady
	// FailedTaintKey is the NoSchedule taint under failurePolicy Taint.
	FailedTaintKey = api.TaintFailed
)

// ErrLabel is returned for a label kubelet would refuse to register.
var ErrLabel = errors.New("kubelet cannot set this label")

// Facts are what the drop-in is built from: how the run ended and what the NodeConfigs before it set.
type Facts struct {
	// Failed names the steps that failed; empty means the node is ready.
	Failed []string
	// Inherited is what the NodeConfigs before the drop-in already set.
	Inherited Inherited
	// MaxPods, when above 0, is kubelet's maxPods with nodeprep's no_manage
	// ENIs taken out of the VPC CNI's count. It is written only when no
	// earlier NodeConfig set maxPods.
	MaxPods int
	// CPU is a CPU profile's kubelet settings (cpuprofile.Kubelet, already
	// stripped of what the user's NodeConfigs set); nil without spec.cpu.
	CPU *cpuprofile.Kubelet
}

// NodeConfig is the part of nodeadm's NodeConfig (api/v1alpha1) nodeprep writes.
type NodeConfig struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Spec       NodeConfigSpec `yaml:"spec"`
}

// NodeConfigSpec holds only kubelet options.
type NodeConfigSpec struct {
	Kubelet KubeletOptions `yaml:"kubelet"`
}

// KubeletOptions are extra kubelet flags, appended to nodeadm's own, and
// kubelet config fields, merged over nodeadm's.
type KubeletOptions struct {
	Config *KubeletConfig `yaml:"config,omitempty"`
	Flags  []string       `yaml:"flags"`
}

// KubeletConfig is the part of KubeletConfiguration nodeprep sets.
type KubeletConfig struct {
	MaxPods            int `yaml:"maxPods,omitempty"`
	cpuprofile.Kubelet `yaml:",inline"`
}

// Build returns the drop-in for a loaded config and a run's outcome.
func Build(cfg *api.NodePrepConfig, out Facts) (*NodeConfig, error) {
	labels := map[string]string{}
	for k, v := range cfg.Spec.Node.Labels {
		if err := kubeletMaySet(k); err != nil {
			return nil, fmt.Errorf("spec.node.labels[%s]: %w", k, err)
		}
		labels[k] = v
	}
	labels[DPDKReadyLabel] = fmt.Sprint(hasDPDK(cfg) && len(out.Failed) == 0)

	taints := append([]api.Taint(nil), cfg.Spec.Node.Taints...)
	if len(out.Failed) > 0 && cfg.Spec.FailurePolicy == api.FailurePolicyTaint {
		taints = append(taints, api.Taint{Key: FailedTaintKey, Value: "true", Effect: "NoSchedule"})
	}

	// --register-with-taints is last-wins, and a flag overrides kubelet's
	// registerWithTaints config: when nodeprep sets taints, it must repeat
	// the ones user data set (Karpenter's karpenter.sh/unregistered) or they
	// are lost. With none of its own it adds no flag and leaves them be.
	if len(taints) > 0 {
		taints = unionTaints(out.Inherited.Taints, taints)
	}
	flags := []string{"--node-labels=" + joinLabels(labels)}
	if len(taints) > 0 {
		flags = append(flags, "--register-with-taints="+joinTaints(taints))
	}
	nc := &NodeConfig{APIVersion: APIVersion, Kind: Kind, Spec: NodeConfigSpec{Kubelet: KubeletOptions{Flags: flags}}}
	if out.MaxPods > 0 && !out.Inherited.MaxPodsSet {
		nc.Spec.Kubelet.Config = &KubeletConfig{MaxPods: out.MaxPods}
	}
	if out.CPU != nil {
		if nc.Spec.Kubelet.Config == nil {
			nc.Spec.Kubelet.Config = &KubeletConfig{}
		}
		nc.Spec.Kubelet.Config.Kubelet = *out.CPU
	}
	return nc, nil
}

// Render is the drop-in file's content.
func Render(cfg *api.NodePrepConfig, out Facts) ([]byte, error) {
	nc, err := Build(cfg, out)
	if err != nil {
		return nil, err
	}
	body, err := yaml.Marshal(nc)
	if err != nil {
		return nil, err
	}
	header := "# Written by nodeprep after each run; nodeadm-run.service merges it over user data.\n"
	if len(out.Failed) > 0 {
		header += "# Failed steps: " + strings.Join(sorted(out.Failed), ", ") + "\n"
	}
	return append([]byte(header), body...), nil
}

func hasDPDK(cfg *api.NodePrepConfig) bool {
	for _, in := range cfg.Spec.Interfaces {
		if in.DPDK() {
			return true
		}
	}
	return false
}

// kubeletMaySet mirrors kubelet's check of --node-labels: with the
// NodeRestriction admission plugin, labels in the kubernetes.io and k8s.io
// namespaces are refused except this set and the kubelet./node. prefixes.
func kubeletMaySet(key string) error {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return nil
	}
	if prefix != "kubernetes.io" && prefix != "k8s.io" && !strings.HasSuffix(prefix, ".kubernetes.io") && !strings.HasSuffix(prefix, ".k8s.io") {
		return nil
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/arch", "beta.kubernetes.io/os",
		"beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
		"failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
		"topology.kubernetes.io/region", "topology.kubernetes.io/zone":
		return nil
	}
	for _, ok := range []string{"kubelet.kubernetes.io", "node.kubernetes.io"} {
		if prefix == ok || strings.HasSuffix(prefix, "."+ok) {
			return nil
		}
	}
	return ErrLabel
}

func joinLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// joinTaints uses kubelet's --register-with-taints form: key=value:Effect.
func joinTaints(taints []api.Taint) string {
	parts := make([]string, len(taints))
	for i, t := range taints {
		if t.Value == "" {
			parts[i] = t.Key + ":" + t.Effect
		} else {
			parts[i] = t.Key + "=" + t.Value + ":" + t.Effect
		}
	}
	return strings.Join(parts, ",")
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

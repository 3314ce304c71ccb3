package api

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// The node label and taint nodeprep sets itself (the nodeadm drop-in writes
// them). A user's own label or taint of that key would be replaced, or
// would fake nodeprep's verdict, so validation refuses them.
const (
	// LabelDPDKReady is "true" only when DPDK interfaces are configured and no step failed.
	LabelDPDKReady = "nodeprep.dev/dpdk-ready"
	// TaintFailed is the NoSchedule taint under failurePolicy Taint.
	TaintFailed = "nodeprep.dev/failed"
)

// The checks below call Kubernetes' own validation (apimachinery for names
// and values, kubelet's list of the labels it may set), so a config
// `validate` accepts is one kubelet and the API server accept.

// LabelProblems says why kubelet or the API server would refuse the node
// label key=value, or returns nil.
func LabelProblems(key, value string) []string {
	var out []string
	keyErrs := validation.IsQualifiedName(key)
	for _, e := range keyErrs {
		out = append(out, "key: "+e)
	}
	for _, e := range validation.IsValidLabelValue(value) {
		out = append(out, "value: "+e)
	}
	if len(keyErrs) == 0 && isKubernetesLabel(key) && !kubeletapis.IsKubeletLabel(key) {
		out = append(out, fmt.Sprintf("kubelet refuses --node-labels in the kubernetes.io and k8s.io namespaces except the prefixes %s and the labels %s; set it after the node joins (node-role.kubernetes.io/* is set with kubectl label)",
			strings.Join(kubeletapis.KubeletLabelNamespaces(), ", "), strings.Join(kubeletapis.KubeletLabels(), ", ")))
	}
	if key == LabelDPDKReady || key == TaintFailed {
		out = append(out, "nodeprep sets this label itself")
	}
	return out
}

// isKubernetesLabel is kubelet's own test (cmd/kubelet/app/options,
// ValidateKubeletFlags), which k8s.io/kubelet does not export.
func isKubernetesLabel(key string) bool {
	ns, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	return ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
}

// taintEffects are the effects the API server accepts on a node taint.
var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

// TaintProblems says why the API server (validateNodeTaints) or kubelet's
// --register-with-taints would refuse the taint, field by field.
func TaintProblems(t Taint) (key, value, effect []string) {
	key = validation.IsQualifiedName(t.Key)
	if t.Key == TaintFailed || t.Key == LabelDPDKReady {
		key = append(key, "nodeprep sets this taint itself, under failurePolicy Taint")
	}
	value = validation.IsValidLabelValue(t.Value)
	for _, e := range taintEffects {
		if corev1.TaintEffect(t.Effect) == e {
			return key, value, nil
		}
	}
	names := make([]string, len(taintEffects))
	for i, e := range taintEffects {
		names[i] = string(e)
	}
	return key, value, []string{"must be " + strings.Join(names, ", ")}
}

// ResourceNameProblems says why kubelet's device manager would refuse
// prefix/name as a device plugin resource: it must be an extended resource
// name (Kubernetes' IsExtendedResourceName, pkg/apis/core/v1/helper: outside
// the kubernetes.io namespace, and "requests."+name a qualified name), and
// the SR-IOV device plugin takes only [A-Za-z0-9_] in the name part.
func ResourceNameProblems(prefix, name string) []string {
	var out []string
	if !ResourceNamePattern.MatchString(name) {
		out = append(out, "the SR-IOV device plugin takes 1-63 characters of A-Z, a-z, 0-9 and '_'")
	}
	full := prefix + "/" + name
	if strings.Contains(full, corev1.ResourceDefaultNamespacePrefix) {
		out = append(out, full+" is in the kubernetes.io namespace, which is Kubernetes' own")
	}
	for _, e := range validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix + full) {
		out = append(out, full+": "+e)
	}
	return out
}

package api

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// The differential test: for a corpus of label and taint keys and values,
// `nodeprep validate` (Load) accepts exactly what Kubernetes accepts, judged
// by the API server's own entry points: ObjectMeta label validation
// (metav1validation.ValidateLabels) and kubelet's --node-labels rule
// (kubeletapis.IsKubeletLabel) for labels; validateNodeTaints' checks
// (ValidateLabelName, IsValidLabelValue, the three effects, unique
// key+effect) for taints.

var corpusKeys = []string{
	"a", "A", "a1", "1a", "-a", "a-", "_a", "a_", ".a", "a.", "a.b", "a..b", "a-b_c.d", "a b", "ünicode", "a/b/c", "/a", "a/", "",
	strings.Repeat("a", 63), strings.Repeat("a", 64),
	"example.com/x", "Example.com/x", "example.com/" + strings.Repeat("x", 63), "example.com/" + strings.Repeat("x", 64),
	strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + "/x",
	strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62) + "/x",
	"-example.com/x", "example-.com/x", "ex_ample.com/x", "example.com/-x",
	"kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "kubernetes.io/custom",
	"node-role.kubernetes.io/upf", "node-role.kubernetes.io/worker",
	"node.kubernetes.io/instance-type", "node.kubernetes.io/custom", "x.node.kubernetes.io/y",
	"kubelet.kubernetes.io/x", "x.kubelet.kubernetes.io/y",
	"topology.kubernetes.io/zone", "topology.kubernetes.io/custom",
	"beta.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/zone",
	"node-restriction.kubernetes.io/x", "k8s.io/x", "foo.k8s.io/x", "notk8s.io/x", "xkubernetes.io/y",
	"nodeprep.dev/dpdk", "nodeprep.dev/upf", "amazon.com/dpdk",
}

var corpusValues = []string{
	"", "true", "a", "A", "1", "-x", "x-", "_x", "x_", ".x", "x.", "a_b.c-d", "a/b", "a b", "ü",
	strings.Repeat("v", 63), strings.Repeat("v", 64),
}

func labelDoc(key, value string) string {
	return fmt.Sprintf("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  node:\n    labels:\n      %q: %q\n", key, value)
}

// kubernetesTakesLabel is the judge for one node label.
func kubernetesTakesLabel(key, value string) bool {
	if len(metav1validation.ValidateLabels(map[string]string{key: value}, field.NewPath("metadata", "labels"))) > 0 {
		return false
	}
	ns, _, found := strings.Cut(key, "/")
	k8sNamespace := found && (ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io"))
	return !k8sNamespace || kubeletapis.IsKubeletLabel(key)
}

func TestLabelsAgreeWithKubernetes(t *testing.T) {
	checked, accepted := 0, 0
	try := func(key, value string) {
		checked++
		_, err := Load(Source{Name: "corpus", Data: []byte(labelDoc(key, value))})
		want := kubernetesTakesLabel(key, value)
		if want {
			accepted++
		}
		if (err == nil) != want {
			t.Errorf("label %q=%q: Kubernetes accepts: %v; nodeprep: %v", key, value, want, err)
		}
	}
	for _, k := range corpusKeys {
		try(k, "true")
	}
	for _, v := range corpusValues {
		try("example.com/x", v)
	}
	if accepted == 0 || accepted == checked {
		t.Fatalf("the corpus is one-sided: %d of %d accepted", accepted, checked)
	}
	t.Logf("%d labels, %d accepted by both", checked, accepted)
}

// validTaintEffect is the API server's list (validateNodeTaints).
func validTaintEffect(e string) bool {
	switch corev1.TaintEffect(e) {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return true
	}
	return false
}

func kubernetesTakesTaints(taints []Taint) bool {
	seen := map[string]bool{}
	for _, t := range taints {
		if len(metav1validation.ValidateLabelName(t.Key, field.NewPath("key"))) > 0 ||
			len(validation.IsValidLabelValue(t.Value)) > 0 || !validTaintEffect(t.Effect) {
			return false
		}
		id := t.Key + ":" + t.Effect
		if seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

func taintDoc(taints []Taint) string {
	var b strings.Builder
	b.WriteString("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  node:\n    taints:\n")
	for _, t := range taints {
		fmt.Fprintf(&b, "      - {key: %q, value: %q, effect: %q}\n", t.Key, t.Value, t.Effect)
	}
	return b.String()
}

func TestTaintsAgreeWithKubernetes(t *testing.T) {
	var cases [][]Taint
	for _, k := range corpusKeys {
		cases = append(cases, []Taint{{Key: k, Value: "x", Effect: "NoSchedule"}})
	}
	for _, v := range corpusValues {
		cases = append(cases, []Taint{{Key: "example.com/x", Value: v, Effect: "NoExecute"}})
	}
	for _, e := range []string{"NoSchedule", "PreferNoSchedule", "NoExecute", "noschedule", "", "Sometimes"} {
		cases = append(cases, []Taint{{Key: "example.com/x", Effect: e}})
	}
	cases = append(cases,
		[]Taint{{Key: "a", Value: "1", Effect: "NoSchedule"}, {Key: "a", Value: "2", Effect: "NoSchedule"}},
		[]Taint{{Key: "a", Value: "1", Effect: "NoSchedule"}, {Key: "a", Value: "1", Effect: "NoExecute"}},
		[]Taint{{Key: "a", Effect: "NoSchedule"}, {Key: "b", Effect: "NoSchedule"}, {Key: "a", Effect: "NoSchedule"}},
	)
	accepted := 0
	for _, c := range cases {
		_, err := Load(Source{Name: "corpus", Data: []byte(taintDoc(c))})
		want := kubernetesTakesTaints(c)
		if want {
			accepted++
		}
		if (err == nil) != want {
			t.Errorf("taints %v: Kubernetes accepts: %v; nodeprep: %v", c, want, err)
		}
	}
	if accepted == 0 || accepted == len(cases) {
		t.Fatalf("the corpus is one-sided: %d of %d accepted", accepted, len(cases))
	}
	t.Logf("%d taint sets, %d accepted by both", len(cases), accepted)
}

// Package nodestatus publishes nodeprep's verdict on its Node: a condition
// of nodeprep's own type, and an Event each time it changes. It uses the
// node's own kubeconfig (kubelet's), which the node authorizer lets patch
// its own Node's status and create events about it.
package nodestatus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/watch"
)

// ConditionType is nodeprep's condition. It is none of the types EKS node
// auto-repair acts on (Ready, the node monitoring agent's *Ready types
// such as NetworkingReady, AcceleratedHardwareReady), so a failing doctor
// makes a node visible, not replaced.
const ConditionType corev1.NodeConditionType = "NodeprepReady"

// Reasons of the condition, CamelCase as Kubernetes reasons are.
const (
	ReasonHealthy = "NodeprepHealthy"
	ReasonWarning = "NodeprepWarnings"
	ReasonFailing = "NodeprepChecksFailing"
)

// EventNamespace is where events about cluster-scoped objects go, as
// kubelet files its Node events.
const EventNamespace = "default"

// Publisher patches one Node's condition.
type Publisher struct {
	// Client is a client-go REST client for the core/v1 API (NewClient).
	Client   rest.Interface
	NodeName string
	// Component is the event's source (reportingController).
	Component string
	Now       func() time.Time
}

// New builds a Publisher from a kubeconfig file (kubelet's on a node).
func New(kubeconfig, nodeName string) (*Publisher, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = "nodeprep"
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Publisher{Client: c, NodeName: nodeName}, nil
}

// NewClient is a client-go REST client for core/v1 whose scheme knows only
// core/v1. The generated typed clients register every API group of
// Kubernetes (client-go/kubernetes/scheme), which would add some 50 MB to
// an agent that reads one Node and writes its status and Events.
func NewClient(cfg *rest.Config) (rest.Interface, error) {
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(sch).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// Status is what to publish.
type Status struct {
	Ready   bool
	Reason  string
	Message string
}

// Publish sets the condition. It patches only when status, reason or
// message changed (a heartbeat per doctor run would cost the API server a
// write for nothing), and then files an Event. It reports whether it
// changed the condition.
func (p *Publisher) Publish(ctx context.Context, s Status) (bool, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	node := &corev1.Node{}
	if err := p.Client.Get().Resource("nodes").Name(p.NodeName).Do(ctx).Into(node); err != nil {
		return false, fmt.Errorf("get node %s: %w", p.NodeName, err)
	}
	want := corev1.ConditionFalse
	if s.Ready {
		want = corev1.ConditionTrue
	}
	for _, c := range node.Status.Conditions {
		if c.Type == ConditionType && c.Status == want && c.Reason == s.Reason && c.Message == s.Message {
			return false, nil
		}
	}
	t := metav1.NewTime(now())
	cond := corev1.NodeCondition{Type: ConditionType, Status: want, Reason: s.Reason, Message: s.Message, LastHeartbeatTime: t, LastTransitionTime: t}
	for _, c := range node.Status.Conditions {
		if c.Type == ConditionType && c.Status == want {
			cond.LastTransitionTime = c.LastTransitionTime // same status: no transition
		}
	}
	// conditions merge by type in a strategic merge patch, so the patch
	// touches nodeprep's condition and no other.
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if err != nil {
		return false, err
	}
	if err := p.Client.Patch(types.StrategicMergePatchType).Resource("nodes").Name(p.NodeName).SubResource("status").Body(patch).Do(ctx).Error(); err != nil {
		return false, fmt.Errorf("patch node %s status: %w", p.NodeName, err)
	}
	eventType := corev1.EventTypeNormal
	if !s.Ready {
		eventType = corev1.EventTypeWarning
	}
	comp := p.Component
	if comp == "" {
		comp = "nodeprep"
	}
	ev := &corev1.Event{
		TypeMeta:       metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     metav1.ObjectMeta{GenerateName: p.NodeName + ".nodeprep.", Namespace: EventNamespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: p.NodeName, UID: types.UID(p.NodeName), APIVersion: "v1"},
		Reason:         s.Reason,
		Message:        s.Message,
		Type:           eventType,
		Source:         corev1.EventSource{Component: comp, Host: p.NodeName},
		FirstTimestamp: t, LastTimestamp: t, Count: 1,
		ReportingController: "nodeprep.dev/" + comp, ReportingInstance: p.NodeName,
	}
	if err := p.Client.Post().Namespace(EventNamespace).Resource("events").Body(ev).Do(ctx).Error(); err != nil {
		return true, fmt.Errorf("condition set, but the event failed: %w", err)
	}
	return true, nil
}

// maxMessage bounds the condition message: kubectl describe node shows it
// on one line, and a node object is read by every controller that lists nodes.
const maxMessage = 1024

// FromReport turns a doctor report into the condition: not ready when a
// check fails, ready with warnings named when one warns. A finding the
// watch has a standing decision about (watch.Sink's standing drifts) says
// what the watch did and why, so the Node says "held by pod ...: not
// rebinding", not only that the device is off its driver.
func FromReport(r doctor.Report, standing ...watch.Drift) Status {
	var msgs []string
	worst := r.Worst()
	for _, f := range r.Findings {
		if f.Verdict == worst && worst != doctor.OK {
			m := f.Check
			if f.Subject != "" {
				m += " " + f.Subject
			}
			m += ": " + f.Evidence
			for _, d := range standing {
				if d.Finding.Check == f.Check && d.Finding.Subject == f.Subject {
					m += " (watch " + d.Repair + ": " + d.Why + ")"
				}
			}
			msgs = append(msgs, m)
		}
	}
	s := Status{Ready: worst != doctor.Fail}
	switch worst {
	case doctor.OK:
		s.Reason, s.Message = ReasonHealthy, fmt.Sprintf("nodeprep doctor: all %d checks ok", len(r.Findings))
	case doctor.Warn:
		s.Reason, s.Message = ReasonWarning, fmt.Sprintf("nodeprep doctor: %d warn: %s", len(msgs), strings.Join(msgs, "; "))
	default:
		s.Reason, s.Message = ReasonFailing, fmt.Sprintf("nodeprep doctor: %d fail: %s", len(msgs), strings.Join(msgs, "; "))
	}
	if r := []rune(s.Message); len(r) > maxMessage {
		s.Message = string(r[:maxMessage-1]) + "…"
	}
	return s
}

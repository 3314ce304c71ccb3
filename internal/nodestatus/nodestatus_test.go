package nodestatus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/nodeprep/nodeprep/internal/doctor"
)

// apiServer is a fake Kubernetes API server holding one Node; it applies
// status patches the way the real one does for conditions (merge by type)
// and records every write.
type apiServer struct {
	mu      sync.Mutex
	node    corev1.Node
	patches []recorded
	events  []corev1.Event
	errors  []string
}

type recorded struct {
	ContentType string
	Body        string
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes/"+s.node.Name:
		_ = json.NewEncoder(w).Encode(s.node)
	case r.Method == http.MethodPatch && r.URL.Path == "/api/v1/nodes/"+s.node.Name+"/status":
		s.patches = append(s.patches, recorded{r.Header.Get("Content-Type"), string(body)})
		if r.Header.Get("Content-Type") != "application/strategic-merge-patch+json" {
			http.Error(w, `{"kind":"Status","status":"Failure","code":415}`, http.StatusUnsupportedMediaType)
			return
		}
		var p struct {
			Status struct{ Conditions []corev1.NodeCondition } `json:"status"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, c := range p.Status.Conditions {
			replaced := false
			for i := range s.node.Status.Conditions {
				if s.node.Status.Conditions[i].Type == c.Type {
					s.node.Status.Conditions[i], replaced = c, true
				}
			}
			if !replaced {
				s.node.Status.Conditions = append(s.node.Status.Conditions, c)
			}
		}
		_ = json.NewEncoder(w).Encode(s.node)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/default/events":
		// client-go sends protobuf for core types, as the real API
		// server accepts; the universal deserializer reads either.
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		ev, ok := obj.(*corev1.Event)
		if err != nil || !ok {
			s.errors = append(s.errors, fmt.Sprintf("%s: %v", r.Header.Get("Content-Type"), err))
			http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
			return
		}
		s.events = append(s.events, *ev)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(ev)
	default:
		http.Error(w, `{"kind":"Status","status":"Failure","code":404}`, http.StatusNotFound)
	}
}

func newServer(t *testing.T) (*apiServer, *Publisher) {
	t.Helper()
	s := &apiServer{node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-5.us-west-2.compute.internal"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}}}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := NewClient(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	return s, &Publisher{Client: c, NodeName: s.node.Name, Now: func() time.Time { return now }}
}

func TestPublishPatchesOwnConditionAndFilesEvent(t *testing.T) {
	s, p := newServer(t)
	failing := doctor.Report{Findings: []doctor.Finding{
		{Check: "driver", Subject: "n3", Verdict: doctor.Fail, Evidence: "PCI 0000:00:06.0 on ena, config says vfio-pci"},
		{Check: "hugepages", Subject: "2Mi", Verdict: doctor.OK, Evidence: "512 allocated"},
	}}
	changed, err := p.Publish(context.Background(), FromReport(failing))
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v (server: %v)", changed, err, s.errors)
	}
	if len(s.patches) != 1 {
		t.Fatalf("%d patches", len(s.patches))
	}
	if !strings.Contains(s.patches[0].Body, `"type":"NodeprepReady"`) || strings.Contains(s.patches[0].Body, `"Ready"`) && strings.Contains(s.patches[0].Body, `"type":"Ready"`) {
		t.Fatalf("patch touches other conditions or not ours: %s", s.patches[0].Body)
	}
	var ours *corev1.NodeCondition
	for i, c := range s.node.Status.Conditions {
		if c.Type == ConditionType {
			ours = &s.node.Status.Conditions[i]
		}
	}
	if ours == nil || ours.Status != corev1.ConditionFalse || ours.Reason != ReasonFailing || !strings.Contains(ours.Message, "driver n3: PCI 0000:00:06.0 on ena") {
		t.Fatalf("condition %+v", ours)
	}
	if len(s.node.Status.Conditions) != 2 {
		t.Fatalf("kubelet's Ready condition lost: %+v", s.node.Status.Conditions)
	}
	if len(s.events) != 1 || s.events[0].Type != corev1.EventTypeWarning || s.events[0].InvolvedObject.Kind != "Node" || s.events[0].Reason != ReasonFailing {
		t.Fatalf("events %+v", s.events)
	}

	// The same verdict again: no write at all.
	if changed, err := p.Publish(context.Background(), FromReport(failing)); err != nil || changed {
		t.Fatalf("unchanged verdict: changed %v err %v", changed, err)
	}
	if len(s.patches) != 1 || len(s.events) != 1 {
		t.Fatalf("rewrote an unchanged condition: %d patches, %d events", len(s.patches), len(s.events))
	}

	// Healthy: one patch, a Normal event, status True.
	if changed, err := p.Publish(context.Background(), FromReport(doctor.Report{Findings: failing.Findings[1:]})); err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	if len(s.patches) != 2 || len(s.events) != 2 || s.events[1].Type != corev1.EventTypeNormal {
		t.Fatalf("%d patches, events %+v", len(s.patches), s.events)
	}
	for _, c := range s.node.Status.Conditions {
		if c.Type == ConditionType && (c.Status != corev1.ConditionTrue || c.Reason != ReasonHealthy) {
			t.Fatalf("condition %+v", c)
		}
	}
}

func TestConditionTypeIsNotOneAutoRepairActsOn(t *testing.T) {
	// EKS node auto-repair acts on Ready and on the node monitoring
	// agent's conditions.
	for _, t2 := range []corev1.NodeConditionType{corev1.NodeReady, "AcceleratedHardwareReady", "StorageReady", "NetworkingReady", "KernelReady", "ContainerRuntimeReady"} {
		if ConditionType == t2 {
			t.Fatalf("%s is a condition EKS auto-repair acts on", t2)
		}
	}
}

func TestMessageIsBounded(t *testing.T) {
	var r doctor.Report
	for i := 0; i < 200; i++ {
		r.Findings = append(r.Findings, doctor.Finding{Check: "eni", Verdict: doctor.Fail, Evidence: strings.Repeat("×", 20)})
	}
	if n := len([]rune(FromReport(r).Message)); n > maxMessage {
		t.Fatalf("message of %d runes", n)
	}
}

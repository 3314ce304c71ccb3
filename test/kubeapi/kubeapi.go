// Package kubeapi is a fake Kubernetes API server for the slice of it a
// node's agent uses: GET its Node, PATCH the Node's status (strategic merge,
// conditions merged by type as the real server does) and POST Events. It
// records every write, so a test can say what the agent published.
package kubeapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// Patch is one recorded status PATCH.
type Patch struct {
	Node        string
	ContentType string
	Body        string
	// At is when the server received it (the host's clock).
	At time.Time
}

// Server holds Nodes by name; a GET of an unknown Node makes it, with
// kubelet's Ready condition, as if the node had registered.
type Server struct {
	mu      sync.Mutex
	nodes   map[string]*corev1.Node
	patches []Patch
	events  []corev1.Event
	errors  []string
}

// New returns an empty server.
func New() *Server { return &Server{nodes: map[string]*corev1.Node{}} }

func (s *Server) node(name string) *corev1.Node {
	n, ok := s.nodes[name]
	if !ok {
		n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}}}
		s.nodes[name] = n
	}
	return n
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	rest, isNode := strings.CutPrefix(r.URL.Path, "/api/v1/nodes/")
	name, sub, _ := strings.Cut(rest, "/")
	switch {
	case isNode && r.Method == http.MethodGet && sub == "":
		_ = json.NewEncoder(w).Encode(s.node(name))
	case isNode && r.Method == http.MethodPatch && sub == "status":
		s.patches = append(s.patches, Patch{Node: name, ContentType: r.Header.Get("Content-Type"), Body: string(body), At: time.Now()})
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
		n := s.node(name)
		for _, c := range p.Status.Conditions {
			replaced := false
			for i := range n.Status.Conditions {
				if n.Status.Conditions[i].Type == c.Type {
					n.Status.Conditions[i], replaced = c, true
				}
			}
			if !replaced {
				n.Status.Conditions = append(n.Status.Conditions, c)
			}
		}
		_ = json.NewEncoder(w).Encode(n)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/") && strings.HasSuffix(r.URL.Path, "/events"):
		// client-go sends protobuf for core types, as the real API
		// server accepts; the universal deserializer reads either.
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		ev, ok := obj.(*corev1.Event)
		if err != nil || !ok {
			s.errors = append(s.errors, fmt.Sprintf("event %s: %v", r.Header.Get("Content-Type"), err))
			http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
			return
		}
		s.events = append(s.events, *ev)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(ev)
	default:
		s.errors = append(s.errors, r.Method+" "+r.URL.Path)
		http.Error(w, `{"kind":"Status","status":"Failure","code":404}`, http.StatusNotFound)
	}
}

// Node is a copy of the named Node as the server holds it.
func (s *Server) Node(name string) (corev1.Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	if !ok {
		return corev1.Node{}, false
	}
	return *n.DeepCopy(), true
}

// Patches are the status PATCHes received, in order.
func (s *Server) Patches() []Patch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Patch(nil), s.patches...)
}

// Events are the Events created, in order.
func (s *Server) Events() []corev1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]corev1.Event(nil), s.events...)
}

// Errors are the requests the server could not serve.
func (s *Server) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errors...)
}

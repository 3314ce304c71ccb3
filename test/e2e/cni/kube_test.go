package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// request is one API call as RBAC sees it.
type request struct {
	Verb, Group, Resource, Subresource, Namespace, Name string
}

func (r request) String() string {
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	return fmt.Sprintf("%s %s %s in %q name %q", r.Verb, r.Group, res, r.Namespace, r.Name)
}

// parseRequest maps a REST call to its RBAC attributes.
func parseRequest(r *http.Request) request {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var req request
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		req.Group = parts[1]
		parts = parts[3:]
	default:
		return request{Verb: r.Method, Resource: r.URL.Path}
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		req.Namespace = parts[1]
		parts = parts[2:]
	}
	if len(parts) > 0 {
		req.Resource = parts[0]
	}
	if len(parts) > 1 {
		req.Name = parts[1]
	}
	if len(parts) > 2 {
		req.Subresource = parts[2]
	}
	switch r.Method {
	case http.MethodGet:
		req.Verb = "get"
		if req.Name == "" {
			req.Verb = "list"
			if r.URL.Query().Get("watch") == "true" {
				req.Verb = "watch"
			}
		}
	case http.MethodPost:
		req.Verb = "create"
	case http.MethodPut:
		req.Verb = "update"
	case http.MethodPatch:
		req.Verb = "patch"
	case http.MethodDelete:
		req.Verb = "delete"
	}
	return req
}

// rule is an RBAC policy rule.
type rule struct {
	APIGroups     []string `yaml:"apiGroups"`
	Resources     []string `yaml:"resources"`
	ResourceNames []string `yaml:"resourceNames"`
	Verbs         []string `yaml:"verbs"`
	namespace     string   // "" for a ClusterRole
}

func (ru rule) allows(r request) bool {
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	return slices.Contains(ru.APIGroups, r.Group) && slices.Contains(ru.Resources, res) &&
		slices.Contains(ru.Verbs, r.Verb) &&
		(len(ru.ResourceNames) == 0 || slices.Contains(ru.ResourceNames, r.Name)) &&
		(ru.namespace == "" || ru.namespace == r.Namespace)
}

// nodeAuthorizerRules is the part of Kubernetes' NodeRules
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) the CNI plugins rely on:
// the Node authorizer grants these to every system:nodes identity.
var nodeAuthorizerRules = []rule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"create", "get", "list", "watch"}},
}

// manifestRules reads the rules of the Roles and ClusterRoles in a manifest.
func manifestRules(t *testing.T, path string) []rule {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []rule
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
			Rules []rule `yaml:"rules"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		for _, r := range doc.Rules {
			r.namespace = doc.Metadata.Namespace
			out = append(out, r)
		}
	}
}

// checkAuthorized fails for every request neither the Node authorizer nor
// the manifest's rules allow: what a real cluster would answer 403.
func checkAuthorized(t *testing.T, reqs []request, manifest string) {
	t.Helper()
	rules := append(append([]rule(nil), nodeAuthorizerRules...), manifestRules(t, manifest)...)
	seen := map[request]bool{}
	for _, r := range reqs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if !slices.ContainsFunc(rules, func(ru rule) bool { return ru.allows(r) }) {
			t.Errorf("%s would be forbidden for system:nodes with %s", r, manifest)
		}
	}
}

// fakeKube is a tiny object store behind the API paths, enough for the
// plugins' typed clients: get, list, create, update, JSON-patch, delete.
type fakeKube struct {
	mu      sync.Mutex
	objects map[string]map[string]any // by collection path + "/" + name
	reqs    []request
	unauth  int
	rv      int
}

func newFakeKube() *fakeKube { return &fakeKube{objects: map[string]map[string]any{}} }

func (k *fakeKube) requests() []request {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]request(nil), k.reqs...)
}

func (k *fakeKube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+execToken {
		k.unauth++
		writeStatus(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	req := parseRequest(r)
	k.reqs = append(k.reqs, req)
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch req.Verb {
	case "get":
		if obj, ok := k.objects[path]; ok {
			writeJSON(w, http.StatusOK, obj)
			return
		}
		writeStatus(w, http.StatusNotFound, path+" not found")
	case "list":
		items := []any{}
		for p, obj := range k.objects {
			if strings.HasPrefix(p, path+"/") && !strings.Contains(strings.TrimPrefix(p, path+"/"), "/") {
				items = append(items, obj)
			}
		}
		apiVersion := "v1"
		if parts := strings.Split(strings.Trim(path, "/"), "/"); parts[0] == "apis" {
			apiVersion = parts[1] + "/" + parts[2]
		}
		kind := map[string]string{"ippools": "IPPoolList", "overlappingrangeipreservations": "OverlappingRangeIPReservationList", "leases": "LeaseList", "pods": "PodList"}[req.Resource]
		writeJSON(w, http.StatusOK, map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"resourceVersion": strconv.Itoa(k.rv)}, "items": items})
	case "create":
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			writeStatus(w, http.StatusBadRequest, err.Error())
			return
		}
		name, _ := obj["metadata"].(map[string]any)["name"].(string)
		if _, exists := k.objects[path+"/"+name]; exists {
			writeStatus(w, http.StatusConflict, "already exists")
			return
		}
		if req.Namespace != "" {
			obj["metadata"].(map[string]any)["namespace"] = req.Namespace
		}
		k.store(path+"/"+name, obj)
		writeJSON(w, http.StatusCreated, obj)
	case "update":
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			writeStatus(w, http.StatusBadRequest, err.Error())
			return
		}
		k.store(path, obj)
		writeJSON(w, http.StatusOK, obj)
	case "patch":
		obj, ok := k.objects[path]
		if !ok {
			writeStatus(w, http.StatusNotFound, path+" not found")
			return
		}
		if err := applyJSONPatch(obj, body); err != nil {
			writeStatus(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		k.store(path, obj)
		writeJSON(w, http.StatusOK, obj)
	case "delete":
		delete(k.objects, path)
		writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Success"})
	default:
		writeStatus(w, http.StatusMethodNotAllowed, r.Method)
	}
}

func (k *fakeKube) store(path string, obj map[string]any) {
	k.rv++
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	meta["resourceVersion"] = strconv.Itoa(k.rv)
	k.objects[path] = obj
}

func (k *fakeKube) object(path string) map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.objects[path]
}

// applyJSONPatch applies RFC 6902 test/add/replace/remove on objects (no
// arrays), which is what whereabouts sends for its pools.
func applyJSONPatch(obj map[string]any, patch []byte) error {
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return err
	}
	for _, op := range ops {
		keys := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		for i, k := range keys {
			keys[i] = strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~")
		}
		parent := obj
		for _, k := range keys[:len(keys)-1] {
			next, ok := parent[k].(map[string]any)
			if !ok {
				if op.Op == "test" && op.Value == nil {
					parent = nil
					break
				}
				return fmt.Errorf("path %s: %s is not an object", op.Path, k)
			}
			parent = next
		}
		last := keys[len(keys)-1]
		switch op.Op {
		case "test":
			var cur any
			if parent != nil {
				cur = parent[last]
			}
			a, _ := json.Marshal(cur)
			b, _ := json.Marshal(op.Value)
			if string(a) != string(b) {
				return fmt.Errorf("test %s: have %s, want %s", op.Path, a, b)
			}
		case "add", "replace":
			parent[last] = op.Value
		case "remove":
			delete(parent, last)
		default:
			return fmt.Errorf("op %q not supported", op.Op)
		}
	}
	return nil
}

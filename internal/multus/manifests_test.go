package multus

import (
	"errors"
	"io"
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// rbacObject is the part of an RBAC object these checks read.
type rbacObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Rules []struct {
		APIGroups     []string `yaml:"apiGroups"`
		Resources     []string `yaml:"resources"`
		ResourceNames []string `yaml:"resourceNames"`
		Verbs         []string `yaml:"verbs"`
	} `yaml:"rules"`
	RoleRef struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	} `yaml:"roleRef"`
	Subjects []struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	} `yaml:"subjects"`
}

func loadManifest(t *testing.T, path string) []rbacObject {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var out []rbacObject
	for {
		var o rbacObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.APIVersion != "rbac.authorization.k8s.io/v1" {
			t.Fatalf("%s: %s %s has apiVersion %q", path, o.Kind, o.Metadata.Name, o.APIVersion)
		}
		out = append(out, o)
	}
}

// grants reports whether a role allows verb on group/resource (name "" = any).
func grants(role rbacObject, group, resource, verb, name string) bool {
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

// checkBinding: the role is bound to the node identity the derived
// kubeconfigs authenticate as, and nothing else.
func checkBinding(t *testing.T, objs []rbacObject, roleKind, bindingKind string) rbacObject {
	t.Helper()
	if len(objs) != 2 || objs[0].Kind != roleKind || objs[1].Kind != bindingKind {
		t.Fatalf("want a %s and a %s, got %d objects", roleKind, bindingKind, len(objs))
	}
	role, binding := objs[0], objs[1]
	if binding.RoleRef.Kind != roleKind || binding.RoleRef.Name != role.Metadata.Name || binding.RoleRef.APIGroup != "rbac.authorization.k8s.io" {
		t.Fatalf("roleRef %+v does not name %s", binding.RoleRef, role.Metadata.Name)
	}
	if binding.Metadata.Namespace != role.Metadata.Namespace {
		t.Fatalf("binding in %q, role in %q", binding.Metadata.Namespace, role.Metadata.Namespace)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "Group" || binding.Subjects[0].Name != "system:nodes" {
		t.Fatalf("subjects %+v, want the system:nodes group only", binding.Subjects)
	}
	return role
}

func TestMultusRBAC(t *testing.T) {
	role := checkBinding(t, loadManifest(t, "../../configs/manifests/multus-rbac.yaml"), "ClusterRole", "ClusterRoleBinding")
	if !grants(role, "k8s.cni.cncf.io", "network-attachment-definitions", "get", "any") {
		t.Fatal("NADs cannot be read")
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("write verb %q on %v: Multus only reads NADs", v, r.Resources)
			}
		}
	}
}

func TestWhereaboutsRBAC(t *testing.T) {
	role := checkBinding(t, loadManifest(t, "../../configs/manifests/multus-whereabouts-rbac.yaml"), "Role", "RoleBinding")
	// The Role must live where the derived kubeconfig points whereabouts.
	if role.Metadata.Namespace != WhereaboutsNamespace {
		t.Fatalf("role in %q, whereabouts works in %q", role.Metadata.Namespace, WhereaboutsNamespace)
	}
	for _, res := range []string{"ippools", "overlappingrangeipreservations"} {
		for _, verb := range []string{"get", "list", "create", "update", "patch", "delete"} {
			if !grants(role, "whereabouts.cni.cncf.io", res, verb, "x") {
				t.Errorf("%s %s not granted", verb, res)
			}
		}
	}
	for _, verb := range []string{"get", "create", "update"} {
		if !grants(role, "coordination.k8s.io", "leases", verb, "whereabouts") {
			t.Errorf("%s lease whereabouts not granted", verb)
		}
	}
	if grants(role, "coordination.k8s.io", "leases", "update", "kube-scheduler") {
		t.Error("nodes may update other leases in kube-system")
	}
	if role.Metadata.Labels["app.kubernetes.io/managed-by"] != "nodeprep" {
		t.Error("not labelled as nodeprep's")
	}
}

package multus

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultKubeletKubeconfig is where AL2023's nodeadm writes kubelet's
// kubeconfig (nodeadm internal/kubelet/kubeconfig.go). Its user is an
// aws-iam-authenticator exec credential, so a kubeconfig that reuses it never
// holds a token that can expire.
const DefaultKubeletKubeconfig = "/var/lib/kubelet/kubeconfig"

// Errors callers match with errors.Is.
var (
	ErrKubeletKubeconfig = errors.New("kubelet kubeconfig")
	// ErrStaticCredential: a copied token or password would not follow
	// kubelet's rotation, so nodeprep refuses to copy one.
	ErrStaticCredential = errors.New("static credential in kubelet kubeconfig")
)

// Kubeconfig is the subset of the kubeconfig v1 format (clientcmd/api/v1)
// nodeprep reads and writes. Cluster and user stay generic maps so fields
// nodeprep does not know (proxy-url, tls-server-name, exec env...) carry over.
type Kubeconfig struct {
	APIVersion     string         `yaml:"apiVersion"`
	Kind           string         `yaml:"kind"`
	Clusters       []NamedCluster `yaml:"clusters"`
	Users          []NamedUser    `yaml:"users"`
	Contexts       []NamedContext `yaml:"contexts"`
	CurrentContext string         `yaml:"current-context"`
}

// NamedCluster is a kubeconfig cluster entry.
type NamedCluster struct {
	Name    string         `yaml:"name"`
	Cluster map[string]any `yaml:"cluster"`
}

// NamedUser is a kubeconfig user entry.
type NamedUser struct {
	Name string         `yaml:"name"`
	User map[string]any `yaml:"user"`
}

// NamedContext is a kubeconfig context entry.
type NamedContext struct {
	Name    string  `yaml:"name"`
	Context Context `yaml:"context"`
}

// Context is a kubeconfig context.
type Context struct {
	Cluster   string `yaml:"cluster"`
	User      string `yaml:"user"`
	Namespace string `yaml:"namespace,omitempty"`
}

// Credential fields that point at files kubelet keeps current; relative
// paths in a kubeconfig are relative to its own directory.
var (
	clusterPathFields = []string{"certificate-authority"}
	userPathFields    = []string{"client-certificate", "client-key", "tokenFile"}
	// Credentials that live in the file itself and would go stale.
	staticUserFields = []string{"token", "password", "username", "auth-provider"}
)

// DeriveKubeconfig builds a kubeconfig for a CNI plugin from kubelet's: the
// current context's cluster and user, with file references made absolute, so
// it authenticates exactly as kubelet does (as system:node:<name>, group
// system:nodes). namespace, if set, becomes the context namespace.
func DeriveKubeconfig(kubelet []byte, kubeletPath, namespace string) ([]byte, error) {
	var src Kubeconfig
	if err := yaml.Unmarshal(kubelet, &src); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKubeletKubeconfig, kubeletPath, err)
	}
	ctxName := src.CurrentContext
	if ctxName == "" && len(src.Contexts) == 1 {
		ctxName = src.Contexts[0].Name
	}
	var ctx *Context
	for i := range src.Contexts {
		if src.Contexts[i].Name == ctxName {
			ctx = &src.Contexts[i].Context
		}
	}
	if ctx == nil {
		return nil, fmt.Errorf("%w %s: current-context %q not found", ErrKubeletKubeconfig, kubeletPath, ctxName)
	}
	var cluster map[string]any
	for _, c := range src.Clusters {
		if c.Name == ctx.Cluster {
			cluster = c.Cluster
		}
	}
	var user map[string]any
	for _, u := range src.Users {
		if u.Name == ctx.User {
			user = u.User
		}
	}
	if cluster == nil {
		return nil, fmt.Errorf("%w %s: cluster %q not found", ErrKubeletKubeconfig, kubeletPath, ctx.Cluster)
	}
	if user == nil {
		return nil, fmt.Errorf("%w %s: user %q not found", ErrKubeletKubeconfig, kubeletPath, ctx.User)
	}
	if s, _ := cluster["server"].(string); s == "" {
		return nil, fmt.Errorf("%w %s: cluster %q has no server", ErrKubeletKubeconfig, kubeletPath, ctx.Cluster)
	}
	for _, f := range staticUserFields {
		if _, ok := user[f]; ok {
			return nil, fmt.Errorf("%w %s: user %q has %s; use an exec credential or certificate files", ErrStaticCredential, kubeletPath, ctx.User, f)
		}
	}
	_, hasExec := user["exec"]
	_, hasCert := user["client-certificate"]
	_, hasCertData := user["client-certificate-data"]
	_, hasTokenFile := user["tokenFile"]
	if !hasExec && !hasCert && !hasCertData && !hasTokenFile {
		return nil, fmt.Errorf("%w %s: user %q has no exec, client-certificate or tokenFile credential", ErrKubeletKubeconfig, kubeletPath, ctx.User)
	}
	base := path.Dir(kubeletPath)
	cluster = absolutize(cluster, clusterPathFields, base)
	user = absolutize(user, userPathFields, base)
	if exec, ok := user["exec"].(map[string]any); ok {
		// client-go resolves a relative exec command that contains a slash
		// against the kubeconfig's directory; keep that meaning.
		if cmd, ok := exec["command"].(string); ok && strings.Contains(cmd, "/") && !path.IsAbs(cmd) {
			exec = copyMap(exec)
			exec["command"] = path.Join(base, cmd)
			user["exec"] = exec
		}
	}
	out := Kubeconfig{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []NamedCluster{{Name: ctx.Cluster, Cluster: cluster}},
		Users:          []NamedUser{{Name: ctx.User, User: user}},
		Contexts:       []NamedContext{{Name: "nodeprep", Context: Context{Cluster: ctx.Cluster, User: ctx.User, Namespace: namespace}}},
		CurrentContext: "nodeprep",
	}
	data, err := yaml.Marshal(&out)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by nodeprep from "+kubeletPath+"; reuses kubelet's credential.\n"), data...), nil
}

func absolutize(m map[string]any, fields []string, base string) map[string]any {
	m = copyMap(m)
	for _, f := range fields {
		if p, ok := m[f].(string); ok && p != "" && !path.IsAbs(p) {
			m[f] = path.Join(base, p)
		}
	}
	return m
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

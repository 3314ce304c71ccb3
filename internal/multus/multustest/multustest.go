// Package multustest holds the kubelet kubeconfig every CNI test and the
// demo start from.
package multustest

import (
	"fmt"
	"strings"
)

// Server and CAFile are what KubeletKubeconfig is called with by tests that
// need no API server of their own.
const (
	Server = "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com"
	CAFile = "/etc/kubernetes/pki/ca.crt"
)

// ClusterArgs are the exec arguments nodeadm gives aws-iam-authenticator.
var ClusterArgs = []string{"token", "-i", "my-cluster", "--region", "us-west-2"}

// KubeletKubeconfig is /var/lib/kubelet/kubeconfig in the shape nodeadm
// writes on AL2023: one cluster, one context and an exec credential plugin.
func KubeletKubeconfig(server, caFile, command string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`---
apiVersion: v1
kind: Config
clusters:
  - name: kubernetes
    cluster:
      certificate-authority: %s
      server: %s
current-context: kubelet
contexts:
  - name: kubelet
    context:
      cluster: kubernetes
      user: kubelet
users:
  - name: kubelet
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1beta1
        command: %s
        args: [%s]
        interactiveMode: Never
`, caFile, server, command, strings.Join(quoted, ", "))
}

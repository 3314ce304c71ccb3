// Package hostfstest helps tests reach the files under a hostfs.Root.
package hostfstest

import (
	"testing"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Path is root.Path for a host path the test itself chose; it fails the
// test for a path that leaves the root.
func Path(t testing.TB, root hostfs.Root, hostPath string) string {
	t.Helper()
	p, err := root.Path(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

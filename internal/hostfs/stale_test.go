package hostfs

import (
	"strings"
	"testing"
)

func TestRemoveStaleTemps(t *testing.T) {
	root := New(t.TempDir())
	for _, name := range []string{".multus.nodeprep-3051957921", ".00-multus.conf.tmp-12", "multus", ".hidden", ".x.tmp-abc", "keep.tmp-12"} {
		if _, err := root.WriteFile("/opt/cni/bin/"+name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := root.RemoveStaleTemps("/opt/cni/bin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, " ") != "/opt/cni/bin/.00-multus.conf.tmp-12 /opt/cni/bin/.multus.nodeprep-3051957921" {
		t.Errorf("removed %v", removed)
	}
	left, _ := root.ReadDirNames("/opt/cni/bin")
	if strings.Join(left, " ") != ".hidden .x.tmp-abc keep.tmp-12 multus" {
		t.Errorf("left %v", left)
	}
	if removed, err := root.RemoveStaleTemps("/no/such/dir"); err != nil || removed != nil {
		t.Errorf("missing dir: %v %v", removed, err)
	}
}

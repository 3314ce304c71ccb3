package hostfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPathRejectsEscapes(t *testing.T) {
	r := New(t.TempDir())
	for _, p := range []string{"relative/x", "/etc/../../x", "/sys/bus/pci/devices/../../../../etc/passwd", "../x"} {
		if _, err := r.Path(p); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Path(%q) = %v, want ErrOutsideRoot", p, err)
		}
	}
	got, err := r.Path("/etc/nodeprep/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(r.Dir(), "etc/nodeprep/config.yaml"); got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
}

func TestWriteFileIsAtomicAndIdempotent(t *testing.T) {
	r := New(t.TempDir())
	changed, err := r.WriteFile("/etc/cni/net.d/00-multus.conf", []byte("one"), 0o600)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	p, _ := r.Path("/etc/cni/net.d/00-multus.conf")
	if differs, err := r.Differs("/etc/cni/net.d/00-multus.conf", []byte("one"), 0o600); err != nil || differs {
		t.Errorf("Differs after the write: %v %v", differs, err)
	}
	if differs, _ := r.Differs("/etc/cni/net.d/00-multus.conf", []byte("one"), 0o644); !differs {
		t.Error("Differs ignores the mode")
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
	old := time.Unix(1000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	changed, err = r.WriteFile("/etc/cni/net.d/00-multus.conf", []byte("one"), 0o600)
	if err != nil || changed {
		t.Fatalf("same write: changed=%v err=%v", changed, err)
	}
	if info, _ := os.Stat(p); !info.ModTime().Equal(old) {
		t.Error("unchanged content was rewritten")
	}
	if changed, _ = r.WriteFile("/etc/cni/net.d/00-multus.conf", []byte("one"), 0o644); !changed {
		t.Error("a mode change must rewrite")
	}
	if changed, _ = r.WriteFile("/etc/cni/net.d/00-multus.conf", []byte("two"), 0o644); !changed {
		t.Error("a content change must rewrite")
	}
	if b, _ := r.ReadFile("/etc/cni/net.d/00-multus.conf"); string(b) != "two" {
		t.Errorf("content = %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestRemove(t *testing.T) {
	r := New(t.TempDir())
	if removed, err := r.Remove("/nope"); err != nil || removed {
		t.Fatalf("Remove missing = %v, %v", removed, err)
	}
	_, _ = r.WriteFile("/x", []byte("x"), 0o644)
	if removed, err := r.Remove("/x"); err != nil || !removed {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if r.Exists("/x") {
		t.Error("still exists")
	}
}

func TestReadDirNames(t *testing.T) {
	r := New(t.TempDir())
	if names, err := r.ReadDirNames("/sys/class/iommu"); err != nil || names != nil {
		t.Fatalf("missing dir = %v, %v", names, err)
	}
	_, _ = r.WriteFile("/sys/class/net/b/address", []byte("x"), 0o644)
	_, _ = r.WriteFile("/sys/class/net/a/address", []byte("x"), 0o644)
	if names, err := r.ReadDirNames("/sys/class/net"); err != nil || len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Errorf("names = %v, %v", names, err)
	}
	if _, err := r.ReadDirNames("/sys/../etc"); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("escape = %v", err)
	}
}

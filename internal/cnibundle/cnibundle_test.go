package cnibundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
)

const (
	bundleDir = "/opt/nodeprep/cni"
	binDir    = "/opt/cni/bin"
)

// writeBundle lays out a bundle version with a manifest computed from files.
func writeBundle(t testing.TB, root hostfs.Root, version string, files map[string]string) string {
	t.Helper()
	dir := hostfstest.Path(t, root, bundleDir+"/"+version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+name)
	}
	sort.Strings(lines)
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sampleFiles() map[string]string {
	return map[string]string{
		"multus":      "multus-binary",
		"host-device": "host-device-binary",
		"macvlan":     "macvlan-binary",
		"ipvlan":      "ipvlan-binary",
	}
}

func TestInstallCopiesOnlyWantedAndKeepsForeignFiles(t *testing.T) {
	root := hostfs.New(t.TempDir())
	writeBundle(t, root, "v1", sampleFiles())
	// The VPC CNI's own plugin, which nodeprep must never touch.
	foreign := hostfstest.Path(t, root, binDir+"/aws-cni")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("vpc"), 0o755); err != nil {
		t.Fatal(err)
	}

	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != "v1" {
		t.Fatalf("version %q, want v1", b.Version)
	}
	res, err := b.Install(root, binDir, []string{"multus", "macvlan"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Installed, ","); got != "multus,macvlan" {
		t.Fatalf("installed %q", got)
	}
	for name, content := range map[string]string{"multus": "multus-binary", "macvlan": "macvlan-binary", "aws-cni": "vpc"} {
		p := hostfstest.Path(t, root, binDir+"/"+name)
		data, err := os.ReadFile(p)
		if err != nil || string(data) != content {
			t.Fatalf("%s: %q, %v", name, data, err)
		}
		info, _ := os.Stat(p)
		if info.Mode().Perm() != 0o755 {
			t.Fatalf("%s mode %v", name, info.Mode())
		}
	}
	if root.Exists(binDir + "/ipvlan") {
		t.Fatal("ipvlan installed though not asked for")
	}
	entries, _ := os.ReadDir(hostfstest.Path(t, root, binDir))
	if len(entries) != 3 {
		t.Fatalf("bin dir holds %d entries, want 3 (no temp files left)", len(entries))
	}
}

func TestInstallIsIdempotentAndRepairs(t *testing.T) {
	root := hostfs.New(t.TempDir())
	writeBundle(t, root, "v1", sampleFiles())
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"multus", "host-device"}
	if _, err := b.Install(root, binDir, want); err != nil {
		t.Fatal(err)
	}
	p := hostfstest.Path(t, root, binDir+"/multus")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	res, err := b.Install(root, binDir, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Installed) != 0 || len(res.Unchanged) != 2 {
		t.Fatalf("second run: %+v", res)
	}
	if info, _ := os.Stat(p); !info.ModTime().Equal(old) {
		t.Fatal("unchanged file was rewritten")
	}

	// A tampered installed binary is put back.
	if err := os.WriteFile(p, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err = b.Install(root, binDir, want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Installed, ",") != "multus" {
		t.Fatalf("repair run installed %v", res.Installed)
	}
	if data, _ := os.ReadFile(p); string(data) != "multus-binary" {
		t.Fatalf("multus holds %q", data)
	}
}

func TestBadChecksumInstallsNothing(t *testing.T) {
	root := hostfs.New(t.TempDir())
	dir := writeBundle(t, root, "v1", sampleFiles())
	// Corrupt the last file in install order so a copy-as-you-verify
	// implementation would already have installed the others.
	if err := os.WriteFile(filepath.Join(dir, "macvlan"), []byte("corrupt"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Install(root, binDir, []string{"multus", "host-device", "macvlan"})
	var ce *ChecksumError
	if !errors.As(err, &ce) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("want a ChecksumError, got %v", err)
	}
	if !strings.HasSuffix(ce.File, "/macvlan") || !strings.Contains(err.Error(), "macvlan") {
		t.Fatalf("error does not name the file: %v", err)
	}
	for _, name := range []string{"multus", "host-device", "macvlan"} {
		if root.Exists(binDir + "/" + name) {
			t.Fatalf("%s installed despite a bad bundle", name)
		}
	}
}

func TestMissingPluginIsAnError(t *testing.T) {
	root := hostfs.New(t.TempDir())
	writeBundle(t, root, "v1", sampleFiles())
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Install(root, binDir, []string{"multus", "whereabouts"})
	if !errors.Is(err, ErrNotInBundle) || !strings.Contains(err.Error(), "whereabouts") {
		t.Fatalf("got %v", err)
	}
	if root.Exists(binDir + "/multus") {
		t.Fatal("multus installed although the set was incomplete")
	}
}

func TestFileListedButMissing(t *testing.T) {
	root := hostfs.New(t.TempDir())
	dir := writeBundle(t, root, "v1", sampleFiles())
	if err := os.Remove(filepath.Join(dir, "ipvlan")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(root, []string{"ipvlan"}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestOpenPicksVersion(t *testing.T) {
	root := hostfs.New(t.TempDir())
	if _, err := Open(root, bundleDir); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("no bundle dir: %v", err)
	}
	writeBundle(t, root, "v1", sampleFiles())
	writeBundle(t, root, "v2", map[string]string{"multus": "new"})
	if _, err := Open(root, bundleDir); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two versions: %v", err)
	}
	if err := os.Symlink("v2", hostfstest.Path(t, root, bundleDir+"/"+CurrentLink)); err != nil {
		t.Fatal(err)
	}
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != "v2" || !b.Has("multus") || b.Has("macvlan") {
		t.Fatalf("got %+v", b)
	}
}

func TestParseManifest(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	good := fmt.Sprintf("# built by test\n%s  multus\n%s *host-device\n\n", sum, strings.ToUpper(sum))
	m, err := ParseManifest([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m["multus"] != sum || m["host-device"] != sum || len(m) != 2 {
		t.Fatalf("got %v", m)
	}
	for name, bad := range map[string]string{
		"short sum":   "abcd  multus\n",
		"path":        sum + "  ../etc/passwd\n",
		"subdir":      sum + "  bin/multus\n",
		"duplicate":   sum + "  multus\n" + sum + "  multus\n",
		"empty":       "\n",
		"single+name": sum + " multus\n",
		"itself":      sum + "  SHA256SUMS\n",
	} {
		if _, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: want ErrManifest, got %v", name, err)
		}
	}
}

func TestWanted(t *testing.T) {
	m := api.Multus{Plugins: []string{"ipvlan", "multus", "static"}}
	if got := strings.Join(Wanted(m), ","); got != "multus,nodeprep-ipam,ipvlan,static" {
		t.Fatalf("got %s", got)
	}
	m.Whereabouts.Enabled = true
	if got := strings.Join(Wanted(m), ","); got != "multus,nodeprep-ipam,ipvlan,static,whereabouts" {
		t.Fatalf("got %s", got)
	}
}

func BenchmarkVerify50MiB(b *testing.B) {
	root := hostfs.New(b.TempDir())
	content := strings.Repeat("x", 50<<20)
	writeBundle(b, root, "v1", map[string]string{"big": content})
	bundle, err := Open(root, bundleDir)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bundle.Verify(root, []string{"big"}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseManifest: whatever the manifest holds, a parsed name is a plain
// file name, so nothing outside the bundle and bin dirs can be reached.
func FuzzParseManifest(f *testing.F) {
	sum := strings.Repeat("0f", 32)
	f.Add(sum + "  multus\n")
	f.Add(sum + " *host-device\r\n# c\n\n" + sum + "  static\n")
	f.Add(sum + "  ../x\n")
	f.Fuzz(func(t *testing.T, data string) {
		sums, err := ParseManifest([]byte(data))
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error not ErrManifest: %v", err)
			}
			return
		}
		for name, s := range sums {
			if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || strings.HasPrefix(name, ".") {
				t.Fatalf("unsafe name %q", name)
			}
			if len(s) != 64 || strings.ToLower(s) != s {
				t.Fatalf("bad sum %q", s)
			}
		}
	})
}

// The Packer plugin checks cni_version with ValidVersion before it names a
// directory: what it accepts, Open must be able to pick through the link.
func TestValidVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.6.2": true, "plugins-v1.6.2_multus-v4.1.4": true, strings.Repeat("a", 255): true,
		// What test/cnibundle/build.sh names a bundle: every pin and nodeprep-ipam's hash.
		"plugins-v1.10.0_multus-v4.1.4_whereabouts-v0.8.0_nodeprep-ipam-c5da09033367": true,
		"": false, CurrentLink: false, ".v1": false, "../v1": false, "v1/x": false, "v1 x": false,
		"v1.1.1+ds1": false, strings.Repeat("a", 256): false,
	} {
		if got := ValidVersion(v); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

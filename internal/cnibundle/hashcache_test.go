//go:build linux

package cnibundle

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
)

// cachedBundle is a bundle installed into binDir whose Hashes counts the
// files it opens to hash. Its clock is an hour ahead, as for a watcher that
// started long after the install: every file is past RacyWindow.
func cachedBundle(t *testing.T) (hostfs.Root, *Bundle, *int) {
	t.Helper()
	root := hostfs.New(t.TempDir())
	writeBundle(t, root, "v1", sampleFiles())
	b, err := Open(root, bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Install(root, binDir, names()); err != nil {
		t.Fatal(err)
	}
	opened := 0
	b.Hashes = &HashCache{
		Now: func() time.Time { return time.Now().Add(time.Hour) },
		open: func(name string) (*os.File, error) {
			opened++
			return os.Open(name)
		},
	}
	return root, b, &opened
}

func names() []string { return []string{"multus", "host-device", "macvlan", "ipvlan"} }

func plan(t *testing.T, root hostfs.Root, b *Bundle) (Result, error) {
	t.Helper()
	res, _, err := b.Plan(root, binDir, names())
	return res, err
}

func TestHashCacheDoesNotRereadUnchangedFiles(t *testing.T) {
	root, b, opened := cachedBundle(t)
	first, err := plan(t, root, b)
	if err != nil || len(first.Installed) != 0 {
		t.Fatalf("first plan: %+v, %v", first, err)
	}
	// The bundle's four files and the four installed ones.
	if *opened != 2*len(names()) {
		t.Fatalf("first plan opened %d files, want %d", *opened, 2*len(names()))
	}
	*opened = 0
	second, err := plan(t, root, b)
	if err != nil || len(second.Installed) != 0 || len(second.Unchanged) != len(names()) {
		t.Fatalf("second plan: %+v, %v", second, err)
	}
	if *opened != 0 {
		t.Fatalf("second plan re-read %d unchanged files", *opened)
	}
}

// primed plans twice and fails unless the second plan read nothing: every
// file is in the cache, so what a later plan reads is what changed.
func primed(t *testing.T, root hostfs.Root, b *Bundle, opened *int) {
	t.Helper()
	for i := range 2 {
		*opened = 0
		if res, err := plan(t, root, b); err != nil || len(res.Installed) != 0 {
			t.Fatalf("plan %d before the change: %+v, %v", i, res, err)
		}
	}
	if *opened != 0 {
		t.Fatalf("cache not primed: the second plan read %d files", *opened)
	}
}

// A file changed within RacyWindow of its hash could change again without
// a new stamp, so it is read on every plan until it is old enough.
func TestHashCacheRereadsFilesChangedJustNow(t *testing.T) {
	root, b, opened := cachedBundle(t)
	b.Hashes.Now = time.Now
	for i := range 2 {
		*opened = 0
		if _, err := plan(t, root, b); err != nil {
			t.Fatal(err)
		}
		if *opened != 2*len(names()) {
			t.Fatalf("plan %d opened %d files, want all %d", i, *opened, 2*len(names()))
		}
	}
}

// replaceSameSize renames a file of the same size and mtime over p.
func replaceSameSize(t *testing.T, p string) {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Repeat("Y", int(info.Size()))), info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func TestHashCacheSeesChangedInstalledFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"rewritten in place, same size, mtime set back", func(t *testing.T, p string) { hostfstest.RewriteInPlace(t, p) }},
		{"replaced by a file of the same size and mtime", replaceSameSize},
		{"truncated", func(t *testing.T, p string) {
			if err := os.Truncate(p, 3); err != nil {
				t.Fatal(err)
			}
		}},
		{"made not executable", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, b, opened := cachedBundle(t)
			primed(t, root, b, opened)
			p := hostfstest.Path(t, root, binDir+"/multus")
			hostfstest.AfterNextStamp(t, p)
			tc.change(t, p)
			*opened = 0
			res, err := plan(t, root, b)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(res.Installed, ",") != "multus" {
				t.Fatalf("after the change: installs %q, want multus", res.Installed)
			}
			if *opened > 1 {
				t.Fatalf("after one file changed: %d files re-read", *opened)
			}
		})
	}
}

func TestHashCacheSeesChangedBundleFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"rewritten in place, same size, mtime set back", func(t *testing.T, p string) { hostfstest.RewriteInPlace(t, p) }},
		{"replaced by a file of the same size and mtime", replaceSameSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, b, opened := cachedBundle(t)
			primed(t, root, b, opened)
			p := hostfstest.Path(t, root, bundleDir+"/v1/macvlan")
			hostfstest.AfterNextStamp(t, p)
			tc.change(t, p)
			_, err := plan(t, root, b)
			var sumErr *ChecksumError
			if !errors.As(err, &sumErr) || !strings.HasSuffix(sumErr.File, "/macvlan") {
				t.Fatalf("after the change: %v, want a checksum error for macvlan", err)
			}
		})
	}
}

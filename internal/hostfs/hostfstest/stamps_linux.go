package hostfstest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Ctime is the file's status-change time, which only the kernel sets.
func Ctime(t testing.TB, p string) time.Time {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(0, info.Sys().(*syscall.Stat_t).Ctim.Nano())
}

// AfterNextStamp returns once a file changed now gets a later ctime than
// the file at p has: the kernel stamps from a coarse clock (and some file
// systems in whole seconds), so a change within the same tick would not
// show. It probes with a file of its own, no fixed sleep.
func AfterNextStamp(t testing.TB, p string) {
	t.Helper()
	was := Ctime(t, p)
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for mode, deadline := os.FileMode(0o600), time.Now().Add(5*time.Second); time.Now().Before(deadline); mode ^= 0o044 {
		if err := os.Chmod(probe, mode); err != nil {
			t.Fatal(err)
		}
		if Ctime(t, probe).After(was) {
			return
		}
	}
	t.Fatal("the ctime stamp did not move in 5 s")
}

// RewriteInPlace overwrites p's first byte through the same inode, keeping
// its size, and sets its mtime back: only ctime tells it changed.
func RewriteInPlace(t testing.TB, p string) {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1)
	if r, err := os.Open(p); err == nil {
		_, _ = r.Read(first)
		_ = r.Close()
	}
	if _, err := f.WriteAt([]byte{first[0] ^ 0xff}, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != info.Size() || !after.ModTime().Equal(info.ModTime()) || after.Sys().(*syscall.Stat_t).Ino != info.Sys().(*syscall.Stat_t).Ino {
		t.Fatalf("%s: the rewrite changed its size, mtime or inode", p)
	}
}

package vm

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// aptUpdateMaxAge: package lists younger than this are reused, so repeated
// runs do not hit the mirror again.
const aptUpdateMaxAge = 12 * time.Hour

// tool is one host program the bed needs and the Debian package providing it.
type tool struct {
	path string
	pkg  string
	ok   func(path string) bool
}

// Tools are the host programs the bed runs, resolved by ensureTools.
type Tools struct {
	QEMU    string // qemu-system-x86_64
	Busybox string // statically linked busybox copied into the guest
	CPIO    string
	Depmod  string
	DpkgDeb string
}

func requiredTools() []tool {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	return []tool{
		{"/usr/bin/qemu-system-x86_64", "qemu-system-x86", exists},
		{"/bin/busybox", "busybox-static", isStaticELF},
		{"/usr/bin/cpio", "cpio", exists},
		{"/sbin/depmod", "kmod", exists},
		{"/usr/bin/dpkg-deb", "dpkg", exists},
	}
}

// isStaticELF reports whether path is an ELF executable without an
// interpreter: the guest has no libc, so a dynamic busybox would not start.
func isStaticELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// ensureTools installs the missing host tools with apt-get (once, under the
// cache lock held by the caller) and returns their paths.
func ensureTools(ctx context.Context, cacheDir string) (Tools, error) {
	var missing []string
	for _, t := range requiredTools() {
		if !t.ok(t.path) {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) > 0 {
		if os.Geteuid() != 0 {
			return Tools{}, fmt.Errorf("%w: not root and missing packages %s", ErrUnavailable, strings.Join(missing, " "))
		}
		if err := aptUpdate(ctx, cacheDir); err != nil {
			return Tools{}, err
		}
		args := append([]string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, missing...)
		if out, err := aptGet(ctx, args...); err != nil {
			return Tools{}, fmt.Errorf("%w: apt-get install %s: %v\n%s", ErrUnavailable, strings.Join(missing, " "), err, out)
		}
		for _, t := range requiredTools() {
			if !t.ok(t.path) {
				return Tools{}, fmt.Errorf("%w: %s still unusable after installing %s", ErrUnavailable, t.path, t.pkg)
			}
		}
	}
	return Tools{
		QEMU:    "/usr/bin/qemu-system-x86_64",
		Busybox: "/bin/busybox",
		CPIO:    "/usr/bin/cpio",
		Depmod:  "/sbin/depmod",
		DpkgDeb: "/usr/bin/dpkg-deb",
	}, nil
}

// aptUpdate runs apt-get update unless this cache did so recently.
func aptUpdate(ctx context.Context, cacheDir string) error {
	stamp := filepath.Join(cacheDir, "apt-updated")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < aptUpdateMaxAge {
		return nil
	}
	if os.Geteuid() != 0 {
		// Cannot refresh the lists; apt-get download may still work with
		// the lists the machine has, and fails clearly if not.
		return nil
	}
	if out, err := aptGet(ctx, "update"); err != nil {
		return fmt.Errorf("%w: apt-get update: %v\n%s", ErrUnavailable, err, out)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

func aptGet(ctx context.Context, args ...string) ([]byte, error) {
	return runIn(ctx, "", []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", args...)
}

// runIn runs a command in dir with extra environment and returns its
// combined output.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

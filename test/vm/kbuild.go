package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KernelBuild is what building an out-of-tree module for the bed's kernel
// needs, from Debian's own packages of that kernel version: its headers
// (linux-headers-<release>, -common, linux-kbuild) and its source
// (linux-source-<major.minor>, only drivers/vfio extracted).
type KernelBuild struct {
	Version string // the Debian package version, e.g. 6.1.192-3
	// Dir is the build tree to pass as make -C (/lib/modules/<release>/build
	// on a host where the headers are installed).
	Dir string
	// Source holds the kernel's drivers/vfio (at Source/drivers/vfio).
	Source string
}

var aptVersionRE = regexp.MustCompile(`(?m)^Version:\s*(\S+)\s*$`)

// KernelBuild fetches (once, cached under the bed's cache dir) the headers and
// the vfio source of the bed's kernel.
func (b *Bed) KernelBuild(ctx context.Context) (*KernelBuild, error) {
	unlock, err := lockDir(ctx, b.CacheDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rel := b.Kernel.Release
	dir := filepath.Join(b.CacheDir, "kbuild", rel)
	kb := &KernelBuild{Dir: filepath.Join(dir, "usr", "src", "linux-headers-"+rel), Source: filepath.Join(dir, "source")}
	if v, err := os.ReadFile(filepath.Join(dir, "version")); err == nil {
		kb.Version = strings.TrimSpace(string(v))
		return kb, nil
	}
	if err := aptUpdate(ctx, b.CacheDir); err != nil {
		return nil, err
	}
	out, err := runIn(ctx, "", nil, "apt-cache", "show", "--no-all-versions", b.Kernel.Package)
	if err != nil {
		return nil, fmt.Errorf("%w: apt-cache show %s: %v\n%s", ErrUnavailable, b.Kernel.Package, err, out)
	}
	m := aptVersionRE.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("apt-cache show %s: no Version", b.Kernel.Package)
	}
	version := string(m[1])
	// 6.1.0-57-cloud-amd64 -> flavour "cloud-amd64", ABI "6.1.0-57", series "6.1".
	parts := strings.SplitN(rel, "-", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("kernel release %q is not <abi>-<n>-<flavour>", rel)
	}
	abi := parts[0] + "-" + parts[1]
	series := strings.Join(strings.SplitN(parts[0], ".", 3)[:2], ".")
	pkgs := []string{
		"linux-headers-" + rel + "=" + version,
		"linux-headers-" + abi + "-common=" + version,
		"linux-kbuild-" + series + "=" + version,
		"linux-source-" + series + "=" + version,
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o777); err != nil { // apt downloads as _apt
		return nil, err
	}
	if out, err := runIn(ctx, tmp, []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", append([]string{"download"}, pkgs...)...); err != nil {
		return nil, fmt.Errorf("%w: apt-get download %v: %v\n%s", ErrUnavailable, pkgs, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	root := filepath.Join(tmp, "kbuild")
	for _, d := range debs {
		if out, err := runIn(ctx, "", nil, b.Tools.DpkgDeb, "-x", d, root); err != nil {
			return nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", d, err, out)
		}
	}
	// The flavour's Makefile includes the -common tree by its installed
	// path; point it at the extracted one.
	mk := filepath.Join(root, "usr", "src", "linux-headers-"+rel, "Makefile")
	data, err := os.ReadFile(mk)
	if err != nil {
		return nil, err
	}
	fixed := strings.ReplaceAll(string(data), "/usr/src/", filepath.Join(dir, "usr", "src")+"/")
	if err := os.WriteFile(mk, []byte(fixed), 0o644); err != nil {
		return nil, err
	}
	tarball := filepath.Join(root, "usr", "src", "linux-source-"+series+".tar.xz")
	src := filepath.Join(root, "source-x")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if out, err := runIn(ctx, "", nil, "tar", "-xJf", tarball, "-C", src, "--wildcards", "*/drivers/vfio/*"); err != nil {
		return nil, fmt.Errorf("extract drivers/vfio from %s: %v\n%s", tarball, err, out)
	}
	vfio, _ := filepath.Glob(filepath.Join(src, "*", "drivers", "vfio"))
	if len(vfio) != 1 {
		return nil, fmt.Errorf("%s: want one */drivers/vfio, got %v", tarball, vfio)
	}
	if err := os.Rename(filepath.Dir(filepath.Dir(vfio[0])), filepath.Join(root, "source")); err != nil {
		return nil, err
	}
	// The tarball is 140 MB and no longer needed.
	if err := os.Remove(tarball); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(src); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(root, "version"), []byte(version+"\n"), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir) // a half-written earlier attempt
	if err := os.Rename(root, dir); err != nil {
		return nil, err
	}
	kb.Version = version
	return kb, nil
}

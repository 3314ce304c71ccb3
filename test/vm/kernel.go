package vm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultKernelMeta is the Debian meta package whose dependency names the
// concrete kernel image to fetch. NODEPREP_VM_KERNEL overrides it with a
// concrete package name (e.g. linux-image-6.12.117+deb12-cloud-amd64).
const DefaultKernelMeta = "linux-image-cloud-amd64"

// Kernel is an extracted Debian kernel package in the cache.
type Kernel struct {
	Package    string // e.g. linux-image-6.1.0-56-cloud-amd64
	Release    string // uname -r, e.g. 6.1.0-56-cloud-amd64
	Dir        string // cache dir holding vmlinuz, config and lib/modules
	Vmlinuz    string
	Config     string              // the kernel's /boot/config-*
	ModulesDir string              // Dir/lib/modules/<Release>
	deps       map[string][]string // module name -> .ko paths it depends on (modules.dep)
	softdeps   map[string][]string // module name -> soft dependency module names
	path       map[string]string   // module name -> relative .ko path
}

var metaDependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-\S+)\s*$`)

// ensureKernel returns the cached kernel, fetching and extracting it first
// if the cache has none. The caller holds the cache lock.
func ensureKernel(ctx context.Context, cacheDir string, tools Tools) (*Kernel, error) {
	kdir := filepath.Join(cacheDir, "kernel")
	want := os.Getenv("NODEPREP_VM_KERNEL")
	current := filepath.Join(kdir, "current")
	if want == "" {
		if name, err := os.ReadFile(current); err == nil {
			if k, err := loadKernel(filepath.Join(kdir, strings.TrimSpace(string(name)))); err == nil {
				return k, nil
			}
		}
	} else if k, err := loadKernel(filepath.Join(kdir, want)); err == nil {
		return k, nil
	}

	if err := aptUpdate(ctx, cacheDir); err != nil {
		return nil, err
	}
	pkg := want
	if pkg == "" {
		out, err := runIn(ctx, "", nil, "apt-cache", "depends", DefaultKernelMeta)
		if err != nil {
			return nil, fmt.Errorf("%w: apt-cache depends %s: %v\n%s", ErrUnavailable, DefaultKernelMeta, err, out)
		}
		m := metaDependsRE.FindSubmatch(out)
		if m == nil {
			return nil, fmt.Errorf("%w: %s depends on no linux-image package:\n%s", ErrUnavailable, DefaultKernelMeta, out)
		}
		pkg = string(m[1])
	}

	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	// Fetches killed midway leave these behind; none is in progress while
	// the caller holds the cache lock.
	stale, _ := filepath.Glob(filepath.Join(kdir, ".fetch-*"))
	for _, d := range stale {
		os.RemoveAll(d)
	}
	tmp, err := os.MkdirTemp(kdir, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads; let it write here.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if out, err := runIn(ctx, tmp, []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", "download", pkg); err != nil {
		return nil, fmt.Errorf("%w: apt-get download %s: %v\n%s", ErrUnavailable, pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s: want one .deb, got %v", pkg, debs)
	}
	root := filepath.Join(tmp, "root")
	if out, err := runIn(ctx, "", nil, tools.DpkgDeb, "-x", debs[0], root); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	releases, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(releases) != 1 {
		return nil, fmt.Errorf("%s: want one lib/modules/<release>, got %v", pkg, releases)
	}
	release := filepath.Base(releases[0])
	// The package ships no modules.dep (its postinst runs depmod); make it.
	if out, err := runIn(ctx, "", nil, tools.Depmod, "-b", root, release); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %v\n%s", root, release, err, out)
	}
	final := filepath.Join(tmp, "kernel")
	if err := os.MkdirAll(final, 0o755); err != nil {
		return nil, err
	}
	moves := [][2]string{
		{filepath.Join(root, "boot", "vmlinuz-"+release), filepath.Join(final, "vmlinuz")},
		{filepath.Join(root, "boot", "config-"+release), filepath.Join(final, "config")},
		{filepath.Join(root, "lib"), filepath.Join(final, "lib")},
	}
	for _, mv := range moves {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return nil, fmt.Errorf("kernel cache: %w", err)
		}
	}
	meta := fmt.Sprintf("package=%s\nrelease=%s\n", pkg, release)
	if err := os.WriteFile(filepath.Join(final, "kernel.info"), []byte(meta), 0o644); err != nil {
		return nil, err
	}
	dst := filepath.Join(kdir, pkg)
	if err := os.RemoveAll(dst); err != nil {
		return nil, err
	}
	if err := os.Rename(final, dst); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if want == "" {
		if err := os.WriteFile(current, []byte(pkg+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return loadKernel(dst)
}

// loadKernel reads an extracted kernel dir and its modules.dep/softdep.
func loadKernel(dir string) (*Kernel, error) {
	info, err := os.ReadFile(filepath.Join(dir, "kernel.info"))
	if err != nil {
		return nil, fmt.Errorf("kernel cache %s: %w", dir, err)
	}
	k := &Kernel{Dir: dir, Vmlinuz: filepath.Join(dir, "vmlinuz"), Config: filepath.Join(dir, "config")}
	for _, line := range strings.Split(string(info), "\n") {
		key, val, _ := strings.Cut(line, "=")
		switch key {
		case "package":
			k.Package = val
		case "release":
			k.Release = val
		}
	}
	if k.Package == "" || k.Release == "" {
		return nil, fmt.Errorf("kernel cache %s: incomplete kernel.info", dir)
	}
	k.ModulesDir = filepath.Join(dir, "lib", "modules", k.Release)
	if err := k.readModulesDep(); err != nil {
		return nil, err
	}
	if err := k.readSoftdeps(); err != nil {
		return nil, err
	}
	return k, nil
}

// ModuleName normalises a module name or .ko path the way modprobe does:
// basename without .ko*, '-' folded to '_'.
func ModuleName(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

func (k *Kernel) readModulesDep() error {
	f, err := os.Open(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	defer f.Close()
	k.deps = map[string][]string{}
	k.path = map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := ModuleName(mod)
		k.path[name] = mod
		k.deps[name] = strings.Fields(deps)
	}
	return sc.Err()
}

// readSoftdeps reads modules.softdep ("softdep vfio pre: a post: b c"):
// busybox modprobe ignores soft dependencies, so the closure pulls them in
// and callers load them explicitly.
func (k *Kernel) readSoftdeps() error {
	k.softdeps = map[string][]string{}
	data, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.softdep"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "softdep" {
			continue
		}
		name := ModuleName(f[1])
		for _, d := range f[2:] {
			if strings.HasSuffix(d, ":") {
				continue
			}
			k.softdeps[name] = append(k.softdeps[name], ModuleName(d))
		}
	}
	return nil
}

// HasModule reports whether name is a loadable module of this kernel
// (false for built-in or absent ones).
func (k *Kernel) HasModule(name string) bool {
	_, ok := k.path[ModuleName(name)]
	return ok
}

// Builtin reports whether name is built into this kernel image.
func (k *Kernel) Builtin(name string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin"))
	if err != nil {
		return false, fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	want := ModuleName(name)
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && ModuleName(line) == want {
			return true, nil
		}
	}
	return false, nil
}

// ConfigValue returns the value of CONFIG_<opt> in the kernel config
// ("y", "m", a string) or "" when it is not set.
func (k *Kernel) ConfigValue(opt string) (string, error) {
	data, err := os.ReadFile(k.Config)
	if err != nil {
		return "", fmt.Errorf("kernel %s config: %w", k.Release, err)
	}
	prefix := "CONFIG_" + strings.TrimPrefix(opt, "CONFIG_") + "="
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", nil
}

// moduleClosure returns the relative .ko paths needed to load names: each
// module, its modules.dep dependencies and its soft dependencies, sorted.
// Built-in modules are skipped; unknown ones are an error naming them.
func (k *Kernel) moduleClosure(names []string) ([]string, error) {
	seen := map[string]bool{}
	var missing []string
	var visit func(name string, soft bool)
	visit = func(name string, soft bool) {
		name = ModuleName(name)
		if seen[name] {
			return
		}
		seen[name] = true
		if _, ok := k.path[name]; !ok {
			if builtin, _ := k.Builtin(name); !builtin && !soft {
				missing = append(missing, name)
			}
			return
		}
		for _, d := range k.deps[name] {
			visit(d, false)
		}
		for _, d := range k.softdeps[name] {
			visit(d, true) // soft deps may name modules of other arches
		}
	}
	for _, n := range names {
		visit(n, false)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("kernel %s has no module %s", k.Release, strings.Join(missing, ", "))
	}
	var paths []string
	for name := range seen {
		if p, ok := k.path[name]; ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// Package cnibundle installs the CNI plugin binaries that the AMI carries in a
// checksummed bundle, /opt/nodeprep/cni/<version>/{SHA256SUMS,multus,...},
// into the CNI bin directory before kubelet starts.
//
// Every file is verified before any is installed, so a corrupt bundle leaves
// the bin directory exactly as it was. Each file is installed atomically and
// only when its content differs, and files nodeprep did not install (the VPC
// CNI's own plugins) are never touched.
package cnibundle

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// ManifestName is the checksum manifest in a bundle version directory, in
// sha256sum(1) format.
const ManifestName = "SHA256SUMS"

// CurrentLink, when present in the bundle dir, names the version to install.
// Without it the bundle dir must hold exactly one version.
const CurrentLink = "current"

// Errors callers match with errors.Is.
var (
	ErrNoBundle       = errors.New("no CNI bundle")
	ErrAmbiguous      = errors.New("several CNI bundle versions and no current link")
	ErrManifest       = errors.New("bad SHA256SUMS manifest")
	ErrNotInBundle    = errors.New("plugin not in CNI bundle")
	ErrChecksum       = errors.New("checksum mismatch")
	ErrNotRegularFile = errors.New("not a regular file")
)

// ChecksumError names the bundle file whose content does not match the manifest.
type ChecksumError struct {
	File     string
	Want     string
	Got      string
	Manifest string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 %s, %s says %s", e.File, e.Got, e.Manifest, e.Want)
}

func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// Bundle is one version directory of the CNI bundle.
type Bundle struct {
	// Dir is the host path of the version directory.
	Dir     string
	Version string
	// Sums maps a file name to its expected lower-case hex sha256.
	Sums map[string]string
	// Hashes, when set, remembers the hash of each file read (the
	// bundle's and the installed ones) until the file changes; nil reads
	// every file on every Verify, Plan and Install.
	Hashes *HashCache
}

var (
	reSum = regexp.MustCompile(`^([0-9a-fA-F]{64}) [ *](.+)$`)
	// Bundle file names become bin dir names; keep them plain.
	reFileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// A version names a directory: the same characters, up to NAME_MAX.
	// The build names its contents in it (every pinned module and the hash
	// of nodeprep-ipam), which is longer than a plugin's file name.
	reVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)
)

// ValidVersion reports whether v can name a version directory: one plain path
// component of the bundle's file-name characters, and not the current link.
func ValidVersion(v string) bool { return reVersion.MatchString(v) && v != CurrentLink }

// Open reads the bundle under bundleDir (a host path such as
// /opt/nodeprep/cni): the version named by the "current" symlink, else the
// only version present.
func Open(root hostfs.Root, bundleDir string) (*Bundle, error) {
	version, err := pickVersion(root, bundleDir)
	if err != nil {
		return nil, err
	}
	dir := path.Join(bundleDir, version)
	data, err := root.ReadFile(path.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBundle, err)
	}
	sums, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(dir, ManifestName), err)
	}
	return &Bundle{Dir: dir, Version: version, Sums: sums}, nil
}

func pickVersion(root hostfs.Root, bundleDir string) (string, error) {
	p, err := root.Path(bundleDir)
	if err != nil {
		return "", err
	}
	if target, err := os.Readlink(filepath.Join(p, CurrentLink)); err == nil {
		v := filepath.Base(filepath.Clean(target))
		if !ValidVersion(v) {
			return "", fmt.Errorf("%w: %s/%s points at %q", ErrNoBundle, bundleDir, CurrentLink, target)
		}
		return v, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoBundle, err)
	}
	var versions []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		// Stat, not the entry type, so a symlinked version directory counts.
		if info, err := os.Stat(filepath.Join(p, e.Name())); err == nil && info.IsDir() {
			versions = append(versions, e.Name())
		}
	}
	switch len(versions) {
	case 0:
		return "", fmt.Errorf("%w: %s holds no version directory", ErrNoBundle, bundleDir)
	case 1:
		return versions[0], nil
	}
	sort.Strings(versions)
	return "", fmt.Errorf("%w: %s holds %s", ErrAmbiguous, bundleDir, strings.Join(versions, ", "))
}

// ParseManifest parses sha256sum(1) output: "<hex>  <name>" or "<hex> *<name>".
// Blank lines and # comments are allowed; anything else is an error.
func ParseManifest(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := reSum.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%w: line %d: not \"<sha256>  <file>\"", ErrManifest, n)
		}
		name := m[2]
		if !reFileName.MatchString(name) {
			return nil, fmt.Errorf("%w: line %d: %q is not a plain file name", ErrManifest, n, name)
		}
		if name == ManifestName {
			return nil, fmt.Errorf("%w: line %d: the manifest lists itself", ErrManifest, n)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("%w: line %d: %s listed twice", ErrManifest, n, name)
		}
		sums[name] = strings.ToLower(m[1])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrManifest)
	}
	return sums, nil
}

// Has reports whether the bundle carries a file.
func (b *Bundle) Has(name string) bool {
	_, ok := b.Sums[name]
	return ok
}

// Verify checks the named files against the manifest, streaming each through
// the hash. It returns every problem found, each naming its file.
func (b *Bundle) Verify(root hostfs.Root, names []string) error {
	var errs []error
	for _, name := range names {
		if err := b.verifyOne(root, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Bundle) verifyOne(root hostfs.Root, name string) error {
	want, ok := b.Sums[name]
	if !ok {
		return fmt.Errorf("%s: %w (%s/%s)", name, ErrNotInBundle, b.Dir, ManifestName)
	}
	src := path.Join(b.Dir, name)
	got, err := fileSHA256(root, src, b.Hashes)
	if err != nil {
		return err
	}
	if got != want {
		return &ChecksumError{File: src, Want: want, Got: got, Manifest: path.Join(b.Dir, ManifestName)}
	}
	return nil
}

// fileSHA256 hashes a regular file without reading it whole into memory,
// unless cache remembers it unchanged.
func fileSHA256(root hostfs.Root, hostPath string, cache *HashCache) (string, error) {
	p, err := root.Path(hostPath)
	if err != nil {
		return "", err
	}
	if sum, ok := cache.lookup(p); ok {
		return sum, nil
	}
	f, err := cache.openFile(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !before.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w", hostPath, ErrNotRegularFile)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", hostPath, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if after, err := f.Stat(); err == nil {
		cache.remember(p, before, after, sum)
	}
	return sum, nil
}

// Result says what an install did.
type Result struct {
	Version   string
	Installed []string
	Unchanged []string
}

// Plan verifies the named files and returns the install of those that
// differ from binDir's, changing nothing: for `nodeprep plan`, and so a run
// only records real changes. A bad bundle fails here, before anything is
// installed.
func (b *Bundle) Plan(root hostfs.Root, binDir string, names []string) (Result, []change.Change, error) {
	res := Result{Version: b.Version}
	names = dedupe(names)
	if err := b.Verify(root, names); err != nil {
		return res, nil, fmt.Errorf("CNI bundle %s failed verification: %w", b.Version, err)
	}
	for _, name := range names {
		same, err := b.installed(root, path.Join(binDir, name), b.Sums[name])
		if err != nil {
			return res, nil, err
		}
		if same {
			res.Unchanged = append(res.Unchanged, name)
		} else {
			res.Installed = append(res.Installed, name)
		}
	}
	if len(res.Installed) == 0 {
		return res, nil, nil
	}
	return res, []change.Change{{
		What: fmt.Sprintf("install %s into %s from CNI bundle %s", strings.Join(res.Installed, ", "), binDir, b.Version),
		Apply: func(context.Context) error {
			_, err := b.Install(root, binDir, names)
			return err
		},
	}}, nil
}

// Install verifies the named files and then copies each that differs into
// binDir (a host path) as an executable, atomically. Nothing is installed
// unless every named file verifies.
func (b *Bundle) Install(root hostfs.Root, binDir string, names []string) (Result, error) {
	res := Result{Version: b.Version}
	names = dedupe(names)
	if err := b.Verify(root, names); err != nil {
		return res, fmt.Errorf("CNI bundle %s failed verification, nothing installed: %w", b.Version, err)
	}
	if err := root.MkdirAll(binDir, 0o755); err != nil {
		return res, err
	}
	for _, name := range names {
		dst := path.Join(binDir, name)
		same, err := b.installed(root, dst, b.Sums[name])
		if err != nil {
			return res, err
		}
		if same {
			res.Unchanged = append(res.Unchanged, name)
			continue
		}
		if err := copyAtomic(root, path.Join(b.Dir, name), dst, b.Sums[name]); err != nil {
			return res, err
		}
		res.Installed = append(res.Installed, name)
	}
	return res, nil
}

// installed reports whether dst already is this exact executable.
func (b *Bundle) installed(root hostfs.Root, dst, sum string) (bool, error) {
	p, err := root.Path(dst)
	if err != nil {
		return false, err
	}
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != 0o755 {
		return false, nil
	}
	got, err := fileSHA256(root, dst, b.Hashes)
	if err != nil {
		return false, err
	}
	return got == sum, nil
}

// copyAtomic streams src into dst atomically, re-checking the hash of what
// it wrote (the source could change between verify and copy).
func copyAtomic(root hostfs.Root, src, dst, sum string) error {
	sp, err := root.Path(src)
	if err != nil {
		return err
	}
	in, err := os.Open(sp)
	if err != nil {
		return err
	}
	defer in.Close()
	return root.WriteFrom(dst, 0o755, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), in); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return &ChecksumError{File: src, Want: sum, Got: got, Manifest: ManifestName}
		}
		return nil
	})
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// Plugin binary names nodeprep installs besides the configured reference plugins.
const (
	Multus      = "multus"
	Whereabouts = "whereabouts"
	// NodeprepIPAM gives a pod the addresses of the ENI behind the device
	// it was allocated (internal/ipam); nodeprep's DPDK conflists use it.
	NodeprepIPAM = "nodeprep-ipam"
)

// Wanted lists the binaries a config asks for: multus, nodeprep's IPAM,
// the configured reference plugins and, when enabled, whereabouts.
func Wanted(m api.Multus) []string {
	names := append([]string{Multus, NodeprepIPAM}, m.Plugins...)
	if m.Whereabouts.Enabled {
		names = append(names, Whereabouts)
	}
	return dedupe(names)
}

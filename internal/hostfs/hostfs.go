// Package hostfs reads and writes host files through a root prefix, so every
// piece of host-facing logic can run against a temporary directory in tests.
package hostfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoot is returned for a path that would resolve outside the root.
var ErrOutsideRoot = errors.New("path escapes the host root")

// Root is a host filesystem root: "/" on a real node, a temp dir in tests.
type Root struct {
	dir string
}

// New returns a Root at dir. An empty dir means "/".
func New(dir string) Root {
	if dir == "" {
		dir = "/"
	}
	return Root{dir: filepath.Clean(dir)}
}

// Dir is the root directory itself.
func (r Root) Dir() string {
	if r.dir == "" {
		return "/"
	}
	return r.dir
}

// Path maps an absolute host path to its location under the root. It rejects
// relative paths and any ".." that would climb out, so a path assembled from
// config can never leave the tree.
func (r Root) Path(hostPath string) (string, error) {
	if !filepath.IsAbs(hostPath) {
		return "", fmt.Errorf("%q: %w: not absolute", hostPath, ErrOutsideRoot)
	}
	for _, elem := range strings.Split(hostPath, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%q: %w", hostPath, ErrOutsideRoot)
		}
	}
	return filepath.Join(r.Dir(), filepath.Clean(hostPath)), nil
}

// ReadFile reads a host file.
func (r Root) ReadFile(hostPath string) ([]byte, error) {
	p, err := r.Path(hostPath)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Exists reports whether a host path exists (following symlinks).
func (r Root) Exists(hostPath string) bool {
	p, err := r.Path(hostPath)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// MkdirAll creates a host directory and its parents.
func (r Root) MkdirAll(hostPath string, mode fs.FileMode) error {
	p, err := r.Path(hostPath)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, mode)
}

// WriteFile writes data atomically: a temp file in the same directory, fsync,
// rename, fsync of the directory. If the file already holds data with this
// mode it is left alone, so mtimes and inotify watchers only see real changes.
// It reports whether it changed anything.
func (r Root) WriteFile(hostPath string, data []byte, mode fs.FileMode) (changed bool, err error) {
	p, err := r.Path(hostPath)
	if err != nil {
		return false, err
	}
	if same, err := hasContent(p, data, mode); err != nil {
		return false, err
	} else if same {
		return false, nil
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(hostPath), err)
	}
	if err := writeAtomic(dir, p, data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", hostPath, err)
	}
	return true, nil
}

// Differs reports whether WriteFile(hostPath, data, mode) would change the
// file, so a step can plan the write without making it.
func (r Root) Differs(hostPath string, data []byte, mode fs.FileMode) (bool, error) {
	p, err := r.Path(hostPath)
	if err != nil {
		return false, err
	}
	same, err := hasContent(p, data, mode)
	return !same, err
}

func hasContent(p string, data []byte, mode fs.FileMode) (bool, error) {
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != mode.Perm() || info.Size() != int64(len(data)) {
		return false, nil
	}
	old, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	return bytes.Equal(old, data), nil
}

func writeAtomic(dir, p string, data []byte, mode fs.FileMode) error {
	return replaceAtomic(dir, p, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom replaces a host file atomically with what write produces, for
// content too large to hold in memory. When write fails, the file is left
// as it was.
func (r Root) WriteFrom(hostPath string, mode fs.FileMode, write func(io.Writer) error) error {
	p, err := r.Path(hostPath)
	if err != nil {
		return err
	}
	if err := replaceAtomic(filepath.Dir(p), p, mode, write); err != nil {
		return fmt.Errorf("write %s: %w", hostPath, err)
	}
	return nil
}

// replaceAtomic writes a temp file in the same directory, fsyncs it,
// renames it over p and fsyncs the directory.
func replaceAtomic(dir, p string, mode fs.FileMode, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	// CreateTemp uses 0600; chmod explicitly so umask never decides the mode.
	if err = tmp.Chmod(mode.Perm()); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Remove deletes a host file; a missing file is not an error. It reports
// whether it removed anything.
func (r Root) Remove(hostPath string) (bool, error) {
	p, err := r.Path(hostPath)
	if err != nil {
		return false, err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// WriteAttr writes a kernel attribute (sysfs, procfs). It never creates the
// file: a missing attribute means the kernel lacks the feature, and creating
// it would hide that. The kernel acts on the write itself, so it is not atomic
// like WriteFile.
func (r Root) WriteAttr(hostPath, value string) error {
	p, err := r.Path(hostPath)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, hostPath, err)
	}
	return nil
}

// ReadDirNames lists a host directory's entries, sorted. A missing directory
// is empty: in sysfs that means the kernel has none of the thing listed.
func (r Root) ReadDirNames(hostPath string) ([]string, error) {
	p, err := r.Path(hostPath)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// tempMarkers are the infixes of nodeprep's in-flight files: ".NAME.tmp-N"
// from WriteFile, and ".NAME.nodeprep-N" from the CNI installer of earlier
// releases. N is os.CreateTemp's random digits.
var tempMarkers = []string{".tmp-", ".nodeprep-"}

// IsTempName reports whether a file name is one of nodeprep's temp files.
func IsTempName(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	for _, m := range tempMarkers {
		i := strings.LastIndex(name, m)
		if i <= 1 {
			continue
		}
		digits := name[i+len(m):]
		if digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// RemoveStaleTemps deletes nodeprep's temp files in a host directory: the
// ones a run killed between create and rename (SIGKILL, power loss) left
// behind. A run calls it before it writes anything, so no temp file of its
// own can be in flight. A missing directory has none. It returns the host
// paths it removed.
func (r Root) RemoveStaleTemps(hostDir string) ([]string, error) {
	dir, err := r.Path(hostDir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsTempName(e.Name()) {
			continue
		}
		if err := os.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path.Join(hostDir, e.Name()))
	}
	return removed, errors.Join(errs...)
}

// Lock takes an exclusive flock on a host file, creating it, and waits (on
// the kernel, not a timer) while another process holds it. Runs take it so
// that one never removes the temp files of another still writing.
func (r Root) Lock(hostPath string) (unlock func(), err error) {
	if err := r.MkdirAll(path.Dir(hostPath), 0o755); err != nil {
		return nil, err
	}
	p, err := r.Path(hostPath)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, &os.PathError{Op: "flock", Path: p, Err: err}
	}
	return func() { _ = f.Close() }, nil
}

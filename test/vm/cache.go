package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnavailable is wrapped by errors that mean "this machine cannot run the
// VM bed" (not root and tools missing, apt cannot install, no kernel package),
// as opposed to a VM run that failed. Tests skip on it.
var ErrUnavailable = errors.New("vm bed unavailable")

// RepoRoot returns the directory holding this module's go.mod, searched
// upwards from the working directory (go test runs in the package dir).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/nodeprep/nodeprep") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repo root: no go.mod of github.com/nodeprep/nodeprep above the working directory: %w", os.ErrNotExist)
		}
		dir = parent
	}
}

// CacheDir returns ${NODEPREP_CACHE:-<repo>/.cache}/vm.
func CacheDir() (string, error) {
	if c := os.Getenv("NODEPREP_CACHE"); c != "" {
		return filepath.Join(c, "vm"), nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "vm"), nil
}

// lockDir takes an exclusive flock on dir/lock, so that go test running
// several packages at once does not fetch the kernel or run apt twice.
// The returned func releases it.
func lockDir(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	// flock(2) cannot be interrupted by a context, so it runs in its own
	// goroutine; if the context ends first, that goroutine releases the lock
	// as soon as it gets it.
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cache lock: %w", err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		go func() {
			<-got
			f.Close()
		}()
		return nil, fmt.Errorf("cache lock %s: %w", dir, ctx.Err())
	}
}

package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoAgent is returned by BuildNodeprep while the repo has no agent/ yet.
var ErrNoAgent = fmt.Errorf("no agent/ package in the repo: %w", os.ErrNotExist)

// BuildStatic builds the Go package pkg (an import path or a path relative
// to the repo root, e.g. "./agent") as a static linux/amd64 binary at out,
// so it runs in the libc-less guest.
func BuildStatic(ctx context.Context, pkg, out string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	goBin := goTool()
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}
	if b, err := runIn(ctx, root, env, goBin, "build", "-trimpath", "-o", out, pkg); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	if !isStaticELF(out) {
		return fmt.Errorf("go build %s: %s is dynamically linked", pkg, out)
	}
	return nil
}

// BuildNodeprep builds ./agent statically into dir and returns the binary's
// path, or an error wrapping ErrNoAgent when agent/ does not exist yet.
func BuildNodeprep(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "agent")); err != nil {
		return "", ErrNoAgent
	}
	out := filepath.Join(dir, "nodeprep")
	if err := BuildStatic(ctx, "./agent", out); err != nil {
		return "", err
	}
	return out, nil
}

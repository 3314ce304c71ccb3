// Package dirsync keeps a host directory's generated files equal to a wanted
// set: it plans a change per file that differs and per file nodeprep wrote
// earlier that is no longer wanted, leaving anyone else's files alone. Only
// differences are changes, so a run that would change nothing reports none.
package dirsync

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Build renders each item into the file named for it, and returns every
// item's error together rather than stopping at the first.
func Build[T any](items []T, name func(T) string, render func(T) ([]byte, error)) (map[string][]byte, error) {
	want := make(map[string][]byte, len(items))
	var errs []error
	for _, it := range items {
		data, err := render(it)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want[name(it)] = data
	}
	return want, errors.Join(errs...)
}

// NotOursError is a file at a name nodeprep wants to write that nodeprep
// did not write: someone else's, which it never overwrites.
type NotOursError struct {
	Path string
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("%s exists and nodeprep did not write it; it is left alone: move it away, or rename the interface", e.Path)
}

// Plan returns the changes that bring dir to want (file name → content).
// owned says whether an existing file is nodeprep's: only those are
// rewritten or, when no longer wanted, removed. A wanted name held by a
// file that is not nodeprep's is a *NotOursError naming it.
func Plan(root hostfs.Root, dir string, want map[string][]byte, owned func(name string, data []byte) bool) ([]change.Change, error) {
	names, err := root.ReadDirNames(dir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var out []change.Change
	var errs []error
	for _, n := range names {
		have[n] = true
		p := path.Join(dir, n)
		data, err := root.ReadFile(p)
		if err != nil {
			continue // a directory or unreadable: not a file we wrote
		}
		if w, ok := want[n]; ok {
			switch {
			case string(w) == string(data):
			case !owned(n, data):
				errs = append(errs, &NotOursError{Path: p})
			default:
				out = append(out, write(root, dir, p, w))
			}
			continue
		}
		if owned(n, data) {
			out = append(out, change.Change{What: "remove " + p, Apply: func(context.Context) error {
				_, err := root.Remove(p)
				return err
			}})
		}
	}
	names = names[:0]
	for n := range want {
		if !have[n] {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, write(root, dir, path.Join(dir, n), want[n]))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func write(root hostfs.Root, dir, p string, data []byte) change.Change {
	return change.Change{What: "write " + p, Apply: func(context.Context) error {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		_, err := root.WriteFile(p, data, 0o644)
		return err
	}}
}

// Apply makes changes outside a step (tools and tests) and reports what
// they were.
func Apply(ctx context.Context, changes []change.Change) ([]string, error) {
	var done []string
	for _, c := range changes {
		if err := c.Apply(ctx); err != nil {
			return done, err
		}
		done = append(done, c.What)
	}
	return done, nil
}

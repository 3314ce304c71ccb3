// Package dirsync keeps a host directory's generated files equal to a wanted
// set: it writes the files that differ and removes the ones nodeprep wrote
// earlier that are no longer wanted, leaving anyone else's files alone. The
// plan comes first, so a run that would change nothing reports nothing.
package dirsync

import (
	"errors"
	"path"
	"slices"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Change is one file to write (Data set) or remove (Data nil).
type Change struct {
	Path string
	Data []byte
}

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

// Plan returns the changes that bring dir to want (file name → content).
// owned says whether an existing file not in want is nodeprep's to remove.
func Plan(root hostfs.Root, dir string, want map[string][]byte, owned func(name string, data []byte) bool) ([]Change, error) {
	names, err := root.ReadDirNames(dir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var out []Change
	for _, n := range names {
		have[n] = true
		p := path.Join(dir, n)
		data, err := root.ReadFile(p)
		if err != nil {
			continue // a directory or unreadable: not a file we wrote
		}
		if w, ok := want[n]; ok {
			if string(w) != string(data) {
				out = append(out, Change{Path: p, Data: w})
			}
			continue
		}
		if owned(n, data) {
			out = append(out, Change{Path: p})
		}
	}
	for _, n := range sortedNames(want) {
		if !have[n] {
			out = append(out, Change{Path: path.Join(dir, n), Data: want[n]})
		}
	}
	return out, nil
}

// Apply makes the changes, creating dir as needed.
func Apply(root hostfs.Root, dir string, changes []Change) error {
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range changes {
		var err error
		if c.Data == nil {
			_, err = root.Remove(c.Path)
		} else {
			_, err = root.WriteFile(c.Path, c.Data, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Paths lists the changed paths.
func Paths(changes []Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Path
	}
	return out
}

func sortedNames(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

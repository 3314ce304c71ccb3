package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkValidate is `nodeprep validate` on the example user data, in process.
func BenchmarkValidate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if code := dispatch(context.Background(), []string{"validate", "../configs/userdata/multipart.txt"}, strings.NewReader(""), io.Discard, io.Discard); code != exitOK {
			b.Fatalf("code %d", code)
		}
	}
}

// BenchmarkEmptyRun is `nodeprep run` when user data has no nodeprep part:
// the cost nodeprep adds to every boot of a node that does not use it.
func BenchmarkEmptyRun(b *testing.B) {
	ud := filepath.Join(b.TempDir(), "ud")
	_ = os.WriteFile(ud, []byte("#!/bin/bash\n"), 0o644)
	root := b.TempDir()
	for i := 0; i < b.N; i++ {
		if code := dispatch(context.Background(), []string{"run", "--root", root, "--user-data", ud, "--log-level", "error"}, strings.NewReader(""), io.Discard, io.Discard); code != exitOK {
			b.Fatalf("code %d", code)
		}
	}
}

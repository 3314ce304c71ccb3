package userdata

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
)

// FuzzExtract feeds arbitrary user data through the parser and, when it
// yields documents, through the config decoder: neither may panic, and a
// small input may not expand past the documented bounds.
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{ours, mimeMessage([2]string{"Content-Type: application/nodeprep.dev", ours}), "#!/bin/sh\n", ""} {
		f.Add([]byte(seed))
	}
	f.Add(gz(f, ours))
	f.Add(b64(gz(f, ours)))
	if ex, err := os.ReadFile("../../configs/userdata/multipart.txt"); err == nil {
		f.Add(ex)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs, err := Extract(data)
		if err != nil {
			return
		}
		total := 0
		for _, s := range srcs {
			total += len(s.Data)
		}
		if total > MaxExpandedBytes*MaxParts {
			t.Fatalf("expanded to %d bytes", total)
		}
		_, _ = api.Load(srcs...)
	})
}

func FuzzDecodeConfig(f *testing.F) {
	files, _ := filepath.Glob("../../configs/examples/*.yaml")
	bad, _ := filepath.Glob("../api/testdata/bad/*.yaml")
	for _, p := range append(files, bad...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := api.Load(api.Source{Name: "fuzz", Data: data})
		if err != nil {
			return
		}
		// Whatever validates must survive defaulting and validation again.
		api.SetDefaults(cfg)
		if err := api.Validate(cfg); err != nil {
			t.Fatalf("valid config became invalid on re-defaulting: %v", err)
		}
	})
}

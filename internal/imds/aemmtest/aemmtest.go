// Package aemmtest runs AWS's ec2-metadata-mock (AEMM) for tests, so IMDS
// behaviour is judged by AWS's own mock rather than one of ours.
package aemmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Version is the AWS IMDS mock the conformance tests run against.
const Version = "v1.13.0"

// aemmBinary returns the ec2-metadata-mock binary, installing it into
// $NODEPREP_CACHE/bin on first use.
func aemmBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("NODEPREP_CACHE")
	if cache == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(root, ".cache")
	}
	bin := filepath.Join(cache, "bin", "ec2-metadata-mock-"+Version)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@"+Version)
	// A throwaway module context, so the install never touches our go.mod.
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod", "GO111MODULE=on")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot install ec2-metadata-mock %s (offline?): %v\n%s", Version, err, out)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(gobin, "ec2-metadata-mock"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Config is the part of AEMM's config-file format the tests override.
type Config struct {
	Dynamic  Section `json:"dynamic"`
	UserData Section `json:"userdata"`
}

// Section overrides one AEMM category: its paths or its values.
type Section struct {
	Paths  map[string]string `json:"paths,omitempty"`
	Values map[string]any    `json:"values,omitempty"`
}

// FreePort is a loopback port nothing listens on.
func FreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// Start runs AEMM with IMDSv2 required on a loopback port after delay and
// returns its endpoint URL; it skips the test when AEMM cannot be installed.
func Start(t *testing.T, cfg Config, delay time.Duration) string {
	t.Helper()
	bin := aemmBinary(t)
	dir := t.TempDir()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "aemm.json")
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	cmd := exec.Command(bin, "--hostname", "127.0.0.1", "--port", port, "--imdsv2", "--config-file", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Stdout = &testWriter{t}
	cmd.Stderr = &testWriter{t}
	start := func() {
		if err := cmd.Start(); err != nil {
			t.Errorf("start ec2-metadata-mock: %v", err)
		}
	}
	if delay > 0 {
		timer := time.AfterFunc(delay, start)
		t.Cleanup(func() { timer.Stop() })
	} else {
		start()
	}
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return "http://127.0.0.1:" + port
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("aemm: %s", p)
	return len(p), nil
}

// B64 is how AEMM takes user data.
func B64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

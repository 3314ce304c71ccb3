package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/metrics"
	"github.com/nodeprep/nodeprep/internal/state"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateAcceptsEveryExample(t *testing.T) {
	files, _ := filepath.Glob("../configs/examples/*.yaml")
	files = append(files, "../configs/userdata/multipart.txt", "../configs/userdata/demo.txt")
	for _, f := range files {
		if code, _, stderr := runCLI(t, "", "validate", f); code != exitOK {
			t.Errorf("validate %s = %d: %s", f, code, stderr)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	code, _, stderr := runCLI(t, "", "validate", "../internal/api/testdata/bad/many-problems.yaml")
	if code != exitInvalid {
		t.Fatalf("code = %d", code)
	}
	for _, field := range []string{"spec.interfaces[0].mtu", "spec.interfaces[1].name", "spec.hugepages[0].size", "spec.failurePolicy"} {
		if !strings.Contains(stderr, field) {
			t.Errorf("stderr lacks %s:\n%s", field, stderr)
		}
	}
}

func TestValidateStdinAndNoPart(t *testing.T) {
	cfg, _ := os.ReadFile("../configs/examples/minimal.yaml")
	if code, out, _ := runCLI(t, string(cfg), "validate", "-"); code != exitOK || !strings.Contains(out, "valid") {
		t.Errorf("stdin: code %d, %q", code, out)
	}
	if code, _, stderr := runCLI(t, "#!/bin/sh\necho hi\n", "validate", "-"); code != exitInvalid || !strings.Contains(stderr, "no nodeprep config") {
		t.Errorf("shell user data: code %d, %q", code, stderr)
	}
}

func TestRunWithoutOurPartExitsZeroAndRecordsIt(t *testing.T) {
	root := t.TempDir()
	ud := filepath.Join(t.TempDir(), "ud")
	_ = os.WriteFile(ud, []byte("#!/bin/bash\necho not for us\n"), 0o644)
	code, _, stderr := runCLI(t, "", "run", "--root", root, "--user-data", ud)
	if code != exitOK {
		t.Fatalf("code = %d: %s", code, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n") + 1; n != 1 || !strings.Contains(stderr, "no application/nodeprep.dev part") {
		t.Errorf("want one clear line, got %d:\n%s", n, stderr)
	}
	code, out, _ := runCLI(t, "", "status", "--root", root)
	if code != exitOK || !strings.Contains(out, "no-config") {
		t.Errorf("status: %d %q", code, out)
	}
}

func TestRunWithInvalidConfigLeavesTheRootUntouched(t *testing.T) {
	root := t.TempDir()
	code, _, stderr := runCLI(t, "", "run", "--root", root, "--user-data", "../internal/api/testdata/bad/path-traversal-config.yaml")
	if code != exitInvalid {
		t.Fatalf("code = %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "spec.devicePlugin.configPath") {
		t.Errorf("stderr = %s", stderr)
	}
	// What is left is nodeprep's own record of the refusal (and the metrics
	// that report it): nothing it configures.
	var touched []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			touched = append(touched, strings.TrimPrefix(p, root))
		}
		return nil
	})
	for _, p := range touched {
		if p != state.Path && p != filepath.Join(metrics.DefaultDir, metrics.RunFile) {
			t.Errorf("root was touched: %s", p)
		}
	}
	code, out, _ := runCLI(t, "", "status", "--root", root)
	if code != exitFailed || !strings.Contains(out, "invalid-config") || !strings.Contains(out, "spec.devicePlugin.configPath") {
		t.Errorf("status after a refused config: code %d\n%s", code, out)
	}
}

func TestStatusWithoutRun(t *testing.T) {
	if code, _, stderr := runCLI(t, "", "status", "--root", t.TempDir()); code != exitNoState || !strings.Contains(stderr, "has not run") {
		t.Errorf("code %d, %q", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"validate"}, {"run", "--log-level", "loud"}, {"run", "--bogus"}} {
		if code, _, _ := runCLI(t, "", args...); code != exitInvalid {
			t.Errorf("%v: code %d, want %d", args, code, exitInvalid)
		}
	}
	if code, out, _ := runCLI(t, "", "version"); code != exitOK || !strings.HasPrefix(out, "nodeprep ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// Other parts of user data (nodeadm's, scripts) can hold credentials; none
// of their content may reach the log, even when our part is invalid.
func TestRunNeverLogsUserDataContent(t *testing.T) {
	const secret = "s3cr3t-Bootstrap-T0ken"
	ud := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n" +
		"--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\nexport TOKEN=" + secret + "\n" +
		"--B\nContent-Type: application/nodeprep.dev\n\napiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  bogus: 1\n" +
		"--B--\n"
	path := filepath.Join(t.TempDir(), "ud")
	_ = os.WriteFile(path, []byte(ud), 0o644)
	for _, cmd := range []string{"run", "plan"} {
		code, out, stderr := runCLI(t, "", cmd, "--root", t.TempDir(), "--user-data", path, "--log-level", "debug")
		if code != exitInvalid {
			t.Errorf("%s: code %d", cmd, code)
		}
		if strings.Contains(out+stderr, secret) {
			t.Errorf("%s logged user data content:\n%s", cmd, stderr)
		}
	}
}

// run and validate agree on user data that looks like ours but is not valid:
// both reject it, neither treats it as "no nodeprep part".
func TestRunAndValidateAgreeOnLookalikes(t *testing.T) {
	const cfg = "apiVersion: nodeprep.io/v1alpha1\nkind: NodePrepConfig\nspec: {}\n"
	utf16 := []byte{0xff, 0xfe}
	for _, r := range "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\n" {
		utf16 = append(utf16, byte(r), 0)
	}
	for name, data := range map[string][]byte{
		"misspelled apiVersion": []byte(cfg),
		"UTF-16":                utf16,
		"long comment first":    []byte("#" + strings.Repeat("-", 70<<10) + "\n" + cfg),
	} {
		path := filepath.Join(t.TempDir(), "ud")
		_ = os.WriteFile(path, data, 0o644)
		vcode, _, vstderr := runCLI(t, "", "validate", path)
		rcode, _, rstderr := runCLI(t, "", "run", "--root", t.TempDir(), "--user-data", path)
		if vcode != exitInvalid || rcode != exitInvalid {
			t.Errorf("%s: validate %d, run %d, want both %d\nvalidate: %s\nrun: %s", name, vcode, rcode, exitInvalid, vstderr, rstderr)
		}
	}
}

// Files are read with the same 4 MiB cap as standard input: a bigger file is
// refused with a message naming the limit, before it is parsed.
func TestFileReadsAreCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	_ = os.WriteFile(path, append([]byte("#!/bin/sh\n"), bytes.Repeat([]byte("# padding\n"), 600<<10)...), 0o644)
	code, _, stderr := runCLI(t, "", "validate", path)
	if code != exitInvalid || !strings.Contains(stderr, "4 MiB") {
		t.Errorf("validate: code %d, want %d naming the 4 MiB limit: %s", code, exitInvalid, stderr)
	}
	code, _, stderr = runCLI(t, "", "run", "--root", t.TempDir(), "--user-data", path)
	if code == exitOK || !strings.Contains(stderr, "4 MiB") {
		t.Errorf("run: code %d, want a failure naming the 4 MiB limit: %s", code, stderr)
	}
}

// A run that could not read its user data is recorded: status reports the
// failure instead of "has not run since boot".
func TestUserDataFailureIsRecorded(t *testing.T) {
	root := t.TempDir()
	code, _, _ := runCLI(t, "", "run", "--root", root, "--user-data", filepath.Join(root, "no-such-file"))
	if code != exitUserData {
		t.Fatalf("run: code %d, want %d", code, exitUserData)
	}
	code, out, stderr := runCLI(t, "", "status", "--root", root)
	if code != exitFailed || !strings.Contains(out+stderr, "no-such-file") {
		t.Errorf("status: code %d, want %d naming the failure:\n%s%s", code, exitFailed, out, stderr)
	}
}

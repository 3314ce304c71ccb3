package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
)

// The exit codes are node-problem-detector's: 2 when doctor cannot check,
// 1 when a check fails, and the JSON names the failing check.
func TestDoctorExitCodes(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"doctor", "--root", dir, "--offline"}, nil, &out, &errOut); code != doctorUnknown {
		t.Fatalf("no run recorded: exit %d, want %d (%s)", code, doctorUnknown, errOut.String())
	}
	root := hostfs.New(dir)
	cfg := "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces:\n    - name: n3\n      pciAddress: \"0000:00:06.0\"\n      driver: vfio-pci\n  multus: {install: false}\n"
	if _, err := root.WriteFile(bootstrap.EffectiveConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(state.File{Version: state.Version, Command: "run", Result: state.ResultSucceeded})
	if _, err := root.WriteFile(state.Path, st, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	code := dispatch(context.Background(), []string{"doctor", "--root", dir, "--offline", "--json"}, nil, &out, &errOut)
	if code != doctorProblem {
		t.Fatalf("exit %d, want %d: %s %s", code, doctorProblem, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), `"check": "driver"`) || !strings.Contains(out.String(), `"verdict": "fail"`) {
		t.Fatalf("JSON: %s", out.String())
	}
}

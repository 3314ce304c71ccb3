package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
)

const ours = "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  failurePolicy: Taint\n"

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func mimeMessage(parts ...[2]string) string {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\n\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "--BOUNDARY\n%s\n\n%s\n", p[0], p[1])
	}
	b.WriteString("--BOUNDARY--\n")
	return b.String()
}

func TestExtractEncodings(t *testing.T) {
	cases := map[string][]byte{
		"plain":        []byte(ours),
		"gzip":         gz(t, ours),
		"base64":       b64([]byte(ours)),
		"base64(gzip)": b64(gz(t, ours)),
		"mime":         []byte(mimeMessage([2]string{"Content-Type: application/nodeprep.dev", ours})),
		"mime part base64 transfer": []byte(mimeMessage([2]string{
			"Content-Type: application/nodeprep.dev\nContent-Transfer-Encoding: base64", string(b64([]byte(ours)))})),
		"mime part gzip+base64": []byte(mimeMessage([2]string{
			"Content-Type: application/nodeprep.dev\nContent-Transfer-Encoding: base64", string(b64(gz(t, ours)))})),
		"gzip(mime)": gz(t, mimeMessage([2]string{"Content-Type: application/nodeprep.dev", ours})),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			srcs, err := Extract(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(srcs) != 1 {
				t.Fatalf("%d sources", len(srcs))
			}
			cfg, err := api.Load(srcs...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Spec.FailurePolicy != api.FailurePolicyTaint {
				t.Errorf("failurePolicy = %q", cfg.Spec.FailurePolicy)
			}
		})
	}
}

func TestExtractSkipsOtherPartsAndKeepsOrder(t *testing.T) {
	second := strings.Replace(ours, "Taint", "Block", 1)
	data := mimeMessage(
		[2]string{"Content-Type: application/node.eks.aws", "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"},
		[2]string{"Content-Type: application/nodeprep.dev", ours},
		[2]string{"Content-Type: text/x-shellscript", "#!/bin/bash\necho secret-token-123"},
		[2]string{"Content-Type: text/cloud-config", "#cloud-config\n"},
		[2]string{"Content-Type: application/nodeprep.dev", second},
	)
	srcs, err := Extract([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || !strings.Contains(srcs[0].Name, "part 2") || !strings.Contains(srcs[1].Name, "part 5") {
		t.Fatalf("sources = %+v", srcs)
	}
	cfg, err := api.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spec.FailurePolicy != api.FailurePolicyBlock {
		t.Error("later part did not win")
	}
}

func TestExtractNoConfig(t *testing.T) {
	for name, data := range map[string]string{
		"shell":    "#!/bin/bash\necho hi\n",
		"nodeadm":  "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n",
		"empty":    "",
		"mime":     mimeMessage([2]string{"Content-Type: application/node.eks.aws", "apiVersion: node.eks.aws/v1alpha1\n"}),
		"cloud-cf": "#cloud-config\npackages: [jq]\n",
	} {
		if _, err := Extract([]byte(data)); !errors.Is(err, ErrNoConfig) {
			t.Errorf("%s: err = %v, want ErrNoConfig", name, err)
		}
	}
}

func TestExtractExampleUserData(t *testing.T) {
	data, err := os.ReadFile("../../configs/userdata/multipart.txt")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := mustLoad(t, data); len(cfg.Spec.Interfaces) != 2 {
		t.Errorf("interfaces = %d", len(cfg.Spec.Interfaces))
	}
}

// mustLoad extracts nodeprep's parts from user data and loads them.
func mustLoad(t *testing.T, userData []byte) *api.NodePrepConfig {
	t.Helper()
	srcs, err := Extract(userData)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := api.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExtractBoundsExpansion(t *testing.T) {
	bomb := gz(t, strings.Repeat("a", MaxExpandedBytes+10))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	if _, err := Extract(bomb); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	nested := []byte(ours)
	for i := 0; i < 8; i++ {
		nested = gz(t, string(nested))
	}
	if _, err := Extract(nested); !errors.Is(err, ErrTooDeep) {
		t.Errorf("err = %v, want ErrTooDeep", err)
	}
}

func TestExtractMalformedMIMEIsAnError(t *testing.T) {
	_, err := Extract([]byte("Content-Type: multipart/mixed\n\nbody"))
	if err == nil || !strings.Contains(err.Error(), "boundary") {
		t.Errorf("err = %v", err)
	}
}

// Plain user data that looks like a nodeprep config but is not a valid one is
// an error from Extract or Load, never ErrNoConfig: otherwise `run` would exit
// 0 having done nothing while `validate` rejects the same bytes.
func TestLookalikeConfigsAreErrorsNotSilence(t *testing.T) {
	utf16 := []byte{0xff, 0xfe}
	for _, r := range ours {
		utf16 = append(utf16, byte(r), 0)
	}
	cases := map[string][]byte{
		"misspelled apiVersion":      []byte(strings.Replace(ours, "nodeprep.dev/", "nodeprep.io/", 1)),
		"wrong apiVersion, our kind": []byte(strings.Replace(ours, "nodeprep.dev/v1alpha1", "v1", 1)),
		"UTF-16 with a BOM":          utf16,
		"long comment first":         []byte("# " + strings.Repeat("x", 70<<10) + "\n" + strings.Replace(ours, "Taint", "Sometimes", 1)),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			srcs, err := Extract(data)
			if errors.Is(err, ErrNoConfig) {
				t.Fatal("silently taken as user data without a nodeprep part")
			}
			if err == nil {
				_, err = api.Load(srcs...)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
	// Still left alone: a script that mentions our apiVersion, and nodeadm's config.
	for _, other := range []string{"#!/bin/sh\ncat <<EOF >/x\n" + ours + "EOF\n", "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"} {
		if _, err := Extract([]byte(other)); !errors.Is(err, ErrNoConfig) {
			t.Errorf("%q: err = %v, want ErrNoConfig", other[:20], err)
		}
	}
}

func TestOversizedBoundaryMessage(t *testing.T) {
	b := strings.Repeat("b", 5000)
	data := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\nContent-Type: application/nodeprep.dev\n\n" + ours + "\n--" + b + "--\n"
	_, err := Extract([]byte(data))
	if err == nil || strings.Contains(err.Error(), "bufio") || !strings.Contains(err.Error(), "boundary is 5000 characters long") {
		t.Errorf("err = %v, want one naming the boundary length", err)
	}
}

package userdata

import (
	"strings"
	"testing"
)

// Issue 21 item 9: a NodePrepConfig put in nodeadm's part (the shape people
// build with Karpenter) was silently ignored by run.
func TestNodePrepConfigInNodeadmPartIsAnError(t *testing.T) {
	data := mimeMessage(
		[2]string{"Content-Type: application/node.eks.aws", "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec: {}\n---\n" + ours},
		[2]string{"Content-Type: text/x-shellscript", "#!/bin/sh\ntrue\n"},
	)
	_, err := Extract([]byte(data))
	if err == nil {
		t.Fatal("a NodePrepConfig in an application/node.eks.aws part was ignored")
	}
	for _, want := range []string{"part 1 (application/node.eks.aws)", "NodePrepConfig", ContentType} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Issue 21 item 11: another tool's part with broken base64 made nodeprep
// exit 2; it is skipped with a warning.
func TestForeignPartWithBrokenBase64IsSkipped(t *testing.T) {
	data := mimeMessage(
		[2]string{"Content-Type: text/cloud-config\r\nContent-Transfer-Encoding: base64", "this is !!! not base64 %%%\n"},
		[2]string{"Content-Type: application/nodeprep.dev", ours},
	)
	srcs, err := Extract([]byte(data))
	if err != nil {
		t.Fatalf("another tool's broken part failed nodeprep: %v", err)
	}
	if len(srcs) != 1 {
		t.Fatalf("%d sources", len(srcs))
	}
	found, err := Scan([]byte(data))
	if err != nil || len(found.Warnings) != 1 || !strings.Contains(found.Warnings[0].String(), "part 1 (text/cloud-config)") {
		t.Fatalf("warnings = %v, err = %v", found.Warnings, err)
	}
	// nodeprep's own broken part is still an error.
	bad := mimeMessage([2]string{"Content-Type: application/nodeprep.dev\r\nContent-Transfer-Encoding: base64", "!!! not base64\n"})
	if _, err := Extract([]byte(bad)); err == nil || !strings.Contains(err.Error(), "part 1 (application/nodeprep.dev)") {
		t.Errorf("a broken nodeprep part: err = %v", err)
	}
}

// Issue 21 item 9: parts of a type nothing on the node reads were dropped
// without a word.
func TestUnknownContentTypeIsAWarning(t *testing.T) {
	data := mimeMessage(
		[2]string{"Content-Type: application/nodeprep", ours},
		[2]string{"Content-Type: application/x-made-up", "x: 1\n"},
		[2]string{"Content-Type: text/x-shellscript", "#!/bin/sh\n"},
		[2]string{"Content-Type: text/cloud-config", "#cloud-config\n"},
		[2]string{"Content-Type: application/node.eks.aws", "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"},
		[2]string{"Content-Type: application/nodeprep.dev", ours},
	)
	found, err := Scan([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Sources) != 1 {
		t.Errorf("%d sources", len(found.Sources))
	}
	var got []string
	for _, w := range found.Warnings {
		got = append(got, w.String())
	}
	if len(got) != 2 || !strings.Contains(got[0], "part 1 (application/nodeprep)") || !strings.Contains(got[0], ContentType) ||
		!strings.Contains(got[1], "part 2 (application/x-made-up)") {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
}

package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Issue 21 item 11: 100,000 interfaces took 16-36 s and printed 200,000
// lines. The count is refused once, before any element is merged or
// validated (the merge by name is quadratic).
func TestHugeInterfaceListIsOneError(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces:\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "  - {name: n%d, subnetID: subnet-zz}\n", i)
	}
	doc := b.String()
	if len(doc) > MaxConfigBytes {
		doc = doc[:strings.LastIndex(doc[:MaxConfigBytes], "\n  - ")+1]
	}
	n := strings.Count(doc, "\n  - ")
	_, err := Load(Source{Name: "user-data", Data: []byte(doc)})
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d interfaces gave %d error lines, want 1; the first: %v", n, len(lines), lines[:min(3, len(lines))])
	}
	if want := fmt.Sprintf("spec.interfaces: %d interfaces; at most %d", n, MaxInterfaces); !strings.Contains(lines[0], want) {
		t.Errorf("got %q, want it to contain %q", lines[0], want)
	}
}

// Across parts the cap holds too: each part under it, the merge over it.
func TestMergedInterfacesOverTheCapIsOneError(t *testing.T) {
	var srcs []Source
	for p := range 3 {
		var b strings.Builder
		b.WriteString("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces:\n")
		for i := range MaxInterfaces {
			fmt.Fprintf(&b, "  - {name: p%dn%d, subnetID: subnet-zz}\n", p, i)
		}
		srcs = append(srcs, Source{Name: fmt.Sprintf("part %d", p), Data: []byte(b.String())})
	}
	_, err := Load(srcs...)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Path != "spec.interfaces" {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkLoadHugeInterfaceList(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces:\n")
	for i := 0; sb.Len() < MaxConfigBytes-64; i++ {
		fmt.Fprintf(&sb, "  - {name: n%d, subnetID: subnet-zz}\n", i)
	}
	doc := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(Source{Name: "user-data", Data: doc}); err == nil {
			b.Fatal("accepted")
		}
	}
}

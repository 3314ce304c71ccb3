package vm

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// NewT prepares the bed for a test, gated by NODEPREP_VM:
//
//	NODEPREP_VM=0  skip
//	NODEPREP_VM=1  the bed is required: if it cannot be set up the test fails
//	unset          run when the bed can be set up (root, or tools present);
//	               otherwise skip with the reason
//
// Under `go test -short` it skips unless NODEPREP_VM=1.
func NewT(t testing.TB) *Bed {
	t.Helper()
	mode := os.Getenv("NODEPREP_VM")
	switch {
	case mode == "0":
		t.Skip("vm: NODEPREP_VM=0")
	case mode != "1" && testing.Short():
		t.Skip("vm: -short (set NODEPREP_VM=1 to force)")
	}
	// First use may apt-get install QEMU and download a kernel (~30 s here).
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	bed, err := Setup(ctx)
	if err != nil {
		if mode != "1" && errors.Is(err, ErrUnavailable) {
			t.Skipf("vm: %v", err)
		}
		t.Fatalf("vm setup: %v", err)
	}
	return bed
}

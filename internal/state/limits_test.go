package state

import (
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// The instance type's limits outlive the run that asked for them, and only
// the same instance of the same type gets them back.
func TestLimitsAreKeptForTheSameInstanceOnly(t *testing.T) {
	root := hostfs.New(t.TempDir())
	s, err := Open(root, "run", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	l := eni.Limits{InstanceType: "c5.4xlarge", ENIsOnCard0: 8, IPv4PerENI: 30, Nitro: true, ENIsPerCard: map[int32]int{0: 8}}
	if err := s.SetLimits("i-1", l); err != nil {
		t.Fatal(err)
	}
	next, err := Open(root, "run", time.Unix(200, 0))
	if err != nil {
		t.Fatal(err)
	}
	got := next.KnownLimits("i-1", "c5.4xlarge")
	if got == nil || got.IPv4PerENI != 30 || got.ENIsPerCard[0] != 8 {
		t.Fatalf("next run's limits %+v, want %+v", got, l)
	}
	for _, c := range []struct{ id, typ string }{{"i-2", "c5.4xlarge"}, {"i-1", "m5.large"}, {"", "c5.4xlarge"}} {
		if got := next.KnownLimits(c.id, c.typ); got != nil {
			t.Errorf("limits of i-1 c5.4xlarge handed to %q %s: %+v", c.id, c.typ, got)
		}
	}
}

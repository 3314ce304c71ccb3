package eni_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
)

// fromStartOfSubnet takes from the start of the subnet: a node alone gets
// addresses among the first few free ones (after AWS's four), not anywhere
// in the /24 (the old 256-address window was the whole subnet: all three
// below .55 by chance about 1% of the time).
func TestFromStartOfSubnetTakesLowAddresses(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	res, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
		managed("a", f.data.ID, 1, api.PrivateIPFromStartOfSubnet),
		managed("b", f.data.ID, 2, api.PrivateIPFromStartOfSubnet),
		managed("c", f.data.ID, 3, api.PrivateIPFromStartOfSubnet),
	})
	if err != nil {
		t.Fatal(err)
	}
	limit := netip.MustParseAddr("10.9.8.55") // .4 + the window of 48, and the picks before
	if len(res) != 3 {
		t.Fatalf("%d ENIs", len(res))
	}
	for _, r := range res {
		if !r.PrimaryIP.Less(limit) {
			t.Errorf("%s got %s, want one of the lowest free addresses (below %s)", r.Interface, r.PrimaryIP, limit)
		}
	}
}

// An exhausted subnet is named, with what EC2 says it has left.
func TestFromStartOfSubnetExhaustedNamesTheSubnet(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/28")
	for _, cidr := range []string{"10.9.8.0/29", "10.9.8.8/29"} {
		if _, err := f.sim.AddSubnetCidrReservation(f.data.ID, cidr, "explicit", "held"); err != nil {
			t.Fatal(err)
		}
	}
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	_, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{managed("a", f.data.ID, 1, api.PrivateIPFromStartOfSubnet)})
	if err == nil {
		t.Fatal("no error for a subnet with no free address")
	}
	for _, want := range []string{"interface a", f.data.ID, "10.9.8.0/28", "available"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if m, _ := f.sim.CallCounts(); m != 0 {
		t.Errorf("%d mutating calls for a full subnet", m)
	}
}

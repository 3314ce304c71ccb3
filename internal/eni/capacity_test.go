package eni_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

func withCapacity(in api.Interface, secondaries, prefixes int32) api.Interface {
	in.SecondaryIPCount, in.IPv4PrefixCount = secondaries, prefixes
	return in
}

// podENI is what the conflist of a result is built from.
func podENI(r eni.Attachment) netconf.Network {
	return netconf.Network{Config: api.Interface{Name: r.Interface}, Attachment: r}
}

// TestTwoNodesInOneSubnetNeverShareAPodAddress boots two nodes at once into
// one subnet, each with a prefix ENI and a secondary-address ENI, and walks
// every address host-local could hand out from their conflists: none is
// handed out by both nodes, and the VPC routes each to the very ENI (and
// node) whose conflist holds it.
func TestTwoNodesInOneSubnetNeverShareAPodAddress(t *testing.T) {
	f := newFixture(t, 2, "10.9.8.0/24")
	results := make([][]eni.Attachment, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, inst := range f.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &eni.Reconciler{EC2: f.client, InstanceID: inst.ID}
			results[i], errs[i] = r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
				withCapacity(managed("pfx", f.data.ID, 1, api.PrivateIPDHCP), 0, 2),
				withCapacity(managed("sec", f.data.ID, 2, api.PrivateIPDHCP), 5, 0),
			})
		}()
	}
	wg.Wait()
	owner := map[netip.Addr]string{}
	for node, rs := range results {
		if errs[node] != nil {
			t.Fatalf("node %d: %v", node, errs[node])
		}
		for _, r := range rs {
			v4, _, err := podENI(r).PodRanges()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, rg := range v4 {
				for a := rg.Start; a.Compare(rg.End) <= 0; a = a.Next() {
					n++
					who := f.insts[node].ID + "/" + r.Interface
					if prev, dup := owner[a]; dup {
						t.Errorf("%s handed out by %s and %s", a, prev, who)
					}
					owner[a] = who
					route, ok := f.sim.RouteTo(a)
					if !ok || route.ENIID != r.ENIID || route.InstanceID != f.insts[node].ID {
						t.Errorf("pod address %s of %s: VPC routes it to %+v (%v)", a, who, route, ok)
					}
				}
			}
			if want := map[string]int{"pfx": 32, "sec": 5}[r.Interface]; n != want {
				t.Errorf("%s/%s: %d pod addresses, want %d", f.insts[node].ID, r.Interface, n, want)
			}
		}
	}
}

// TestPodAddressesCostNoExtraCallForACreatedENI measures the EC2 calls per
// created ENI without and with pod addresses: asking in
// CreateNetworkInterface itself adds none.
func TestPodAddressesCostNoExtraCallForACreatedENI(t *testing.T) {
	count := func(secondaries, prefixes int32) (mutating, all int) {
		f := newFixture(t, 1, "10.9.8.0/24")
		r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
		in := withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), secondaries, prefixes)
		res, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{in})
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0].SecondaryIPs) != int(secondaries) || len(res[0].IPv4Prefixes) != int(prefixes) {
			t.Fatalf("result %+v", res[0])
		}
		m, n := f.sim.CallCounts()
		return m, m + n
	}
	mPlain, allPlain := count(0, 0)
	mPfx, allPfx := count(0, 2)
	mSec, allSec := count(8, 0)
	t.Logf("EC2 calls per created ENI: no pod addresses %d (%d mutating); 2 /28 prefixes %d (%d mutating); 8 secondary IPs %d (%d mutating)",
		allPlain, mPlain, allPfx, mPfx, allSec, mSec)
	if mPfx != mPlain || mSec != mPlain || allPfx != allPlain || allSec != allPlain {
		t.Errorf("pod addresses added calls")
	}
}

// TestAdoptedENIIsToppedUpOnceAndThenLeftAlone reruns with more capacity
// than the ENI was created with: the re-run adopts it and assigns only the
// difference, and a third run changes nothing.
func TestAdoptedENIIsToppedUpOnceAndThenLeftAlone(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	ctx := context.Background()
	first, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ResetCalls()
	in := withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), 0, 3)
	second, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	if second[0].How != "adopted" || second[0].ENIID != first[0].ENIID || len(second[0].IPv4Prefixes) != 3 || second[0].IPv4Prefixes[0] != first[0].IPv4Prefixes[0] {
		t.Fatalf("second run %+v after %+v", second[0], first[0])
	}
	var assigns int
	for _, c := range f.sim.Calls() {
		if c.Action == "AssignPrivateIpAddresses" {
			assigns++
			if got := c.Params.Get("Ipv4PrefixCount"); got != "2" {
				t.Errorf("topped up with Ipv4PrefixCount=%s, want 2", got)
			}
		}
	}
	if assigns != 1 {
		t.Errorf("%d AssignPrivateIpAddresses calls, want 1", assigns)
	}
	f.sim.ResetCalls()
	third, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := f.sim.CallCounts(); m != 0 {
		t.Errorf("third run made %d mutating calls", m)
	}
	if fmt.Sprint(third[0].IPv4Prefixes) != fmt.Sprint(second[0].IPv4Prefixes) {
		t.Errorf("prefixes changed: %v then %v", second[0].IPv4Prefixes, third[0].IPv4Prefixes)
	}
}

// TestFragmentedSubnetNamesTheSubnetAndTheRemedyAndLeaksNothing.
func TestFragmentedSubnetNamesTheSubnetAndTheRemedyAndLeaksNothing(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	if _, err := f.sim.FragmentSubnet(f.data.ID); err != nil {
		t.Fatal(err)
	}
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	_, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), 0, 1)})
	var e *eni.Error
	if !errors.As(err, &e) || e.Code != "InsufficientCidrBlocks" || e.Interface != "a" || e.Call != "CreateNetworkInterface" {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{f.data.ID, "subnet CIDR reservation of type prefix", "--reservation-type prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	for _, n := range f.sim.ENIs() {
		if n.Tags[eni.TagInstanceID] != "" {
			t.Errorf("leaked ENI %s", n.ID)
		}
	}
}

func TestPerTypeLimitIsCheckedBeforeAnyEC2Call(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	limits, err := eni.DescribeLimits(context.Background(), f.client, "t3.medium") // 6 addresses per ENI
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ResetCalls()
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID, Limits: &limits}
	_, err = r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
		withCapacity(managed("ok", f.data.ID, 1, api.PrivateIPDHCP), 0, 5),
		withCapacity(managed("big", f.data.ID, 2, api.PrivateIPDHCP), 0, 6),
	})
	if !errors.Is(err, eni.ErrLimit) || !strings.Contains(err.Error(), "interface big") || strings.Contains(err.Error(), "interface ok") {
		t.Fatalf("error %v", err)
	}
	if calls := f.sim.Calls(); len(calls) != 0 {
		t.Errorf("%d EC2 calls for a config the instance type cannot hold", len(calls))
	}
}

// TestLostTopUpAnswerAssignsNoMore drops the answer to the top-up after EC2
// applied it, as a broken connection would: AssignPrivateIpAddresses has no
// client token, so a blind retry would assign the prefixes twice.
func TestLostTopUpAnswerAssignsNoMore(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{managed("a", f.data.ID, 1, api.PrivateIPDHCP)}); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	f.sim.OnMutation(func(action string, _ int) {
		if action == "AssignPrivateIpAddresses" && dropped == 0 {
			dropped++
			panic(http.ErrAbortHandler)
		}
	})
	res, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.sim.ENI(res[0].ENIID)
	if dropped != 1 || len(e.IPv4Prefixes) != 2 || len(res[0].IPv4Prefixes) != 2 {
		t.Errorf("after a lost answer: EC2 holds %v, result %v; want 2 prefixes", e.IPv4Prefixes, res[0].IPv4Prefixes)
	}
}

// TestIPv6PrefixesAtCreateAndAsTopUp asks an ENI in a dual-stack subnet for
// a /80 at create, then for two: the conflist gets an IPv6 range set whose
// addresses the VPC routes to the ENI, and the top-up is one call.
func TestIPv6PrefixesAtCreateAndAsTopUp(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	sn, err := f.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.16.0/24", IPv6CIDR: "2600:1f14:abc:de00::/64"})
	if err != nil {
		t.Fatal(err)
	}
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	in := managed("v6", sn.ID, 1, api.PrivateIPDHCP)
	in.IPv6PrefixCount = 1
	res, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].IPv6Prefixes) != 1 || res[0].IPv6Subnet.String() != "2600:1f14:abc:de00::/64" {
		t.Fatalf("result %+v", res[0])
	}
	f.sim.ResetCalls()
	in.IPv6PrefixCount = 2
	res, err = r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := f.sim.CallCounts(); m != 1 || len(res[0].IPv6Prefixes) != 2 {
		t.Errorf("top-up: %d mutating calls, prefixes %v; want 1 call and 2 prefixes", m, res[0].IPv6Prefixes)
	}
	facts := podENI(res[0])
	_, v6, err := facts.PodRanges()
	if err != nil || len(v6) == 0 {
		t.Fatalf("IPv6 ranges %v, %v", v6, err)
	}
	for _, rg := range v6 {
		for _, a := range []netip.Addr{rg.Start, rg.End} {
			if route, ok := f.sim.RouteTo(a); !ok || route.ENIID != res[0].ENIID {
				t.Errorf("%s routes to %+v", a, route)
			}
		}
	}
	if _, err := netconf.Build(facts, netconf.Options{}); err != nil {
		t.Error(err)
	}
}

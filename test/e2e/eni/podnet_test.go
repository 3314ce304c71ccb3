package eni_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// TestConflistsHoldOnlyAddressesTheVPCRoutesToTheNode boots a node whose
// ENIs ask for a /28 prefix and for secondary addresses, then checks the
// conflists written into Multus's confDir: every address host-local can
// hand out is one the VPC routes to that ENI on this instance, the primary
// is never among them, and a re-run rewrites nothing.
func TestConflistsHoldOnlyAddressesTheVPCRoutesToTheNode(t *testing.T) {
	e := newEnv(t, envSpec{})
	pfx := e.managed("pods1", 1, api.PrivateIPDHCP)
	pfx.IPv4PrefixCount = 1
	sec := e.managed("pods2", 2, api.PrivateIPFromStartOfSubnet)
	sec.SecondaryIPCount = 3
	plain := e.managed("host3", 3, api.PrivateIPDHCP)
	ifaces := []api.Interface{pfx, sec, plain}
	res := e.run(context.Background(), ifaces, false)
	if res.err != nil {
		t.Fatalf("run: %v", res.err)
	}
	e.checkConverged(ifaces, res.state)
	files := map[string][]byte{}
	for _, in := range ifaces {
		p := netconf.Path(api.DefaultNetworkConfDir, in.Name)
		data, err := e.root.ReadFile(p)
		if in.Name == "host3" {
			if err == nil {
				t.Errorf("conflist for host3, which asks for no pod addresses:\n%s", data)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		files[p] = data
		list, err := libcni.ConfListFromBytes(data)
		if err != nil || list.Name != in.Name {
			t.Fatalf("%s: %v", p, err)
		}
		rec := res.state.Interfaces[in.Name]
		facts := netconf.Network{Config: in, Attachment: rec.ENI}
		if rebuilt, _ := netconf.Build(facts, netconf.Options{}); !bytes.Equal(rebuilt, data) {
			t.Fatalf("%s is not the conflist of the recorded ENI facts", p)
		}
		v4, _, err := facts.PodRanges()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range v4 {
			for a := r.Start; a.Compare(r.End) <= 0; a = a.Next() {
				n++
				route, ok := e.sim.RouteTo(a)
				if !ok || route.ENIID != rec.ENI.ENIID || route.InstanceID != e.inst.ID || a == facts.PrimaryIP {
					t.Errorf("%s: pod address %s routes to %+v (%v), want %s on %s", in.Name, a, route, ok, rec.ENI.ENIID, e.inst.ID)
				}
			}
		}
		if want := map[string]int{"pods1": 16, "pods2": 3}[in.Name]; n != want {
			t.Errorf("%s: %d pod addresses, want %d", in.Name, n, want)
		}
	}
	before := e.mutations()
	again := e.run(context.Background(), ifaces, false)
	if again.err != nil {
		t.Fatal(again.err)
	}
	if m := e.mutations() - before; m != 0 {
		t.Errorf("re-run made %d mutating EC2 calls", m)
	}
	for p, data := range files {
		now, err := e.root.ReadFile(p)
		if err != nil || !bytes.Equal(now, data) {
			t.Errorf("%s changed on the re-run: host-local leases would fall outside the ranges", p)
		}
	}
	// A config without pod interfaces removes the conflists nodeprep wrote.
	if res := e.run(context.Background(), []api.Interface{plain}, false); res.err != nil {
		t.Fatal(res.err)
	}
	for p := range files {
		if e.root.Exists(p) {
			t.Errorf("%s left behind after its interface left the config", p)
		}
	}
}

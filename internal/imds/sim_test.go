package imds_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// TestInterfacesFromSimulator reads the attached interfaces as the
// simulator's IMDS shows them: primary and launch-template ENIs on a
// two-card instance type.
func TestInterfacesFromSimulator(t *testing.T) {
	sim := ec2sim.New(ec2sim.Config{Region: "eu-central-1", Seed: 7})
	defer sim.Close()
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.1.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.1.8.0/22"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{
		Type:     "c6in.32xlarge",
		SubnetID: primary.ID,
		LaunchTemplateENIs: []ec2sim.ENISpec{
			{SubnetID: data.ID, DeviceIndex: 1, NetworkCardIndex: 1, SecondaryIPs: 2},
			{SubnetID: data.ID, DeviceIndex: 2},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.IMDSHandler(inst.ID))
	defer srv.Close()
	c := imds.New(srv.URL)
	ctx := context.Background()

	nics, err := c.Interfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nics) != 3 {
		t.Fatalf("%d NICs, want 3: %+v", len(nics), nics)
	}
	byID := map[string]ec2sim.ENI{}
	for _, e := range sim.ENIs() {
		byID[e.ID] = e
	}
	// Ordered by card, then device number.
	wantOrder := [][2]int{{0, 0}, {0, 2}, {1, 1}}
	for i, n := range nics {
		if got := [2]int{n.NetworkCard, n.DeviceNumber}; got != wantOrder[i] {
			t.Errorf("nic %d at card/device %v, want %v", i, got, wantOrder[i])
		}
		e, ok := byID[n.InterfaceID]
		if !ok {
			t.Errorf("nic %d: unknown interface %q", i, n.InterfaceID)
			continue
		}
		if n.MAC != e.MAC || n.SubnetID != e.SubnetID || len(n.LocalIPv4s) != len(e.PrivateIPs) || n.LocalIPv4s[0] != e.PrivateIPs[0] {
			t.Errorf("nic %d = %+v, EC2 has %s %s %v", i, n, e.MAC, e.SubnetID, e.PrivateIPs)
		}
		wantCIDR := primary.CIDR
		if e.SubnetID == data.ID {
			wantCIDR = data.CIDR
		}
		if n.SubnetCIDR != wantCIDR {
			t.Errorf("nic %d subnet CIDR %q, want %q", i, n.SubnetCIDR, wantCIDR)
		}
	}

	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.InstanceID != inst.ID || id.Region != "eu-central-1" || id.InstanceType != "c6in.32xlarge" || id.AvailabilityZone != inst.AvailabilityZone {
		t.Errorf("Identity = %+v", id)
	}
	if _, err := c.UserData(ctx); !errors.Is(err, imds.ErrNoUserData) {
		t.Errorf("UserData without user data: %v, want ErrNoUserData", err)
	}
	if err := sim.SetUserData(inst.ID, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if ud, err := c.UserData(ctx); err != nil || string(ud) != "hello" {
		t.Errorf("UserData = %q, %v", ud, err)
	}
}

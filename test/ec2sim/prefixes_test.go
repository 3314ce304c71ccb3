package ec2sim_test

import (
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestCreateWithPrefixesDelegatesFreeAlignedBlocksAndRoutesThem(t *testing.T) {
	e := start(t, setup{cidr: "10.0.16.0/24"})
	out, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv4PrefixCount: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.NetworkInterface.NetworkInterfaceId)
	if n := len(out.NetworkInterface.Ipv4Prefixes); n != 3 {
		t.Fatalf("%d prefixes in the answer", n)
	}
	sn := netip.MustParsePrefix("10.0.16.0/24")
	primary := netip.MustParseAddr(aws.ToString(out.NetworkInterface.PrivateIpAddress))
	for _, p := range out.NetworkInterface.Ipv4Prefixes {
		pfx := netip.MustParsePrefix(aws.ToString(p.Ipv4Prefix))
		if pfx.Bits() != 28 || pfx.Masked() != pfx || !sn.Contains(pfx.Addr()) || pfx.Contains(primary) {
			t.Errorf("prefix %s: want an aligned /28 of the subnet without the primary %s", pfx, primary)
		}
		for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
			if r, ok := e.sim.RouteTo(a); !ok || r.ENIID != id || r.InstanceID != "" {
				t.Fatalf("%s routes to %+v %v, want unattached %s", a, r, ok, id)
			}
		}
	}
	// Describe shows them; a second ENI never gets an address inside them.
	d, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil || len(d.NetworkInterfaces[0].Ipv4Prefixes) != 3 {
		t.Fatalf("describe: %v %+v", err, d)
	}
	other, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), SecondaryPrivateIpAddressCount: aws.Int32(150)})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range other.NetworkInterface.PrivateIpAddresses {
		if r, _ := e.sim.RouteTo(netip.MustParseAddr(aws.ToString(a.PrivateIpAddress))); r.ENIID != aws.ToString(other.NetworkInterface.NetworkInterfaceId) {
			t.Fatalf("%s of the second ENI routes to %s", aws.ToString(a.PrivateIpAddress), r.ENIID)
		}
	}
	if _, ok := e.sim.RouteTo(netip.MustParseAddr("10.0.17.1")); ok {
		t.Error("an address outside every subnet is routable")
	}
	// Deleting the ENI returns its prefixes to the subnet.
	if _, err := e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.sim.RouteTo(netip.MustParsePrefix(aws.ToString(out.NetworkInterface.Ipv4Prefixes[0].Ipv4Prefix)).Addr()); ok {
		t.Error("a deleted ENI's prefix is still routable")
	}
}

func TestFragmentedSubnetAnswersInsufficientCidrBlocks(t *testing.T) {
	e := start(t, setup{cidr: "10.0.16.0/24"})
	if _, err := e.sim.FragmentSubnet(e.subnet.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "InsufficientCidrBlocks")
	// Single addresses are still free, and the failed create left no ENI.
	before := len(e.sim.ENIs())
	if _, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), SecondaryPrivateIpAddressCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	if got := len(e.sim.ENIs()); got != before+1 {
		t.Errorf("%d ENIs, want %d", got, before+1)
	}
}

func TestPrefixReservationIsUsedFirstAndExplicitOnesNever(t *testing.T) {
	e := start(t, setup{cidr: "10.0.16.0/24"})
	if _, err := e.sim.AddSubnetCidrReservation(e.subnet.ID, "10.0.16.128/28", "prefix", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.AddSubnetCidrReservation(e.subnet.ID, "10.0.16.0/25", "explicit", ""); err != nil {
		t.Fatal(err)
	}
	out, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv4PrefixCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{aws.ToString(out.NetworkInterface.Ipv4Prefixes[0].Ipv4Prefix), aws.ToString(out.NetworkInterface.Ipv4Prefixes[1].Ipv4Prefix)}
	if got[0] != "10.0.16.128/28" {
		t.Errorf("first prefix %s, want the reserved 10.0.16.128/28", got[0])
	}
	if netip.MustParsePrefix("10.0.16.0/25").Contains(netip.MustParsePrefix(got[1]).Addr()) {
		t.Errorf("prefix %s inside an explicit reservation", got[1])
	}
}

func TestPrefixesAndSecondariesCountAgainstThePerENILimit(t *testing.T) {
	e := start(t, setup{cidr: "10.0.16.0/22", instType: "t3.medium"}) // 6 addresses per ENI
	out, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv4PrefixCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	id := out.NetworkInterface.NetworkInterfaceId
	if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: aws.String(e.inst.ID), NetworkInterfaceId: id, DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, Ipv4PrefixCount: aws.Int32(3)}); err != nil {
		t.Fatal(err) // 1 + 2 + 3 = 6
	}
	_, err = e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, Ipv4PrefixCount: aws.Int32(1)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
	_, err = e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
	_, err = e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv4PrefixCount: aws.Int32(1), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterCombination")
}

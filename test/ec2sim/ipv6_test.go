package ec2sim_test

import (
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

func TestIPv6PrefixesAndAddressesAreRoutedToTheirENI(t *testing.T) {
	e := start(t, setup{})
	sn, err := e.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.32.0/24", IPv6CIDR: "2600:1f14:abc:de00::/64"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{sn.ID}})
	if err != nil || len(d.Subnets[0].Ipv6CidrBlockAssociationSet) != 1 || aws.ToString(d.Subnets[0].Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock) != "2600:1f14:abc:de00::/64" {
		t.Fatalf("describe: %v %+v", err, d)
	}
	out, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sn.ID), Ipv6PrefixCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.NetworkInterface.NetworkInterfaceId)
	if len(out.NetworkInterface.Ipv6Prefixes) != 2 {
		t.Fatalf("prefixes %+v", out.NetworkInterface.Ipv6Prefixes)
	}
	v6 := netip.MustParsePrefix("2600:1f14:abc:de00::/64")
	for _, p := range out.NetworkInterface.Ipv6Prefixes {
		pfx := netip.MustParsePrefix(aws.ToString(p.Ipv6Prefix))
		if pfx.Bits() != 80 || !v6.Contains(pfx.Addr()) {
			t.Errorf("prefix %s: want a /80 of the subnet's /64", pfx)
		}
		if r, ok := e.sim.RouteTo(pfx.Addr().Next()); !ok || r.ENIID != id {
			t.Errorf("%s routes to %+v", pfx.Addr().Next(), r)
		}
	}
	a, err := e.ec2.AssignIpv6Addresses(ctx(t), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6AddressCount: aws.Int32(3)})
	if err != nil || len(a.AssignedIpv6Addresses) != 3 {
		t.Fatalf("assign: %v %+v", err, a)
	}
	got, _ := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if n := got.NetworkInterfaces[0]; len(n.Ipv6Addresses) != 3 || len(n.Ipv6Prefixes) != 2 {
		t.Errorf("describe shows %d addresses and %d prefixes", len(n.Ipv6Addresses), len(n.Ipv6Prefixes))
	}
	_, err = e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.subnet.ID), Ipv6AddressCount: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterValue")
}

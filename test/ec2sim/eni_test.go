package ec2sim_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

const noManage = "node.k8s.amazonaws.com/no_manage"

func createENI(t testing.TB, e *env, in *ec2.CreateNetworkInterfaceInput) types.NetworkInterface {
	t.Helper()
	if in.SubnetId == nil {
		in.SubnetId = aws.String(e.subnet.ID)
	}
	out, err := e.ec2.CreateNetworkInterface(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateNetworkInterface: %v", err)
	}
	return *out.NetworkInterface
}

func tagSpec(kv ...string) []types.TagSpecification {
	ts := types.TagSpecification{ResourceType: types.ResourceTypeNetworkInterface}
	for i := 0; i+1 < len(kv); i += 2 {
		ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{ts}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func describeAll(t testing.TB, e *env, in *ec2.DescribeNetworkInterfacesInput) []types.NetworkInterface {
	t.Helper()
	var out []types.NetworkInterface
	p := ec2.NewDescribeNetworkInterfacesPaginator(e.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("DescribeNetworkInterfaces page: %v", err)
		}
		out = append(out, page.NetworkInterfaces...)
	}
	return out
}

func TestIDsAndMACsLookReal(t *testing.T) {
	e := start(t, setup{})
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	id := aws.ToString(ni.NetworkInterfaceId)
	if len(id) != len("eni-")+17 || !strings.HasPrefix(id, "eni-") {
		t.Errorf("ENI ID %q: want eni- + 17 hex digits", id)
	}
	if !strings.HasPrefix(e.subnet.ID, "subnet-") || len(e.subnet.ID) != len("subnet-")+17 {
		t.Errorf("subnet ID %q", e.subnet.ID)
	}
	if !strings.HasPrefix(e.inst.ID, "i-") || len(e.inst.ID) != len("i-")+17 {
		t.Errorf("instance ID %q", e.inst.ID)
	}
	mac := aws.ToString(ni.MacAddress)
	var first byte
	if _, err := fmt.Sscanf(mac[:2], "%02x", &first); err != nil || first&0x02 == 0 || first&0x01 != 0 {
		t.Errorf("MAC %q is not a locally administered unicast address", mac)
	}
	if ni.Status != types.NetworkInterfaceStatus("pending") {
		t.Errorf("create answers status %q, want pending", ni.Status)
	}
	att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: &id, DeviceIndex: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if a := aws.ToString(att.AttachmentId); !strings.HasPrefix(a, "eni-attach-") || len(a) != len("eni-attach-")+17 {
		t.Errorf("attachment ID %q", a)
	}
}

func TestDescribeNetworkInterfacesFiltersAndPagination(t *testing.T) {
	e := start(t, setup{instType: "c5.4xlarge"})
	var multus []types.NetworkInterface
	for i := 0; i < 12; i++ {
		kv := []string{"role", "other"}
		if i%2 == 0 {
			kv = []string{"role", "multus", noManage, "true"}
		}
		ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{TagSpecifications: tagSpec(kv...)})
		if i%2 == 0 {
			multus = append(multus, ni)
		}
	}
	// Attach two of the multus ENIs.
	for i, ni := range multus[:2] {
		if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(int32(i + 1)),
		}); err != nil {
			t.Fatal(err)
		}
	}

	all := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)})
	if len(all) != 13 { // 12 + the primary ENI
		t.Fatalf("paginated describe returned %d ENIs, want 13", len(all))
	}
	seen := map[string]bool{}
	for _, ni := range all {
		if seen[*ni.NetworkInterfaceId] {
			t.Fatalf("page overlap: %s twice", *ni.NetworkInterfaceId)
		}
		seen[*ni.NetworkInterfaceId] = true
	}
	// The paginator must have made 3 calls (5+5+3).
	calls := 0
	for _, c := range e.sim.Calls() {
		if c.Action == "DescribeNetworkInterfaces" {
			calls++
		}
	}
	if calls != 3 {
		t.Errorf("paginator made %d calls, want 3", calls)
	}

	cases := []struct {
		name    string
		filters []types.Filter
		ids     []string
		want    int
	}{
		{"tag", []types.Filter{filter("tag:"+noManage, "true")}, nil, 6},
		{"tag wildcard", []types.Filter{filter("tag:role", "mul*")}, nil, 6},
		{"tag-key", []types.Filter{filter("tag-key", "role")}, nil, 12},
		{"attached to instance", []types.Filter{filter("attachment.instance-id", e.inst.ID)}, nil, 3},
		{"tag AND instance", []types.Filter{filter("attachment.instance-id", e.inst.ID), filter("tag:role", "multus")}, nil, 2},
		{"status available", []types.Filter{filter("status", "available")}, nil, 10},
		{"status in-use", []types.Filter{filter("status", "in-use")}, nil, 3},
		{"subnet", []types.Filter{filter("subnet-id", e.subnet.ID)}, nil, 13},
		{"other subnet", []types.Filter{filter("subnet-id", "subnet-0000000000000000f")}, nil, 0},
		{"mac", []types.Filter{filter("mac-address", *multus[3].MacAddress)}, nil, 1},
		{"id filter, two values", []types.Filter{filter("network-interface-id", *multus[0].NetworkInterfaceId, *multus[1].NetworkInterfaceId)}, nil, 2},
		{"ids", nil, []string{*multus[4].NetworkInterfaceId, *multus[5].NetworkInterfaceId}, 2},
		{"ids and filter", []types.Filter{filter("status", "in-use")}, []string{*multus[0].NetworkInterfaceId, *multus[5].NetworkInterfaceId}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{Filters: tc.filters, NetworkInterfaceIds: tc.ids})
			if len(got) != tc.want {
				t.Fatalf("got %d ENIs, want %d", len(got), tc.want)
			}
		})
	}

	_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("no-such-filter", "x")}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"bogus"}})
	wantCode(t, err, "InvalidNetworkInterfaceID.Malformed")
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*multus[0].NetworkInterfaceId}, MaxResults: aws.Int32(5)})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NextToken: aws.String("garbage")})
	wantCode(t, err, "InvalidPaginationToken")
}

func TestNetworkInterfaceAvailableWaiter(t *testing.T) {
	e := start(t, setup{})
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	w := ec2.NewNetworkInterfaceAvailableWaiter(e.ec2)
	if err := w.Wait(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}}, 0); err == nil {
		t.Fatal("waiter accepted a zero max wait")
	}
	if err := w.Wait(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}}, 10e9); err != nil {
		t.Fatalf("NetworkInterfaceAvailable waiter: %v", err)
	}
}

func TestCreateNetworkInterfaceParameters(t *testing.T) {
	e := start(t, setup{cidr: "10.0.2.0/24"})
	addGroups(t, e.sim, "sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb")
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{
		Description:                    aws.String("multus net1"),
		PrivateIpAddress:               aws.String("10.0.2.10"),
		SecondaryPrivateIpAddressCount: aws.Int32(2),
		Groups:                         []string{"sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"},
		TagSpecifications:              tagSpec(noManage, "true", "Name", "net1"),
	})
	if aws.ToString(ni.PrivateIpAddress) != "10.0.2.10" || len(ni.PrivateIpAddresses) != 3 || !aws.ToBool(ni.PrivateIpAddresses[0].Primary) {
		t.Fatalf("addresses: primary %v, all %+v", aws.ToString(ni.PrivateIpAddress), ni.PrivateIpAddresses)
	}
	for _, a := range ni.PrivateIpAddresses[1:] {
		addr := netip.MustParseAddr(aws.ToString(a.PrivateIpAddress))
		if aws.ToBool(a.Primary) || !netip.MustParsePrefix("10.0.2.0/24").Contains(addr) {
			t.Errorf("secondary %v", addr)
		}
		if b := addr.As4()[3]; b < 4 || b == 255 {
			t.Errorf("secondary %v is an AWS-reserved address", addr)
		}
	}
	if aws.ToString(ni.Description) != "multus net1" || len(ni.Groups) != 2 || aws.ToString(ni.Groups[1].GroupId) != "sg-0bbbbbbbbbbbbbbbb" {
		t.Errorf("description %q groups %+v", aws.ToString(ni.Description), ni.Groups)
	}
	if len(ni.TagSet) != 2 || aws.ToString(ni.SubnetId) != e.subnet.ID || aws.ToString(ni.VpcId) != e.subnet.VPCID {
		t.Errorf("tags %+v subnet %v vpc %v", ni.TagSet, aws.ToString(ni.SubnetId), aws.ToString(ni.VpcId))
	}

	errCases := []struct {
		name string
		in   ec2.CreateNetworkInterfaceInput
		code string
	}{
		{"address in use", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2.10")}, "InvalidIPAddress.InUse"},
		{"network address", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2.0")}, "InvalidParameterValue"},
		{"router address", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2.1")}, "InvalidParameterValue"},
		{"reserved .3", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2.3")}, "InvalidParameterValue"},
		{"broadcast", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2.255")}, "InvalidParameterValue"},
		{"outside subnet", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.3.10")}, "InvalidParameterValue"},
		{"not an address", ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.2")}, "InvalidParameterValue"},
		{"no subnet", ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0123456789abcdef0")}, "InvalidSubnetID.NotFound"},
		{"wrong tag resource type", ec2.CreateNetworkInterfaceInput{TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}}, "InvalidParameterValue"},
		{"aws: tag prefix", ec2.CreateNetworkInterfaceInput{TagSpecifications: tagSpec("aws:x", "y")}, "InvalidParameterValue"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.SubnetId == nil {
				in.SubnetId = aws.String(e.subnet.ID)
			}
			_, err := e.ec2.CreateNetworkInterface(ctx(t), &in)
			wantCode(t, err, tc.code)
		})
	}
	if n := len(e.sim.ENIs()); n != 2 {
		t.Errorf("failed creates left ENIs behind: %d ENIs, want 2", n)
	}
}

func TestInsufficientFreeAddresses(t *testing.T) {
	// A /28 has 16 addresses, 5 of them AWS-reserved; the primary ENI holds one.
	e := start(t, setup{cidr: "10.0.9.0/28"})
	for i := 0; i < 10; i++ {
		createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	}
	_, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	out, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{e.subnet.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(out.Subnets[0].AvailableIpAddressCount); n != 0 {
		t.Errorf("AvailableIpAddressCount %d, want 0", n)
	}
}

func TestClientTokenIdempotency(t *testing.T) {
	e := start(t, setup{})
	in := func(desc string) *ec2.CreateNetworkInterfaceInput {
		return &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID, ClientToken: aws.String("nodeprep-net1"), Description: aws.String(desc), TagSpecifications: tagSpec(noManage, "true")}
	}
	first, err := e.ec2.CreateNetworkInterface(ctx(t), in("net1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.ec2.CreateNetworkInterface(ctx(t), in("net1"))
	if err != nil {
		t.Fatal(err)
	}
	if *first.NetworkInterface.NetworkInterfaceId != *again.NetworkInterface.NetworkInterfaceId {
		t.Fatalf("retry with the same token created %s, want %s", *again.NetworkInterface.NetworkInterfaceId, *first.NetworkInterface.NetworkInterfaceId)
	}
	if aws.ToString(again.ClientToken) != "nodeprep-net1" {
		t.Errorf("clientToken %q", aws.ToString(again.ClientToken))
	}
	if n := len(e.sim.ENIs()); n != 2 {
		t.Fatalf("%d ENIs, want 2 (primary + one created)", n)
	}
	_, err = e.ec2.CreateNetworkInterface(ctx(t), in("other"))
	wantCode(t, err, "IdempotentParameterMismatch")
	// Tokens are not shared: a fresh one creates a new ENI.
	fresh := in("net1")
	fresh.ClientToken = aws.String("nodeprep-net2")
	if _, err := e.ec2.CreateNetworkInterface(ctx(t), fresh); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.ENIs()); n != 3 {
		t.Fatalf("%d ENIs, want 3", n)
	}
}

func TestAttachErrors(t *testing.T) {
	e := start(t, setup{instType: "c5.large", ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1}}})
	a := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	b := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	attach := func(ni types.NetworkInterface, dev, card int32) error {
		_, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(dev), NetworkCardIndex: aws.Int32(card),
		})
		return err
	}
	err := attach(a, 1, 0)
	wantCode(t, err, "InvalidParameterValue")
	if !strings.Contains(err.Error(), "already has an interface attached at device index '1'") {
		t.Errorf("message: %v", err)
	}
	wantCode(t, attach(a, 0, 0), "InvalidParameterValue")
	wantCode(t, attach(a, 2, 1), "InvalidParameterValue") // c5.large has one network card
	if err := attach(a, 2, 0); err != nil {
		t.Fatal(err)
	}
	err = attach(b, 3, 0)
	wantCode(t, err, "AttachmentLimitExceeded")
	if !strings.Contains(err.Error(), "Interface count 4 exceeds the limit for c5.large") {
		t.Errorf("message: %v", err)
	}
	wantCode(t, attach(a, 3, 0), "InvalidNetworkInterface.InUse")
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: aws.String("i-0123456789abcdef0"), NetworkInterfaceId: b.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}

func TestMultipleNetworkCards(t *testing.T) {
	e := start(t, setup{instType: "c6in.32xlarge"})
	// 16 ENIs, 8 per card: fill card 1 with device indexes 0..7.
	for i := 0; i < 8; i++ {
		ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
		if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
			InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(int32(i)), NetworkCardIndex: aws.Int32(1),
		}); err != nil {
			t.Fatalf("card 1 device %d: %v", i, err)
		}
	}
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	_, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(8), NetworkCardIndex: aws.Int32(1),
	})
	wantCode(t, err, "AttachmentLimitExceeded")
	out, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1), NetworkCardIndex: aws.Int32(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.NetworkCardIndex) != 0 {
		t.Errorf("networkCardIndex %d", aws.ToInt32(out.NetworkCardIndex))
	}
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		InstanceId: &e.inst.ID, NetworkInterfaceId: createENI(t, e, &ec2.CreateNetworkInterfaceInput{}).NetworkInterfaceId, DeviceIndex: aws.Int32(1), NetworkCardIndex: aws.Int32(2),
	})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDeleteNetworkInterface(t *testing.T) {
	for _, code := range []string{"", "InvalidNetworkInterface.InUse"} {
		t.Run("in-use code "+code, func(t *testing.T) {
			e := start(t, setup{cfg: ec2sim.Config{DeleteInUseCode: code}})
			ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.1.50")})
			att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId})
			want := code
			if want == "" {
				want = "InvalidParameterValue"
			}
			wantCode(t, err, want)
			if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId}); err != nil {
				t.Fatal(err)
			}
			_, err = e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId})
			wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
			// The address went back to the pool.
			createENI(t, e, &ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.1.50")})
		})
	}
}

func TestDetachPrimaryAndUnknownAttachment(t *testing.T) {
	e := start(t, setup{})
	primary, _ := e.sim.ENI(e.inst.PrimaryENIID)
	_, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: &primary.Attachment.ID})
	wantCode(t, err, "OperationNotPermitted")
	_, err = e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-0123456789abcdef0")})
	wantCode(t, err, "InvalidAttachmentID.NotFound")
}

func TestModifyNetworkInterfaceAttribute(t *testing.T) {
	e := start(t, setup{})
	addGroups(t, e.sim, "sg-0ccccccccccccccccc")
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	id := ni.NetworkInterfaceId
	att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: id, DeviceIndex: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	mods := []*ec2.ModifyNetworkInterfaceAttributeInput{
		{NetworkInterfaceId: id, Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(true)}},
		{NetworkInterfaceId: id, SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}},
		{NetworkInterfaceId: id, Description: &types.AttributeValue{Value: aws.String("dpdk net1")}},
		{NetworkInterfaceId: id, Groups: []string{"sg-0ccccccccccccccccc"}},
	}
	for _, m := range mods {
		if _, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := e.sim.ENI(*id)
	if !got.Attachment.DeleteOnTermination || got.SourceDestCheck || got.Description != "dpdk net1" || len(got.SecurityGroupIDs) != 1 || got.SecurityGroupIDs[0] != "sg-0ccccccccccccccccc" {
		t.Fatalf("after modify: %+v attachment %+v", got, got.Attachment)
	}
	d := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*id}})
	if !aws.ToBool(d[0].Attachment.DeleteOnTermination) || aws.ToBool(d[0].SourceDestCheck) {
		t.Errorf("describe disagrees: %+v", d[0].Attachment)
	}
	_, err = e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: id,
		SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(true)}, Description: &types.AttributeValue{Value: aws.String("x")}})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: id,
		Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String("eni-attach-0123456789abcdef0"), DeleteOnTermination: aws.Bool(true)}})
	wantCode(t, err, "InvalidAttachmentID.NotFound")
	_, err = e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0"),
		Description: &types.AttributeValue{Value: aws.String("x")}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}

func TestCreateTagsAndAssignPrivateIPs(t *testing.T) {
	e := start(t, setup{instType: "t3.medium"}) // 6 IPv4 addresses per ENI
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	id := ni.NetworkInterfaceId
	if _, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{*id, e.inst.ID}, Tags: []types.Tag{{Key: aws.String(noManage), Value: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	if got := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("tag:"+noManage, "true")}}); len(got) != 1 || *got[0].NetworkInterfaceId != *id {
		t.Fatalf("tag filter after CreateTags: %d ENIs", len(got))
	}
	_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{"eni-0123456789abcdef0"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")

	out, err := e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AssignedPrivateIpAddresses) != 2 || aws.ToString(out.NetworkInterfaceId) != *id {
		t.Fatalf("assigned %+v", out)
	}
	if _, err := e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, PrivateIpAddresses: []string{"10.0.1.77"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.sim.ENI(*id)
	if len(got.PrivateIPs) != 4 || got.PrivateIPs[3] != "10.0.1.77" {
		t.Fatalf("addresses %v", got.PrivateIPs)
	}
	_, err = e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &e.inst.PrimaryENIID, PrivateIpAddresses: []string{"10.0.1.77"}})
	wantCode(t, err, "InvalidIPAddress.InUse")
	if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: id, DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.ec2.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: aws.Int32(3)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
}

func TestSubnetsAndCidrReservations(t *testing.T) {
	e := start(t, setup{cidr: "10.0.4.0/28"})
	// Reserve .8-.15 explicitly: auto-assignment may only use .4-.7 (minus
	// the primary ENI's address), never .8-.14, and never .15 (broadcast).
	r, err := e.sim.AddSubnetCidrReservation(e.subnet.ID, "10.0.4.8/29", "explicit", "multus static")
	if err != nil {
		t.Fatal(err)
	}
	// The primary ENI got its address before the reservation existed.
	want := map[string]bool{}
	for _, ip := range []string{"10.0.4.4", "10.0.4.5", "10.0.4.6", "10.0.4.7"} {
		if ip != e.inst.PrivateIP {
			want[ip] = true
		}
	}
	used := map[string]bool{}
	for {
		out, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
		if err != nil {
			wantCode(t, err, "InsufficientFreeAddressesInSubnet")
			break
		}
		used[aws.ToString(out.NetworkInterface.PrivateIpAddress)] = true
	}
	if fmt.Sprint(used) != fmt.Sprint(want) {
		t.Fatalf("auto-assigned %v, want exactly %v", used, want)
	}
	// Explicit reservations are for manual assignment.
	manual := "10.0.4.9"
	if e.inst.PrivateIP == manual {
		manual = "10.0.4.10"
	}
	createENI(t, e, &ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String(manual)})

	res, err := e.ec2.GetSubnetCidrReservations(ctx(t), &ec2.GetSubnetCidrReservationsInput{SubnetId: &e.subnet.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SubnetIpv4CidrReservations) != 1 || aws.ToString(res.SubnetIpv4CidrReservations[0].SubnetCidrReservationId) != r.ID ||
		aws.ToString(res.SubnetIpv4CidrReservations[0].Cidr) != "10.0.4.8/29" || res.SubnetIpv4CidrReservations[0].ReservationType != types.SubnetCidrReservationTypeExplicit {
		t.Fatalf("reservations %+v", res.SubnetIpv4CidrReservations)
	}
	res, err = e.ec2.GetSubnetCidrReservations(ctx(t), &ec2.GetSubnetCidrReservationsInput{SubnetId: &e.subnet.ID, Filters: []types.Filter{filter("reservationType", "prefix")}})
	if err != nil || len(res.SubnetIpv4CidrReservations) != 0 {
		t.Fatalf("prefix filter: %v %+v", err, res)
	}
	_, err = e.ec2.GetSubnetCidrReservations(ctx(t), &ec2.GetSubnetCidrReservationsInput{SubnetId: aws.String("subnet-0123456789abcdef0")})
	wantCode(t, err, "InvalidSubnetID.NotFound")

	sn, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("tag:Name", "multus-a")}})
	if err != nil {
		t.Fatal(err)
	}
	s := sn.Subnets[0]
	if aws.ToString(s.CidrBlock) != "10.0.4.0/28" || aws.ToString(s.AvailabilityZone) != "us-west-2a" || aws.ToString(s.AvailabilityZoneId) != "usw2-az1" || aws.ToInt32(s.AvailableIpAddressCount) != int32(11-len(e.sim.ENIs())) {
		t.Errorf("subnet cidr %s az %s azid %s available %d (%d ENIs)", aws.ToString(s.CidrBlock), aws.ToString(s.AvailabilityZone), aws.ToString(s.AvailabilityZoneId), aws.ToInt32(s.AvailableIpAddressCount), len(e.sim.ENIs()))
	}
	_, err = e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")
}

func TestDescribeInstancesWithLaunchTemplateENIs(t *testing.T) {
	e := start(t, setup{instType: "c5.xlarge", ltENIs: []ec2sim.ENISpec{
		{DeviceIndex: 1, Tags: map[string]string{noManage: "true", "Name": "net1"}, Description: "lt net1"},
		{DeviceIndex: 2},
	}})
	p := ec2.NewDescribeInstancesPaginator(e.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-state-name", "running")}})
	var insts []types.Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Reservations {
			insts = append(insts, r.Instances...)
		}
	}
	if len(insts) != 1 || aws.ToString(insts[0].InstanceId) != e.inst.ID || insts[0].InstanceType != types.InstanceTypeC5Xlarge {
		t.Fatalf("instances %+v", insts)
	}
	nis := insts[0].NetworkInterfaces
	if len(nis) != 3 {
		t.Fatalf("%d network interfaces, want 3", len(nis))
	}
	for i, ni := range nis {
		if aws.ToInt32(ni.Attachment.DeviceIndex) != int32(i) || ni.Attachment.Status != types.AttachmentStatusAttached {
			t.Errorf("interface %d: %+v", i, ni.Attachment)
		}
	}
	if aws.ToString(nis[0].NetworkInterfaceId) != e.inst.PrimaryENIID || !aws.ToBool(nis[0].Attachment.DeleteOnTermination) {
		t.Errorf("primary %+v", nis[0])
	}
	tagged := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("attachment.instance-id", e.inst.ID), filter("tag:"+noManage, "true")}})
	if len(tagged) != 1 || aws.ToString(tagged[0].Description) != "lt net1" || aws.ToInt32(tagged[0].Attachment.DeviceIndex) != 1 {
		t.Fatalf("tagged launch-template ENIs: %+v", tagged)
	}
	_, err := e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

func TestDescribeInstanceTypes(t *testing.T) {
	e := start(t, setup{})
	out, err := e.ec2.DescribeInstanceTypes(ctx(t), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceTypeC5Large, types.InstanceTypeC6in32xlarge}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[types.InstanceType]*types.NetworkInfo{}
	for _, it := range out.InstanceTypes {
		got[it.InstanceType] = it.NetworkInfo
	}
	c5 := got[types.InstanceTypeC5Large]
	if c5 == nil || aws.ToInt32(c5.MaximumNetworkInterfaces) != 3 || aws.ToInt32(c5.MaximumNetworkCards) != 1 || aws.ToInt32(c5.Ipv4AddressesPerInterface) != 10 {
		t.Fatalf("c5.large %+v", c5)
	}
	c6 := got[types.InstanceTypeC6in32xlarge]
	if c6 == nil || aws.ToInt32(c6.MaximumNetworkInterfaces) != 16 || len(c6.NetworkCards) != 2 || aws.ToInt32(c6.NetworkCards[1].MaximumNetworkInterfaces) != 8 {
		t.Fatalf("c6in.32xlarge %+v", c6)
	}
	_, err = e.ec2.DescribeInstanceTypes(ctx(t), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.nonsense"}})
	wantCode(t, err, "InvalidInstanceType")
}

func TestUnknownFiltersAreRejectedEverywhere(t *testing.T) {
	e := start(t, setup{})
	bad := []types.Filter{filter("no-such-filter", "x")}
	_, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{Filters: bad})
	wantCode(t, err, "InvalidParameterValue")
	_, err = e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{Filters: bad})
	wantCode(t, err, "InvalidParameterValue")
	_, err = e.ec2.GetSubnetCidrReservations(ctx(t), &ec2.GetSubnetCidrReservationsInput{SubnetId: &e.subnet.ID, Filters: bad})
	wantCode(t, err, "InvalidParameterValue")
	// ... even when there is nothing to match them against.
	_, err = e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{e.inst.PrimaryENIID}, Filters: append(bad, filter("status", "available"))})
	wantCode(t, err, "InvalidParameterValue")
}

func addGroups(t *testing.T, sim *ec2sim.Sim, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := sim.AddSecurityGroup(id, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// EC2 checks that the security groups an ENI names exist.
func TestUnknownSecurityGroup(t *testing.T) {
	e := start(t, setup{})
	_, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID, Groups: []string{"sg-0123456789abcdef0"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	_, err = e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: ni.NetworkInterfaceId, Groups: []string{"sg-0123456789abcdef0"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	addGroups(t, e.sim, "sg-0123456789abcdef0")
	if _, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID, Groups: []string{"sg-0123456789abcdef0"}}); err != nil {
		t.Fatal(err)
	}
}

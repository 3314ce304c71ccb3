package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// BenchmarkDescribeNetworkInterfaces measures simulator throughput through
// the real SDK client (signing, HTTP on loopback, XML both ways).
func BenchmarkDescribeNetworkInterfaces(b *testing.B) {
	e := start(b, setup{instType: "c5.4xlarge", cfg: ec2sim.Config{Throttle: ec2sim.ThrottleConfig{Disabled: true}}})
	for i := 0; i < 8; i++ {
		createENI(b, e, &ec2.CreateNetworkInterfaceInput{TagSpecifications: tagSpec(noManage, "true")})
	}
	in := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("tag:"+noManage, "true")}}
	c := ctx(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.ec2.DescribeNetworkInterfaces(c, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkENILifecycle measures create + attach + detach + delete.
func BenchmarkENILifecycle(b *testing.B) {
	e := start(b, setup{cidr: "10.0.0.0/16", instType: "c5.4xlarge", cfg: ec2sim.Config{Throttle: ec2sim.ThrottleConfig{Disabled: true}}})
	c := ctx(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := e.ec2.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
		if err != nil {
			b.Fatal(err)
		}
		id := out.NetworkInterface.NetworkInterfaceId
		att, err := e.ec2.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: id, DeviceIndex: aws.Int32(1)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.ec2.DetachNetworkInterface(c, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.ec2.DeleteNetworkInterface(c, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: id}); err != nil {
			b.Fatal(err)
		}
	}
}

package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestSmokeCreateAttachDescribe(t *testing.T) {
	e := start(t, setup{})
	c := ctx(t)
	out, err := e.ec2.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(e.subnet.ID),
		Description: aws.String("multus"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags:         []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/no_manage"), Value: aws.String("true")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ni := out.NetworkInterface
	t.Logf("%s %s %s %s", aws.ToString(ni.NetworkInterfaceId), aws.ToString(ni.MacAddress), aws.ToString(ni.PrivateIpAddress), ni.Status)
	att, err := e.ec2.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{
		InstanceId: aws.String(e.inst.ID), NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.ec2.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}})
	if err != nil {
		t.Fatal(err)
	}
	got := d.NetworkInterfaces[0]
	if aws.ToString(got.Attachment.AttachmentId) != aws.ToString(att.AttachmentId) || got.Attachment.Status != types.AttachmentStatusAttached {
		t.Fatalf("attachment %+v", got.Attachment)
	}
	if len(got.TagSet) != 1 || aws.ToString(got.TagSet[0].Value) != "true" {
		t.Fatalf("tags %+v", got.TagSet)
	}
	_, err = e.ec2.DeleteNetworkInterface(c, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId})
	wantCode(t, err, "InvalidParameterValue")
}

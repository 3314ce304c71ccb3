package eni

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// MaxPods is kubelet's maxPods under the VPC CNI's formula (amazon-vpc-cni-k8s
// README, "max pods"; the same numbers as its generated eni-max-pods.txt):
//
//	ENIs × (IPv4 addresses per ENI − 1) + 2
//
// where ENIs are the ones the VPC CNI may use: network card 0's slots less
// reserved, the no_manage ENIs nodeprep puts on that card. The limits come
// from EC2's DescribeInstanceTypes for the instance's own type, so no table
// goes stale. It assumes secondary-IP mode; with prefix delegation the
// operator sets maxPods.
func MaxPods(ctx context.Context, client EC2, instanceType string, reserved int) (int, error) {
	out, err := client.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)}})
	if err != nil {
		return 0, &Error{Interface: "maxPods", Call: "DescribeInstanceTypes", Code: errorCode(err), Err: err}
	}
	if len(out.InstanceTypes) != 1 || out.InstanceTypes[0].NetworkInfo == nil {
		return 0, fmt.Errorf("DescribeInstanceTypes %s: no network limits in the answer", instanceType)
	}
	info := out.InstanceTypes[0].NetworkInfo
	enis := int(aws.ToInt32(info.MaximumNetworkInterfaces))
	for _, card := range info.NetworkCards {
		if aws.ToInt32(card.NetworkCardIndex) == 0 {
			enis = int(aws.ToInt32(card.MaximumNetworkInterfaces))
		}
	}
	ips := int(aws.ToInt32(info.Ipv4AddressesPerInterface))
	usable := enis - reserved
	if usable < 1 || ips < 2 {
		return 0, fmt.Errorf("%s: %d ENIs on network card 0 with %d addresses each, %d of them nodeprep's: no ENI is left for pods", instanceType, enis, ips, reserved)
	}
	return usable*(ips-1) + 2, nil
}

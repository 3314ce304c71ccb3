package eni

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Limits are an instance type's network limits, as EC2's
// DescribeInstanceTypes states them for the instance's own type. That is
// the one source nodeprep reads them from: it knows every type EC2 runs,
// including those launched after any table was extracted, and it is the
// source the VPC CNI generates its own limits file from. Every consumer
// (the per-ENI address check, maxPods) runs only when EC2 is reachable.
type Limits struct {
	InstanceType string
	// ENIsOnCard0 is the number of ENIs network card 0 takes, the card
	// the VPC CNI uses.
	ENIsOnCard0 int
	// IPv4PerENI is the private IPv4 addresses per ENI, the primary
	// included. Each delegated /28 prefix takes one of these slots.
	IPv4PerENI int
	// IPv6PerENI is the IPv6 addresses per ENI; each /80 prefix takes one.
	IPv6PerENI int
	// Nitro types (and bare metal, which has no hypervisor) delegate prefixes.
	Nitro bool
	// ENIsPerCard is the number of ENIs each network card takes, by
	// network card index; a card not listed does not exist.
	ENIsPerCard map[int32]int
}

// LimitsError is a failed DescribeInstanceTypes. Code is EC2's error code,
// "" when the call got no EC2 answer.
type LimitsError struct {
	InstanceType string
	Code         string
	Err          error
}

func (e *LimitsError) Error() string {
	msg := e.Err.Error()
	var api smithy.APIError
	if errors.As(e.Err, &api) {
		msg = api.ErrorMessage()
	}
	if e.Code == "" {
		return fmt.Sprintf("DescribeInstanceTypes %s: %s", e.InstanceType, msg)
	}
	return fmt.Sprintf("DescribeInstanceTypes %s: %s: %s", e.InstanceType, e.Code, msg)
}

func (e *LimitsError) Unwrap() error { return e.Err }

// ErrNoLimits means EC2 answered without the instance type's network limits.
var ErrNoLimits = errors.New("no network limits in the answer")

// DescribeLimits asks EC2 for one instance type's network limits.
func DescribeLimits(ctx context.Context, client EC2, instanceType string) (Limits, error) {
	out, err := client.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)}})
	if err != nil {
		return Limits{}, &LimitsError{InstanceType: instanceType, Code: errorCode(err), Err: err}
	}
	if len(out.InstanceTypes) != 1 || out.InstanceTypes[0].NetworkInfo == nil {
		return Limits{}, &LimitsError{InstanceType: instanceType, Err: ErrNoLimits}
	}
	it := out.InstanceTypes[0]
	info := it.NetworkInfo
	l := Limits{
		InstanceType: instanceType,
		ENIsOnCard0:  int(aws.ToInt32(info.MaximumNetworkInterfaces)),
		IPv4PerENI:   int(aws.ToInt32(info.Ipv4AddressesPerInterface)),
		IPv6PerENI:   int(aws.ToInt32(info.Ipv6AddressesPerInterface)),
		Nitro:        it.Hypervisor == types.InstanceTypeHypervisorNitro || aws.ToBool(it.BareMetal),
	}
	l.ENIsPerCard = map[int32]int{0: l.ENIsOnCard0}
	for _, card := range info.NetworkCards {
		l.ENIsPerCard[aws.ToInt32(card.NetworkCardIndex)] = int(aws.ToInt32(card.MaximumNetworkInterfaces))
	}
	l.ENIsOnCard0 = l.ENIsPerCard[0]
	return l, nil
}

// MaxPods is kubelet's maxPods under the VPC CNI's formula (amazon-vpc-cni-k8s
// README, "max pods"; the same numbers as its generated eni-max-pods.txt):
//
//	ENIs × (IPv4 addresses per ENI − 1) + 2
//
// where ENIs are the ones the VPC CNI may use: network card 0's slots less
// reserved, the no_manage ENIs nodeprep puts on that card. It assumes
// secondary-IP mode; with prefix delegation the operator sets maxPods.
func (l Limits) MaxPods(reserved int) (int, error) {
	usable := l.ENIsOnCard0 - reserved
	if usable < 1 || l.IPv4PerENI < 2 {
		return 0, fmt.Errorf("%s: %d ENIs on network card 0 with %d addresses each, %d of them nodeprep's: no ENI is left for pods", l.InstanceType, l.ENIsOnCard0, l.IPv4PerENI, reserved)
	}
	return usable*(l.IPv4PerENI-1) + 2, nil
}

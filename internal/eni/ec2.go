package eni

import (
	"context"
	"reflect"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/sdkhttp"
)

// EC2 is the part of the EC2 API the reconciler calls. *ec2.Client
// satisfies it. Its method names are the IAM actions nodeprep needs (see
// IAMActions), so adding a call here is what makes the policy test ask for
// a matching grant.
type EC2 interface {
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	GetSubnetCidrReservations(context.Context, *ec2.GetSubnetCidrReservationsInput, ...func(*ec2.Options)) (*ec2.GetSubnetCidrReservationsOutput, error)
	CreateNetworkInterface(context.Context, *ec2.CreateNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.CreateNetworkInterfaceOutput, error)
	AttachNetworkInterface(context.Context, *ec2.AttachNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error)
	DeleteNetworkInterface(context.Context, *ec2.DeleteNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkInterfaceOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	AssignPrivateIpAddresses(context.Context, *ec2.AssignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	AssignIpv6Addresses(context.Context, *ec2.AssignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

var _ EC2 = (*ec2.Client)(nil)

// IAMActions lists the IAM actions ("ec2:Name") of every EC2 call the
// reconciler can make, derived from the EC2 interface itself.
func IAMActions() []string {
	t := reflect.TypeFor[EC2]()
	out := make([]string, 0, t.NumMethod())
	for i := range t.NumMethod() {
		out = append(out, "ec2:"+t.Method(i).Name)
	}
	sort.Strings(out)
	return out
}

// Retry settings for EC2. Adaptive mode adds client-side rate limiting on
// top of the standard retryer when EC2 answers RequestLimitExceeded, which
// is what EC2's throttling guidance asks of clients. The run's deadline,
// not the attempt count, is what finally bounds a throttling storm.
const (
	MaxAttempts = 12
	MaxBackoff  = 10 * time.Second
)

// NewRetryer returns the retryer nodeprep's EC2 client uses.
func NewRetryer() aws.Retryer {
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
			so.MaxAttempts = MaxAttempts
			so.MaxBackoff = MaxBackoff
			so.Backoff = retry.NewExponentialJitterBackoff(MaxBackoff)
		})
	})
}

// ClientOptions configures an ec2.Client for nodeprep: the adaptive retryer
// and, when endpoint is set, a BaseEndpoint override (tests, VPC endpoints).
func ClientOptions(endpoint string) func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.Retryer = NewRetryer()
		o.HTTPClient = sdkhttp.Client()
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}
}

package eni

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
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
	DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
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

// MaxBackoff caps the jittered exponential backoff between attempts of
// one call. There is no attempt limit: the caller's context (the run's
// deadline) is what ends a throttling storm, so a node in a boot storm
// keeps its place in the queue instead of giving up after a count.
const MaxBackoff = 5 * time.Second

// NewRetryer returns the retryer nodeprep's EC2 client uses: the SDK's
// standard retryable errors (throttling, 5xx, timeouts, connection resets),
// full-jitter exponential backoff up to MaxBackoff, unlimited attempts and
// no client-side retry quota (the quota would end retries by count too).
func NewRetryer() aws.Retryer {
	std := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxBackoff = MaxBackoff
		so.Backoff = retry.BackoffDelayerFunc(fullJitter)
		so.RateLimiter = ratelimit.None
	})
	return retry.AddWithMaxAttempts(std, 0)
}

// fullJitter waits a uniform time in [0, min(MaxBackoff, 2^attempt x
// 250ms)). The SDK's own jittered backoff stops jittering once it reaches
// its cap, which would march a boot storm's nodes in lockstep.
func fullJitter(attempt int, _ error) (time.Duration, error) {
	ceiling := MaxBackoff
	if attempt < 16 {
		ceiling = min(MaxBackoff, (250*time.Millisecond)<<attempt)
	}
	return time.Duration(rand.Int64N(int64(ceiling)) + 1), nil
}

// ClientOptions configures an ec2.Client for nodeprep: the deadline-bound
// retryer, a per-request timeout (sdkhttp), client-side rate control that
// backs off on throttles (pacer), and, when endpoint is set, a
// BaseEndpoint override (tests, VPC endpoints).
func ClientOptions(endpoint string) func(*ec2.Options) {
	p := newPacer()
	return func(o *ec2.Options) {
		o.Retryer = NewRetryer()
		o.HTTPClient = sdkhttp.Client()
		o.APIOptions = append(o.APIOptions, installPacing(p))
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}
}

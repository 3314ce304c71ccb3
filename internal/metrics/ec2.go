package metrics

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// CountEC2 wraps an EC2 client so every request attempt, retries included,
// is counted by action and error code. It adds an SDK middleware to each
// call, inside the retry loop, so throttled attempts the retryer hides
// are counted too. Methods added to eni.EC2 later pass through uncounted.
func CountEC2(inner eni.EC2, r *Run) eni.EC2 { return &countingEC2{EC2: inner, r: r} }

type countingEC2 struct {
	eni.EC2
	r *Run
}

func (c *countingEC2) count(o *ec2.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("NodeprepMetrics",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				c.r.EC2Request(middleware.GetOperationName(ctx), err)
				return out, md, err
			}), "Retry", middleware.After)
	})
}

func with[I, O any](c *countingEC2, f func(context.Context, I, ...func(*ec2.Options)) (O, error), ctx context.Context, in I, opts []func(*ec2.Options)) (O, error) {
	return f(ctx, in, append(opts, c.count)...)
}

func (c *countingEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	return with(c, c.EC2.DescribeNetworkInterfaces, ctx, in, o)
}

func (c *countingEC2) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return with(c, c.EC2.DescribeInstanceTypes, ctx, in, o)
}

func (c *countingEC2) DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	return with(c, c.EC2.DescribeInstanceStatus, ctx, in, o)
}

func (c *countingEC2) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, o ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return with(c, c.EC2.DescribeSubnets, ctx, in, o)
}

func (c *countingEC2) GetSubnetCidrReservations(ctx context.Context, in *ec2.GetSubnetCidrReservationsInput, o ...func(*ec2.Options)) (*ec2.GetSubnetCidrReservationsOutput, error) {
	return with(c, c.EC2.GetSubnetCidrReservations, ctx, in, o)
}

func (c *countingEC2) CreateNetworkInterface(ctx context.Context, in *ec2.CreateNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.CreateNetworkInterfaceOutput, error) {
	return with(c, c.EC2.CreateNetworkInterface, ctx, in, o)
}

func (c *countingEC2) AttachNetworkInterface(ctx context.Context, in *ec2.AttachNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error) {
	return with(c, c.EC2.AttachNetworkInterface, ctx, in, o)
}

func (c *countingEC2) DeleteNetworkInterface(ctx context.Context, in *ec2.DeleteNetworkInterfaceInput, o ...func(*ec2.Options)) (*ec2.DeleteNetworkInterfaceOutput, error) {
	return with(c, c.EC2.DeleteNetworkInterface, ctx, in, o)
}

func (c *countingEC2) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	return with(c, c.EC2.ModifyNetworkInterfaceAttribute, ctx, in, o)
}

func (c *countingEC2) AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, o ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	return with(c, c.EC2.AssignPrivateIpAddresses, ctx, in, o)
}

func (c *countingEC2) AssignIpv6Addresses(ctx context.Context, in *ec2.AssignIpv6AddressesInput, o ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error) {
	return with(c, c.EC2.AssignIpv6Addresses, ctx, in, o)
}

func (c *countingEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return with(c, c.EC2.CreateTags, ctx, in, o)
}

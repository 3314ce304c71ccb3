package eni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
)

// Pod address capacity: what each ENI asks of EC2 for pods. A created ENI
// asks in CreateNetworkInterface itself, at no extra call; an adopted or
// reattached one is counted and topped up, so a re-run asks for nothing.

// checkLimits refuses, before any ENI call, an interface that asks for more
// than the instance type allows per ENI. Each /28 prefix takes one of the
// per-ENI IPv4 slots, each /80 prefix one of the IPv6 slots.
func (r *Reconciler) checkLimits(managed []api.Interface) error {
	if r.Limits == nil {
		return nil
	}
	var errs []error
	for _, in := range managed {
		if v4 := 1 + in.SecondaryIPCount + in.IPv4PrefixCount; int(v4) > r.Limits.IPv4PerENI {
			errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: the primary, %d secondary addresses and %d /28 prefixes take %d IPv4 slots; the instance type has %d per ENI",
				ErrLimit, in.SecondaryIPCount, in.IPv4PrefixCount, v4, r.Limits.IPv4PerENI)})
		}
		if v6 := in.IPv6AddressCount + in.IPv6PrefixCount; int(v6) > r.Limits.IPv6PerENI {
			errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: %d IPv6 addresses or prefixes; the instance type has %d per ENI", ErrLimit, v6, r.Limits.IPv6PerENI)})
		}
		if (in.IPv4PrefixCount > 0 || in.IPv6PrefixCount > 0) && !r.Limits.Nitro {
			errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: prefix delegation needs a Nitro instance type", ErrLimit)})
		}
	}
	return errors.Join(errs...)
}

// askCapacity puts the interface's pod address counts into the request.
func askCapacity(in api.Interface, input *ec2.CreateNetworkInterfaceInput) {
	if in.SecondaryIPCount > 0 {
		input.SecondaryPrivateIpAddressCount = aws.Int32(in.SecondaryIPCount)
	}
	if in.IPv4PrefixCount > 0 {
		input.Ipv4PrefixCount = aws.Int32(in.IPv4PrefixCount)
	}
	if in.IPv6PrefixCount > 0 {
		input.Ipv6PrefixCount = aws.Int32(in.IPv6PrefixCount)
	}
	if in.IPv6AddressCount > 0 {
		input.Ipv6AddressCount = aws.Int32(in.IPv6AddressCount)
	}
}

// capacityKey is the part of the client token the counts make up.
func capacityKey(in *ec2.CreateNetworkInterfaceInput) string {
	return fmt.Sprintf("%d/%d/%d/%d", aws.ToInt32(in.SecondaryPrivateIpAddressCount), aws.ToInt32(in.Ipv4PrefixCount),
		aws.ToInt32(in.Ipv6PrefixCount), aws.ToInt32(in.Ipv6AddressCount))
}

// setPodAddresses puts what EC2 reports the ENI holds for pods, besides its
// primary address, into a.
func setPodAddresses(a *Attachment, e types.NetworkInterface) error {
	a.SecondaryIPs, a.IPv4Prefixes, a.IPv6Addresses, a.IPv6Prefixes = nil, nil, nil, nil
	var errs []error
	for _, x := range e.PrivateIpAddresses {
		if !aws.ToBool(x.Primary) {
			a.SecondaryIPs = appendParsed(a.SecondaryIPs, x.PrivateIpAddress, netip.ParseAddr, &errs)
		}
	}
	for _, x := range e.Ipv4Prefixes {
		a.IPv4Prefixes = appendParsed(a.IPv4Prefixes, x.Ipv4Prefix, netip.ParsePrefix, &errs)
	}
	for _, x := range e.Ipv6Addresses {
		a.IPv6Addresses = appendParsed(a.IPv6Addresses, x.Ipv6Address, netip.ParseAddr, &errs)
	}
	for _, x := range e.Ipv6Prefixes {
		a.IPv6Prefixes = appendParsed(a.IPv6Prefixes, x.Ipv6Prefix, netip.ParsePrefix, &errs)
	}
	return errors.Join(errs...)
}

// appendParsed appends one address or prefix as EC2 wrote it; one EC2
// cannot have meant is an error, never a zero value.
func appendParsed[T any](to []T, v *string, parse func(string) (T, error), errs *[]error) []T {
	x, err := parse(aws.ToString(v))
	if err != nil {
		*errs = append(*errs, fmt.Errorf("EC2 reported %w", err))
		return to
	}
	return append(to, x)
}

// topUp assigns what an adopted or reattached ENI lacks, and returns what
// it holds afterwards. It asks only for the difference, so running it
// twice assigns nothing the second time. The assign calls carry no client
// token: when an answer is lost, EC2 may have assigned already, so instead
// of the SDK's blind retry it counts again and asks for what still lacks.
func (r *run) topUp(ctx context.Context, in api.Interface, e types.NetworkInterface, have *Attachment) error {
	for attempt := 1; ; attempt++ {
		err := r.topUpOnce(ctx, in, e, have)
		if err == nil || !answerLost(ctx, err) || attempt == maxRecounts {
			return err
		}
		out, derr := r.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{aws.ToString(e.NetworkInterfaceId)}})
		if derr != nil || len(out.NetworkInterfaces) != 1 {
			return err
		}
		e = out.NetworkInterfaces[0]
	}
}

// maxRecounts bounds the count-and-assign rounds of one top-up.
const maxRecounts = 3

// answerLost reports an error without an EC2 answer (a dropped connection)
// while the run goes on: the call may or may not have been applied.
func answerLost(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && errorCode(err) == ""
}

// noBlindRetry keeps the client's retries for calls EC2 answered (e.g.
// throttling) and drops them for calls whose answer was lost.
func noBlindRetry(o *ec2.Options) {
	if v2, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = answeredOnly{v2}
	}
}

type answeredOnly struct{ aws.RetryerV2 }

func (r answeredOnly) IsErrorRetryable(err error) bool {
	return errorCode(err) != "" && r.RetryerV2.IsErrorRetryable(err)
}

func (r *run) topUpOnce(ctx context.Context, in api.Interface, e types.NetworkInterface, have *Attachment) error {
	if err := setPodAddresses(have, e); err != nil {
		return &Error{Interface: in.Name, Call: "DescribeNetworkInterfaces", Err: err}
	}
	id := aws.ToString(e.NetworkInterfaceId)
	var errs []error
	if missing := in.SecondaryIPCount - int32(len(have.SecondaryIPs)); missing > 0 {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign %d secondary addresses to %s (%s)", missing, in.Name, id), func(ctx context.Context) error {
			out, err := r.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(missing)}, noBlindRetry)
			if err != nil {
				return callError(in.Name, "AssignPrivateIpAddresses", err)
			}
			var errs []error
			for _, a := range out.AssignedPrivateIpAddresses {
				have.SecondaryIPs = appendParsed(have.SecondaryIPs, a.PrivateIpAddress, netip.ParseAddr, &errs)
			}
			return wrapCall(in.Name, "AssignPrivateIpAddresses", errors.Join(errs...))
		}))
	}
	if missing := in.IPv4PrefixCount - int32(len(have.IPv4Prefixes)); missing > 0 {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign %d /28 prefixes to %s (%s)", missing, in.Name, id), func(ctx context.Context) error {
			out, err := r.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(missing)}, noBlindRetry)
			if err != nil {
				return prefixError(in.Name, in.SubnetID, "AssignPrivateIpAddresses", err)
			}
			var errs []error
			for _, p := range out.AssignedIpv4Prefixes {
				have.IPv4Prefixes = appendParsed(have.IPv4Prefixes, p.Ipv4Prefix, netip.ParsePrefix, &errs)
			}
			return wrapCall(in.Name, "AssignPrivateIpAddresses", errors.Join(errs...))
		}))
	}
	v6 := &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id)}
	if missing := in.IPv6AddressCount - int32(len(have.IPv6Addresses)); missing > 0 {
		v6.Ipv6AddressCount = aws.Int32(missing)
	}
	if missing := in.IPv6PrefixCount - int32(len(have.IPv6Prefixes)); missing > 0 {
		v6.Ipv6PrefixCount = aws.Int32(missing)
	}
	if v6.Ipv6AddressCount != nil || v6.Ipv6PrefixCount != nil {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign IPv6 addresses/prefixes to %s (%s)", in.Name, id), func(ctx context.Context) error {
			out, err := r.EC2.AssignIpv6Addresses(ctx, v6, noBlindRetry)
			if err != nil {
				return callError(in.Name, "AssignIpv6Addresses", err)
			}
			var errs []error
			for _, a := range out.AssignedIpv6Addresses {
				have.IPv6Addresses = appendParsed(have.IPv6Addresses, &a, netip.ParseAddr, &errs)
			}
			for _, p := range out.AssignedIpv6Prefixes {
				have.IPv6Prefixes = appendParsed(have.IPv6Prefixes, &p, netip.ParsePrefix, &errs)
			}
			return wrapCall(in.Name, "AssignIpv6Addresses", errors.Join(errs...))
		}))
	}
	return errors.Join(errs...)
}

// ipv6CIDR is the subnet's associated IPv6 CIDR, or the zero prefix.
func ipv6CIDR(sn types.Subnet) netip.Prefix {
	for _, a := range sn.Ipv6CidrBlockAssociationSet {
		if a.Ipv6CidrBlockState != nil && a.Ipv6CidrBlockState.State == types.SubnetCidrBlockStateCodeAssociated {
			if p, err := netip.ParsePrefix(aws.ToString(a.Ipv6CidrBlock)); err == nil {
				return p
			}
		}
	}
	return netip.Prefix{}
}

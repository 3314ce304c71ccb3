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

// checkFit refuses, after observing and before the first create, a config
// the instance or the subnet cannot take: more ENIs on a network card than
// the card takes (those attached already counted), a network card the
// instance type does not have, or IPv6 asked in a subnet without an IPv6
// CIDR. Each would otherwise fail only after other ENIs were made.
func (r *Reconciler) checkFit(obs *observation, items []item) []error {
	var errs []error
	for _, it := range items {
		in := it.in
		if in.IPv6AddressCount+in.IPv6PrefixCount > 0 && it.attached == nil {
			if sn, ok := obs.subnets[in.SubnetID]; ok && !ipv6CIDR(sn).IsValid() {
				errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: %d IPv6 addresses and %d IPv6 prefixes asked, but subnet %s has no IPv6 CIDR",
					ErrLimit, in.IPv6AddressCount, in.IPv6PrefixCount, in.SubnetID)})
			}
		}
	}
	if r.Limits == nil || r.Limits.ENIsPerCard == nil {
		return errs
	}
	onCard := map[int32]int{}
	for s := range obs.attached {
		onCard[s.card]++
	}
	if obs.primaryUndescribed {
		onCard[0]++
	}
	for _, it := range items {
		card := it.slot.card
		max, ok := r.Limits.ENIsPerCard[card]
		if !ok {
			errs = append(errs, &Error{Interface: it.in.Name, Err: fmt.Errorf("%w: networkCardIndex %d, but %s has %d network card(s) (indexes 0-%d)",
				ErrLimit, card, r.Limits.InstanceType, len(r.Limits.ENIsPerCard), len(r.Limits.ENIsPerCard)-1)})
			continue
		}
		if it.attached != nil {
			continue
		}
		onCard[card]++
		if onCard[card] > max {
			errs = append(errs, &Error{Interface: it.in.Name, Err: fmt.Errorf("%w: network card %d of %s takes %d ENIs (the primary and those attached already included); this interface would be number %d",
				ErrLimit, card, r.Limits.InstanceType, max, onCard[card])})
		}
	}
	return errs
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
// SetPodAddresses fills a's pod addresses from EC2's description of its
// ENI, as the ENI step records them (nodeprep doctor compares with it).
func (a *Attachment) SetPodAddresses(e types.NetworkInterface) error { return setPodAddresses(a, e) }

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

// topUp assigns what an adopted or reattached ENI lacks, and puts what it
// holds afterwards into have. It asks only for the difference, so running
// it twice assigns nothing the second time. The assign calls carry no
// client token: when an answer is lost, EC2 may have assigned already, so
// instead of the SDK's blind retry it counts again and asks for what still
// lacks, inside the same change: a lost answer that the recount recovers
// is no failure (the engine logs failed changes at ERROR).
func (r *run) topUp(ctx context.Context, in api.Interface, e types.NetworkInterface, have *Attachment) error {
	if err := setPodAddresses(have, e); err != nil {
		return &Error{Interface: in.Name, Call: "DescribeNetworkInterfaces", Err: err}
	}
	id := aws.ToString(e.NetworkInterfaceId)
	lackSecondary := func() int32 { return in.SecondaryIPCount - int32(len(have.SecondaryIPs)) }
	lackV4Prefixes := func() int32 { return in.IPv4PrefixCount - int32(len(have.IPv4Prefixes)) }
	lackV6Addresses := func() int32 { return in.IPv6AddressCount - int32(len(have.IPv6Addresses)) }
	lackV6Prefixes := func() int32 { return in.IPv6PrefixCount - int32(len(have.IPv6Prefixes)) }
	lackV6 := func() int32 { return max(lackV6Addresses(), 0) + max(lackV6Prefixes(), 0) }
	var errs []error
	if missing := lackSecondary(); missing > 0 {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign %d secondary addresses to %s (%s)", missing, in.Name, id), func(ctx context.Context) error {
			return r.assignCounted(ctx, in.Name, id, have, lackSecondary, func(ctx context.Context) error {
				out, err := r.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(lackSecondary())}, noBlindRetry)
				if err != nil {
					return callError(in.Name, "AssignPrivateIpAddresses", err)
				}
				var errs []error
				for _, a := range out.AssignedPrivateIpAddresses {
					have.SecondaryIPs = appendParsed(have.SecondaryIPs, a.PrivateIpAddress, netip.ParseAddr, &errs)
				}
				return wrapCall(in.Name, "AssignPrivateIpAddresses", errors.Join(errs...))
			})
		}))
	}
	if missing := lackV4Prefixes(); missing > 0 {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign %d /28 prefixes to %s (%s)", missing, in.Name, id), func(ctx context.Context) error {
			return r.assignCounted(ctx, in.Name, id, have, lackV4Prefixes, func(ctx context.Context) error {
				out, err := r.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(lackV4Prefixes())}, noBlindRetry)
				if err != nil {
					return prefixError(in.Name, in.SubnetID, "AssignPrivateIpAddresses", err)
				}
				var errs []error
				for _, p := range out.AssignedIpv4Prefixes {
					have.IPv4Prefixes = appendParsed(have.IPv4Prefixes, p.Ipv4Prefix, netip.ParsePrefix, &errs)
				}
				return wrapCall(in.Name, "AssignPrivateIpAddresses", errors.Join(errs...))
			})
		}))
	}
	if lackV6() > 0 {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("assign IPv6 addresses/prefixes to %s (%s)", in.Name, id), func(ctx context.Context) error {
			return r.assignCounted(ctx, in.Name, id, have, lackV6, func(ctx context.Context) error {
				v6 := &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id)}
				if missing := lackV6Addresses(); missing > 0 {
					v6.Ipv6AddressCount = aws.Int32(missing)
				}
				if missing := lackV6Prefixes(); missing > 0 {
					v6.Ipv6PrefixCount = aws.Int32(missing)
				}
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
			})
		}))
	}
	return errors.Join(errs...)
}

// assignCounted makes one assign call and, when its answer is lost, counts
// what the ENI holds now (into have) and asks again only if something
// still lacks, at most maxRecounts times.
func (r *run) assignCounted(ctx context.Context, name, id string, have *Attachment, lacking func() int32, assign func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := assign(ctx)
		if err == nil || !answerLost(ctx, err) || attempt == maxRecounts {
			return err
		}
		out, derr := r.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
		if derr != nil || len(out.NetworkInterfaces) != 1 {
			return err
		}
		if perr := setPodAddresses(have, out.NetworkInterfaces[0]); perr != nil {
			return &Error{Interface: name, Call: "DescribeNetworkInterfaces", Err: perr}
		}
		if lacking() <= 0 {
			return nil
		}
	}
}

// maxRecounts bounds the count-and-assign rounds of one assign.
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

package eni

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
)

// subnetAddrs hands out low free addresses of a subnet for
// fromStartOfSubnet, to all interfaces of one run, so two interfaces in the
// same subnet never race for one address.
type subnetAddrs struct {
	once   sync.Once
	err    error
	prefix netip.Prefix

	mu       sync.Mutex
	taken    map[netip.Addr]bool
	reserved []netip.Prefix
	cursor   netip.Addr
}

// AWS reserves the first four addresses and the last one of every subnet.
const awsReservedLow = 4

func (r *run) subnetAddrs(ctx context.Context, in api.Interface) (*subnetAddrs, error) {
	r.mu.Lock()
	s, ok := r.addrs[in.SubnetID]
	if !ok {
		s = &subnetAddrs{}
		r.addrs[in.SubnetID] = s
	}
	r.mu.Unlock()
	s.once.Do(func() { s.err = r.scan(ctx, in, s) })
	return s, s.err
}

// scan reads the addresses in use (every ENI of the subnet, primary,
// secondary and delegated prefixes) and the subnet's CIDR reservations.
func (r *run) scan(ctx context.Context, in api.Interface, s *subnetAddrs) error {
	sn := r.obs.subnets[in.SubnetID]
	p, err := netip.ParsePrefix(aws.ToString(sn.CidrBlock))
	if err != nil || !p.Addr().Is4() {
		return &Error{Interface: in.Name, Call: "DescribeSubnets", Err: fmt.Errorf("subnet %s has no usable IPv4 CIDR (%q)", in.SubnetID, aws.ToString(sn.CidrBlock))}
	}
	s.prefix = p.Masked()
	s.taken = map[netip.Addr]bool{}
	// A static address of another interface may be free now only because
	// its ENI is not made yet (or was deleted by a give-up): never pick it.
	for _, other := range r.managed {
		if other.SubnetID == in.SubnetID && other.PrivateIP.Mode == api.PrivateIPStatic {
			if a, err := netip.ParseAddr(other.PrivateIP.Address); err == nil {
				s.taken[a] = true
			}
		}
	}
	enis, err := describeENIs(ctx, r.EC2, filter("subnet-id", in.SubnetID))
	if err != nil {
		return callError(in.Name, "DescribeNetworkInterfaces", err)
	}
	for _, e := range enis {
		for _, a := range e.PrivateIpAddresses {
			if addr, err := netip.ParseAddr(aws.ToString(a.PrivateIpAddress)); err == nil {
				s.taken[addr] = true
			}
		}
		for _, pd := range e.Ipv4Prefixes {
			if pfx, err := netip.ParsePrefix(aws.ToString(pd.Ipv4Prefix)); err == nil {
				s.reserved = append(s.reserved, pfx)
			}
		}
	}
	var token *string
	for {
		out, err := r.EC2.GetSubnetCidrReservations(ctx, &ec2.GetSubnetCidrReservationsInput{SubnetId: aws.String(in.SubnetID), NextToken: token})
		if err != nil {
			return callError(in.Name, "GetSubnetCidrReservations", err)
		}
		// Explicit reservations are for manual assignment by their owner and
		// prefix ones for delegation: neither is a free node address.
		for _, res := range out.SubnetIpv4CidrReservations {
			if pfx, err := netip.ParsePrefix(aws.ToString(res.Cidr)); err == nil {
				s.reserved = append(s.reserved, pfx)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		token = out.NextToken
	}
	s.cursor = s.prefix.Addr()
	for range awsReservedLow {
		s.cursor = s.cursor.Next()
	}
	return nil
}

// candidateWindow is how many of the lowest free addresses a pick chooses
// from. Nodes booting together all scan the same free list; if each took
// the lowest address they would all race for it, and each InUse answer
// would cost a create (quadratic in the number of nodes). A spread pick
// among the lowest candidates makes a collision unlikely while the
// subnet still fills from the bottom.
const candidateWindow = 256

// pickSeed is the choice among the lowest free addresses for one attempt
// of one interface. It is a hash, not a random draw, so that a run
// repeating the create of a run that died (SIGKILL) before it saw the
// answer, while EC2 does not show the new ENI yet, picks the same address:
// the same request, the same client token, and EC2 hands back the ENI it
// made instead of a second one. Nodes still spread: the instance ID is in
// the hash.
func pickSeed(instanceID, name string, attempt int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d", instanceID, name, attempt)
	return h.Sum64()
}

// next picks one of the lowest free addresses, by seed, and claims it.
func (s *subnetAddrs) next(seed uint64) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var free []netip.Addr
	for a := s.cursor; s.prefix.Contains(a) && len(free) < candidateWindow; a = a.Next() {
		if !s.prefix.Contains(a.Next()) {
			break // the broadcast address, reserved by AWS
		}
		if s.taken[a] || s.inReservation(a) {
			if len(free) == 0 {
				s.cursor = a.Next()
			}
			continue
		}
		free = append(free, a)
	}
	if len(free) == 0 {
		return netip.Addr{}, false
	}
	a := free[seed%uint64(len(free))]
	s.taken[a] = true
	return a, true
}

func (s *subnetAddrs) inReservation(a netip.Addr) bool {
	for _, p := range s.reserved {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package ec2sim

import (
	"encoding/xml"
	"fmt"
	"net/netip"
)

// IPv6: a subnet may carry one /64. An ENI in it can hold IPv6 addresses
// and delegated /80 prefixes, asked by count in CreateNetworkInterface or
// AssignIpv6Addresses. Addresses are drawn at random, as EC2 does; both
// count against the instance type's per-ENI limit.

const delegatedIPv6Bits = 80

type subnetIPv6 struct {
	prefix      netip.Prefix
	association string
	// holders maps an address or a /80 (as a prefix) to its ENI.
	holders map[netip.Prefix]string
}

type xmlIPv6Address struct {
	IPv6Address string `xml:"ipv6Address"`
}

type xmlIPv6Prefix struct {
	IPv6Prefix string `xml:"ipv6Prefix"`
}

type xmlIPv6Association struct {
	AssociationID string        `xml:"associationId"`
	IPv6CIDRBlock string        `xml:"ipv6CidrBlock"`
	State         xmlBlockState `xml:"ipv6CidrBlockState"`
}

type xmlBlockState struct {
	State string `xml:"state"`
}

type assignIPv6AddressesResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ AssignIpv6AddressesResponse"`
	respMeta
	NetworkInterfaceID string        `xml:"networkInterfaceId"`
	Addresses          items[string] `xml:"assignedIpv6Addresses"`
	Prefixes           items[string] `xml:"assignedIpv6PrefixSet"`
}

// addIPv6 associates a /64 with a new subnet (s.mu held).
func (s *Sim) addIPv6(subnetID, cidr string) error {
	if cidr == "" {
		return nil
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is6() || p.Bits() != 64 || p.Masked() != p {
		return fmt.Errorf("subnet IPv6 CIDR %q: want an IPv6 /64", cidr)
	}
	s.ipv6[subnetID] = &subnetIPv6{prefix: p, association: s.newID("subnet-cidr-assoc-"), holders: map[netip.Prefix]string{}}
	return nil
}

func (s *Sim) ipv6Associations(subnetID string) items[xmlIPv6Association] {
	var out items[xmlIPv6Association]
	if v6, ok := s.ipv6[subnetID]; ok {
		out.Item = append(out.Item, xmlIPv6Association{AssociationID: v6.association, IPv6CIDRBlock: v6.prefix.String(), State: xmlBlockState{State: "associated"}})
	}
	return out
}

func (s *Sim) ipv6XML(e *ENI, x *xmlENI) {
	for _, a := range e.IPv6Addresses {
		x.IPv6AddressesSet.Item = append(x.IPv6AddressesSet.Item, xmlIPv6Address{IPv6Address: a})
	}
	for _, p := range e.IPv6Prefixes {
		x.IPv6PrefixSet.Item = append(x.IPv6PrefixSet.Item, xmlIPv6Prefix{IPv6Prefix: p})
	}
}

// ipv6Counts reads Ipv6AddressCount and Ipv6PrefixCount.
func ipv6Counts(p params) (addrs, prefixes int, err *apiError) {
	if addrs, _, err = p.integer("Ipv6AddressCount"); err != nil {
		return 0, 0, err
	}
	if prefixes, _, err = p.integer("Ipv6PrefixCount"); err != nil {
		return 0, 0, err
	}
	if addrs < 0 || prefixes < 0 {
		return 0, 0, errInvalidParameterValue("IPv6 counts must not be negative")
	}
	if addrs > 0 && prefixes > 0 {
		return 0, 0, &apiError{Code: "InvalidParameterCombination", Message: "You cannot specify IPv6 addresses and IPv6 prefixes in the same request."}
	}
	return addrs, prefixes, nil
}

// createIPv6 gives a new ENI the IPv6 capacity its create asked for.
func (s *Sim) createIPv6(p params, e *ENI) *apiError {
	addrs, prefixes, err := ipv6Counts(p)
	if err != nil {
		return err
	}
	_, _, err = s.giveIPv6(e, addrs, prefixes)
	return err
}

// giveIPv6 assigns n addresses and m /80 prefixes of the ENI's subnet.
func (s *Sim) giveIPv6(e *ENI, n, m int) (addrs, prefixes []string, err *apiError) {
	if n == 0 && m == 0 {
		return nil, nil, nil
	}
	v6, ok := s.ipv6[e.SubnetID]
	if !ok {
		return nil, nil, errInvalidParameterValue(fmt.Sprintf("Subnet %s has no IPv6 CIDR block", e.SubnetID))
	}
	take := func(bits int) netip.Prefix {
		for {
			b := v6.prefix.Addr().As16()
			for i := 8; i < 16; i++ {
				b[i] = byte(s.rng.IntN(256))
			}
			p := netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
			if s.ipv6Free(v6, p) {
				return p
			}
		}
	}
	for range n {
		p := take(128)
		v6.holders[p] = e.ID
		addrs = append(addrs, p.Addr().String())
	}
	for range m {
		p := take(delegatedIPv6Bits)
		v6.holders[p] = e.ID
		prefixes = append(prefixes, p.String())
	}
	e.IPv6Addresses = append(e.IPv6Addresses, addrs...)
	e.IPv6Prefixes = append(e.IPv6Prefixes, prefixes...)
	return addrs, prefixes, nil
}

func (s *Sim) ipv6Free(v6 *subnetIPv6, p netip.Prefix) bool {
	for h := range v6.holders {
		if h.Overlaps(p) {
			return false
		}
	}
	return true
}

func (s *Sim) releaseIPv6(e *ENI) {
	if v6, ok := s.ipv6[e.SubnetID]; ok {
		for h, id := range v6.holders {
			if id == e.ID {
				delete(v6.holders, h)
			}
		}
	}
	e.IPv6Addresses, e.IPv6Prefixes = nil, nil
}

// ipv6Holder returns the ENI holding an IPv6 address, if any.
func (s *Sim) ipv6Holder(a netip.Addr) (string, bool) {
	for _, v6 := range s.ipv6 {
		for h, id := range v6.holders {
			if h.Contains(a) {
				return id, true
			}
		}
	}
	return "", false
}

func (s *Sim) assignIPv6Addresses(p params) (response, *apiError, []func()) {
	e, apiErr := s.eniParam(p)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	n, m, apiErr := ipv6Counts(p)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	if n == 0 && m == 0 {
		return nil, errMissing("Ipv6AddressCount"), nil
	}
	if e.Attachment != nil {
		if limit := s.types[s.instances[e.Attachment.InstanceID].Type].IPv4PerENI; limit > 0 && len(e.IPv6Addresses)+len(e.IPv6Prefixes)+n+m > limit {
			return nil, &apiError{Code: "Ipv6AddressLimitExceeded", Message: "Number of IPv6 addresses will exceed limit."}, nil
		}
	}
	addrs, prefixes, apiErr := s.giveIPv6(e, n, m)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	return &assignIPv6AddressesResponse{NetworkInterfaceID: e.ID, Addresses: items[string]{Item: addrs}, Prefixes: items[string]{Item: prefixes}}, nil, nil
}

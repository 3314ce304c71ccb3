package ec2sim

import (
	"fmt"
	"net/netip"
)

// Prefix delegation: an ENI can hold /28 IPv4 prefixes besides its
// addresses. EC2 carves a prefix out of the subnet as an aligned /28 none
// of whose addresses is assigned, AWS-reserved or in an explicit CIDR
// reservation, preferring space reserved for prefixes (reservation type
// "prefix"). When no such block is left, although single addresses may be,
// the subnet is fragmented and EC2 answers InsufficientCidrBlocks. Each
// prefix counts as one address against the instance type's per-ENI limit.

const delegatedPrefixBits = 28

// errInsufficientCidrBlocks is EC2's answer when no free aligned /28 is left.
var errInsufficientCidrBlocks = &apiError{Code: "InsufficientCidrBlocks", Message: "There are not enough free cidr blocks in the specified subnet to satisfy the request."}

// prefixCountParam reads Ipv4PrefixCount, which EC2 refuses together with
// explicit or counted secondary addresses.
func (s *Sim) prefixCountParam(p params, secondaries bool) (int, *apiError) {
	n, has, err := p.integer("Ipv4PrefixCount")
	if err != nil || !has {
		return 0, err
	}
	if n < 0 {
		return 0, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for ipv4PrefixCount", n))
	}
	if secondaries && n > 0 {
		return 0, &apiError{Code: "InvalidParameterCombination", Message: "You cannot specify a count of IPv4 prefixes together with secondary private IPv4 addresses or their count."}
	}
	return n, nil
}

// delegatePrefixes gives e n free /28 prefixes of sn, all or none (s.mu held).
func (s *Sim) delegatePrefixes(sn *subnetState, e *ENI, n int) *apiError {
	if n == 0 {
		return nil
	}
	var got []netip.Prefix
	taken := map[netip.Prefix]bool{}
	for range n {
		p, ok := s.freeBlock(sn, taken)
		if !ok {
			return errInsufficientCidrBlocks
		}
		taken[p] = true
		got = append(got, p)
	}
	for _, p := range got {
		s.delegated[p] = e.ID
		e.IPv4Prefixes = append(e.IPv4Prefixes, p.String())
	}
	return nil
}

// freeBlock picks a free aligned /28, from prefix reservations first.
func (s *Sim) freeBlock(sn *subnetState, taken map[netip.Prefix]bool) (netip.Prefix, bool) {
	blocks := prefixSize(sn.prefix) >> (32 - delegatedPrefixBits)
	start := s.rng.IntN(max(blocks, 1))
	var fallback netip.Prefix
	for i := range blocks {
		p := netip.PrefixFrom(addrAt(sn.prefix, ((start+i)%blocks)<<(32-delegatedPrefixBits)), delegatedPrefixBits)
		if taken[p] || !s.blockFree(sn, p) {
			continue
		}
		if r := s.reservationOf(sn, p.Addr()); r != nil && r.Type == "prefix" {
			return p, true
		}
		if !fallback.IsValid() && s.reservationOf(sn, p.Addr()) == nil {
			fallback = p
		}
	}
	return fallback, fallback.IsValid()
}

func (s *Sim) blockFree(sn *subnetState, p netip.Prefix) bool {
	if _, dup := s.delegated[p]; dup {
		return false
	}
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		if awsReserved(sn.prefix, a) {
			return false
		}
		if _, used := sn.used[a]; used {
			return false
		}
		if r := s.reservationOf(sn, a); r != nil && r.Type == "explicit" {
			return false
		}
	}
	return true
}

// delegatedPrefixOf returns the delegated prefix holding a, if any.
func (s *Sim) delegatedPrefixOf(a netip.Addr) netip.Prefix {
	if !a.Is4() {
		return netip.Prefix{}
	}
	p, _ := a.Prefix(delegatedPrefixBits)
	if _, ok := s.delegated[p]; ok {
		return p
	}
	return netip.Prefix{}
}

func (s *Sim) delegatedCount(sn *subnetState) int {
	n := 0
	for p := range s.delegated {
		if sn.prefix.Contains(p.Addr()) {
			n += 1 << (32 - delegatedPrefixBits)
		}
	}
	return n
}

func (s *Sim) releasePrefixes(e *ENI) {
	for _, p := range e.IPv4Prefixes {
		delete(s.delegated, netip.MustParsePrefix(p))
	}
	e.IPv4Prefixes = nil
}

// assignIPv4Prefixes is AssignPrivateIpAddresses with Ipv4PrefixCount.
func (s *Sim) assignIPv4Prefixes(p params, sn *subnetState, e *ENI) (response, *apiError, []func()) {
	if len(p.list("PrivateIpAddress")) > 0 || p.has("SecondaryPrivateIpAddressCount") {
		return nil, &apiError{Code: "InvalidParameterCombination", Message: "Specify either private IP addresses or IPv4 prefixes, not both"}, nil
	}
	n, apiErr := s.prefixCountParam(p, false)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	if n < 1 {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for ipv4PrefixCount", n)), nil
	}
	if e.Attachment != nil {
		if limit := s.types[s.instances[e.Attachment.InstanceID].Type].IPv4PerENI; limit > 0 && len(e.PrivateIPs)+len(e.IPv4Prefixes)+n > limit {
			return nil, &apiError{Code: "PrivateIpAddressLimitExceeded", Message: "Number of private addresses will exceed limit."}, nil
		}
	}
	before := len(e.IPv4Prefixes)
	if apiErr := s.delegatePrefixes(sn, e, n); apiErr != nil {
		return nil, apiErr, nil
	}
	resp := &assignPrivateIPAddressesResponse{NetworkInterfaceID: e.ID}
	for _, pfx := range e.IPv4Prefixes[before:] {
		resp.AssignedPrefixes.Item = append(resp.AssignedPrefixes.Item, xmlIPv4Prefix{IPv4Prefix: pfx})
	}
	return resp, nil, nil
}

type xmlIPv4Prefix struct {
	IPv4Prefix string `xml:"ipv4Prefix"`
}

// Route says where the VPC delivers a packet for an address: to the ENI
// that holds it (as primary, secondary or inside a delegated prefix).
type Route struct {
	ENIID string
	// InstanceID is the instance the ENI is attached to; "" when it is not
	// attached, and then nothing receives the packet.
	InstanceID string
}

// RouteTo answers "is address a routable, and to which ENI": ok is false
// when no ENI holds a, so the VPC drops packets for it.
func (s *Sim) RouteTo(a netip.Addr) (Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ""
	for _, sn := range s.subnets {
		if owner, ok := sn.used[a]; ok {
			id = owner
		}
	}
	if p := s.delegatedPrefixOf(a); p.IsValid() {
		id = s.delegated[p]
	}
	if holder, ok := s.ipv6Holder(a); ok {
		id = holder
	}
	e, ok := s.enis[id]
	if !ok {
		return Route{}, false
	}
	r := Route{ENIID: id}
	if e.Attachment != nil && e.Attachment.Status == "attached" {
		r.InstanceID = e.Attachment.InstanceID
	}
	return r, true
}

// FragmentSubnet assigns one address in every aligned /28 of a subnet that
// has none yet to a new unattached ENI, as years of churn leave a subnet:
// single addresses stay free, but no /28 prefix can be delegated. It
// returns the ENI holding the fragmenting addresses.
func (s *Sim) FragmentSubnet(subnetID string) (ENI, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.subnets[subnetID]
	if !ok {
		return ENI{}, fmt.Errorf("subnet %s not found", subnetID)
	}
	var want []netip.Addr
	for off := 0; off < prefixSize(sn.prefix); off += 1 << (32 - delegatedPrefixBits) {
		p := netip.PrefixFrom(addrAt(sn.prefix, off), delegatedPrefixBits)
		if !s.blockFree(sn, p) {
			continue
		}
		// The block's ninth address: never AWS-reserved.
		want = append(want, addrAt(p, 8))
	}
	if len(want) == 0 {
		return ENI{}, fmt.Errorf("subnet %s has no free /28 left to fragment", subnetID)
	}
	e, apiErr := s.createENILocked(sn, want, 0, []string{s.defaultSG}, "fragmentation", nil)
	if apiErr != nil {
		return ENI{}, apiErr
	}
	delete(s.visibleAt, e.ID)
	return cloneENI(e), nil
}

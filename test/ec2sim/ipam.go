package ec2sim

import (
	"fmt"
	"net/netip"
)

// A VPC subnet reserves its network address, the next three (VPC router,
// DNS, future use) and its broadcast address.
func awsReserved(p netip.Prefix, a netip.Addr) bool {
	first := p.Masked().Addr()
	for i := 0; i < 4; i++ {
		if a == first {
			return true
		}
		first = first.Next()
	}
	return a == lastAddr(p)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << hostBits) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addrAt(p netip.Prefix, n int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func prefixSize(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

// reservationOf returns the CIDR reservation containing a, if any (s.mu held).
func (s *Sim) reservationOf(sn *subnetState, a netip.Addr) *CidrReservation {
	for _, r := range s.reservations {
		if r.SubnetID != sn.ID {
			continue
		}
		if netip.MustParsePrefix(r.CIDR).Contains(a) {
			return r
		}
	}
	return nil
}

// autoAllocatable reports whether automatic assignment may hand out a.
func (s *Sim) autoAllocatable(sn *subnetState, a netip.Addr) bool {
	if awsReserved(sn.prefix, a) {
		return false
	}
	if _, used := sn.used[a]; used {
		return false
	}
	if s.delegatedPrefixOf(a).IsValid() {
		return false
	}
	return s.reservationOf(sn, a) == nil
}

// freeCount is what DescribeSubnets reports as AvailableIpAddressCount:
// addresses neither AWS-reserved nor assigned. CIDR reservations are not
// subtracted (whether EC2 subtracts them was not verified).
func (s *Sim) freeCount(sn *subnetState) int {
	return prefixSize(sn.prefix) - 5 - len(sn.used) - s.delegatedCount(sn)
}

// allocate picks n free addresses like EC2 does: spread pseudo-randomly over
// the subnet, never AWS-reserved, assigned or inside a CIDR reservation.
func (s *Sim) allocate(sn *subnetState, n int, exclude map[netip.Addr]bool) ([]netip.Addr, bool) {
	size := prefixSize(sn.prefix)
	var out []netip.Addr
	taken := map[netip.Addr]bool{}
	start := s.rng.IntN(size)
	for i := 0; i < size && len(out) < n; i++ {
		a := addrAt(sn.prefix, (start+i)%size)
		if exclude[a] || taken[a] || !s.autoAllocatable(sn, a) {
			continue
		}
		taken[a] = true
		out = append(out, a)
	}
	return out, len(out) == n
}

// checkManual validates an address the caller asked for explicitly.
func (s *Sim) checkManual(sn *subnetState, a netip.Addr) *apiError {
	if !a.Is4() || !sn.prefix.Contains(a) {
		return errInvalidParameterValue(fmt.Sprintf("Address %s does not fall within the subnet's address range", a))
	}
	if awsReserved(sn.prefix, a) {
		return errInvalidParameterValue(fmt.Sprintf("Address %s is in subnet's reserved address range", a))
	}
	if _, used := sn.used[a]; used || s.delegatedPrefixOf(a).IsValid() {
		return &apiError{Code: "InvalidIPAddress.InUse", Message: "The specified address is already in use."}
	}
	if r := s.reservationOf(sn, a); r != nil && r.Type == "prefix" {
		return errInvalidParameterValue(fmt.Sprintf("Address %s is reserved for prefix assignment by %s", a, r.ID))
	}
	return nil
}

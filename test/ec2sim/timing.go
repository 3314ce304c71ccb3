package ec2sim

import (
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Instant returns a Timing with no latency and no attach/detach delay.
func Instant() Timing { return Timing{} }

// Realistic returns the estimated EC2 latency profile documented in the
// package comment. The figures are estimates, not measurements.
func Realistic() Timing {
	ms := time.Millisecond
	describe := Latency{Base: 100 * ms, Jitter: 100 * ms}
	return Timing{
		Calls: map[string]Latency{
			"DescribeInstances":               describe,
			"DescribeSubnets":                 describe,
			"DescribeNetworkInterfaces":       describe,
			"GetSubnetCidrReservations":       describe,
			"DescribeInstanceTypes":           describe,
			"DescribeInstanceStatus":          describe,
			"CreateNetworkInterface":          {Base: 300 * ms, Jitter: 300 * ms},
			"AttachNetworkInterface":          {Base: 200 * ms, Jitter: 200 * ms},
			"DetachNetworkInterface":          {Base: 200 * ms, Jitter: 200 * ms},
			"DeleteNetworkInterface":          {Base: 200 * ms, Jitter: 200 * ms},
			"ModifyNetworkInterfaceAttribute": {Base: 150 * ms, Jitter: 150 * ms},
			"AssignPrivateIpAddresses":        {Base: 200 * ms, Jitter: 200 * ms},
			"AssignIpv6Addresses":             {Base: 200 * ms, Jitter: 200 * ms},
			"CreateTags":                      {Base: 150 * ms, Jitter: 100 * ms},
		},
		Default:     describe,
		AttachDelay: Latency{Base: 2 * time.Second, Jitter: 3 * time.Second},
		DetachDelay: Latency{Base: 2 * time.Second, Jitter: 3 * time.Second},
		Visibility:  Latency{Base: 500 * ms, Jitter: 2500 * ms},
		// An instance's first status checks pass a few minutes after launch.
		StatusChecks: Latency{Base: 2 * time.Minute, Jitter: 2 * time.Minute},
	}
}

func (l Latency) draw(rng *rand.Rand) time.Duration {
	d := l.Base
	if l.Jitter > 0 {
		d += time.Duration(rng.Int64N(int64(l.Jitter)))
	}
	return d
}

// callLatency draws the latency of one call (s.mu held).
func (s *Sim) callLatency(action string, rng *rand.Rand) time.Duration {
	l, ok := s.timing.Calls[action]
	if !ok {
		l = s.timing.Default
	}
	return l.draw(rng)
}

// clientRNG returns the generator of one client, seeded from Config.Seed
// and the client's name, so its draws do not depend on how its calls
// interleave with other clients' (s.mu held).
func (s *Sim) clientRNG(client string) *rand.Rand {
	r, ok := s.clients[client]
	if !ok {
		h := fnv.New64a()
		h.Write([]byte(client))
		r = rand.New(rand.NewPCG(uint64(s.cfg.Seed), h.Sum64()))
		s.clients[client] = r
	}
	return r
}

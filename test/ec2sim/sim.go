package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

const defaultRegion = "us-west-2"

// Sim is a simulated EC2 region with one VPC's worth of subnets, instances
// and ENIs. It is safe for concurrent use.
type Sim struct {
	mu     sync.Mutex
	cfg    Config
	clock  Clock
	timing Timing
	// rng draws IDs, MACs and addresses; clients holds one generator per
	// client for latencies, delays and fault draws.
	rng     *rand.Rand
	clients map[string]*rand.Rand
	types   map[string]InstanceType
	actions map[string]actionDef

	vpcID        string
	defaultSG    string
	groups       map[string]*SecurityGroup
	subnets      map[string]*subnetState
	reservations map[string]*CidrReservation
	instances    map[string]*Instance
	enis         map[string]*ENI
	attachments  map[string]string // attachment ID -> ENI ID
	macs         map[string]bool
	ids          map[string]bool
	clientTokens map[string]clientTokenEntry
	visibleAt    map[string]time.Time    // ENI ID -> when describes start seeing it
	shownAt      map[string]time.Time    // ENI ID -> when it became visible, kept (VisibleSince)
	delegated    map[netip.Prefix]string // delegated /28 -> ENI ID (prefixes.go)
	ipv6         map[string]*subnetIPv6  // subnet ID -> its IPv6 CIDR and holders (ipv6.go)

	throttle  *throttler
	faults    []*faultState
	nextFault int

	calls        []Call
	stats        map[string]*ActionStats
	nMutating    int
	nNonMutating int
	mutationSeq  int

	attachHooks   []func(AttachEvent) error
	detachHooks   []func(AttachEvent) error
	mutationHooks []func(string, int)
	callHooks     []func(Call, ActionStats)
	hookErrs      []error

	// changed is closed and replaced whenever an attachment changes state,
	// so WaitIdle can wait on the event instead of polling.
	changed chan struct{}
	closed  chan struct{}
	closeMu sync.Once
	timers  map[*pendingTransition]struct{}
	pending sync.WaitGroup
	// serving counts the EC2 requests being answered: a request accepted
	// before its client went away is still applied (see serveEC2).
	serving int
}

type subnetState struct {
	Subnet
	prefix netip.Prefix
	// used maps an assigned address to the ENI holding it.
	used map[netip.Addr]string
}

type clientTokenEntry struct {
	fingerprint string
	eniID       string
	resp        xmlENI
}

// New returns a simulator with no subnets or instances.
func New(cfg Config) *Sim {
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "123456789012"
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	s := &Sim{
		cfg:          cfg,
		clock:        cfg.Clock,
		timing:       cfg.Timing,
		rng:          rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		clients:      map[string]*rand.Rand{},
		groups:       map[string]*SecurityGroup{},
		stats:        map[string]*ActionStats{},
		types:        map[string]InstanceType{},
		actions:      actionTable(),
		subnets:      map[string]*subnetState{},
		reservations: map[string]*CidrReservation{},
		instances:    map[string]*Instance{},
		enis:         map[string]*ENI{},
		attachments:  map[string]string{},
		macs:         map[string]bool{},
		ids:          map[string]bool{},
		clientTokens: map[string]clientTokenEntry{},
		visibleAt:    map[string]time.Time{},
		shownAt:      map[string]time.Time{},
		delegated:    map[netip.Prefix]string{},
		ipv6:         map[string]*subnetIPv6{},
		changed:      make(chan struct{}),
		closed:       make(chan struct{}),
		timers:       map[*pendingTransition]struct{}{},
	}
	for _, t := range builtinInstanceTypes {
		s.types[t.Name] = t
	}
	for _, t := range cfg.InstanceTypes {
		s.types[t.Name] = t
	}
	s.throttle = newThrottler(cfg.Throttle, cfg.Clock)
	s.vpcID = s.newID("vpc-")
	s.defaultSG = s.newID("sg-")
	s.groups[s.defaultSG] = &SecurityGroup{ID: s.defaultSG, VPCID: s.vpcID, Name: "default"}
	return s
}

// builtinInstanceTypes carries the published network limits of a few
// instance types (EC2 User Guide, "Maximum IP addresses per network
// interface"; instance type network specifications).
var builtinInstanceTypes = []InstanceType{
	{Name: "t3.medium", MaxENIs: 3, NetworkCards: 1, IPv4PerENI: 6},
	{Name: "m5.large", MaxENIs: 3, NetworkCards: 1, IPv4PerENI: 10},
	{Name: "m5.xlarge", MaxENIs: 4, NetworkCards: 1, IPv4PerENI: 15},
	{Name: "c5.large", MaxENIs: 3, NetworkCards: 1, IPv4PerENI: 10},
	{Name: "c5.xlarge", MaxENIs: 4, NetworkCards: 1, IPv4PerENI: 15},
	{Name: "c5.2xlarge", MaxENIs: 4, NetworkCards: 1, IPv4PerENI: 15},
	{Name: "c5.4xlarge", MaxENIs: 8, NetworkCards: 1, IPv4PerENI: 30},
	{Name: "c5.9xlarge", MaxENIs: 8, NetworkCards: 1, IPv4PerENI: 30},
	{Name: "c5n.18xlarge", MaxENIs: 15, NetworkCards: 1, IPv4PerENI: 50},
	{Name: "c6in.32xlarge", MaxENIs: 16, NetworkCards: 2, MaxENIsPerCard: 8, IPv4PerENI: 50},
}

// InstanceTypes returns the instance type table, sorted by name.
func (s *Sim) InstanceTypes() []InstanceType {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InstanceType, 0, len(s.types))
	for _, t := range s.types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (t InstanceType) perCard() int {
	if t.MaxENIsPerCard > 0 {
		return t.MaxENIsPerCard
	}
	if t.NetworkCards <= 1 {
		return t.MaxENIs
	}
	return t.MaxENIs / t.NetworkCards
}

func (t InstanceType) cards() int {
	if t.NetworkCards < 1 {
		return 1
	}
	return t.NetworkCards
}

// newID returns prefix + "0" + 16 hex digits, the 17-digit form EC2 uses.
// Callers hold s.mu (or own s exclusively).
func (s *Sim) newID(prefix string) string {
	for {
		id := fmt.Sprintf("%s0%016x", prefix, s.rng.Uint64())
		if !s.ids[id] {
			s.ids[id] = true
			return id
		}
	}
}

// ENI MACs are locally administered unicast addresses (02:, 06:, 0a:, ...).
var macFirstOctets = []byte{0x02, 0x06, 0x0a, 0x0e, 0x12, 0x16}

func (s *Sim) newMAC() string {
	for {
		b := make([]byte, 6)
		b[0] = macFirstOctets[s.rng.IntN(len(macFirstOctets))]
		for i := 1; i < 6; i++ {
			b[i] = byte(s.rng.IntN(256))
		}
		mac := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
		if !s.macs[mac] {
			s.macs[mac] = true
			return mac
		}
	}
}

// AddSubnet creates a subnet.
func (s *Sim) AddSubnet(spec SubnetSpec) (Subnet, error) {
	p, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return Subnet{}, fmt.Errorf("subnet CIDR %q: %w", spec.CIDR, err)
	}
	if !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 28 {
		return Subnet{}, fmt.Errorf("subnet CIDR %q: must be IPv4 between /16 and /28", spec.CIDR)
	}
	if p.Masked() != p {
		return Subnet{}, fmt.Errorf("subnet CIDR %q: host bits set", spec.CIDR)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sn := range s.subnets {
		if sn.prefix.Overlaps(p) {
			return Subnet{}, fmt.Errorf("subnet CIDR %q overlaps %s (%s)", spec.CIDR, sn.ID, sn.CIDR)
		}
	}
	id := spec.ID
	if id == "" {
		id = s.newID("subnet-")
	} else if _, dup := s.subnets[id]; dup {
		return Subnet{}, fmt.Errorf("subnet %s already exists", id)
	}
	s.ids[id] = true
	az := spec.AvailabilityZone
	if az == "" {
		az = s.cfg.Region + "a"
	}
	vpc := spec.VPCID
	if vpc == "" {
		vpc = s.vpcID
	}
	sn := &subnetState{
		Subnet: Subnet{
			ID:                 id,
			VPCID:              vpc,
			CIDR:               p.String(),
			AvailabilityZone:   az,
			AvailabilityZoneID: azID(s.cfg.Region, az),
			Tags:               copyTags(spec.Tags),
		},
		prefix: p,
		used:   map[netip.Addr]string{},
	}
	if err := s.addIPv6(id, spec.IPv6CIDR); err != nil {
		return Subnet{}, err
	}
	s.subnets[id] = sn
	return s.subnetView(sn), nil
}

// azID derives a zone ID such as "usw2-az1" (us-west-2a) or "apne1-az1"
// (ap-northeast-1a) from a zone name. Real zone IDs are mapped per account;
// the simulator uses the letter's position.
func azID(region, az string) string {
	parts := strings.Split(region, "-")
	if len(parts) != 3 {
		return region + "-az1"
	}
	dir := parts[1]
	for _, w := range [][2]string{{"north", "n"}, {"south", "s"}, {"east", "e"}, {"west", "w"}, {"central", "c"}} {
		dir = strings.ReplaceAll(dir, w[0], w[1])
	}
	n := 1
	if suffix := strings.TrimPrefix(az, region); len(suffix) == 1 {
		n = int(suffix[0]-'a') + 1
	}
	return fmt.Sprintf("%s%s%s-az%d", parts[0], dir, parts[2], n)
}

// AddSubnetCidrReservation reserves cidr inside a subnet. Type is
// "explicit" or "prefix".
func (s *Sim) AddSubnetCidrReservation(subnetID, cidr, typ, description string) (CidrReservation, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return CidrReservation{}, fmt.Errorf("reservation CIDR %q: %w", cidr, err)
	}
	if typ != "explicit" && typ != "prefix" {
		return CidrReservation{}, fmt.Errorf("reservation type %q: want explicit or prefix", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.subnets[subnetID]
	if !ok {
		return CidrReservation{}, fmt.Errorf("subnet %s not found", subnetID)
	}
	if p.Masked() != p || !sn.prefix.Contains(p.Addr()) || p.Bits() < sn.prefix.Bits() {
		return CidrReservation{}, fmt.Errorf("reservation CIDR %s not inside subnet %s (%s)", cidr, subnetID, sn.CIDR)
	}
	r := &CidrReservation{ID: s.newID("scr-"), SubnetID: subnetID, CIDR: p.String(), Type: typ, Description: description}
	s.reservations[r.ID] = r
	return *r, nil
}

// AddInstance creates a running instance with its primary ENI (device
// index 0) and any launch-template ENIs already attached. No hooks run for
// these attachments: the NICs exist from boot; VethHotplug.Install plugs
// them.
func (s *Sim) AddInstance(spec InstanceSpec) (Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typName := spec.Type
	if typName == "" {
		typName = "c5.large"
	}
	typ, ok := s.types[typName]
	if !ok {
		return Instance{}, fmt.Errorf("instance type %q is not in the table (add it with Config.InstanceTypes)", typName)
	}
	sn, ok := s.subnets[spec.SubnetID]
	if !ok {
		return Instance{}, fmt.Errorf("instance subnet %q not found", spec.SubnetID)
	}
	if len(spec.LaunchTemplateENIs)+1 > typ.MaxENIs {
		return Instance{}, fmt.Errorf("%d interfaces exceed the limit %d of %s", len(spec.LaunchTemplateENIs)+1, typ.MaxENIs, typName)
	}
	id := spec.ID
	if id == "" {
		id = s.newID("i-")
	} else if _, dup := s.instances[id]; dup {
		return Instance{}, fmt.Errorf("instance %s already exists", id)
	}
	s.ids[id] = true
	sgs := spec.SecurityGroupIDs
	if len(sgs) == 0 {
		sgs = []string{s.defaultSG}
	}
	s.ensureGroupsLocked(sgs)
	for _, es := range spec.LaunchTemplateENIs {
		s.ensureGroupsLocked(es.SecurityGroupIDs)
	}
	inst := &Instance{
		ID:               id,
		Type:             typName,
		SubnetID:         sn.ID,
		VPCID:            sn.VPCID,
		AvailabilityZone: sn.AvailabilityZone,
		SecurityGroupIDs: slices.Clone(sgs),
		UserData:         slices.Clone(spec.UserData),
		Tags:             copyTags(spec.Tags),
		ReservationID:    s.newID("r-"),
		LaunchTime:       s.clock.Now().UTC().Truncate(time.Second),
		Role:             spec.Role,
	}
	inst.StatusChecksPass = s.clock.Now().Add(s.timing.StatusChecks.draw(s.clientRNG("status-checks " + id)))
	specs := append([]ENISpec{{
		SubnetID:            sn.ID,
		PrivateIP:           spec.PrivateIP,
		SecurityGroupIDs:    sgs,
		DeleteOnTermination: true,
		Description:         "",
	}}, spec.LaunchTemplateENIs...)
	var created []*ENI
	rollback := func() {
		for _, e := range created {
			s.releaseENI(e)
		}
		delete(s.ids, id)
	}
	for i, es := range specs {
		if i > 0 && es.DeviceIndex == 0 && es.NetworkCardIndex == 0 {
			rollback()
			return Instance{}, fmt.Errorf("launch template ENI %d: device index 0 on card 0 is the primary ENI", i)
		}
		if es.NetworkCardIndex >= typ.cards() {
			rollback()
			return Instance{}, fmt.Errorf("launch template ENI %d: network card %d but %s has %d", i, es.NetworkCardIndex, typName, typ.cards())
		}
		for _, c := range created {
			if c.Attachment.DeviceIndex == es.DeviceIndex && c.Attachment.NetworkCardIndex == es.NetworkCardIndex {
				rollback()
				return Instance{}, fmt.Errorf("launch template ENI %d: device index %d on card %d used twice", i, es.DeviceIndex, es.NetworkCardIndex)
			}
		}
		subnetID := es.SubnetID
		if subnetID == "" {
			subnetID = sn.ID
		}
		esn, ok := s.subnets[subnetID]
		if !ok {
			rollback()
			return Instance{}, fmt.Errorf("launch template ENI %d: subnet %q not found", i, subnetID)
		}
		var want []netip.Addr
		if es.PrivateIP != "" {
			a, err := netip.ParseAddr(es.PrivateIP)
			if err != nil {
				rollback()
				return Instance{}, fmt.Errorf("ENI %d private IP: %w", i, err)
			}
			want = append(want, a)
		}
		sgs := es.SecurityGroupIDs
		if len(sgs) == 0 {
			sgs = inst.SecurityGroupIDs
		}
		e, apiErr := s.createENILocked(esn, want, es.SecondaryIPs, sgs, es.Description, es.Tags)
		if apiErr != nil {
			rollback()
			return Instance{}, fmt.Errorf("ENI %d: %w", i, apiErr)
		}
		delete(s.visibleAt, e.ID) // booted with the instance: long consistent
		created = append(created, e)
		e.Status = "in-use"
		e.Attachment = &Attachment{
			ID:                  s.newID("eni-attach-"),
			InstanceID:          id,
			DeviceIndex:         es.DeviceIndex,
			NetworkCardIndex:    es.NetworkCardIndex,
			Status:              "attached",
			DeleteOnTermination: es.DeleteOnTermination || i == 0,
			AttachTime:          inst.LaunchTime,
		}
		s.attachments[e.Attachment.ID] = e.ID
	}
	inst.PrimaryENIID = created[0].ID
	inst.PrivateIP = created[0].PrivateIPs[0]
	s.instances[id] = inst
	return cloneInstance(inst), nil
}

// releaseENI frees an ENI's addresses, MAC and attachment (s.mu held).
func (s *Sim) releaseENI(e *ENI) {
	if sn, ok := s.subnets[e.SubnetID]; ok {
		for _, ip := range e.PrivateIPs {
			delete(sn.used, netip.MustParseAddr(ip))
		}
	}
	s.releasePrefixes(e)
	s.releaseIPv6(e)
	if e.Attachment != nil {
		delete(s.attachments, e.Attachment.ID)
	}
	delete(s.enis, e.ID)
	delete(s.macs, e.MAC)
	delete(s.visibleAt, e.ID)
}

// SetUserData replaces the user data an instance's IMDS serves.
func (s *Sim) SetUserData(instanceID string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[instanceID]
	if !ok {
		return fmt.Errorf("instance %s not found", instanceID)
	}
	inst.UserData = slices.Clone(data)
	return nil
}

// OnAttach registers a hook run when an attachment reaches "attached".
// Hooks run in order, outside the simulator's lock; their errors are kept
// in HookErrors. With a zero attach delay they run before the
// AttachNetworkInterface response is written.
func (s *Sim) OnAttach(fn func(AttachEvent) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attachHooks = append(s.attachHooks, fn)
}

// OnDetach registers a hook run when an attachment reaches "detached".
func (s *Sim) OnDetach(fn func(AttachEvent) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detachHooks = append(s.detachHooks, fn)
}

// OnMutation registers a hook run after a mutating call has been applied
// and before its response is written; n counts successful mutating calls
// from 1 (ResetCalls does not reset it). A hook may cancel the client's
// context to simulate a crash at that point, or panic(http.ErrAbortHandler)
// to drop the response as a lost connection would (the SDK then retries).
func (s *Sim) OnMutation(fn func(action string, n int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutationHooks = append(s.mutationHooks, fn)
}

// HookErrors returns the errors returned by OnAttach/OnDetach hooks.
func (s *Sim) HookErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hookErrs)
}

func (s *Sim) runHooks(hooks []func(AttachEvent) error, ev AttachEvent, what string) {
	for _, h := range hooks {
		if err := h(ev); err != nil {
			s.mu.Lock()
			s.hookErrs = append(s.hookErrs, fmt.Errorf("%s hook for %s (%s): %w", what, ev.ENIID, ev.MAC, err))
			s.mu.Unlock()
		}
	}
}

// SetTiming replaces the latency model at run time.
func (s *Sim) SetTiming(t Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timing = t
}

// Calls returns a copy of the call log.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = cloneValues(c.Params)
		out[i] = c
	}
	return out
}

// CallCounts returns how many mutating and non-mutating calls were served
// (including failed ones) since the last ResetCalls.
func (s *Sim) CallCounts() (mutating, nonMutating int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nMutating, s.nNonMutating
}

// ResetCalls clears the call log and counters.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.stats = map[string]*ActionStats{}
	s.nMutating, s.nNonMutating = 0, 0
}

// Stats returns the call counts per action since the last ResetCalls.
// Unlike Calls it is never trimmed.
func (s *Sim) Stats() map[string]ActionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ActionStats, len(s.stats))
	for a, st := range s.stats {
		out[a] = *st
	}
	return out
}

// OnCall registers a hook run for every call once its answer is decided,
// with the action's counts so far (this call included). It runs outside
// the simulator's lock and must not block.
func (s *Sim) OnCall(fn func(c Call, soFar ActionStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callHooks = append(s.callHooks, fn)
}

// ENIs returns every ENI, sorted by ID.
func (s *Sim) ENIs() []ENI {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ENI, 0, len(s.enis))
	for _, id := range sortedKeys(s.enis) {
		out = append(out, cloneENI(s.enis[id]))
	}
	return out
}

// ENI returns one ENI.
func (s *Sim) ENI(id string) (ENI, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[id]
	if !ok {
		return ENI{}, false
	}
	return cloneENI(e), true
}

// Instance returns one instance.
func (s *Sim) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return cloneInstance(inst), true
}

// Subnets returns every subnet, sorted by ID.
func (s *Sim) Subnets() []Subnet {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subnet, 0, len(s.subnets))
	for _, id := range sortedKeys(s.subnets) {
		out = append(out, s.subnetView(s.subnets[id]))
	}
	return out
}

func (s *Sim) subnetView(sn *subnetState) Subnet {
	v := sn.Subnet
	v.Tags = copyTags(sn.Tags)
	v.AvailableIPs = s.freeCount(sn)
	return v
}

// ErrClosed is returned by WaitIdle after Close.
var ErrClosed = errors.New("ec2sim: closed")

// WaitIdle blocks until no request is being answered (one a killed client
// sent is applied all the same), no attachment is in a transitional state
// (attaching/detaching) and every hook has run, or ctx is done.
func (s *Sim) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		busy := len(s.timers) > 0 || s.serving > 0
		ch := s.changed
		s.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return ErrClosed
		}
	}
}

// notifyLocked wakes WaitIdle callers (s.mu held).
func (s *Sim) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Close stops pending state transitions and releases held requests.
func (s *Sim) Close() {
	s.closeMu.Do(func() {
		s.mu.Lock()
		close(s.closed)
		for t := range s.timers {
			if t.timer.Stop() {
				s.pending.Done()
			}
		}
		s.timers = map[*pendingTransition]struct{}{}
		s.mu.Unlock()
		s.pending.Wait()
	})
}

// Handler returns the EC2 Query API handler.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveEC2) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func copyTags(t map[string]string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func cloneENI(e *ENI) ENI {
	c := *e
	c.PrivateIPs = slices.Clone(e.PrivateIPs)
	c.IPv4Prefixes = slices.Clone(e.IPv4Prefixes)
	c.IPv6Addresses, c.IPv6Prefixes = slices.Clone(e.IPv6Addresses), slices.Clone(e.IPv6Prefixes)
	c.SecurityGroupIDs = slices.Clone(e.SecurityGroupIDs)
	c.Tags = copyTags(e.Tags)
	if e.Attachment != nil {
		a := *e.Attachment
		c.Attachment = &a
	}
	return c
}

func cloneInstance(i *Instance) Instance {
	c := *i
	c.SecurityGroupIDs = slices.Clone(i.SecurityGroupIDs)
	c.UserData = slices.Clone(i.UserData)
	c.Tags = copyTags(i.Tags)
	return c
}

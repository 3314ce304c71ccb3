package ec2sim

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ---- pagination ----

const tokenPrefix = "ec2sim:"

// paginate cuts a page out of all. EC2 rejects MaxResults together with
// explicit IDs, and MaxResults outside 5..1000.
func paginate[T any](all []T, p params, idsGiven bool) ([]T, string, *apiError) {
	max, hasMax, err := p.integer("MaxResults")
	if err != nil {
		return nil, "", err
	}
	start := 0
	if tok := p.str("NextToken"); tok != "" {
		raw, decErr := base64.RawURLEncoding.DecodeString(tok)
		n, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), tokenPrefix))
		if decErr != nil || convErr != nil || !strings.HasPrefix(string(raw), tokenPrefix) || n < 0 {
			return nil, "", &apiError{Code: "InvalidPaginationToken", Message: fmt.Sprintf("Invalid pagination token '%s'", tok)}
		}
		start = min(n, len(all)) // items may have gone since the last page
	}
	if !hasMax {
		return all[start:], "", nil
	}
	if idsGiven {
		return nil, "", &apiError{Code: "InvalidParameterCombination", Message: "The parameter MaxResults cannot be used with the parameter ids"}
	}
	if max < 5 || max > 1000 {
		return nil, "", errInvalidParameterValue(fmt.Sprintf("Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", max))
	}
	end := min(start+max, len(all))
	next := ""
	if end < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.Itoa(end)))
	}
	return all[start:end], next, nil
}

// ---- filters ----

// tagFilter handles tag:<key>, tag-key and tag-value; ok is false for
// other names.
func tagFilter(f filter, tags map[string]string) (match, ok bool) {
	switch {
	case strings.HasPrefix(f.Name, "tag:"):
		v, has := tags[strings.TrimPrefix(f.Name, "tag:")]
		return has && matchAny(f.Values, v), true
	case f.Name == "tag-key":
		for k := range tags {
			if matchAny(f.Values, k) {
				return true, true
			}
		}
		return false, true
	case f.Name == "tag-value":
		for _, v := range tags {
			if matchAny(f.Values, v) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// checkFilters rejects filter names the action does not know, even when
// nothing would be matched against them.

// selection says which objects a Describe call returns.
type selection[T any] struct {
	// ids are the objects asked for by ID; all when empty.
	ids []string
	// known are the filter names the action accepts; nil accepts any.
	known map[string][]string
	// check validates the IDs once the filters are known to be good.
	check func() *apiError
	// keep hides objects the caller may not see yet; nil keeps all.
	keep func(id string, obj T) bool
	// fields gives an object's filterable fields and its tags.
	fields func(obj T) (map[string][]string, map[string]string)
}

// selectPage runs the part every Describe call shares: parse and check the
// filters, check the IDs, match objects in ID order, and cut the page.
func selectPage[T any](p params, objs map[string]T, sel selection[T]) ([]T, string, *apiError) {
	filters, err := p.filters()
	if err != nil {
		return nil, "", err
	}
	if sel.known != nil {
		if err := checkFilters(filters, sel.known); err != nil {
			return nil, "", err
		}
	}
	if sel.check != nil {
		if err := sel.check(); err != nil {
			return nil, "", err
		}
	}
	var matched []T
	for _, id := range sortedKeys(objs) {
		obj := objs[id]
		if len(sel.ids) > 0 && !slices.Contains(sel.ids, id) {
			continue
		}
		if sel.keep != nil && !sel.keep(id, obj) {
			continue
		}
		fields, tags := sel.fields(obj)
		ok, err := fieldsMatch(filters, fields, tags)
		if err != nil {
			return nil, "", err
		}
		if ok {
			matched = append(matched, obj)
		}
	}
	return paginate(matched, p, len(sel.ids) > 0)
}

func checkFilters(filters []filter, known map[string][]string) *apiError {
	for _, f := range filters {
		if _, isTag := tagFilter(f, nil); isTag {
			continue
		}
		if _, ok := known[f.Name]; !ok {
			return errBadFilter(f.Name)
		}
	}
	return nil
}

func errBadFilter(name string) *apiError {
	return errInvalidParameterValue(fmt.Sprintf("The filter '%s' is invalid", name))
}

// fieldsMatch evaluates filters against named field values; every filter
// must match (AND), any value of a filter may match (OR).
func fieldsMatch(filters []filter, fields map[string][]string, tags map[string]string) (bool, *apiError) {
	for _, f := range filters {
		if m, ok := tagFilter(f, tags); ok {
			if !m {
				return false, nil
			}
			continue
		}
		vals, known := fields[f.Name]
		if !known {
			return false, errBadFilter(f.Name)
		}
		if !matchAny(f.Values, vals...) {
			return false, nil
		}
	}
	return true, nil
}

func validID(id, prefix string) bool {
	hex, ok := strings.CutPrefix(id, prefix)
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range hex {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// ---- DescribeNetworkInterfaces ----

func eniFields(s *Sim, e *ENI) map[string][]string {
	f := map[string][]string{
		"network-interface-id":             {e.ID},
		"subnet-id":                        {e.SubnetID},
		"vpc-id":                           {e.VPCID},
		"status":                           {e.Status},
		"mac-address":                      {e.MAC},
		"description":                      {e.Description},
		"availability-zone":                {e.AvailabilityZone},
		"private-ip-address":               e.PrivateIPs[:1],
		"addresses.private-ip-address":     e.PrivateIPs,
		"addresses.primary":                {"true"},
		"group-id":                         e.SecurityGroupIDs,
		"interface-type":                   {e.InterfaceType},
		"owner-id":                         {s.cfg.AccountID},
		"requester-managed":                {strconv.FormatBool(e.RequesterManaged)},
		"source-dest-check":                {strconv.FormatBool(e.SourceDestCheck)},
		"attachment.instance-id":           nil,
		"attachment.attachment-id":         nil,
		"attachment.status":                nil,
		"attachment.device-index":          nil,
		"attachment.instance-owner-id":     nil,
		"attachment.delete-on-termination": nil,
		"attachment.attach-time":           nil,
	}
	if a := e.Attachment; a != nil {
		f["attachment.instance-id"] = []string{a.InstanceID}
		f["attachment.attachment-id"] = []string{a.ID}
		f["attachment.status"] = []string{a.Status}
		f["attachment.device-index"] = []string{strconv.Itoa(a.DeviceIndex)}
		f["attachment.instance-owner-id"] = []string{s.cfg.AccountID}
		f["attachment.delete-on-termination"] = []string{strconv.FormatBool(a.DeleteOnTermination)}
		f["attachment.attach-time"] = []string{ec2Time(a.AttachTime)}
	}
	return f
}

func (s *Sim) describeNetworkInterfaces(p params) (response, *apiError, []func()) {
	ids := p.list("NetworkInterfaceId")
	page, next, err := selectPage(p, s.enis, selection[*ENI]{
		ids:   ids,
		known: eniFields(s, &ENI{PrivateIPs: []string{""}}),
		check: func() *apiError {
			for _, id := range ids {
				if !validID(id, "eni-") {
					return &apiError{Code: "InvalidNetworkInterfaceID.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"eni-...\")", id)}
				}
				if _, err := s.lookupENI(id); err != nil {
					return err
				}
			}
			return nil
		},
		keep:   func(id string, _ *ENI) bool { return s.visible(id) },
		fields: func(e *ENI) (map[string][]string, map[string]string) { return eniFields(s, e), e.Tags },
	})
	if err != nil {
		return nil, err, nil
	}
	resp := &describeNetworkInterfacesResponse{NextToken: next}
	for _, e := range page {
		resp.NetworkInterfaceSet.Item = append(resp.NetworkInterfaceSet.Item, s.eniXML(e, e.Status))
	}
	return resp, nil, nil
}

// ---- DescribeSubnets ----

func subnetFields(s *Sim, sn *subnetState) map[string][]string {
	return map[string][]string{
		"subnet-id":                  {sn.ID},
		"vpc-id":                     {sn.VPCID},
		"availability-zone":          {sn.AvailabilityZone},
		"availability-zone-id":       {sn.AvailabilityZoneID},
		"cidr-block":                 {sn.CIDR},
		"cidr":                       {sn.CIDR},
		"cidrBlock":                  {sn.CIDR},
		"state":                      {"available"},
		"owner-id":                   {s.cfg.AccountID},
		"default-for-az":             {"false"},
		"available-ip-address-count": {strconv.Itoa(s.freeCount(sn))},
	}
}

func (s *Sim) describeSubnets(p params) (response, *apiError, []func()) {
	ids := p.list("SubnetId")
	page, next, err := selectPage(p, s.subnets, selection[*subnetState]{
		ids:   ids,
		known: subnetFields(s, &subnetState{prefix: netip.MustParsePrefix("10.0.0.0/28")}),
		check: func() *apiError {
			for _, id := range ids {
				if _, ok := s.subnets[id]; !ok {
					return errSubnetNotFound(id)
				}
			}
			return nil
		},
		fields: func(sn *subnetState) (map[string][]string, map[string]string) { return subnetFields(s, sn), sn.Tags },
	})
	if err != nil {
		return nil, err, nil
	}
	resp := &describeSubnetsResponse{NextToken: next}
	for _, sn := range page {
		resp.SubnetSet.Item = append(resp.SubnetSet.Item, s.subnetXML(sn))
	}
	return resp, nil, nil
}

// ---- GetSubnetCidrReservations ----

func (s *Sim) getSubnetCidrReservations(p params) (response, *apiError, []func()) {
	subnetID := p.str("SubnetId")
	if subnetID == "" {
		return nil, errMissing("SubnetId"), nil
	}
	if _, ok := s.subnets[subnetID]; !ok {
		return nil, errSubnetNotFound(subnetID), nil
	}
	page, next, err := selectPage(p, s.reservations, selection[*CidrReservation]{
		known: map[string][]string{"reservationType": nil, "subnet-id": nil, "owner-id": nil},
		keep:  func(_ string, r *CidrReservation) bool { return r.SubnetID == subnetID },
		fields: func(r *CidrReservation) (map[string][]string, map[string]string) {
			return map[string][]string{
				"reservationType": {r.Type},
				"subnet-id":       {r.SubnetID},
				"owner-id":        {s.cfg.AccountID},
			}, nil
		},
	})
	if err != nil {
		return nil, err, nil
	}
	resp := &getSubnetCidrReservationsResponse{NextToken: next}
	for _, r := range page {
		resp.IPv4.Item = append(resp.IPv4.Item, xmlCidrReservation{
			SubnetCidrReservationID: r.ID, SubnetID: r.SubnetID, Cidr: r.CIDR,
			ReservationType: r.Type, OwnerID: s.cfg.AccountID, Description: r.Description,
		})
	}
	return resp, nil, nil
}

// ---- DescribeInstances ----

func (s *Sim) instanceENIs(instanceID string) []*ENI {
	var out []*ENI
	for _, e := range s.enis {
		if e.Attachment != nil && e.Attachment.InstanceID == instanceID {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Attachment, out[j].Attachment
		if a.NetworkCardIndex != b.NetworkCardIndex {
			return a.NetworkCardIndex < b.NetworkCardIndex
		}
		return a.DeviceIndex < b.DeviceIndex
	})
	return out
}

func instanceFields(s *Sim, inst *Instance) map[string][]string {
	var eniIDs, ips []string
	for _, e := range s.instanceENIs(inst.ID) {
		eniIDs = append(eniIDs, e.ID)
		ips = append(ips, e.PrivateIPs...)
	}
	return map[string][]string{
		"instance-id":                            {inst.ID},
		"instance-type":                          {inst.Type},
		"subnet-id":                              {inst.SubnetID},
		"vpc-id":                                 {inst.VPCID},
		"availability-zone":                      {inst.AvailabilityZone},
		"instance-state-name":                    {instanceState(inst).Name},
		"instance-state-code":                    {strconv.Itoa(instanceState(inst).Code)},
		"private-ip-address":                     {inst.PrivateIP},
		"network-interface.network-interface-id": eniIDs,
		"network-interface.addresses.private-ip-address": ips,
		"reservation-id": {inst.ReservationID},
	}
}

func instanceState(inst *Instance) xmlInstanceState {
	if inst.Terminated {
		return xmlInstanceState{Code: 48, Name: "terminated"}
	}
	return xmlInstanceState{Code: 16, Name: "running"}
}

// checkInstanceIDs answers the first unknown instance ID as EC2 does.
func (s *Sim) checkInstanceIDs(ids []string) *apiError {
	for _, id := range ids {
		if _, ok := s.instances[id]; !ok {
			return errInstanceNotFound(id)
		}
	}
	return nil
}

func (s *Sim) describeInstances(p params) (response, *apiError, []func()) {
	ids := p.list("InstanceId")
	page, next, err := selectPage(p, s.instances, selection[*Instance]{
		ids:   ids,
		known: instanceFields(s, &Instance{}),
		check: func() *apiError { return s.checkInstanceIDs(ids) },
		fields: func(inst *Instance) (map[string][]string, map[string]string) {
			return instanceFields(s, inst), inst.Tags
		},
	})
	if err != nil {
		return nil, err, nil
	}
	resp := &describeInstancesResponse{NextToken: next}
	for _, inst := range page {
		x := xmlInstance{
			InstanceID:         inst.ID,
			ImageID:            "ami-0123456789abcdef0",
			InstanceState:      instanceState(inst),
			PrivateDNSName:     s.privateDNS(inst.PrivateIP),
			InstanceType:       inst.Type,
			LaunchTime:         ec2Time(inst.LaunchTime),
			Placement:          xmlPlacement{AvailabilityZone: inst.AvailabilityZone, Tenancy: "default"},
			SubnetID:           inst.SubnetID,
			VPCID:              inst.VPCID,
			PrivateIPAddress:   inst.PrivateIP,
			SourceDestCheck:    true,
			GroupSet:           s.groupItems(inst.SecurityGroupIDs),
			Architecture:       "x86_64",
			RootDeviceType:     "ebs",
			RootDeviceName:     "/dev/xvda",
			VirtualizationType: "hvm",
			Hypervisor:         "xen",
			EnaSupport:         true,
			TagSet:             tagItems(inst.Tags),
		}
		for _, e := range s.instanceENIs(inst.ID) {
			if e.ID == inst.PrimaryENIID {
				x.SourceDestCheck = e.SourceDestCheck
			}
			ex := s.eniXML(e, e.Status)
			a := e.Attachment
			x.NetworkInterfaceSet.Item = append(x.NetworkInterfaceSet.Item, xmlInstanceENI{
				NetworkInterfaceID: e.ID, SubnetID: e.SubnetID, VPCID: e.VPCID,
				Description: e.Description, OwnerID: s.cfg.AccountID, Status: e.Status,
				MACAddress: e.MAC, PrivateIPAddress: ex.PrivateIPAddress, PrivateDNSName: ex.PrivateDNSName,
				SourceDestCheck: e.SourceDestCheck, GroupSet: ex.GroupSet,
				Attachment: xmlInstanceENIAttachment{
					AttachmentID: a.ID, DeviceIndex: a.DeviceIndex, NetworkCardIndex: a.NetworkCardIndex,
					Status: a.Status, AttachTime: ec2Time(a.AttachTime), DeleteOnTermination: a.DeleteOnTermination,
				},
				PrivateIPAddressesSet: ex.PrivateIPAddressesSet,
				InterfaceType:         e.InterfaceType,
			})
		}
		resp.ReservationSet.Item = append(resp.ReservationSet.Item, xmlReservation{
			ReservationID: inst.ReservationID,
			OwnerID:       s.cfg.AccountID,
			InstancesSet:  items[xmlInstance]{Item: []xmlInstance{x}},
		})
	}
	return resp, nil, nil
}

// ---- CreateNetworkInterface ----

// createENILocked allocates an ENI with the wanted addresses (first is
// primary) plus `secondary` automatic ones (s.mu held).
func (s *Sim) createENILocked(sn *subnetState, want []netip.Addr, secondary int, sgs []string, desc string, tags map[string]string) (*ENI, *apiError) {
	seen := map[netip.Addr]bool{}
	for _, a := range want {
		if seen[a] {
			return nil, errInvalidParameterValue(fmt.Sprintf("Address %s is specified more than once", a))
		}
		seen[a] = true
		if err := s.checkManual(sn, a); err != nil {
			return nil, err
		}
	}
	n := secondary
	if len(want) == 0 {
		n++
	}
	extra, ok := s.allocate(sn, n, seen)
	if !ok {
		return nil, &apiError{Code: "InsufficientFreeAddressesInSubnet", Message: "The specified subnet does not have enough free addresses to satisfy the request."}
	}
	e := &ENI{
		ID:               s.newID("eni-"),
		SubnetID:         sn.ID,
		VPCID:            sn.VPCID,
		AvailabilityZone: sn.AvailabilityZone,
		MAC:              s.newMAC(),
		Description:      desc,
		Status:           "available",
		InterfaceType:    "interface",
		SecurityGroupIDs: slices.Clone(sgs),
		SourceDestCheck:  true,
		Tags:             copyTags(tags),
	}
	for _, a := range append(slices.Clone(want), extra...) {
		e.PrivateIPs = append(e.PrivateIPs, a.String())
		sn.used[a] = e.ID
	}
	s.enis[e.ID] = e
	return e, nil
}

func (s *Sim) createNetworkInterface(p params) (response, *apiError, []func()) {
	subnetID := p.str("SubnetId")
	if subnetID == "" {
		return nil, errMissing("SubnetId"), nil
	}
	token := p.str("ClientToken")
	fp := p.fingerprint()
	if token != "" {
		if prev, ok := s.clientTokens[token]; ok {
			if prev.fingerprint != fp {
				return nil, &apiError{Code: "IdempotentParameterMismatch", Message: fmt.Sprintf("The client token '%s' has already been used with different parameters.", token)}, nil
			}
			return &createNetworkInterfaceResponse{NetworkInterface: prev.resp, ClientToken: token}, nil, nil
		}
	}
	sn, ok := s.subnets[subnetID]
	if !ok {
		return nil, errSubnetNotFound(subnetID), nil
	}
	var want []netip.Addr
	if ip := p.str("PrivateIpAddress"); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for privateIpAddress", ip)), nil
		}
		want = append(want, a)
	}
	for _, n := range p.indexes("PrivateIpAddresses") {
		ip := p.str(fmt.Sprintf("PrivateIpAddresses.%d.PrivateIpAddress", n))
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for privateIpAddresses", ip)), nil
		}
		if primary, _, _ := p.boolean(fmt.Sprintf("PrivateIpAddresses.%d.Primary", n)); primary {
			if len(want) > 0 && want[0] != a && p.has("PrivateIpAddress") {
				return nil, &apiError{Code: "InvalidParameterCombination", Message: "Only one primary private IP address can be specified"}, nil
			}
			want = append([]netip.Addr{a}, slices.DeleteFunc(want, func(x netip.Addr) bool { return x == a })...)
		} else if !slices.Contains(want, a) {
			want = append(want, a)
		}
	}
	secondary, _, err := p.integer("SecondaryPrivateIpAddressCount")
	if err != nil {
		return nil, err, nil
	}
	if secondary < 0 {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for secondaryPrivateIpAddressCount", secondary)), nil
	}
	sgs := p.list("SecurityGroupId")
	for _, sg := range sgs {
		if !strings.HasPrefix(sg, "sg-") {
			return nil, &apiError{Code: "InvalidGroupId.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"sg-...\")", sg)}, nil
		}
	}
	if len(sgs) == 0 {
		sgs = []string{s.defaultSG}
	}
	if err := s.checkGroups(sgs); err != nil {
		return nil, err, nil
	}
	tags := map[string]string{}
	for _, n := range p.indexes("TagSpecification") {
		rt := p.str(fmt.Sprintf("TagSpecification.%d.ResourceType", n))
		if rt != "network-interface" {
			return nil, errInvalidParameterValue(fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", rt)), nil
		}
		t, err := p.tagList(fmt.Sprintf("TagSpecification.%d.Tag", n))
		if err != nil {
			return nil, err, nil
		}
		for k, v := range t {
			tags[k] = v
		}
	}
	prefixes, apiErr := s.prefixCountParam(p, secondary > 0 || len(want) > 1)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	e, apiErr := s.createENILocked(sn, want, secondary, sgs, p.str("Description"), tags)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	if apiErr := s.delegatePrefixes(sn, e, prefixes); apiErr != nil {
		s.releaseENI(e)
		return nil, apiErr, nil
	}
	if apiErr := s.createIPv6(p, e); apiErr != nil {
		s.releaseENI(e)
		return nil, apiErr, nil
	}
	d := s.timing.Visibility.draw(p.rng)
	if d > 0 {
		s.visibleAt[e.ID] = s.clock.Now().Add(d)
	}
	s.shownAt[e.ID] = s.clock.Now().Add(d)
	// EC2 answers a new interface as "pending"; it is "available" from the
	// next describe on.
	x := s.eniXML(e, "pending")
	if token != "" {
		s.clientTokens[token] = clientTokenEntry{fingerprint: fp, eniID: e.ID, resp: x}
	}
	return &createNetworkInterfaceResponse{NetworkInterface: x, ClientToken: token}, nil, nil
}

// ---- attachment state machine ----

type pendingTransition struct{ timer Timer }

// transition applies a state change after d, or now when d is zero. apply
// runs under s.mu and returns what to run outside the lock (hooks). With d
// zero the returned func is for the caller to run before responding.
func (s *Sim) transition(d time.Duration, apply func() func()) func() {
	if d <= 0 {
		return apply()
	}
	pt := &pendingTransition{}
	s.pending.Add(1)
	s.timers[pt] = struct{}{}
	pt.timer = s.clock.AfterFunc(d, func() {
		defer s.pending.Done()
		s.mu.Lock()
		if _, live := s.timers[pt]; !live {
			s.mu.Unlock()
			return
		}
		run := apply()
		s.mu.Unlock()
		if run != nil {
			run()
		}
		s.mu.Lock()
		delete(s.timers, pt)
		s.notifyLocked()
		s.mu.Unlock()
	})
	return nil
}

func attachEvent(e *ENI) AttachEvent {
	a := e.Attachment
	return AttachEvent{InstanceID: a.InstanceID, ENIID: e.ID, AttachmentID: a.ID, MAC: e.MAC, DeviceIndex: a.DeviceIndex, NetworkCardIndex: a.NetworkCardIndex, NICWithheld: a.nicWithheld}
}

func (s *Sim) attachNetworkInterface(p params) (response, *apiError, []func()) {
	eniID, instID := p.str("NetworkInterfaceId"), p.str("InstanceId")
	if eniID == "" {
		return nil, errMissing("NetworkInterfaceId"), nil
	}
	if instID == "" {
		return nil, errMissing("InstanceId"), nil
	}
	dev, hasDev, err := p.integer("DeviceIndex")
	if err != nil {
		return nil, err, nil
	}
	if !hasDev {
		return nil, errMissing("DeviceIndex"), nil
	}
	card, _, err := p.integer("NetworkCardIndex")
	if err != nil {
		return nil, err, nil
	}
	inst, apiErr := s.liveInstance(instID)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	e, apiErr := s.lookupENI(eniID)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	if e.Attachment != nil {
		return nil, errENIInUse(eniID), nil
	}
	if e.AvailabilityZone != inst.AvailabilityZone {
		return nil, errInvalidParameterValue(fmt.Sprintf("Network interface '%s' is in a different availability zone (%s) than instance '%s' (%s)", eniID, e.AvailabilityZone, instID, inst.AvailabilityZone)), nil
	}
	typ := s.types[inst.Type]
	if dev < 0 {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for deviceIndex", dev)), nil
	}
	if card < 0 || card >= typ.cards() {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for networkCardIndex. Instance type %s supports network card indexes 0 to %d", card, inst.Type, typ.cards()-1)), nil
	}
	attached := s.instanceENIs(instID)
	onCard := 0
	for _, o := range attached {
		if o.Attachment.NetworkCardIndex == card {
			onCard++
			if o.Attachment.DeviceIndex == dev {
				return nil, errInvalidParameterValue(fmt.Sprintf("Instance '%s' already has an interface attached at device index '%d'.", instID, dev)), nil
			}
		}
	}
	if len(attached)+1 > typ.MaxENIs || onCard+1 > typ.perCard() {
		return nil, &apiError{Code: "AttachmentLimitExceeded", Message: fmt.Sprintf("Interface count %d exceeds the limit for %s", len(attached)+1, inst.Type)}, nil
	}
	a := &Attachment{
		ID:               s.newID("eni-attach-"),
		InstanceID:       instID,
		DeviceIndex:      dev,
		NetworkCardIndex: card,
		Status:           "attaching",
		AttachTime:       s.clock.Now().UTC(),
		nicWithheld:      p.nicWithheld,
	}
	e.Attachment = a
	e.Status = "in-use"
	s.attachments[a.ID] = e.ID
	after := s.transition(s.timing.AttachDelay.draw(p.rng), func() func() {
		cur, ok := s.enis[eniID]
		if !ok || cur.Attachment == nil || cur.Attachment.ID != a.ID || cur.Attachment.Status != "attaching" {
			return nil
		}
		cur.Attachment.Status = "attached"
		ev, hooks := attachEvent(cur), slices.Clone(s.attachHooks)
		return func() { s.runHooks(hooks, ev, "attach") }
	})
	var afters []func()
	if after != nil {
		afters = append(afters, after)
	}
	return &attachNetworkInterfaceResponse{AttachmentID: a.ID, NetworkCardIndex: card}, nil, afters
}

func (s *Sim) detachNetworkInterface(p params) (response, *apiError, []func()) {
	attID := p.str("AttachmentId")
	if attID == "" {
		return nil, errMissing("AttachmentId"), nil
	}
	eniID, ok := s.attachments[attID]
	if !ok {
		return nil, errAttachmentNotFound(attID), nil
	}
	e := s.enis[eniID]
	a := e.Attachment
	if a.DeviceIndex == 0 && a.NetworkCardIndex == 0 {
		return nil, &apiError{Code: "OperationNotPermitted", Message: "The network interface at device index 0 cannot be detached."}, nil
	}
	if a.Status == "detaching" {
		return okResponse("DetachNetworkInterface"), nil, nil
	}
	a.Status = "detaching"
	after := s.transition(s.timing.DetachDelay.draw(p.rng), func() func() {
		cur, ok := s.enis[eniID]
		if !ok || cur.Attachment == nil || cur.Attachment.ID != attID {
			return nil
		}
		cur.Attachment.Status = "detached"
		ev, hooks := attachEvent(cur), slices.Clone(s.detachHooks)
		cur.Attachment = nil
		cur.Status = "available"
		delete(s.attachments, attID)
		return func() { s.runHooks(hooks, ev, "detach") }
	})
	var afters []func()
	if after != nil {
		afters = append(afters, after)
	}
	return okResponse("DetachNetworkInterface"), nil, afters
}

// ---- DeleteNetworkInterface ----

func (s *Sim) deleteNetworkInterface(p params) (response, *apiError, []func()) {
	e, apiErr := s.eniParam(p)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	id := e.ID
	if e.Attachment != nil {
		if s.cfg.DeleteInUseCode == "InvalidNetworkInterface.InUse" {
			return nil, errENIInUse(id), nil
		}
		code := s.cfg.DeleteInUseCode
		if code == "" {
			code = "InvalidParameterValue"
		}
		return nil, &apiError{Code: code, Message: fmt.Sprintf("Network interface '%s' is currently in use.", id)}, nil
	}
	s.releaseENI(e)
	return okResponse("DeleteNetworkInterface"), nil, nil
}

// ---- ModifyNetworkInterfaceAttribute ----

func (s *Sim) modifyNetworkInterfaceAttribute(p params) (response, *apiError, []func()) {
	e, apiErr := s.eniParam(p)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	var attrs []string
	if p.has("Attachment.AttachmentId") || p.has("Attachment.DeleteOnTermination") {
		attrs = append(attrs, "attachment")
	}
	if p.has("SourceDestCheck.Value") {
		attrs = append(attrs, "sourceDestCheck")
	}
	if p.has("Description.Value") {
		attrs = append(attrs, "description")
	}
	sgs := p.list("SecurityGroupId")
	if len(sgs) > 0 {
		attrs = append(attrs, "groupSet")
	}
	switch {
	case len(attrs) == 0:
		return nil, &apiError{Code: "MissingParameter", Message: "No attributes specified."}, nil
	case len(attrs) > 1:
		return nil, &apiError{Code: "InvalidParameterCombination", Message: "Fields for multiple attribute types specified: " + strings.Join(attrs, ", ")}, nil
	}
	switch attrs[0] {
	case "attachment":
		attID := p.str("Attachment.AttachmentId")
		if attID == "" {
			return nil, errMissing("Attachment.AttachmentId"), nil
		}
		if e.Attachment == nil || e.Attachment.ID != attID {
			return nil, errAttachmentNotFound(attID), nil
		}
		dot, has, err := p.boolean("Attachment.DeleteOnTermination")
		if err != nil {
			return nil, err, nil
		}
		if !has {
			return nil, errMissing("Attachment.DeleteOnTermination"), nil
		}
		e.Attachment.DeleteOnTermination = dot
	case "sourceDestCheck":
		v, _, err := p.boolean("SourceDestCheck.Value")
		if err != nil {
			return nil, err, nil
		}
		e.SourceDestCheck = v
	case "description":
		e.Description = p.str("Description.Value")
	case "groupSet":
		for _, sg := range sgs {
			if !strings.HasPrefix(sg, "sg-") {
				return nil, &apiError{Code: "InvalidGroupId.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"sg-...\")", sg)}, nil
			}
		}
		if err := s.checkGroups(sgs); err != nil {
			return nil, err, nil
		}
		e.SecurityGroupIDs = sgs
	}
	return okResponse("ModifyNetworkInterfaceAttribute"), nil, nil
}

// ---- CreateTags ----

func (s *Sim) createTags(p params) (response, *apiError, []func()) {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return nil, errMissing("ResourceId"), nil
	}
	tags, err := p.tagList("Tag")
	if err != nil {
		return nil, err, nil
	}
	if len(tags) == 0 {
		return nil, errMissing("Tag"), nil
	}
	targets := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		var m *map[string]string
		switch {
		case strings.HasPrefix(id, "eni-attach-"):
			return nil, &apiError{Code: "InvalidID", Message: fmt.Sprintf("The ID '%s' is not valid", id)}, nil
		case strings.HasPrefix(id, "eni-"):
			e, apiErr := s.lookupENI(id)
			if apiErr != nil {
				return nil, apiErr, nil
			}
			m = &e.Tags
		case strings.HasPrefix(id, "i-"):
			inst, ok := s.instances[id]
			if !ok {
				return nil, errInstanceNotFound(id), nil
			}
			m = &inst.Tags
		case strings.HasPrefix(id, "subnet-"):
			sn, ok := s.subnets[id]
			if !ok {
				return nil, errSubnetNotFound(id), nil
			}
			m = &sn.Tags
		default:
			return nil, &apiError{Code: "InvalidID", Message: fmt.Sprintf("The ID '%s' is not valid", id)}, nil
		}
		if *m == nil {
			*m = map[string]string{}
		}
		merged := len(*m)
		for k := range tags {
			if _, dup := (*m)[k]; !dup {
				merged++
			}
		}
		if merged > 50 {
			return nil, &apiError{Code: "TagLimitExceeded", Message: "The maximum number of Tags for a resource has been reached."}, nil
		}
		targets = append(targets, *m)
	}
	for _, m := range targets {
		for k, v := range tags {
			m[k] = v
		}
	}
	return okResponse("CreateTags"), nil, nil
}

// ---- AssignPrivateIpAddresses ----

func (s *Sim) assignPrivateIPAddresses(p params) (response, *apiError, []func()) {
	e, apiErr := s.eniParam(p)
	if apiErr != nil {
		return nil, apiErr, nil
	}
	id := e.ID
	sn := s.subnets[e.SubnetID]
	if p.has("Ipv4PrefixCount") {
		return s.assignIPv4Prefixes(p, sn, e)
	}
	ips := p.list("PrivateIpAddress")
	count, hasCount, err := p.integer("SecondaryPrivateIpAddressCount")
	if err != nil {
		return nil, err, nil
	}
	if (len(ips) > 0) == hasCount {
		return nil, &apiError{Code: "InvalidParameterCombination", Message: "Specify either PrivateIpAddress or SecondaryPrivateIpAddressCount, not both or neither"}, nil
	}
	if hasCount && count < 1 {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%d' for secondaryPrivateIpAddressCount", count)), nil
	}
	n := count + len(ips)
	if e.Attachment != nil {
		if limit := s.types[s.instances[e.Attachment.InstanceID].Type].IPv4PerENI; limit > 0 && len(e.PrivateIPs)+len(e.IPv4Prefixes)+n > limit {
			return nil, &apiError{Code: "PrivateIpAddressLimitExceeded", Message: "Number of private addresses will exceed limit."}, nil
		}
	}
	reassign, _, err := p.boolean("AllowReassignment")
	if err != nil {
		return nil, err, nil
	}
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		a, perr := netip.ParseAddr(ip)
		if perr != nil || !a.Is4() {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for privateIpAddress", ip)), nil
		}
		if seen[a] {
			return nil, errInvalidParameterValue(fmt.Sprintf("Address %s is specified more than once", a)), nil
		}
		seen[a] = true
		owner, used := sn.used[a]
		switch {
		case used && owner == id:
			continue // already ours: a no-op
		case used && !reassign:
			return nil, &apiError{Code: "InvalidIPAddress.InUse", Message: "The specified address is already in use."}, nil
		case used && s.enis[owner].PrivateIPs[0] == a.String():
			return nil, errInvalidParameterValue(fmt.Sprintf("Address %s is the primary address of %s and cannot be reassigned", a, owner)), nil
		case !used:
			if apiErr := s.checkManual(sn, a); apiErr != nil {
				return nil, apiErr, nil
			}
		}
		addrs = append(addrs, a)
	}
	if hasCount {
		got, ok := s.allocate(sn, count, nil)
		if !ok {
			return nil, &apiError{Code: "InsufficientFreeAddressesInSubnet", Message: "The specified subnet does not have enough free addresses to satisfy the request."}, nil
		}
		addrs = append(addrs, got...)
	}
	resp := &assignPrivateIPAddressesResponse{NetworkInterfaceID: id}
	for _, a := range addrs {
		if owner, used := sn.used[a]; used && owner != id {
			o := s.enis[owner]
			o.PrivateIPs = slices.DeleteFunc(o.PrivateIPs, func(x string) bool { return x == a.String() })
		}
		sn.used[a] = id
		e.PrivateIPs = append(e.PrivateIPs, a.String())
		resp.Assigned.Item = append(resp.Assigned.Item, xmlAssignedIP{PrivateIPAddress: a.String()})
	}
	return resp, nil, nil
}

// ---- DescribeInstanceTypes ----

func (s *Sim) describeInstanceTypes(p params) (response, *apiError, []func()) {
	names := p.list("InstanceType")
	page, next, err := selectPage(p, s.types, selection[InstanceType]{
		ids: names,
		check: func() *apiError {
			var missing []string
			for _, n := range names {
				if _, ok := s.types[n]; !ok {
					missing = append(missing, n)
				}
			}
			if len(missing) > 0 {
				return &apiError{Code: "InvalidInstanceType", Message: fmt.Sprintf("The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))}
			}
			return nil
		},
		fields: func(t InstanceType) (map[string][]string, map[string]string) {
			return map[string][]string{
				"instance-type": {t.Name},
				"network-info.maximum-network-interfaces":   {strconv.Itoa(t.MaxENIs)},
				"network-info.maximum-network-cards":        {strconv.Itoa(t.cards())},
				"network-info.ipv4-addresses-per-interface": {strconv.Itoa(t.IPv4PerENI)},
			}, nil
		},
	})
	if err != nil {
		return nil, err, nil
	}
	resp := &describeInstanceTypesResponse{NextToken: next}
	for _, t := range page {
		x := xmlInstanceType{InstanceType: t.Name, CurrentGeneration: true, Hypervisor: "nitro", NetworkInfo: xmlNetworkInfo{
			NetworkPerformance:        "simulated",
			MaximumNetworkInterfaces:  t.MaxENIs,
			MaximumNetworkCards:       t.cards(),
			IPv4AddressesPerInterface: t.IPv4PerENI,
			IPv6AddressesPerInterface: t.IPv4PerENI,
			IPv6Supported:             true,
			EnaSupport:                "required",
		}}
		for c := 0; c < t.cards(); c++ {
			x.NetworkInfo.NetworkCards.Item = append(x.NetworkInfo.NetworkCards.Item, xmlNetworkCard{NetworkCardIndex: c, NetworkPerformance: "simulated", MaximumNetworkInterfaces: t.perCard()})
		}
		resp.InstanceTypeSet.Item = append(resp.InstanceTypeSet.Item, x)
	}
	return resp, nil, nil
}

// VisibleSince is when the ENI this simulator created became visible to
// other calls (or will): its creation plus the drawn visibility delay. A
// bench's bound counts the delay as EC2's time, not the agent's.
func (s *Sim) VisibleSince(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.shownAt[id]
	return at, ok
}

// visible reports whether a new ENI has become visible to other calls
// (EC2 is eventually consistent; see Timing.Visibility).
func (s *Sim) visible(id string) bool {
	at, ok := s.visibleAt[id]
	if !ok {
		return true
	}
	if s.clock.Now().Before(at) {
		return false
	}
	delete(s.visibleAt, id)
	return true
}

// lookupENI finds a visible ENI or answers InvalidNetworkInterfaceID.NotFound.
// eniParam is the ENI a call names in its required NetworkInterfaceId.
func (s *Sim) eniParam(p params) (*ENI, *apiError) {
	id := p.str("NetworkInterfaceId")
	if id == "" {
		return nil, errMissing("NetworkInterfaceId")
	}
	return s.lookupENI(id)
}

func (s *Sim) lookupENI(id string) (*ENI, *apiError) {
	e, ok := s.enis[id]
	if !ok || !s.visible(id) {
		return nil, errENINotFound(id)
	}
	return e, nil
}

// ---- DescribeInstanceStatus ----
//
// Only running instances unless IncludeAllInstances is true; a running
// instance's instance and system status are "initializing" until its
// StatusChecksPass, then "ok" (reachability "passed"), and a terminated
// one's are "not-applicable", as EC2 reports them.

func (s *Sim) instanceStatus(inst *Instance) string {
	switch {
	case inst.Terminated:
		return "not-applicable"
	case s.clock.Now().Before(inst.StatusChecksPass):
		return "initializing"
	}
	return "ok"
}

func instanceStatusFields(s *Sim, inst *Instance) map[string][]string {
	st := s.instanceStatus(inst)
	reach := map[string]string{"ok": "passed"}[st]
	if reach == "" {
		reach = st
	}
	return map[string][]string{
		"availability-zone":            {inst.AvailabilityZone},
		"instance-state-name":          {instanceState(inst).Name},
		"instance-state-code":          {strconv.Itoa(instanceState(inst).Code)},
		"instance-status.status":       {st},
		"instance-status.reachability": {reach},
		"system-status.status":         {st},
		"system-status.reachability":   {reach},
	}
}

func (s *Sim) describeInstanceStatus(p params) (response, *apiError, []func()) {
	ids := p.list("InstanceId")
	all, _, err := p.boolean("IncludeAllInstances")
	if err != nil {
		return nil, err, nil
	}
	page, next, apiErr := selectPage(p, s.instances, selection[*Instance]{
		ids:   ids,
		known: instanceStatusFields(s, &Instance{}),
		check: func() *apiError { return s.checkInstanceIDs(ids) },
		keep:  func(_ string, inst *Instance) bool { return all || !inst.Terminated },
		fields: func(inst *Instance) (map[string][]string, map[string]string) {
			return instanceStatusFields(s, inst), nil
		},
	})
	if apiErr != nil {
		return nil, apiErr, nil
	}
	resp := &describeInstanceStatusResponse{NextToken: next}
	for _, inst := range page {
		st := s.instanceStatus(inst)
		reach := instanceStatusFields(s, inst)["instance-status.reachability"][0]
		sum := xmlStatusSummary{Status: st, Details: items[xmlStatusDetail]{Item: []xmlStatusDetail{{Name: "reachability", Status: reach}}}}
		resp.InstanceStatusSet.Item = append(resp.InstanceStatusSet.Item, xmlInstanceStatus{
			InstanceID: inst.ID, AvailabilityZone: inst.AvailabilityZone, InstanceState: instanceState(inst),
			SystemStatus: sum, InstanceStatus: sum,
		})
	}
	return resp, nil, nil
}

// Package eni creates or adopts, tags, attaches and configures the Multus
// ENIs of this instance. It replaces the Lambda + EventBridge + ASG
// lifecycle hook of the reference setups: the node does it itself, before
// kubelet starts, and a re-run converges from any crash point.
//
// Ownership is by tags set at creation (TagSpecifications): an ENI is ours
// when it carries nodeprep.dev/instance-id=<this instance>. An ENI that is
// already attached at the configured (network card, device index) in the
// configured subnet is adopted, whoever made it (e.g. a launch template).
package eni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
)

// Tag keys nodeprep sets on its ENIs.
const (
	// TagNoManage keeps the VPC CNI's ipamd from using the ENI for pods.
	TagNoManage   = "node.k8s.amazonaws.com/no_manage"
	TagInstanceID = "nodeprep.dev/instance-id"
	TagInterface  = "nodeprep.dev/interface"
)

// Defaults for a Reconciler.
const (
	DefaultDeadline = 5 * time.Minute
	pollMin         = 200 * time.Millisecond
	pollMax         = time.Second
	// visibilityWindow is how long an ENI we created may stay unknown to
	// EC2's other calls (eventual consistency) before a NotFound is
	// believed. EC2 documents no bound; it is seconds in practice.
	visibilityWindow = 20 * time.Second
	// cleanupTimeout bounds a cleanup (and DeleteOnTermination) that runs
	// past the run's deadline on its own context.
	cleanupTimeout = 30 * time.Second
)

// Reconciler brings the managed interfaces of one instance to the config.
type Reconciler struct {
	EC2        EC2
	InstanceID string
	// BeforeAttach runs with the ENI's MAC before it is attached, and for
	// adopted ENIs, so the host can claim the NIC before anything else does
	// (link.Manager.Claim writes the networkd Unmanaged file).
	BeforeAttach func(ctx context.Context, act change.Actions, name, mac string) error
	// NICAppeared, when set, blocks until a netdev with mac exists. The wait
	// for an attachment ends at the first of it and EC2 saying "attached".
	NICAppeared func(ctx context.Context, mac string) error
	// AttachedMACs, when set, lists the MACs the instance metadata service
	// shows attached (network/interfaces/macs/). The attach wait polls it,
	// locally and unthrottled, before it falls back to describes.
	AttachedMACs func(ctx context.Context) ([]string, error)
	// AvailabilityZone is the instance's (its identity document). With it
	// and AttachedMACs, a fresh instance (IMDS shows only its primary
	// interface) observes with one describe of its ENIs instead of two:
	// at boot every node of a storm sends its observation at once.
	AvailabilityZone string
	// Deadline bounds a whole Reconcile, retries and waits included, plus
	// the time EC2 throttled it (a boot storm draining the account's
	// buckets is no failure), at most MaxDeadline.
	Deadline time.Duration
	// Limits, when set, are the instance type's (DescribeLimits); a config
	// asking an ENI for more addresses fails before any ENI call.
	Limits *Limits
	// LoadLimits, when set, asks for the limits instead: Reconcile calls it
	// beside its observation (a fresh instance pays one round trip for the
	// describes of both, not two), keeps a non-nil answer in Limits and
	// checks the config against it before any change. Its error ends the
	// run.
	LoadLimits func(context.Context) (*Limits, error)
	// DeletedENIs are, per interface, the ENIs earlier runs created and
	// then deleted when they gave up on them (DeletedENIs of their error,
	// kept in the state file). EC2 answers a repeated create's ClientToken
	// with the ENI it made the first time, deleted or not: a create that
	// returns one of these is made again as a new request at once, rather
	// than after waiting the visibility window for an ENI that never shows.
	DeletedENIs map[string][]string
}

// Attachment is one Multus ENI as it is attached to this instance: the one
// home of its facts. The ENI step produces it, the state file stores it as
// is, and the conflists, device-info files and `nodeprep status` read it.
// A new ENI fact is a field here and nowhere else.
type Attachment struct {
	// Interface is the configured interface's logical name.
	Interface        string `json:"interface"`
	ENIID            string `json:"eniID"`
	AttachmentID     string `json:"attachmentID,omitempty"`
	MAC              string `json:"mac,omitempty"`
	SubnetID         string `json:"subnetID,omitempty"`
	DeviceIndex      int32  `json:"deviceIndex"`
	NetworkCardIndex int32  `json:"networkCardIndex"`
	// Subnet is the ENI's IPv4 subnet; IPv6Subnet its associated IPv6
	// CIDR, when it has one.
	Subnet     netip.Prefix `json:"subnetCIDR,omitzero"`
	IPv6Subnet netip.Prefix `json:"ipv6SubnetCIDR,omitzero"`
	// PrimaryIP is the ENI's primary private IPv4 address, the host's.
	PrimaryIP netip.Addr `json:"primaryIP,omitzero"`
	// Pod addresses EC2 assigned to the ENI besides its primary.
	SecondaryIPs  []netip.Addr   `json:"secondaryIPs"`
	IPv4Prefixes  []netip.Prefix `json:"ipv4Prefixes"`
	IPv6Addresses []netip.Addr   `json:"ipv6Addresses"`
	IPv6Prefixes  []netip.Prefix `json:"ipv6Prefixes"`
	// How is "created", "adopted" (already attached) or "reattached" (ours,
	// left unattached by an interrupted run).
	How string `json:"how,omitempty"`
	// Stages are when this run's work on the ENI passed each stage.
	Stages Stages `json:"stages,omitzero"`
}

// Gateway is the VPC router: the first host address of the subnet.
func (a Attachment) Gateway() netip.Addr {
	if !a.Subnet.IsValid() {
		return netip.Addr{}
	}
	return a.Subnet.Masked().Addr().Next()
}

// IPv6Gateway is the VPC router on IPv6 when the ENI's subnet has an IPv6
// CIDR: fe80:ec2::1 on the ENI's link, the link-local address at which every
// VPC subnet's router answers besides its MAC-derived one. It is a documented
// constant (AWS, Nov 2022, "IPv6 subnet default gateway router multiple
// addresses"), which the VPC CNI uses as the IPv6 gateway of ENIs and branch
// ENIs (pkg/networkutils.GetIPv6Gateway), so nothing on the node learns it
// from a router advertisement.
func (a Attachment) IPv6Gateway() netip.Addr {
	if !a.IPv6Subnet.IsValid() {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 0x0e, 0xc2, 15: 1})
}

type slot struct{ card, dev int32 }

func (s slot) String() string {
	return fmt.Sprintf("device index %d on network card %d", s.dev, s.card)
}

// Reconcile makes every managed interface exist, attached at its slot, and
// returns the attachments of those that are. Interfaces without a subnet (picked by MAC or PCI
// address) are skipped. Under DryRun nothing is attached: it returns the
// ENIs already in place.
func (r *Reconciler) Reconcile(ctx context.Context, act change.Actions, ifaces []api.Interface) ([]Attachment, error) {
	var managed []api.Interface
	for _, in := range ifaces {
		if in.Managed() {
			if in.DeviceIndex == nil || in.NetworkCardIndex == nil {
				return nil, &Error{Interface: in.Name, Err: errors.New("deviceIndex and networkCardIndex must be set (config defaults not applied)")}
			}
			managed = append(managed, in)
		}
	}
	if len(managed) == 0 {
		return nil, nil
	}
	if err := r.checkLimits(managed); err != nil {
		return nil, err
	}
	if r.InstanceID == "" {
		return nil, errors.New("eni: no instance ID")
	}
	deadline := r.Deadline
	if deadline == 0 {
		deadline = DefaultDeadline
	}
	ctx, cancel := withDeadline(ctx, deadline)
	defer cancel()

	act.Status("observing ENIs of %s", r.InstanceID)
	// A config asking pod addresses asks them in the create itself: it is
	// checked against the limits before any create, asked beside the
	// observation. Any other is checked before the first attach and the
	// limits asked beside the creates: a fresh node's first calls are then
	// two describes, not three (at 500 nodes every one of them meets a
	// 100-token bucket in the same second), and a node alone loses nothing
	// (its create takes longer than the describe).
	// Under plan, which attaches nothing, it is checked first.
	early := r.LoadLimits != nil && (act.DryRun() || slices.ContainsFunc(managed, api.Interface.PodAddresses))
	var limitsChecked <-chan error
	if early {
		limitsChecked = r.loadLimits(ctx, managed)
	}
	obs, err := r.observe(ctx, managed)
	if limitsChecked != nil {
		if lerr := <-limitsChecked; lerr != nil {
			return nil, lerr
		}
	}
	if err != nil {
		if d := deadlinePassed(ctx); d != nil {
			return nil, fmt.Errorf("%w: %w", d, err)
		}
		return nil, err
	}
	p, err := r.plan(obs, managed)
	if err != nil {
		return nil, err
	}
	run := &run{Reconciler: r, act: act, obs: obs, total: len(managed), managed: managed, items: p.items, addrs: map[string]*subnetAddrs{}, tagged: make(chan struct{})}
	if t := trackerFrom(ctx); t != nil {
		t.setTurnGate(run.awaitTurn)
	}
	if r.LoadLimits != nil && !early {
		run.limits = run.checkLimitsLater(ctx)
	}

	var wg sync.WaitGroup
	results := make([]Attachment, len(p.items))
	errs := make([]error, len(p.items)+2)
	// Tagging adopted ENIs and deleting stale ones of ours are off the
	// critical path: they run beside the per-interface work.
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(run.tagged)
		errs[len(p.items)] = run.tagAdopted(ctx, p.tagAdopted, p.tagNames)
	}()
	go func() { defer wg.Done(); errs[len(p.items)+1] = run.deleteStale(ctx, p.stale) }()
	for i, it := range p.items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = run.ensure(ctx, i+1, it)
		}()
	}
	wg.Wait()
	var ready []Attachment
	for i, res := range results {
		if errs[i] == nil && res.AttachmentID != "" {
			ready = append(ready, res)
		}
	}
	if lerr := run.limitsErr(); lerr != nil {
		// Said once, not by every interface that waited for it.
		errs = append(errs, lerr)
	}
	if err := errors.Join(errs...); err != nil {
		if d := deadlinePassed(ctx); d != nil {
			// Every interface's error is then "context canceled": say why.
			return ready, fmt.Errorf("%w: %w", d, err)
		}
		return ready, err
	}
	act.Status("%d ENIs ready", len(ready))
	return ready, nil
}

// checkLimitsLater asks LoadLimits now and checks the config against its
// answer (the per-ENI limits and the ENIs per network card); the channel is
// closed once it is done, limitsErr then gives the outcome.
func (r *run) checkLimitsLater(ctx context.Context) <-chan error {
	done := make(chan error)
	go func() {
		defer close(done)
		err := <-r.loadLimits(ctx, r.managed)
		if err == nil {
			err = errors.Join(r.checkFit(r.obs, r.items)...)
		}
		r.mu.Lock()
		r.lateLimits = err
		r.mu.Unlock()
	}()
	return done
}

// limitsErr is the config's check against the limits asked beside the
// creates, once made.
func (r *run) limitsErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lateLimits
}

// loadLimits asks LoadLimits, when set, beside the observation and checks
// the config against its answer; the channel gives the outcome. Without
// LoadLimits there is nothing to wait for: Reconcile checked Limits before
// any call.
func (r *Reconciler) loadLimits(ctx context.Context, managed []api.Interface) <-chan error {
	done := make(chan error, 1)
	if r.LoadLimits == nil {
		done <- nil
		return done
	}
	go func() {
		l, err := r.LoadLimits(ctx)
		if err != nil {
			done <- err
			return
		}
		if l != nil {
			r.Limits = l
		}
		done <- r.checkLimits(managed)
	}()
	return done
}

// observation is what EC2 says about this instance before any change.
type observation struct {
	az       string
	attached map[slot]types.NetworkInterface
	// primaryUndescribed is set when the primary interface (card 0, device
	// 0) is not in attached: IMDS showed it alone, so it was not described.
	primaryUndescribed bool
	orphans            []types.NetworkInterface
	subnets            map[string]types.Subnet
}

// observe describes, at once, the ENIs of ours (tagged with this instance,
// attached or not), those attached to the instance and the configured
// subnets. The describe of the attached ones is left out when IMDS shows
// only the primary interface attached (a fresh instance): every other ENI
// attached to it would be ours, and a boot storm's first wave is then two
// describes per node instead of three.
func (r *Reconciler) observe(ctx context.Context, managed []api.Interface) (*observation, error) {
	describeAttached := !r.onlyPrimaryAttached(ctx)
	var (
		wg               sync.WaitGroup
		attached, ours   []types.NetworkInterface
		subnets          []types.Subnet
		errA, errO, errS error
	)
	wg.Add(2)
	if describeAttached {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attached, errA = describeENIs(ctx, r.EC2, filter("attachment.instance-id", r.InstanceID))
		}()
	}
	go func() {
		defer wg.Done()
		ours, errO = describeENIs(ctx, r.EC2, filter("tag:"+TagInstanceID, r.InstanceID))
	}()
	go func() {
		defer wg.Done()
		ids := map[string]bool{}
		var list []string
		for _, in := range managed {
			if !ids[in.SubnetID] {
				ids[in.SubnetID] = true
				list = append(list, in.SubnetID)
			}
		}
		// A filter, not SubnetIds, so a missing subnet is reported per
		// interface instead of failing the whole call.
		var out *ec2.DescribeSubnetsOutput
		out, errS = r.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("subnet-id", list...)}})
		if errS == nil {
			subnets = out.Subnets
		}
	}()
	wg.Wait()
	for _, e := range []struct {
		call string
		err  error
	}{{"DescribeNetworkInterfaces", errA}, {"DescribeNetworkInterfaces", errO}, {"DescribeSubnets", errS}} {
		if e.err != nil {
			return nil, callError("(all)", e.call, e.err)
		}
	}
	obs := &observation{attached: map[slot]types.NetworkInterface{}, subnets: map[string]types.Subnet{}}
	if !describeAttached {
		obs.az, obs.primaryUndescribed = r.AvailabilityZone, true
	}
	// Ours attached here are in both lists when both were asked: one slot.
	for _, n := range append(attached, ours...) {
		a := n.Attachment
		if a == nil || aws.ToString(a.InstanceId) != r.InstanceID {
			if n.Status == types.NetworkInterfaceStatusAvailable && !slices.ContainsFunc(obs.orphans, sameENI(n)) {
				obs.orphans = append(obs.orphans, n)
			}
			continue
		}
		s := slot{aws.ToInt32(a.NetworkCardIndex), aws.ToInt32(a.DeviceIndex)}
		obs.attached[s] = n
		if s == (slot{}) {
			obs.az, obs.primaryUndescribed = aws.ToString(n.AvailabilityZone), false
		}
	}
	sort.Slice(obs.orphans, func(i, j int) bool {
		return aws.ToString(obs.orphans[i].NetworkInterfaceId) < aws.ToString(obs.orphans[j].NetworkInterfaceId)
	})
	for _, sn := range subnets {
		obs.subnets[aws.ToString(sn.SubnetId)] = sn
	}
	return obs, nil
}

// onlyPrimaryAttached reports whether IMDS shows no interface attached but
// the primary one, so the instance's attached ENIs need no describe (the
// availability zone, which the primary's description gave, is known). An
// IMDS error means "not known": the describe is made.
func (r *Reconciler) onlyPrimaryAttached(ctx context.Context) bool {
	if r.AttachedMACs == nil || r.AvailabilityZone == "" {
		return false
	}
	macs, err := r.AttachedMACs(ctx)
	return err == nil && len(macs) <= 1
}

func sameENI(n types.NetworkInterface) func(types.NetworkInterface) bool {
	return func(o types.NetworkInterface) bool {
		return aws.ToString(o.NetworkInterfaceId) == aws.ToString(n.NetworkInterfaceId)
	}
}

// item is the decision for one interface.
type item struct {
	in   api.Interface
	slot slot
	// attached is the ENI already at the slot, adopted as is.
	attached *types.NetworkInterface
	// orphan is an unattached ENI of ours for this interface, to attach.
	orphan *types.NetworkInterface
}

type plan struct {
	items      []item
	tagAdopted []string
	tagNames   []string
	stale      []types.NetworkInterface
}

func (r *Reconciler) plan(obs *observation, managed []api.Interface) (*plan, error) {
	p := &plan{}
	used := map[string]bool{}
	var errs []error
	for _, in := range managed {
		it := item{in: in, slot: slot{*in.NetworkCardIndex, *in.DeviceIndex}}
		sn, ok := obs.subnets[in.SubnetID]
		if !ok {
			errs = append(errs, &Error{Interface: in.Name, Call: "DescribeSubnets", Err: fmt.Errorf("subnet %s not found", in.SubnetID)})
			continue
		}
		if obs.az != "" && aws.ToString(sn.AvailabilityZone) != obs.az {
			errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("subnet %s is in %s but the instance is in %s", in.SubnetID, aws.ToString(sn.AvailabilityZone), obs.az)})
			continue
		}
		if n, ok := obs.attached[it.slot]; ok {
			if aws.ToString(n.SubnetId) != in.SubnetID {
				errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: %s is held by %s in %s, not in %s", ErrSlotTaken, it.slot, aws.ToString(n.NetworkInterfaceId), aws.ToString(n.SubnetId), in.SubnetID)})
				continue
			}
			if n.Attachment.Status == types.AttachmentStatusDetaching || n.Attachment.Status == types.AttachmentStatusDetached {
				errs = append(errs, &Error{Interface: in.Name, Err: fmt.Errorf("%w: %s is held by %s, which is %s", ErrSlotTaken, it.slot, aws.ToString(n.NetworkInterfaceId), n.Attachment.Status)})
				continue
			}
			it.attached = &n
			if !hasTag(n.TagSet, TagNoManage, "true") || !hasTag(n.TagSet, TagInstanceID, r.InstanceID) {
				p.tagAdopted = append(p.tagAdopted, aws.ToString(n.NetworkInterfaceId))
				p.tagNames = append(p.tagNames, in.Name)
			}
		} else {
			for i := range obs.orphans {
				o := &obs.orphans[i]
				id := aws.ToString(o.NetworkInterfaceId)
				if !used[id] && hasTag(o.TagSet, TagInterface, in.Name) && orphanFits(o, in) {
					used[id] = true
					it.orphan = o
					break
				}
			}
		}
		p.items = append(p.items, it)
	}
	errs = append(errs, r.checkFit(obs, p.items)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Unattached ENIs of ours that no interface takes are leftovers of an
	// interrupted run under another config: delete them.
	for _, o := range obs.orphans {
		if !used[aws.ToString(o.NetworkInterfaceId)] {
			p.stale = append(p.stale, o)
		}
	}
	return p, nil
}

// orphanFits reports whether an ENI left by an earlier run still matches.
func orphanFits(o *types.NetworkInterface, in api.Interface) bool {
	if aws.ToString(o.SubnetId) != in.SubnetID {
		return false
	}
	if in.PrivateIP.Mode == api.PrivateIPStatic && aws.ToString(o.PrivateIpAddress) != in.PrivateIP.Address {
		return false
	}
	if len(in.SecurityGroupIDs) > 0 {
		var have []string
		for _, g := range o.Groups {
			have = append(have, aws.ToString(g.GroupId))
		}
		want := append([]string(nil), in.SecurityGroupIDs...)
		sort.Strings(have)
		sort.Strings(want)
		if !slices.Equal(have, want) {
			return false
		}
	}
	return true
}

func hasTag(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func describeENIs(ctx context.Context, c EC2, filters ...types.Filter) ([]types.NetworkInterface, error) {
	var out []types.NetworkInterface
	p := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.NetworkInterfaces...)
	}
	return out, nil
}

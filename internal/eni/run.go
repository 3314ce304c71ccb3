package eni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/logging"
)

// run is one Reconcile in progress.
type run struct {
	*Reconciler
	act   change.Actions
	obs   *observation
	total int
	// managed are the run's interfaces: fromStartOfSubnet never picks an
	// address another one asks for statically.
	managed []api.Interface
	// items are the run's plan, one per interface (storm demand).
	items []item
	// stormOnce decides the run's storm turn (kept in its throttle tracker).
	stormOnce sync.Once

	// limits is closed once the config has been checked against limits
	// asked beside the creates (checkLimitsLater); lateLimits is the
	// outcome. Nil when the check came before the run.
	limits     <-chan error
	lateLimits error

	mu    sync.Mutex
	addrs map[string]*subnetAddrs
	// tagged is closed once adopted ENIs are tagged: the IAM policy lets
	// nodeprep modify only ENIs that carry its tags.
	tagged chan struct{}
}

// ensure brings one interface to attached and configured.
func (r *run) ensure(ctx context.Context, n int, it item) (Attachment, error) {
	in := it.in
	res := Attachment{Interface: in.Name, SubnetID: in.SubnetID, DeviceIndex: it.slot.dev, NetworkCardIndex: it.slot.card}
	if sn, ok := r.obs.subnets[in.SubnetID]; ok {
		if p, err := netip.ParsePrefix(aws.ToString(sn.CidrBlock)); err == nil {
			res.Subnet = p
		}
		res.IPv6Subnet = ipv6CIDR(sn)
	}
	var (
		eni     types.NetworkInterface
		created bool
	)
	switch {
	case it.attached != nil:
		eni, res.How = *it.attached, "adopted"
	case it.orphan != nil:
		eni, res.How = *it.orphan, "reattached"
	default:
		if err := r.stormTurn(ctx, in.Name); err != nil {
			return res, err
		}
		r.act.Status("creating ENI %d/%d (%s)", n, r.total, in.Name)
		res.Stages.Begin = time.Now()
		var err error
		eni, err = r.create(ctx, in, "")
		// A create answered with an ENI an earlier run deleted is EC2
		// replaying the ClientToken: make it a new request now (salted
		// with the gone ENI's ID, as attach does once the visibility
		// window has closed on it), never asking EC2 about the gone one.
		for salts := 0; err == nil && salts < 3 && slices.Contains(r.DeletedENIs[in.Name], aws.ToString(eni.NetworkInterfaceId)); salts++ {
			eni, err = r.create(ctx, in, aws.ToString(eni.NetworkInterfaceId))
		}
		if err != nil {
			return res, err
		}
		res.Stages.Created = time.Now()
		if r.act.DryRun() {
			r.planAttach(in, it.slot, "the new ENI")
			return res, nil
		}
		created, res.How = true, "created"
	}
	setENI := func(e types.NetworkInterface) {
		eni = e
		res.ENIID, res.MAC = aws.ToString(e.NetworkInterfaceId), aws.ToString(e.MacAddress)
		res.PrimaryIP, _ = netip.ParseAddr(aws.ToString(e.PrivateIpAddress))
	}
	setENI(eni)

	attachmentID := ""
	if it.attached != nil {
		if err := r.claim(ctx, in.Name, res.MAC); err != nil {
			return res, err
		}
		attachmentID = aws.ToString(it.attached.Attachment.AttachmentId)
	} else {
		if r.act.DryRun() {
			if err := r.claim(ctx, in.Name, res.MAC); err != nil {
				return res, err
			}
			r.planAttach(in, it.slot, res.ENIID)
			return res, nil
		}
		if err := r.stormTurn(ctx, in.Name); err != nil {
			return res, err
		}
		if err := r.limitsChecked(ctx, in.Name); err != nil {
			if created {
				return res, withLeft(in.Name, err, res.ENIID, r.giveUp(ctx, in.Name, res.ENIID, true))
			}
			return res, err
		}
		r.act.Status("attaching ENI %d/%d (%s)", n, r.total, in.Name)
		if res.Stages.Begin.IsZero() {
			res.Stages.Begin = time.Now() // reattached: the run starts at the attach
		}
		attached, id, err := r.attach(ctx, in, it.slot, eni, created, &res.Stages)
		setENI(attached)
		if err != nil {
			return res, withLeft(in.Name, err, res.ENIID, r.giveUp(ctx, in.Name, res.ENIID, created))
		}
		attachmentID = id
		eni.Attachment = &types.NetworkInterfaceAttachment{AttachmentId: aws.String(attachmentID), Status: types.AttachmentStatusAttaching}
	}
	res.AttachmentID = attachmentID

	// The attribute changes need only the attachment ID: they run while
	// EC2 finishes the attachment.
	var wg sync.WaitGroup
	var errModify, errWait error
	var attachedAt time.Time
	wg.Add(2)
	go func() {
		defer wg.Done()
		if it.attached != nil {
			select {
			case <-r.tagged:
			case <-ctx.Done():
			}
		}
		errTopUp := r.topUp(ctx, in, eni, &res)
		errModify = errors.Join(r.modify(ctx, in, eni, created || it.orphan != nil), errTopUp)
	}()
	go func() {
		defer wg.Done()
		if eni.Attachment.Status == types.AttachmentStatusAttached || r.act.DryRun() {
			return
		}
		r.act.Status("waiting for ENI %d/%d (%s) to attach", n, r.total, in.Name)
		errWait = r.waitAttached(ctx, in.Name, res.ENIID, attachmentID, res.MAC)
		attachedAt = time.Now()
	}()
	wg.Wait()
	if errWait == nil && !res.Stages.Attach.IsZero() {
		res.Stages.Attached = attachedAt
	}
	if err := errors.Join(errWait, errModify); err != nil {
		return res, err
	}
	return res, nil
}

// errUnfit ends an interface whose attach the limits check refused (the
// config does not fit, or the limits could not be asked): the check's own
// error says why, once (Reconcile).
var errUnfit = errors.New("not attached: the check against the instance type's limits failed")

// limitsChecked waits for the check against limits asked beside the creates.
func (r *run) limitsChecked(ctx context.Context, name string) error {
	if r.limits == nil {
		return nil
	}
	select {
	case <-r.limits:
	case <-ctx.Done():
		return &Error{Interface: name, Err: fmt.Errorf("wait for the instance type's limits: %w", context.Cause(ctx))}
	}
	if r.limitsErr() != nil {
		return &Error{Interface: name, Err: errUnfit}
	}
	return nil
}

// planAttach reports, under DryRun, the changes that follow an attach: they
// need an ENI (or attachment) ID that only the real create or attach gives.
func (r *run) planAttach(in api.Interface, s slot, what string) {
	r.act.Plan(fmt.Sprintf("attach %s for %s to %s at %s", what, in.Name, r.InstanceID, s))
	r.act.Plan(fmt.Sprintf("set DeleteOnTermination=true on the attachment of %s", in.Name))
	if in.SourceDestCheck != nil && !*in.SourceDestCheck {
		r.act.Plan(fmt.Sprintf("set SourceDestCheck=false on %s", in.Name))
	}
}

// createInput is the request for a new ENI, minus the primary address.
func (r *run) createInput(in api.Interface) *ec2.CreateNetworkInterfaceInput {
	tags := []types.Tag{
		{Key: aws.String(TagNoManage), Value: aws.String("true")},
		{Key: aws.String(TagInstanceID), Value: aws.String(r.InstanceID)},
		{Key: aws.String(TagInterface), Value: aws.String(in.Name)},
	}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(in.Tags[k])})
	}
	input := &ec2.CreateNetworkInterfaceInput{
		SubnetId:          aws.String(in.SubnetID),
		Description:       aws.String(fmt.Sprintf("nodeprep %s of %s", in.Name, r.InstanceID)),
		Groups:            in.SecurityGroupIDs,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags}},
	}
	askCapacity(in, input)
	if in.PrivateIP.Mode == api.PrivateIPStatic {
		input.PrivateIpAddress = aws.String(in.PrivateIP.Address)
	}
	return input
}

// clientToken makes CreateNetworkInterface idempotent across runs, not just
// across the SDK's own retries: a run that crashed after EC2 created the
// ENI but before it saw the answer sends the same token and gets the same
// ENI back, even before DescribeNetworkInterfaces would show it.
//
// The token hashes the whole request (the chosen address included) besides
// the instance and interface, so a changed config or the next address of
// fromStartOfSubnet is a new token, never IdempotentParameterMismatch. salt
// is the ID of an ENI this token already made and that is gone (deleted
// after a failed attach): EC2 would replay it forever, so the next create
// must be a new request.
func clientToken(instanceID, name string, in *ec2.CreateNetworkInterfaceInput, salt string) string {
	h := sha256.New()
	w := func(s ...string) {
		for _, v := range s {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
	}
	w(instanceID, name, aws.ToString(in.SubnetId), aws.ToString(in.Description), aws.ToString(in.PrivateIpAddress))
	w(fmt.Sprint(aws.ToInt32(in.SecondaryPrivateIpAddressCount)))
	if in.Ipv4PrefixCount != nil || in.Ipv6PrefixCount != nil || in.Ipv6AddressCount != nil {
		// Only then, so the tokens of ENIs asked without them stay the same.
		w(capacityKey(in))
	}
	groups := append([]string(nil), in.Groups...)
	sort.Strings(groups)
	w(groups...)
	for _, ts := range in.TagSpecifications {
		for _, t := range ts.Tags {
			w(aws.ToString(t.Key), aws.ToString(t.Value))
		}
	}
	w(salt)
	// EC2 client tokens are at most 64 ASCII characters.
	return "nodeprep-" + hex.EncodeToString(h.Sum(nil))[:48]
}

// create makes the interface's ENI; salt is as for clientToken.
func (r *run) create(ctx context.Context, in api.Interface, salt string) (types.NetworkInterface, error) {
	input := r.createInput(in)
	what := fmt.Sprintf("create ENI for %s in %s (%s)", in.Name, in.SubnetID, in.PrivateIP.Mode)
	if in.PrivateIP.Mode != api.PrivateIPFromStartOfSubnet {
		return r.createWith(ctx, in, input, what, salt)
	}
	addrs, err := r.subnetAddrs(ctx, in)
	if err != nil {
		return types.NetworkInterface{}, err
	}
	for attempt := 0; ; attempt++ {
		addr, ok := addrs.next(pickSeed(r.InstanceID, in.Name, attempt))
		if !ok {
			return types.NetworkInterface{}, addrs.exhausted(in.Name, in.SubnetID)
		}
		input.PrivateIpAddress = aws.String(addr.String())
		eni, err := r.createWith(ctx, in, input, fmt.Sprintf("create ENI for %s in %s at %s", in.Name, in.SubnetID, addr), salt)
		if errorCode(err) == codeIPInUse {
			// Someone took it since the scan: try another, from a wider window.
			addrs.inUse()
			continue
		}
		return eni, err
	}
}

func (r *run) createWith(ctx context.Context, in api.Interface, input *ec2.CreateNetworkInterfaceInput, what, salt string) (types.NetworkInterface, error) {
	input.ClientToken = aws.String(clientToken(r.InstanceID, in.Name, input, salt))
	var eni types.NetworkInterface
	err := r.act.Do(ctx, what, func(ctx context.Context) error {
		out, err := r.EC2.CreateNetworkInterface(ctx, input)
		if err != nil {
			return prefixError(in.Name, in.SubnetID, "CreateNetworkInterface", err)
		}
		eni = *out.NetworkInterface
		return nil
	})
	if err != nil {
		if errorCode(err) == "" && !r.act.DryRun() {
			// No answer from EC2 (the run's end, a lost connection): the
			// create may have been made. Settle it now rather than leave it
			// to a next run that may never come.
			id, left := r.settleLostCreate(ctx, in, input)
			return eni, withLeft(in.Name, err, id, left)
		}
		return eni, err
	}
	eni.Attachment = nil
	return eni, nil
}

// settleLostCreate repeats, on a context of its own, a create whose answer
// never came, with the same ClientToken: EC2 answers with the ENI it made
// (or makes it now), which is then deleted like any ENI given up on.
func (r *run) settleLostCreate(ctx context.Context, in api.Interface, input *ec2.CreateNetworkInterfaceInput) (string, Left) {
	cctx, cancel := context.WithTimeout(ungated(context.WithoutCancel(ctx)), cleanupTimeout)
	defer cancel()
	var id string
	err := r.act.Do(cctx, fmt.Sprintf("repeat the unanswered create of the ENI for %s (same client token) to delete what it made", in.Name), func(ctx context.Context) error {
		out, err := r.EC2.CreateNetworkInterface(ctx, input)
		if err != nil {
			return callError(in.Name, "CreateNetworkInterface", err)
		}
		id = aws.ToString(out.NetworkInterface.NetworkInterfaceId)
		return nil
	})
	if err != nil {
		if errorCode(err) != "" {
			// EC2 answered with an error: the token made nothing.
			return "", ""
		}
		return "", LeftForNextRun
	}
	if in.PrivateIP.Mode == api.PrivateIPStatic {
		// Deleting it would free the static address for EC2 to hand to
		// another ENI before the next run asks for it again: keep it, tagged,
		// for the next run to attach.
		return id, LeftForNextRun
	}
	return id, r.giveUp(ctx, in.Name, id, true)
}

// claim lets the host take the NIC before it is attached (BeforeAttach).
func (r *run) claim(ctx context.Context, name, mac string) error {
	if r.BeforeAttach == nil {
		return nil
	}
	if err := r.BeforeAttach(ctx, r.act, name, mac); err != nil {
		return &Error{Interface: name, Err: fmt.Errorf("claim NIC %s on the host: %w", mac, err)}
	}
	return nil
}

// attach claims the NIC on the host and attaches the ENI at its slot. It
// returns the ENI it attached, which is a new one when a replayed create
// had pointed at an ENI deleted by an earlier run, and the attachment ID.
// On error the returned ENI is the one to clean up. It stamps st's
// visible and attach stages (and created again for a fresh ENI).
func (r *run) attach(ctx context.Context, in api.Interface, s slot, eni types.NetworkInterface, created bool, st *Stages) (types.NetworkInterface, string, error) {
	createdAt := time.Now()
	for salts := 0; ; salts++ {
		eniID := aws.ToString(eni.NetworkInterfaceId)
		if err := r.claim(ctx, in.Name, aws.ToString(eni.MacAddress)); err != nil {
			return eni, "", err
		}
		if created {
			seen, err := r.awaitVisible(ctx, in.Name, eniID, createdAt)
			if err != nil {
				return eni, "", err
			}
			if seen {
				st.Visible = time.Now()
			}
		}
		var attachmentID string
		stillUnknown := false
		err := r.act.Do(ctx, fmt.Sprintf("attach %s for %s to %s at %s", eniID, in.Name, r.InstanceID, s), func(ctx context.Context) error {
			err := poll(ctx, pollMin, pollMax, func(ctx context.Context) (bool, error) {
				out, err := r.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
					InstanceId:         aws.String(r.InstanceID),
					NetworkInterfaceId: aws.String(eniID),
					DeviceIndex:        aws.Int32(s.dev),
					NetworkCardIndex:   aws.Int32(s.card),
				})
				if err == nil {
					attachmentID = aws.ToString(out.AttachmentId)
					return true, nil
				}
				// EC2 is eventually consistent: an ENI we created moments
				// ago may be unknown to AttachNetworkInterface for a while.
				// Ask again, with backoff, until the window closes.
				if created && errorCode(err) == codeENINotFound && time.Since(createdAt) < visibilityWindow {
					return false, err
				}
				return false, errStop{err}
			})
			if err == nil {
				return nil
			}
			// The attach may have happened with only its answer lost: believe
			// EC2's state, not the error. A recovered attach is no failure.
			if id, ok := r.attachedAt(ctx, eniID, s); ok {
				attachmentID = id
				return nil
			}
			stillUnknown = errorCode(err) == codeENINotFound
			return callError(in.Name, "AttachNetworkInterface", err)
		})
		if err == nil {
			st.Attach = time.Now()
			return eni, attachmentID, nil
		}
		if created && stillUnknown && salts < 2 {
			// Unknown for longer than EC2 takes to show a new ENI: the client
			// token replayed an ENI an earlier run deleted.
			// For fromStartOfSubnet the address is picked afresh: the gone
			// ENI's may have gone to another interface since.
			fresh, cerr := r.create(ctx, in, eniID)
			if cerr != nil {
				return types.NetworkInterface{}, "", cerr
			}
			eni, createdAt = fresh, time.Now()
			st.Created, st.Visible = createdAt, time.Time{}
			continue
		}
		return eni, "", err
	}
}

// awaitVisible waits, within the visibility window, until a filtered
// describe shows an ENI we just created. An attach sent before EC2 shows
// the ENI answers NotFound and still spends a token of the attach bucket,
// the scarcest one in a boot storm; filtered describes draw from a larger
// bucket. If the window closes first the attach is tried anyway. It
// reports whether the ENI was seen. Throttled while it waits, the node
// stops describing until its storm turn (its describes would only drain
// the bucket), then waits on if the window is still open; an ENI unseen
// with the turn ahead waits for it too. Only that wait cut short is an
// error.
func (r *run) awaitVisible(ctx context.Context, name, eniID string, createdAt time.Time) (bool, error) {
	wctx, cancel := context.WithDeadline(ctx, createdAt.Add(visibilityWindow))
	defer cancel()
	tracker := trackerFrom(ctx)
	unthrottled := func() bool { return tracker == nil || tracker.Throttled() == 0 }
	check := func(wctx context.Context) (bool, error) {
		if r.turnAhead(ctx) {
			return false, errStop{errTurnAhead}
		}
		out, err := r.EC2.DescribeNetworkInterfaces(wctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("network-interface-id", eniID)}})
		return err == nil && len(out.NetworkInterfaces) == 1, err
	}
	err := pollVisible(wctx, unthrottled, check)
	if err != nil && r.turnAhead(ctx) {
		if err := r.stormTurn(ctx, name); err != nil {
			return false, err
		}
		err = pollVisible(wctx, unthrottled, check)
	}
	return err == nil, nil
}

// errTurnAhead ends a wait for visibility that the storm turn cuts short.
var errTurnAhead = errors.New("this node's turn in the boot storm is still to come")

func (r *run) attachedAt(ctx context.Context, eniID string, s slot) (string, bool) {
	out, err := r.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniID}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		return "", false
	}
	a := out.NetworkInterfaces[0].Attachment
	if a == nil || aws.ToString(a.InstanceId) != r.InstanceID || aws.ToInt32(a.DeviceIndex) != s.dev || aws.ToInt32(a.NetworkCardIndex) != s.card {
		return "", false
	}
	return aws.ToString(a.AttachmentId), true
}

// outliving returns a context for a change that must not be cut off by the
// run's deadline (DeleteOnTermination): it keeps the run's values and ends
// cleanupTimeout after the run's deadline, or when the run is canceled
// (the agent is stopping), but not when the deadline itself passes.
func outliving(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(cleanupTimeout)
	if d, ok := ctx.Deadline(); ok && d.After(time.Now()) {
		end = d.Add(cleanupTimeout)
	}
	out, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	stop := context.AfterFunc(ctx, func() {
		// A deadline passing, the run's own (a *DeadlineError cause, the
		// context deadline being only the hard bound) or a caller's, leaves
		// cleanupTimeout; the agent stopping ends it at once. Without the
		// caller's case a caller's deadline left the cleanup the run's hard
		// bound (30 minutes) to retry a throttled call.
		if deadlinePassed(ctx) != nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			time.AfterFunc(cleanupTimeout, cancel)
			return
		}
		cancel()
	})
	return out, func() { stop(); cancel() }
}

// giveUp settles an ENI of ours whose attach failed, so that it cannot
// outlive the instance: an ENI EC2 attached after all (the attach was
// applied, only its answer was lost or came after the deadline) gets
// DeleteOnTermination; an unattached one is deleted. It runs on its own
// short context, since the run's may be over (deadline, SIGTERM). When
// neither can be made sure of, the ENI keeps nodeprep's tags and the next
// run attaches or deletes it.
func (r *run) giveUp(ctx context.Context, name, eniID string, created bool) Left {
	if eniID == "" || r.act.DryRun() {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var left Left
	err := r.act.Do(ctx, fmt.Sprintf("delete ENI %s of %s after the failed attach, or keep it with DeleteOnTermination if EC2 attached it", eniID, name), func(ctx context.Context) error {
		until := time.Now().Add(visibilityWindow)
		return poll(ctx, pollMin, pollMax, func(ctx context.Context) (bool, error) {
			out, err := r.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniID}})
			switch {
			case errorCode(err) == codeENINotFound && !(created && time.Now().Before(until)):
				// Seen before, or past the visibility window: gone.
				left = LeftDeleted
				return true, nil
			case err != nil:
				return false, err
			case len(out.NetworkInterfaces) != 1:
				return false, nil
			}
			n := out.NetworkInterfaces[0]
			if a := n.Attachment; a != nil && a.Status != types.AttachmentStatusDetached {
				if aws.ToString(a.InstanceId) != r.InstanceID {
					return false, errStop{fmt.Errorf("%s is attached to %s", eniID, aws.ToString(a.InstanceId))}
				}
				if !aws.ToBool(a.DeleteOnTermination) {
					if err := r.setDeleteOnTermination(ctx, name, eniID, aws.ToString(a.AttachmentId)); err != nil {
						return false, err
					}
				}
				left = LeftAttached
				return true, nil
			}
			_, err = r.EC2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eniID)})
			if err == nil || errorCode(err) == codeENINotFound && !created {
				left = LeftDeleted
				return true, nil
			}
			// In use: a late attach got there first; describe again.
			return false, err
		})
	})
	if err != nil {
		r.act.Log().Warn("could not delete the unattached ENI nor see it attached; the next run will attach or delete it", logging.Interface(name), logging.ENIID(eniID), "error", err)
		return LeftForNextRun
	}
	return left
}

// withLeft records on err what became of the ENI the interface gave up on.
func withLeft(name string, err error, eniID string, left Left) error {
	if left == "" {
		return err
	}
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Interface: name, Err: err, ENIID: eniID, Left: left}
	}
	c := *e
	c.ENIID, c.Left = eniID, left
	return &c
}

// deleteENI deletes an unattached ENI. NotFound means "gone" only for an
// ENI EC2 has shown us; for one we created moments ago it may mean "not
// visible yet", so the delete is asked again until the visibility window
// closes.
func (r *run) deleteENI(ctx context.Context, name, id string, mayBeInvisible bool) error {
	until := time.Now().Add(visibilityWindow)
	return poll(ctx, pollMin, pollMax, func(ctx context.Context) (bool, error) {
		_, err := r.EC2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
		switch {
		case err == nil:
			return true, nil
		case errorCode(err) != codeENINotFound:
			return false, errStop{wrapCall(name, "DeleteNetworkInterface", err)}
		case mayBeInvisible && time.Now().Before(until):
			return false, err
		default:
			return true, nil
		}
	})
}

// modify sets the attributes that cannot be given at creation.
// DeleteOnTermination comes first, on a context that outlives the run's
// deadline: whatever fails after the attach, an ENI nodeprep made must not
// outlive the instance. An ENI the launch template attached is not
// nodeprep's to change (the IAM policy lets it change only ENIs it
// created): its DeleteOnTermination is the launch template's.
func (r *run) modify(ctx context.Context, in api.Interface, eni types.NetworkInterface, made bool) error {
	id := aws.ToString(eni.NetworkInterfaceId)
	made = made || madeByNodeprep(eni, r.InstanceID)
	if a := eni.Attachment; a != nil && !aws.ToBool(a.DeleteOnTermination) {
		if !made {
			r.act.Log().Warn("the ENI adopted from the launch template has DeleteOnTermination=false, so it outlives the instance: set DeleteOnTermination in the launch template if it should not",
				logging.Interface(in.Name), logging.ENIID(id))
		} else {
			dotCtx, cancel := outliving(ctx)
			err := r.setDeleteOnTermination(dotCtx, in.Name, id, aws.ToString(a.AttachmentId))
			cancel()
			if err != nil {
				return withLeft(in.Name, err, id, LeftAttachedWithoutDeleteOnTermination)
			}
		}
	}
	var errs []error
	// A new ENI has SourceDestCheck enabled.
	current := eni.SourceDestCheck == nil || *eni.SourceDestCheck
	if want := in.SourceDestCheck; want != nil && *want != current {
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("set SourceDestCheck=%t on %s (%s)", *want, in.Name, id), func(ctx context.Context) error {
			_, err := r.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(id),
				SourceDestCheck:    &types.AttributeBooleanValue{Value: want},
			})
			return wrapCall(in.Name, "ModifyNetworkInterfaceAttribute", err)
		}))
	}
	return errors.Join(errs...)
}

// setDeleteOnTermination makes an attached ENI of ours go with the instance.
func (r *run) setDeleteOnTermination(ctx context.Context, name, eniID, attachmentID string) error {
	return r.act.Do(ctx, fmt.Sprintf("set DeleteOnTermination=true on the attachment of %s (%s)", name, eniID), func(ctx context.Context) error {
		_, err := r.EC2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eniID),
			Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(attachmentID), DeleteOnTermination: aws.Bool(true)},
		})
		return wrapCall(name, "ModifyNetworkInterfaceAttribute", err)
	})
}

// madeByNodeprep reports whether the ENI carries nodeprep's interface tag,
// set when nodeprep creates an ENI or by a launch template meant for
// nodeprep: the IAM policy lets nodeprep change only such ENIs.
func madeByNodeprep(n types.NetworkInterface, _ string) bool {
	for _, t := range n.TagSet {
		if aws.ToString(t.Key) == TagInterface {
			return true
		}
	}
	return false
}

func wrapCall(name, call string, err error) error {
	if err == nil {
		return nil
	}
	return callError(name, call, err)
}

// tagAdopted marks adopted ENIs as ours and off-limits to ipamd, in one
// call. Interface and user tags are only set at creation: CreateTags gives
// every resource the same tags.
func (r *run) tagAdopted(ctx context.Context, ids, names []string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.act.Do(ctx, fmt.Sprintf("tag adopted ENIs %s %s=true", strings.Join(ids, ","), TagNoManage), func(ctx context.Context) error {
		_, err := r.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: ids,
			Tags: []types.Tag{
				{Key: aws.String(TagNoManage), Value: aws.String("true")},
				{Key: aws.String(TagInstanceID), Value: aws.String(r.InstanceID)},
			},
		})
		return wrapCall(strings.Join(names, ","), "CreateTags", err)
	})
}

// deleteStale deletes unattached ENIs of ours that no interface wants.
func (r *run) deleteStale(ctx context.Context, stale []types.NetworkInterface) error {
	var errs []error
	for _, o := range stale {
		id := aws.ToString(o.NetworkInterfaceId)
		name := "?"
		for _, t := range o.TagSet {
			if aws.ToString(t.Key) == TagInterface {
				name = aws.ToString(t.Value)
			}
		}
		errs = append(errs, r.act.Do(ctx, fmt.Sprintf("delete stale unattached ENI %s (interface %s)", id, name), func(ctx context.Context) error {
			// Seen by a describe, so a NotFound means it is gone.
			return r.deleteENI(ctx, name, id, false)
		}))
	}
	return errors.Join(errs...)
}

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// eniSteps create/adopt and attach the managed ENIs, then make every
// configured NIC (managed or picked by MAC) ready on the host.
func (n *Node) eniSteps() []engine.Step {
	return []engine.Step{
		{Name: StepENIs, After: []string{StepConfig}, Run: n.runENIs, Reads: []string{factConfig}, Makes: []string{factENI}, Writes: []string{link.NetworkdDir}},
		{Name: StepLinks, After: []string{StepENIs}, Run: n.runLinks, Reads: []string{factConfig, factENI}, Makes: []string{factLink}, Writes: []string{link.NetworkdDir}},
	}
}

func (n *Node) runENIs(ctx context.Context, act change.Actions) error {
	if !needsCloud(n.Config) {
		return nil
	}
	if n.cloudErr != nil {
		return n.cloudErr
	}
	if n.Cloud == nil || n.Cloud.EC2 == nil {
		return errors.New("the config has EC2-managed interfaces but no EC2 client was set up")
	}
	links := n.Host.linkManager(act.Log())
	r := &eni.Reconciler{
		EC2:        n.Cloud.EC2,
		InstanceID: n.Cloud.Identity.InstanceID,
		// With AttachedMACs, a fresh instance observes with one describe
		// less (the primary's description gave the zone).
		AvailabilityZone: n.Cloud.Identity.AvailabilityZone,
		Deadline:         n.Cloud.Deadline,
		BeforeAttach:     links.Claim,
		NICAppeared: func(ctx context.Context, mac string) error {
			_, err := links.WaitForMAC(ctx, mac)
			return err
		},
	}
	// The limits let the reconciler refuse a config the instance cannot
	// take before it creates anything. Without pod addresses they only
	// check ahead what EC2 enforces anyway, so a failed describe is a
	// warning then.
	if n.Cloud.Identity.InstanceType != "" {
		r.LoadLimits = func(ctx context.Context) (*eni.Limits, error) {
			l, err := n.instanceLimits().Get(ctx)
			switch {
			case err == nil:
				// Kept for the next run (every reboot): one round trip less.
				return l, n.model.setLimits(r.InstanceID, *l)
			case asksForPodAddresses(n.Config.Spec.Interfaces):
				return nil, err
			default:
				act.Log().Warn("no instance type limits: ENI counts are not checked before creating", "error", err)
				return nil, nil
			}
		}
	}
	if md := n.Cloud.Metadata; md != nil {
		r.AttachedMACs = md.AttachedMACs
	}
	if err := n.model.setInstanceID(r.InstanceID); err != nil {
		return err
	}
	r.DeletedENIs = n.model.deletedENIs(n.Config.Spec.Interfaces)
	results, err := r.Reconcile(ctx, act, n.Config.Spec.Interfaces)
	var errs []error
	for name, ids := range eni.DeletedENIs(err) {
		errs = append(errs, n.model.recordDeleted(name, ids))
	}
	for _, res := range results {
		act.Log().Info("ENI ready", logging.Interface(res.Interface), logging.ENIID(res.ENIID), "how", res.How, logging.MAC(res.MAC),
			"deviceIndex", res.DeviceIndex, "networkCard", res.NetworkCardIndex, "privateIP", res.PrimaryIP)
		errs = append(errs, n.model.recordENI(res))
	}
	return errors.Join(append(errs, err)...)
}

// runLinks waits for each NIC and readies it, all NICs at once. Under plan
// it does not wait: a NIC that is not there yet is reported at once.
func (n *Node) runLinks(ctx context.Context, act change.Actions) error {
	links := n.Host.linkManager(act.Log())
	type job struct {
		in    api.Interface
		mac   string
		eniID string
	}
	var jobs []job
	for _, in := range n.Config.Spec.Interfaces {
		rec := n.model.iface(in.Name)
		mac := in.MAC
		if in.Managed() {
			mac = rec.ENI.MAC
		}
		if mac == "" {
			if in.Managed() && !act.DryRun() {
				return fmt.Errorf("interface %s: the ENI step recorded no MAC", in.Name)
			}
			if in.Managed() {
				act.Plan(fmt.Sprintf("wait for the NIC of %s once its ENI is attached, and ready it", in.Name))
			}
			// Picked by PCI address only: the bind step finds it.
			continue
		}
		if in.DPDK() && rec.Device.Device.Driver == string(in.Driver) {
			// Bound by an earlier run: its netdev is gone, by design.
			continue
		}
		if in.HostDevice() && rec.Link.MAC != "" {
			// Readied by an earlier run of this boot (the state is under
			// /run) and gone from the host since: host-device moved it into
			// the pod that owns it, by design, and gives it back on DEL.
			if _, present, err := links.LinkByMAC(mac); err == nil && !present {
				act.Log().Info("NIC is in a pod (podAttachment hostDevice); left to it", logging.Interface(in.Name), logging.MAC(mac))
				continue
			}
		}
		jobs = append(jobs, job{in, mac, rec.ENI.ENIID})
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.readyLink(ctx, act, links, j.in, j.mac, j.eniID)
		}()
	}
	act.Status("waiting for %d NICs", len(jobs))
	wg.Wait()
	return errors.Join(errs...)
}

// readyLink claims a NIC picked by MAC, waits for the NIC and readies it.
// The NIC of an ENI (eniID set) that EC2 attached is waited for at most
// NICAfterAttach: past that it fails with a NICError, for this interface
// only, while the others are readied.
func (n *Node) readyLink(ctx context.Context, act change.Actions, links *link.Manager, in api.Interface, mac, eniID string) error {
	if act.DryRun() {
		_, present, err := links.LinkByMAC(mac)
		if err != nil {
			return fmt.Errorf("interface %s: %w", in.Name, err)
		}
		if !present {
			act.Plan(fmt.Sprintf("wait for the NIC of %s (%s) and ready it", in.Name, mac))
			return nil
		}
	}
	bound := n.linkDeadline()
	if in.Managed() && eniID != "" {
		bound = min(bound, NICAfterAttach)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if !in.Managed() {
		if err := n.refuseNodeNIC(wctx, links, in, mac); err != nil {
			return err
		}
		if err := links.Claim(ctx, act, in.Name, mac); err != nil {
			return err
		}
	}
	info, err := links.Ready(wctx, act, in, mac)
	if err != nil {
		if in.Managed() && eniID != "" && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
			if _, present, lerr := links.LinkByMAC(mac); lerr == nil && !present {
				return &NICError{Interface: in.Name, ENIID: eniID, MAC: mac, Waited: time.Since(start)}
			}
		}
		return err
	}
	attrs := []any{logging.Interface(in.Name), logging.IfName(info.IfName), logging.MAC(info.MAC)}
	if info.PCIAddress != "" {
		attrs = append(attrs, logging.PCIAddress(info.PCIAddress))
	}
	act.Log().Info("NIC ready", attrs...)
	return n.model.recordLink(in.Name, info)
}

func (n *Node) linkDeadline() time.Duration {
	if n.Host.LinkDeadline > 0 {
		return n.Host.LinkDeadline
	}
	return DefaultLinkDeadline
}

// refuseNodeNIC stops nodeprep from claiming a NIC picked by MAC that the
// node itself uses: an Unmanaged=yes file for it would cut the node off at
// the next networkd reload. ENIs nodeprep attaches are never the node's.
func (n *Node) refuseNodeNIC(ctx context.Context, links *link.Manager, in api.Interface, mac string) error {
	l, err := links.WaitForMAC(ctx, mac)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Name, err)
	}
	name := l.Attrs().Name
	u, err := n.Host.NICUsage.Usage(ctx, name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Name, err)
	}
	if u.InUse() {
		return fmt.Errorf("interface %s: refusing to take %s (%s): %s: %w", in.Name, name, mac, u, pci.ErrInUse)
	}
	return nil
}

// asksForPodAddresses reports whether any managed interface asks EC2 for
// addresses beyond its primary, the only thing the per-ENI limits bound.
func asksForPodAddresses(ifs []api.Interface) bool {
	for _, in := range ifs {
		if in.Managed() && in.PodAddresses() {
			return true
		}
	}
	return false
}

// instanceLimits are the instance type's network limits, asked of EC2 once
// per run: the ENI step and the nodeadm drop-in share the answer.
func (n *Node) instanceLimits() *eni.LimitsOnce {
	n.limitsMu.Lock()
	defer n.limitsMu.Unlock()
	if n.limits == nil {
		id := n.Cloud.Identity
		n.limits = &eni.LimitsOnce{EC2: n.Cloud.EC2, InstanceType: id.InstanceType, Known: n.model.knownLimits(id.InstanceID, id.InstanceType)}
	}
	return n.limits
}

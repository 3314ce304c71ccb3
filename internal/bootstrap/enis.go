package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/state"
)

// DefaultLinkDeadline bounds the wait for one NIC to appear on the host.
const DefaultLinkDeadline = 2 * time.Minute

// planLinkWait is how long `nodeprep plan` looks for a NIC.
const planLinkWait = time.Second

// eniSteps create/adopt and attach the managed ENIs, then make every
// configured NIC (managed or picked by MAC) ready on the host.
func (n *Node) eniSteps() []engine.Step {
	return []engine.Step{
		{Name: StepENIs, After: []string{StepConfig}, Run: n.runENIs},
		{Name: StepLinks, After: []string{StepENIs}, Run: n.runLinks},
	}
}

func (n *Node) links() *link.Manager {
	if n.Cloud != nil && n.Cloud.Links != nil {
		return n.Cloud.Links
	}
	m := &link.Manager{Root: n.Root, Log: n.Log}
	if n.Root.Dir() == "/" {
		m.Reloader = link.Networkctl{}
	}
	return m
}

func (n *Node) runENIs(ctx context.Context, act engine.Actions) error {
	if !needsCloud(n.Config) {
		return nil
	}
	if n.Cloud == nil || n.Cloud.EC2 == nil {
		return errors.New("the config has EC2-managed interfaces but no EC2 client was set up")
	}
	links := n.links()
	r := &eni.Reconciler{
		EC2:        n.Cloud.EC2,
		InstanceID: n.Cloud.Identity.InstanceID,
		State:      n.State,
		Deadline:   n.Cloud.ENIDeadline,
		BeforeAttach: func(ctx context.Context, act eni.Actions, name, mac string) error {
			return links.Claim(ctx, act, name, mac)
		},
		NICAppeared: func(ctx context.Context, mac string) error {
			_, err := links.WaitForMAC(ctx, mac)
			return err
		},
	}
	if md := n.Cloud.Metadata; md != nil {
		r.AttachedMACs = md.AttachedMACs
	}
	n.State.SetInstanceID(r.InstanceID)
	results, err := r.Reconcile(ctx, act, n.Config.Spec.Interfaces)
	for _, res := range results {
		if res.ENIID != "" {
			act.Log().Info("ENI ready", "interface", res.Name, "eni", res.ENIID, "how", res.How, "mac", res.MAC, "deviceIndex", res.DeviceIndex, "networkCard", res.NetworkCardIndex, "privateIP", res.PrivateIP)
		}
	}
	return err
}

// runLinks waits for each NIC and readies it, all NICs at once.
func (n *Node) runLinks(ctx context.Context, act engine.Actions) error {
	links := n.links()
	deadline := DefaultLinkDeadline
	if n.Cloud != nil && n.Cloud.LinkDeadline > 0 {
		deadline = n.Cloud.LinkDeadline
	}
	type job struct {
		in  api.Interface
		mac string
	}
	var jobs []job
	for _, in := range n.Config.Spec.Interfaces {
		rec, _ := n.State.Interface(in.Name)
		mac := in.MAC
		if in.Managed() {
			mac = rec.MAC
		}
		if mac == "" {
			if in.Managed() && !act.DryRun() {
				return fmt.Errorf("interface %s: the ENI step recorded no MAC", in.Name)
			}
			// Picked by PCI address only, or not created yet under plan.
			continue
		}
		if in.DPDK() && rec.Driver == string(in.Driver) {
			// Bound by an earlier run: its netdev is gone, by design.
			continue
		}
		jobs = append(jobs, job{in, mac})
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !j.in.Managed() {
				if err := refuseNodeNIC(ctx, links, j.in, j.mac, deadline); err != nil {
					errs[i] = err
					return
				}
				if err := links.Claim(ctx, act, j.in.Name, j.mac); err != nil {
					errs[i] = err
					return
				}
			}
			wait := deadline
			if act.DryRun() {
				// Plan only looks: a NIC that is not there yet is not an error.
				wait = planLinkWait
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			info, err := links.Ready(wctx, act, j.in, j.mac)
			if act.DryRun() {
				if err != nil {
					_ = act.Do(ctx, fmt.Sprintf("wait for the NIC of %s (%s) and ready it", j.in.Name, j.mac), nil)
				}
				return
			}
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = n.State.UpdateInterface(j.in.Name, func(s *state.Interface) {
				s.MAC, s.IfName = info.MAC, info.IfName
				if info.PCIAddress != "" {
					s.PCIAddress = info.PCIAddress
				}
			})
		}()
	}
	act.Status("waiting for %d NICs", len(jobs))
	wg.Wait()
	return errors.Join(errs...)
}

// refuseNodeNIC stops nodeprep from claiming a NIC picked by MAC that the
// node itself uses: an Unmanaged=yes file for it would cut the node off at
// the next networkd reload. ENIs nodeprep attaches are never the node's.
func refuseNodeNIC(ctx context.Context, links *link.Manager, in api.Interface, mac string, wait time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	l, err := links.WaitForMAC(wctx, mac)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Name, err)
	}
	nl := pci.NetlinkLinks{}
	if links.NetNS != nil {
		h, err := netlink.NewHandleAt(*links.NetNS)
		if err != nil {
			return fmt.Errorf("interface %s: netlink: %w", in.Name, err)
		}
		defer h.Close()
		nl.Handle = h
	}
	name := l.Attrs().Name
	u, err := nl.Usage(ctx, name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", in.Name, err)
	}
	if u.InUse() {
		return fmt.Errorf("interface %s: refusing to take %s (%s): %s: %w", in.Name, name, mac, u, pci.ErrInUse)
	}
	return nil
}

// ENISteps are the ENI and link steps alone, for tests and tools that run
// this area without the rest of the graph.
func (n *Node) ENISteps() []engine.Step { return n.eniSteps() }

package eni_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// The fault sweep (issue 21 item 6): for every EC2 call nodeprep makes, for
// every way the call can fail, and for every way the run can end, the
// instance's ENIs must converge after a re-run and none may outlive the
// instance:
//
//	calls  (eni.IAMActions, the EC2 interface's methods)
//	x faults {answer lost before apply, lost after apply, 5xx, throttle storm, timeout}
//	x endings {deadline, SIGTERM, SIGKILL}, each then re-run
//
// Each cell: the fault hits every call of its action in the first run; the
// run ends by its deadline, by SIGTERM (the context canceled at the first
// hit) or by SIGKILL (the process's client cut off at the first hit: no
// request or answer gets through afterwards, cleanups included). The
// faults are cleared and a second process runs. Then: every interface is
// attached at its slot, or the re-run reported it failed with the EC2
// call (and code); no interface has two ENIs; the first run's errors are
// typed; after the instance terminates, no ENI is left.
//
// make test runs a subset (every call, every fault, one ending each,
// rotating); NODEPREP_FAULT_SWEEP=full (make test-fault-sweep) runs it all.

type sweepFault struct {
	name  string
	fault ec2sim.Fault
}

var sweepFaults = []sweepFault{
	{"lost before apply", ec2sim.Fault{Kind: ec2sim.FaultDropConnection}},
	{"lost after apply", ec2sim.Fault{Kind: ec2sim.FaultDropConnection, AfterApply: true}},
	{"5xx", ec2sim.Fault{Kind: ec2sim.FaultInternalError}},
	{"throttle storm", ec2sim.Fault{Kind: ec2sim.FaultThrottle}},
	{"timeout", ec2sim.Fault{Kind: ec2sim.FaultTimeout, AfterApply: true}},
}

var sweepEndings = []string{"deadline", "SIGTERM", "SIGKILL"}

type sweepCell struct {
	action string
	fault  sweepFault
	ending string
	// fresh is the scenario without the launch template's ENI: IMDS then
	// shows only the primary interface, and the node observes with one
	// describe of its ENIs, as a fresh instance of a boot storm does. Its
	// interfaces ask no pod addresses: the limits are asked beside the
	// creates and checked before the first attach.
	fresh bool
}

func (c sweepCell) String() string {
	s := c.action + " x " + c.fault.name + " x " + c.ending
	if c.fresh {
		s += " (fresh instance)"
	}
	return s
}

func sweepCells(full bool) []sweepCell {
	var cells []sweepCell
	for _, fresh := range []bool{false, true} {
		for i, a := range eni.IAMActions() {
			action := strings.TrimPrefix(a, "ec2:")
			if fresh && (action == "CreateTags" || strings.HasPrefix(action, "Assign")) {
				// Only a launch template's ENI is tagged afterwards; the
				// fresh instance's interfaces ask no pod addresses, so
				// that its limits are asked beside the creates.
				continue
			}
			for j, f := range sweepFaults {
				for k, e := range sweepEndings {
					rotation := i + j
					if fresh {
						rotation++ // the other scenario's subset has the other endings
					}
					if full || rotation%len(sweepEndings) == k {
						cells = append(cells, sweepCell{action, f, e, fresh})
					}
				}
			}
		}
	}
	return cells
}

func TestFaultSweep(t *testing.T) {
	full := os.Getenv("NODEPREP_FAULT_SWEEP") == "full"
	cells := sweepCells(full)
	// The cells wait on timers, not the CPU: run many at once.
	sem := make(chan struct{}, 24)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed, hit := 0, 0
	start := time.Now()
	for _, c := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			problems, hits := runSweepCell(c)
			mu.Lock()
			defer mu.Unlock()
			if hits > 0 {
				hit++
			}
			if len(problems) > 0 {
				failed++
				t.Errorf("%s:\n\t%s", c, strings.Join(problems, "\n\t"))
			}
		}()
	}
	wg.Wait()
	t.Logf("fault sweep: %d cells (%d calls x %d faults x %d endings, and the fresh instance's calls%s), %d failed, %d where the fault fired, in %v",
		len(cells), len(eni.IAMActions()), len(sweepFaults), len(sweepEndings), map[bool]string{true: "", false: ", subset"}[full], failed, hit, time.Since(start).Round(time.Second))
	if hit != len(cells) {
		t.Errorf("the fault fired in %d of %d cells: a call of the sweep is never made by its scenario", hit, len(cells))
	}
}

// sweepScenario makes every call nodeprep can make happen in one run:
// DescribeInstanceTypes (limits), DescribeSubnets and DescribeNetworkInterfaces
// (observe), GetSubnetCidrReservations (a fromStartOfSubnet ENI), Create and
// Attach (new ENIs), Delete (a stale ENI of ours), Modify
// (DeleteOnTermination, sourceDestCheck), AssignPrivateIpAddresses and
// AssignIpv6Addresses (topping up an ENI of ours left unattached by an
// earlier run), CreateTags (a launch-template ENI adopted),
// DescribeInstanceStatus (the first run is throttled once, so it counts
// its boot storm).
type sweepScenario struct {
	n      *node
	ifaces []api.Interface
}

func newSweepScenario(seed int64, fresh bool) (*sweepScenario, error) {
	s := &sweepScenario{n: &node{sim: ec2sim.New(ec2sim.Config{Seed: seed})}}
	sim := s.n.sim
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.0.0/24"})
	if err != nil {
		return nil, err
	}
	if s.n.data, err = sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.8.0/24"}); err != nil {
		return nil, err
	}
	if s.n.v6, err = sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.9.0/24", IPv6CIDR: "2600:1f14:abc:de00::/64"}); err != nil {
		return nil, err
	}
	var lt []ec2sim.ENISpec
	if !fresh {
		lt = append(lt, ec2sim.ENISpec{SubnetID: s.n.data.ID, DeviceIndex: 3, DeleteOnTermination: true})
	}
	if s.n.inst, err = sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: primary.ID, LaunchTemplateENIs: lt}); err != nil {
		return nil, err
	}
	off := false
	a := managed("a", s.n.data.ID, 1, api.PrivateIPFromStartOfSubnet)
	a.SourceDestCheck = &off
	b := managed("b", s.n.v6.ID, 2, api.PrivateIPDHCP)
	if !fresh {
		b.SecondaryIPCount, b.IPv6AddressCount = 1, 1
	}
	c := managed("c", s.n.data.ID, 3, api.PrivateIPDHCP)
	s.ifaces = []api.Interface{a, b, c}
	return s, nil
}

// leftover creates an unattached ENI of ours, as an interrupted run leaves.
func (s *sweepScenario) leftover(ctx context.Context, client *ec2.Client, iface, subnet string) error {
	_, err := client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(subnet),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
			{Key: aws.String(eni.TagNoManage), Value: aws.String("true")},
			{Key: aws.String(eni.TagInstanceID), Value: aws.String(s.n.inst.ID)},
			{Key: aws.String(eni.TagInterface), Value: aws.String(iface)},
		}}},
	})
	return err
}

// runProcess is what `nodeprep run` does with EC2 on a fresh instance:
// the reconcile, asking the limits as the agent does (an error ends the run
// only when the config asks pod addresses; otherwise it is a warning).
func (s *sweepScenario) runProcess(ctx context.Context, p *process, deadline time.Duration) error {
	r := s.n.reconciler(p, deadline)
	limits := &eni.LimitsOnce{EC2: p.client, InstanceType: "c5.4xlarge"}
	podAddresses := slices.ContainsFunc(s.ifaces, api.Interface.PodAddresses)
	r.LoadLimits = func(ctx context.Context) (*eni.Limits, error) {
		l, err := limits.Get(ctx)
		if err != nil && !podAddresses {
			return nil, nil
		}
		return l, err
	}
	_, err := r.Reconcile(ctx, &changetest.Actions{}, s.ifaces)
	return err
}

// sweepRequestTimeout replaces sdkhttp's 10 s so the hung calls of the
// timeout column cost the sweep less.
const sweepRequestTimeout = time.Second

// runSweepCell runs one cell and returns what went wrong, and how often
// the fault fired.
func runSweepCell(c sweepCell) (problems []string, hits int) {
	s, err := newSweepScenario(7, c.fresh)
	if err != nil {
		return []string{err.Error()}, 0
	}
	defer s.n.sim.Close()
	srv := startServer(s.n.sim)
	defer srv.Close()
	s.n.url = srv.URL
	md := httptest.NewServer(s.n.sim.IMDSHandler(s.n.inst.ID))
	defer md.Close()
	s.n.imds = imds.New(md.URL, imds.WithHTTPClient(ec2sim.HTTPClient()))
	ctx := context.Background()
	setup := s.n.start(sweepRequestTimeout)
	for _, l := range []struct{ iface, subnet string }{{"b", s.n.v6.ID}, {"gone", s.n.data.ID}} {
		if err := s.leftover(ctx, setup.client, l.iface, l.subnet); err != nil {
			return []string{"setup: " + err.Error()}, 0
		}
	}

	before := map[string]bool{}
	for _, e := range s.n.sim.ENIs() {
		before[e.ID] = true
	}
	// The first run, under the fault, ended as the cell says.
	first := s.n.start(sweepRequestTimeout)
	s.n.sim.ResetCalls()
	f := c.fault.fault
	f.Action = c.action
	id := s.n.sim.InjectFault(f)
	// One throttle, so the run counts its storm (DescribeInstanceStatus)
	// and every call is made.
	s.n.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Kind: ec2sim.FaultThrottle, Count: 1})
	// Each ending comes at the first hit of the fault, an event, not a time.
	deadline := newEventDeadline()
	runCtx, cancel := context.WithCancel(deadline)
	defer cancel()
	var once sync.Once
	s.n.sim.OnCall(func(call ec2sim.Call, _ ec2sim.ActionStats) {
		if call.Action != c.action || call.ErrorCode == "" {
			return
		}
		once.Do(func() {
			switch c.ending {
			case "deadline":
				deadline.expire()
			case "SIGKILL":
				first.kill.dead.Store(true)
				cancel()
			default:
				cancel()
			}
		})
	})
	done := make(chan error, 1)
	go func() { done <- s.runProcess(runCtx, first, time.Minute) }()
	var firstErr error
	if c.ending == "SIGKILL" {
		// A killed process does nothing more; do not wait for its goroutines
		// beyond the kill itself.
		select {
		case firstErr = <-done:
		case <-runCtx.Done():
		}
	} else {
		firstErr = <-done
	}
	hits = s.n.sim.FaultHits(id)
	s.n.sim.ClearFaults()
	if c.ending != "SIGKILL" {
		problems = append(problems, untypedErrors(firstErr)...)
		problems = append(problems, s.unsettled(before, firstErr)...)
	}

	// The re-run, without faults, must converge. It is a new process: what
	// EC2 accepted from the first one is applied by the time it starts.
	if err := s.n.sim.WaitIdle(ctx); err != nil {
		return append(problems, err.Error()), hits
	}
	second := s.n.start(sweepRequestTimeout)
	if err := s.runProcess(ctx, second, time.Minute); err != nil {
		problems = append(problems, fmt.Sprintf("re-run failed: %v", err))
		problems = append(problems, untypedErrors(err)...)
	}
	attached := map[int]ec2sim.ENI{}
	for _, e := range s.n.sim.ENIs() {
		if a := e.Attachment; a != nil && a.InstanceID == s.n.inst.ID {
			attached[a.DeviceIndex] = e
		}
	}
	for _, in := range s.ifaces {
		e, ok := attached[int(*in.DeviceIndex)]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: nothing attached at device index %d after the re-run", in.Name, *in.DeviceIndex))
		case !e.Attachment.DeleteOnTermination:
			problems = append(problems, fmt.Sprintf("%s: %s attached without DeleteOnTermination", in.Name, e.ID))
		}
	}
	for name, enis := range s.n.ours() {
		if len(enis) > 1 {
			var ids []string
			for _, e := range enis {
				ids = append(ids, e.ID)
			}
			sort.Strings(ids)
			problems = append(problems, fmt.Sprintf("%s: %d ENIs %v (duplicate)", name, len(enis), ids))
		}
	}
	if _, err := s.n.sim.TerminateInstance(s.n.inst.ID); err != nil {
		return append(problems, err.Error()), hits
	}
	for _, e := range s.n.sim.UnattachedENIs() {
		problems = append(problems, fmt.Sprintf("ENI %s (interface %q) outlived the instance", e.ID, e.Tags[eni.TagInterface]))
	}
	return problems, hits
}

// unsettled checks the promise of a run that gave up on its own (deadline,
// SIGTERM), before any re-run: every ENI it created is deleted, attached
// with DeleteOnTermination, or named in its error as left for the next
// run. An ENI whose create answer may never have reached the run (a create
// call that failed or was cut off) can only be found by the next run
// (ClientToken, tags): such cells are not judged here.
func (s *sweepScenario) unsettled(before map[string]bool, runErr error) []string {
	for _, c := range s.n.sim.Calls() {
		if c.Action == "CreateNetworkInterface" && (c.ErrorCode != "" || c.ClientGone) {
			return nil
		}
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	var out []string
	for _, e := range s.n.sim.ENIs() {
		if before[e.ID] || e.Tags[eni.TagInstanceID] != s.n.inst.ID {
			continue
		}
		if a := e.Attachment; a != nil && a.DeleteOnTermination {
			continue
		}
		if strings.Contains(msg, fmt.Sprintf("ENI %s %s", e.ID, eni.LeftForNextRun)) || strings.Contains(msg, fmt.Sprintf("ENI %s %s", e.ID, eni.LeftAttachedWithoutDeleteOnTermination)) {
			continue
		}
		state := "unattached"
		if e.Attachment != nil {
			state = "attached without DeleteOnTermination"
		}
		out = append(out, fmt.Sprintf("after the first run gave up: ENI %s (interface %q) %s and not reported left for the next run; it would outlive the instance", e.ID, e.Tags[eni.TagInterface], state))
	}
	return out
}

func startServer(sim *ec2sim.Sim) *httptest.Server { return httptest.NewServer(sim.Handler()) }

// untypedErrors lists the failures that do not name their interface and
// call: every failure must be an *eni.Error or *eni.LimitsError.
func untypedErrors(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *eni.Error
		var l *eni.LimitsError
		if !errors.As(err, &e) && !errors.As(err, &l) {
			out = append(out, fmt.Sprintf("untyped failure: %v", err))
		}
	}
	walk(err)
	return out
}

// Package fleet boots many nodes at once against one EC2 simulator, as an
// auto scaling group scaling out does: every node runs the real ENI
// reconciler with its own EC2 client (the real retryer and rate limits)
// and its own IMDS, all sharing the simulator's per-action token buckets,
// with the realistic latency profile and eventual consistency on. Then it
// terminates every instance and counts what leaked.
//
// # The bound
//
// Report.Bound is a lower bound on the makespan from EC2's token buckets
// alone, for the calls the fleet strictly needs: per node two filtered
// DescribeNetworkInterfaces and one DescribeSubnets (the observation), and
// per ENI one CreateNetworkInterface, one AttachNetworkInterface, one
// ModifyNetworkInterfaceAttribute for DeleteOnTermination and, with
// sourceDestCheck false, a second one. A bucket of capacity B refilled at r
// tokens/s cannot grant n calls that all want it at time 0 before
// (n-B)/r seconds; the node whose call is granted last then still needs
// that call's minimum latency and the minimum latencies of the steps after
// it (create, then attach, then the larger of the minimum attach delay and
// the attribute changes one after the other). The bound is the largest of
// these over the actions, and at least the same chain for one node alone.
// Retries, throttled calls, describes during the attach wait and the
// throttled nodes' count of the booting instances (DescribeInstanceStatus:
// every instance here boots at once, with ec2sim.Realistic's 2-4 minutes
// of "initializing" status checks) are not strictly needed and count
// against the ratio makespan/bound.
package fleet

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// Spec is one fleet run.
type Spec struct {
	Nodes int
	ENIs  int // managed ENIs per node
	// SourceDestCheck is the interfaces' sourceDestCheck: nil leaves it
	// unset, false costs one more attribute change per ENI.
	SourceDestCheck *bool
	// Deadline is each node's ENI deadline. Zero is eni.DefaultDeadline.
	Deadline time.Duration
	Seed     int64
	// Timing is the simulator's latency model; zero is ec2sim.Realistic().
	Timing *ec2sim.Timing
	// Faults are injected into the simulator before the nodes start
	// (FaultMix is the mix).
	Faults []ec2sim.Fault
	// Visibility, when set, replaces the timing's eventual-consistency
	// delay for new ENIs.
	Visibility *ec2sim.Latency
	// OtherBooting adds instances booting beside the fleet that make no
	// ENI calls (another group scaling out): a throttled node counts every
	// booting instance, so they stretch its storm turn (see eni's storm).
	OtherBooting int
}

// FaultMix is the fault mix of make bench-fleet FLEET_FAULTS=mix: 5% of
// the answers lost after EC2 applied the call (the connection drops), 2%
// of the calls answered InternalError (HTTP 500), and new ENIs invisible
// to other calls for 2-5 s.
func FaultMix() ([]ec2sim.Fault, ec2sim.Latency) {
	return []ec2sim.Fault{
		{Kind: ec2sim.FaultDropConnection, AfterApply: true, Probability: 0.05},
		{Kind: ec2sim.FaultInternalError, Probability: 0.02},
	}, ec2sim.Latency{Base: 2 * time.Second, Jitter: 3 * time.Second}
}

// Report is what a run measured.
type Report struct {
	Nodes, ENIs int
	// SourceDestCheck is the spec's: "unset", "true" or "false".
	SourceDestCheck string
	// Faults is how many faults were injected.
	Faults                 int
	OK, Failed             int
	LeakedUnattached       int // unattached ENIs when every node is done
	LeakedAfterTermination int // unattached ENIs once every instance is terminated
	Makespan, Bound        time.Duration
	// NodeTimes are the nodes' Reconcile durations, sorted.
	NodeTimes        []time.Duration
	Calls, Throttled int
	// FirstWave is how many throttles no client can avoid (see FirstWave).
	FirstWave int
	// PerAction counts the calls of each action.
	PerAction map[string]ec2sim.ActionStats
	// Answers counts "Action Code" pairs ("" code: success; "applied"
	// marks calls EC2 made although the client saw a failure or left).
	Answers map[string]int
	// Errors are the failed nodes' errors, one per node.
	Errors []error
	// Timeline is every call as EC2 answered it, in order (Start is the
	// storm's start): where in the storm the throttles fall.
	Timeline []ec2sim.Call
	Start    time.Time
}

// Ratio is Makespan / Bound.
func (r Report) Ratio() float64 { return r.Makespan.Seconds() / r.Bound.Seconds() }

// ThrottledShare is Throttled / Calls.
func (r Report) ThrottledShare() float64 {
	if r.Calls == 0 {
		return 0
	}
	return float64(r.Throttled) / float64(r.Calls)
}

// NodeTime is the q-quantile (0..1) of the nodes' Reconcile durations,
// nearest rank.
func (r Report) NodeTime(q float64) time.Duration {
	if len(r.NodeTimes) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.NodeTimes)))) - 1
	return r.NodeTimes[min(max(i, 0), len(r.NodeTimes)-1)]
}

// String is the one-line summary make bench-fleet prints.
func (r Report) String() string {
	return fmt.Sprintf("fleet: nodes=%d enis=%d sdc=%s faults=%d ok=%d failed=%d leaked_unattached=%d leaked_after_termination=%d "+
		"node_p50=%.1fs node_p99=%.1fs node_max=%.1fs makespan=%.1fs bound=%.1fs ratio=%.2f calls=%d throttled=%d throttled_share=%.1f%% first_wave=%d",
		r.Nodes, r.ENIs, r.SourceDestCheck, r.Faults, r.OK, r.Failed, r.LeakedUnattached, r.LeakedAfterTermination,
		r.NodeTime(0.5).Seconds(), r.NodeTime(0.99).Seconds(), r.NodeTime(1).Seconds(),
		r.Makespan.Seconds(), r.Bound.Seconds(), r.Ratio(), r.Calls, r.Throttled, 100*r.ThrottledShare(), r.FirstWave)
}

// Run boots the fleet, waits for every node, and terminates the instances.
func Run(ctx context.Context, spec Spec) (Report, error) {
	if spec.Nodes < 1 || spec.ENIs < 1 || spec.ENIs > 7 {
		return Report{}, fmt.Errorf("fleet: %d nodes x %d ENIs: want at least one node and 1-7 ENIs (c5.4xlarge has 8 slots)", spec.Nodes, spec.ENIs)
	}
	timing := ec2sim.Realistic()
	if spec.Timing != nil {
		timing = *spec.Timing
	}
	if spec.Visibility != nil {
		timing.Visibility = *spec.Visibility
	}
	sim := ec2sim.New(ec2sim.Config{Seed: spec.Seed, Timing: timing})
	defer sim.Close()
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.0.0/16"})
	if err != nil {
		return Report{}, err
	}
	data, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.1.0.0/16", Tags: map[string]string{"Name": "multus"}})
	if err != nil {
		return Report{}, err
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	type node struct {
		id string
		r  *eni.Reconciler
	}
	nodes := make([]node, spec.Nodes)
	for i := range nodes {
		inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: primary.ID})
		if err != nil {
			return Report{}, err
		}
		md := httptest.NewServer(sim.IMDSHandler(inst.ID))
		defer md.Close()
		client := ec2.NewFromConfig(ec2sim.AWSConfigFor(srv.URL, "us-west-2", fmt.Sprintf("NODE%d", i)), eni.ClientOptions(""))
		nodes[i] = node{id: inst.ID, r: &eni.Reconciler{
			EC2:              client,
			InstanceID:       inst.ID,
			AvailabilityZone: inst.AvailabilityZone,
			Deadline:         spec.Deadline,
			AttachedMACs:     imds.New(md.URL, imds.WithHTTPClient(ec2sim.HTTPClient())).AttachedMACs,
		}}
		// As the agent does on a fresh instance: the instance type's limits
		// are asked of EC2 (DescribeInstanceTypes, a bucket of its own).
		limits := &eni.LimitsOnce{EC2: client, InstanceType: inst.Type}
		nodes[i].r.LoadLimits = limits.Get
	}
	for range spec.OtherBooting {
		if _, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: primary.ID}); err != nil {
			return Report{}, err
		}
	}
	var ifaces []api.Interface
	for k := range spec.ENIs {
		dev, card := int32(k+1), int32(0)
		ifaces = append(ifaces, api.Interface{
			Name: fmt.Sprintf("data%d", k+1), SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card,
			PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, SourceDestCheck: spec.SourceDestCheck,
		})
	}

	rep := Report{Nodes: spec.Nodes, ENIs: spec.ENIs, SourceDestCheck: "unset", Faults: len(spec.Faults), Bound: Bound(spec, timing), FirstWave: FirstWave(spec)}
	if spec.SourceDestCheck != nil {
		rep.SourceDestCheck = fmt.Sprint(*spec.SourceDestCheck)
	}
	for _, f := range spec.Faults {
		sim.InjectFault(f)
	}
	errs := make([]error, len(nodes))
	took := make([]time.Duration, len(nodes))
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = n.r.Reconcile(ctx, &changetest.Actions{}, ifaces)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	rep.Makespan = time.Since(start)
	sim.ClearFaults() // termination and the leak count see a healthy EC2
	slices.Sort(took)
	rep.NodeTimes = took
	for _, err := range errs {
		if err != nil {
			rep.Failed++
			rep.Errors = append(rep.Errors, err)
		} else {
			rep.OK++
		}
	}
	// Changes EC2 accepted before a client gave up finish first.
	if err := sim.WaitIdle(ctx); err != nil {
		return rep, err
	}
	rep.LeakedUnattached = len(sim.UnattachedENIs())
	for _, n := range nodes {
		if _, err := sim.TerminateInstance(n.id); err != nil {
			return rep, err
		}
	}
	rep.LeakedAfterTermination = len(sim.UnattachedENIs())
	rep.PerAction = sim.Stats()
	rep.Answers = map[string]int{}
	rep.Timeline, rep.Start = sim.Calls(), start
	for _, c := range rep.Timeline {
		key := c.Action + " " + c.ErrorCode
		if c.Applied && (c.ErrorCode != "" || c.ClientGone) {
			key += " applied"
		}
		rep.Answers[key]++
	}
	for _, st := range rep.PerAction {
		rep.Calls += st.Calls
		rep.Throttled += st.Throttled
	}
	return rep, nil
}

// Bound is the token-bucket lower bound of the package comment.
func Bound(spec Spec, timing ec2sim.Timing) time.Duration {
	th := ec2sim.DefaultThrottle()
	enis := spec.Nodes * spec.ENIs
	modifies := enis
	if spec.SourceDestCheck != nil && !*spec.SourceDestCheck {
		modifies *= 2
	}
	type need struct {
		action string
		bucket ec2sim.Bucket
		calls  int
	}
	bucket := func(action string) ec2sim.Bucket {
		if b, ok := th.PerAction[action]; ok {
			return b
		}
		if ec2sim.IsMutating(action) {
			return th.Mutating
		}
		return th.NonMutating
	}
	needs := []need{
		{"DescribeNetworkInterfaces", th.NonMutating, spec.Nodes},
		{"DescribeSubnets", th.NonMutating, spec.Nodes},
		{"CreateNetworkInterface", bucket("CreateNetworkInterface"), enis},
		{"AttachNetworkInterface", bucket("AttachNetworkInterface"), enis},
		{"ModifyNetworkInterfaceAttribute", bucket("ModifyNetworkInterfaceAttribute"), modifies},
	}
	minLatency := func(action string) time.Duration {
		if l, ok := timing.Calls[action]; ok {
			return l.Base
		}
		return timing.Default.Base
	}
	// What a node still needs after each step's last call is granted: the
	// call itself, the later calls, and the attachment becoming effective
	// (at least the attach delay) beside the attribute changes, which come
	// one after the other (DeleteOnTermination first).
	changes := time.Duration(modifies/max(enis, 1)) * minLatency("ModifyNetworkInterfaceAttribute")
	afterAttach := minLatency("AttachNetworkInterface") + max(timing.AttachDelay.Base, changes)
	afterCreate := minLatency("CreateNetworkInterface") + afterAttach
	rest := map[string]time.Duration{
		"DescribeNetworkInterfaces":       minLatency("DescribeNetworkInterfaces") + afterCreate,
		"DescribeSubnets":                 minLatency("DescribeSubnets") + afterCreate,
		"CreateNetworkInterface":          afterCreate,
		"AttachNetworkInterface":          afterAttach,
		"ModifyNetworkInterfaceAttribute": minLatency("ModifyNetworkInterfaceAttribute"),
	}
	bound := rest["DescribeNetworkInterfaces"] // one node alone
	for _, n := range needs {
		wait := 0.0
		if n.calls > n.bucket.Burst {
			wait = float64(n.calls-n.bucket.Burst) / n.bucket.RefillPerSecond
		}
		bound = max(bound, time.Duration(wait*float64(time.Second))+rest[n.action])
	}
	return bound
}

// FirstWave is the number of throttled answers no client-side rate control
// can avoid: every node sends its observation (on a fresh instance one
// filtered DescribeNetworkInterfaces and a DescribeSubnets, at once, so
// that a node alone is not slowed by its own calls) the moment it boots,
// before any of them has been throttled, so each of those buckets answers
// all but its burst of them with RequestLimitExceeded. Later throttles are
// the pacer's to avoid; these are not.
func FirstWave(spec Spec) int {
	th := ec2sim.DefaultThrottle()
	return 2 * max(0, spec.Nodes-th.NonMutating.Burst)
}

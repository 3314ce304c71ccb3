package eni_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/sdkhttp"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// The regression tests of issue 21 (items 2-5, 7): each fails on the
// reconciler as it was before.

// node is one instance in a simulator, with a process whose EC2 client
// can be killed: after kill no request of that process reaches EC2 and no
// answer reaches it, as after SIGKILL. EC2 still finishes what it accepted.
type node struct {
	sim  *ec2sim.Sim
	url  string
	inst ec2sim.Instance
	data ec2sim.Subnet
	v6   ec2sim.Subnet
	// imds is the instance's metadata service: its reconcilers observe as
	// the agent's do (one describe of the ENIs less while IMDS shows only
	// the primary interface).
	imds *imds.Client
}

type nodeSpec struct {
	instanceType string
	ltENIs       []ec2sim.ENISpec
	cfg          ec2sim.Config
}

func newNode(t testing.TB, spec nodeSpec) *node {
	t.Helper()
	if spec.instanceType == "" {
		spec.instanceType = "c5.4xlarge"
	}
	if spec.cfg.Seed == 0 {
		spec.cfg.Seed = 3
	}
	n := &node{sim: ec2sim.New(spec.cfg)}
	t.Cleanup(n.sim.Close)
	primary, err := n.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if n.data, err = n.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.8.0/24"}); err != nil {
		t.Fatal(err)
	}
	for i := range spec.ltENIs {
		if spec.ltENIs[i].SubnetID == "" {
			spec.ltENIs[i].SubnetID = n.data.ID
		}
	}
	if n.inst, err = n.sim.AddInstance(ec2sim.InstanceSpec{Type: spec.instanceType, SubnetID: primary.ID, LaunchTemplateENIs: spec.ltENIs}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.sim.Handler())
	t.Cleanup(srv.Close)
	n.url = srv.URL
	md := httptest.NewServer(n.sim.IMDSHandler(n.inst.ID))
	t.Cleanup(md.Close)
	n.imds = imds.New(md.URL, imds.WithHTTPClient(ec2sim.HTTPClient()))
	return n
}

// process is one nodeprep process of the node.
type process struct {
	client *ec2.Client
	kill   *killSwitch
}

var errKilled = errors.New("process killed")

type killSwitch struct {
	next http.RoundTripper
	dead atomic.Bool
}

func (k *killSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	resp, err := k.next.RoundTrip(r)
	if k.dead.Load() {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, errKilled
	}
	return resp, err
}

// start is a new process with the production client options; requestTimeout
// replaces sdkhttp's only so that hung calls cost the tests less.
func (n *node) start(requestTimeout time.Duration) *process {
	return n.startAs(requestTimeout, "")
}

// startAs is start with the given access key ID ("" is the simulator's
// default), which the simulator's call log names (Call.Client).
func (n *node) startAs(requestTimeout time.Duration, accessKey string) *process {
	hc := sdkhttp.ClientWithTimeout(requestTimeout)
	ks := &killSwitch{next: hc.Transport}
	hc.Transport = ks
	cfg := ec2sim.AWSConfig(n.url, "us-west-2")
	if accessKey != "" {
		cfg = ec2sim.AWSConfigFor(n.url, "us-west-2", accessKey)
	}
	c := ec2.NewFromConfig(cfg, eni.ClientOptions(""), func(o *ec2.Options) { o.HTTPClient = hc })
	return &process{client: c, kill: ks}
}

func (n *node) reconciler(p *process, deadline time.Duration) *eni.Reconciler {
	return &eni.Reconciler{EC2: p.client, InstanceID: n.inst.ID, Deadline: deadline, AttachedMACs: n.imds.AttachedMACs, AvailabilityZone: n.inst.AvailabilityZone}
}

func (n *node) iface(name string, dev int32, mode api.PrivateIPMode) api.Interface {
	return managed(name, n.data.ID, dev, mode)
}

// ours lists this node's nodeprep ENIs per interface tag.
func (n *node) ours() map[string][]ec2sim.ENI {
	out := map[string][]ec2sim.ENI{}
	for _, e := range n.sim.ENIs() {
		if e.Tags[eni.TagInstanceID] == n.inst.ID && e.Tags[eni.TagInterface] != "" {
			out[e.Tags[eni.TagInterface]] = append(out[e.Tags[eni.TagInterface]], e)
		}
	}
	return out
}

// terminate ends the instance and fails the test for every ENI that
// outlived it.
func (n *node) terminate(t *testing.T, why string) {
	t.Helper()
	if _, err := n.sim.TerminateInstance(n.inst.ID); err != nil {
		t.Fatal(err)
	}
	for _, e := range n.sim.UnattachedENIs() {
		t.Errorf("ENI %s (interface %q) outlived the instance: %s", e.ID, e.Tags[eni.TagInterface], why)
	}
}

// eventDeadline is a context whose deadline passes when expire is called,
// not at a time: a test ends a run "at its deadline" at the point it means
// however loaded the machine is (no test may depend on wall time).
type eventDeadline struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newEventDeadline() *eventDeadline {
	return &eventDeadline{Context: context.Background(), done: make(chan struct{})}
}

func (d *eventDeadline) Done() <-chan struct{} { return d.done }

func (d *eventDeadline) Err() error {
	select {
	case <-d.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (d *eventDeadline) expire() { d.once.Do(func() { close(d.done) }) }

func asError(t *testing.T, err error) *eni.Error {
	t.Helper()
	var e *eni.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is no *eni.Error", err)
	}
	return e
}

// Item 2: IAM denies the DeleteOnTermination change. The run must fail,
// naming the call and EC2's code, and say the ENI would outlive the
// instance.
func TestDeniedDeleteOnTerminationIsAFailureWithTheCode(t *testing.T) {
	n := newNode(t, nodeSpec{})
	n.sim.InjectFault(ec2sim.Fault{Action: "ModifyNetworkInterfaceAttribute", Param: "Attachment.DeleteOnTermination", Kind: ec2sim.FaultDenied})
	_, err := n.reconciler(n.start(sdkhttp.RequestTimeout), time.Minute).Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{n.iface("a", 1, api.PrivateIPDHCP)})
	if err == nil {
		t.Fatal("the run succeeded although DeleteOnTermination was denied: the ENI outlives the instance")
	}
	e := asError(t, err)
	if e.Call != "ModifyNetworkInterfaceAttribute" || e.Code != "UnauthorizedOperation" || !strings.Contains(err.Error(), "DeleteOnTermination") {
		t.Errorf("error %q (call %q, code %q): want ModifyNetworkInterfaceAttribute UnauthorizedOperation naming DeleteOnTermination", err, e.Call, e.Code)
	}
}

// Item 2: a denied sourceDestCheck change is a failure with its code too.
func TestDeniedSourceDestCheckIsAFailureWithTheCode(t *testing.T) {
	n := newNode(t, nodeSpec{})
	n.sim.InjectFault(ec2sim.Fault{Action: "ModifyNetworkInterfaceAttribute", Param: "SourceDestCheck.Value", Kind: ec2sim.FaultDenied})
	in := n.iface("a", 1, api.PrivateIPDHCP)
	off := false
	in.SourceDestCheck = &off
	_, err := n.reconciler(n.start(sdkhttp.RequestTimeout), time.Minute).Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{in})
	if err == nil {
		t.Fatal("the run succeeded although sourceDestCheck was denied")
	}
	if e := asError(t, err); e.Call != "ModifyNetworkInterfaceAttribute" || e.Code != "UnauthorizedOperation" {
		t.Errorf("error %q: want ModifyNetworkInterfaceAttribute UnauthorizedOperation", err)
	}
	// DeleteOnTermination went through: the ENI dies with the instance.
	n.terminate(t, "DeleteOnTermination not set")
}

// Item 3: an ENI the launch template attached with DeleteOnTermination
// false is adopted under the shipped IAM policy. That policy lets nodeprep
// change only ENIs carrying nodeprep.dev/interface, a tag set only at
// creation (README, IAM): no change call may name an ENI without it.
func TestAdoptedLaunchTemplateENIWithoutDeleteOnTerminationNeedsNoChangeRights(t *testing.T) {
	n := newNode(t, nodeSpec{ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1, DeleteOnTermination: false}}})
	res, err := n.reconciler(n.start(sdkhttp.RequestTimeout), time.Minute).Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{n.iface("a", 1, api.PrivateIPDHCP)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].How != "adopted" {
		t.Fatalf("results %+v", res)
	}
	tags := map[string]map[string]string{}
	for _, e := range n.sim.ENIs() {
		tags[e.ID] = e.Tags
	}
	for _, c := range n.sim.Calls() {
		switch c.Action {
		case "ModifyNetworkInterfaceAttribute", "AssignPrivateIpAddresses", "AssignIpv6Addresses", "AttachNetworkInterface", "DeleteNetworkInterface":
			id := c.Params.Get("NetworkInterfaceId")
			if tags[id][eni.TagInterface] == "" {
				t.Errorf("%s %v on %s, which lacks %s: the shipped IAM policy denies it", c.Action, c.Params, id, eni.TagInterface)
			}
		}
	}
}

// Item 4: EC2 applies the attach, its answer never comes, the deadline
// passes. The ENI is attached, so it cannot be deleted: it must end with
// DeleteOnTermination, and the error must say so.
func TestAttachAppliedAfterTheDeadlineNeverLeaks(t *testing.T) {
	n := newNode(t, nodeSpec{})
	n.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultTimeout, AfterApply: true})
	// The deadline passes once EC2 has made the attachment, while the
	// attach call still waits for its answer.
	deadline := newEventDeadline()
	n.sim.OnAttach(func(ec2sim.AttachEvent) error { deadline.expire(); return nil })
	_, err := n.reconciler(n.start(sdkhttp.RequestTimeout), time.Minute).Reconcile(deadline, &changetest.Actions{}, []api.Interface{n.iface("a", 1, api.PrivateIPDHCP)})
	if err == nil {
		t.Fatal("the run succeeded although no attach answer came")
	}
	e := asError(t, err)
	if e.ENIID == "" || e.Left != eni.LeftAttached {
		t.Errorf("error %q: the ENI's fate is %q (%s), want %q", err, e.Left, e.ENIID, eni.LeftAttached)
	}
	n.terminate(t, "left attached with DeleteOnTermination=false")
}

// Item 5: SIGKILL right after EC2 applied the create, before the answer,
// while the new ENI is not yet visible to describes. The next run must not
// make a second ENI, in every address mode.
func TestCreateIsIdempotentAcrossSIGKILL(t *testing.T) {
	for _, mode := range []api.PrivateIPMode{api.PrivateIPFromStartOfSubnet, api.PrivateIPDHCP, api.PrivateIPStatic} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			for trial := range 4 {
				n := newNode(t, nodeSpec{cfg: ec2sim.Config{Seed: int64(trial + 1), Timing: ec2sim.Timing{Visibility: ec2sim.Latency{Base: 3 * time.Second}}}})
				in := n.iface("a", 1, mode)
				if mode == api.PrivateIPStatic {
					in.PrivateIP.Address = "10.9.8.77"
				}
				first := n.start(sdkhttp.RequestTimeout)
				ctx, kill := context.WithCancel(context.Background())
				var once sync.Once
				n.sim.OnMutation(func(action string, _ int) {
					if action == "CreateNetworkInterface" {
						once.Do(func() { first.kill.dead.Store(true); kill() })
					}
				})
				// A killed process does nothing more: the next one starts at
				// the kill, without waiting for the first to wind down.
				go func() {
					_, _ = n.reconciler(first, time.Minute).Reconcile(ctx, &changetest.Actions{}, []api.Interface{in})
				}()
				<-ctx.Done()
				if _, err := n.reconciler(n.start(sdkhttp.RequestTimeout), time.Minute).Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{in}); err != nil {
					t.Fatal(err)
				}
				if got := n.ours()["a"]; len(got) != 1 {
					t.Fatalf("trial %d: %d ENIs for interface a after SIGKILL and a re-run", trial, len(got))
				}
				n.terminate(t, "a duplicate")
			}
		})
	}
}

// Item 7: a config that cannot fit the instance type creates nothing and
// names the limit.
func TestCapacityIsCheckedBeforeTheFirstCreate(t *testing.T) {
	card1 := int32(1)
	cases := []struct {
		name, instanceType string
		ifaces             func(n *node) []api.Interface
		want               string
	}{
		{"ENI count", "c5.xlarge", func(n *node) []api.Interface {
			return []api.Interface{n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP), n.iface("c", 3, api.PrivateIPDHCP), n.iface("d", 4, api.PrivateIPDHCP)}
		}, "network card 0 of c5.xlarge takes 4 ENIs"},
		{"network card index", "c5.4xlarge", func(n *node) []api.Interface {
			in := n.iface("a", 1, api.PrivateIPDHCP)
			in.NetworkCardIndex = &card1
			return []api.Interface{in}
		}, "c5.4xlarge has 1 network card"},
		{"secondaries per ENI", "c5.xlarge", func(n *node) []api.Interface {
			in := n.iface("a", 1, api.PrivateIPDHCP)
			in.SecondaryIPCount = 15
			return []api.Interface{in}
		}, "15 per ENI"},
		{"IPv6 on an IPv4-only subnet", "c5.4xlarge", func(n *node) []api.Interface {
			in := n.iface("a", 1, api.PrivateIPDHCP)
			in.IPv6AddressCount = 1
			return []api.Interface{in}
		}, "has no IPv6 CIDR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, nodeSpec{instanceType: c.instanceType})
			p := n.start(sdkhttp.RequestTimeout)
			l, err := eni.DescribeLimits(context.Background(), p.client, c.instanceType)
			if err != nil {
				t.Fatal(err)
			}
			r := n.reconciler(p, time.Minute)
			r.Limits = &l
			_, err = r.Reconcile(context.Background(), &changetest.Actions{}, c.ifaces(n))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %q", err, c.want)
			}
			if m, _ := n.sim.CallCounts(); m != 0 {
				t.Errorf("%d mutating calls for a config that cannot fit", m)
			}
		})
	}
}

// Item 11: a top-up whose answer was lost after EC2 applied it is
// recovered by counting again; that is no failed change (the engine logs
// each at ERROR).
func TestRecoveredTopUpIsNoFailure(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{managed("a", f.data.ID, 1, api.PrivateIPDHCP)}); err != nil {
		t.Fatal(err)
	}
	f.sim.InjectFault(ec2sim.Fault{Action: "AssignPrivateIpAddresses", Kind: ec2sim.FaultDropConnection, AfterApply: true, Count: 1})
	act := &failures{}
	if _, err := r.Reconcile(ctx, act, []api.Interface{withCapacity(managed("a", f.data.ID, 1, api.PrivateIPDHCP), 2, 0)}); err != nil {
		t.Fatal(err)
	}
	if len(act.failed) != 0 {
		t.Errorf("failed changes reported for a recovered top-up:\n%s", strings.Join(act.failed, "\n"))
	}
}

// Package eni_test runs nodeprep's ENI and link steps end to end: the real
// aws-sdk-go-v2 EC2 client against the ec2sim simulator, and real netlink in
// a test network namespace where the simulator hot-plugs a veth carrying
// the ENI's MAC whenever an attachment completes.
package eni_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces and veth links (run: sudo go test ./test/e2e/eni/)")
	}
}

// envSpec shapes one simulated instance.
type envSpec struct {
	instanceType string
	// dataCIDR is the Multus subnet; default 10.0.2.0/24.
	dataCIDR string
	// ltENIs are attached at launch in the data subnet (or otherSubnet).
	ltENIs []ec2sim.ENISpec
	timing ec2sim.Timing
	seed   int64
	// transport, when set, carries the EC2 client's requests (to time them).
	transport http.RoundTripper
}

// env is one simulated node.
type env struct {
	t        testing.TB
	sim      *ec2sim.Sim
	ep       *ec2sim.Endpoints
	client   *ec2.Client
	inst     ec2sim.Instance
	primary  ec2sim.Subnet
	data     ec2sim.Subnet
	other    ec2sim.Subnet
	nsName   string
	ns       netns.NsHandle
	root     hostfs.Root
	identity imds.Identity
}

func newEnv(tb testing.TB, spec envSpec) *env {
	tb.Helper()
	needRoot(tb)
	if spec.instanceType == "" {
		spec.instanceType = "c5.4xlarge"
	}
	if spec.dataCIDR == "" {
		spec.dataCIDR = "10.0.2.0/24"
	}
	if spec.seed == 0 {
		spec.seed = 1
	}
	e := &env{t: tb}
	e.sim = ec2sim.New(ec2sim.Config{Region: "us-west-2", Seed: spec.seed, Timing: spec.timing})
	tb.Cleanup(e.sim.Close)
	var err error
	if e.primary, err = e.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.1.0/24", AvailabilityZone: "us-west-2a"}); err != nil {
		tb.Fatal(err)
	}
	if e.data, err = e.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: spec.dataCIDR, AvailabilityZone: "us-west-2a"}); err != nil {
		tb.Fatal(err)
	}
	if netip.MustParsePrefix(spec.dataCIDR).Contains(netip.MustParseAddr(staticAddr)) {
		// As a user must in a subnet where EC2 also assigns addresses: an
		// explicit CIDR reservation keeps EC2's own picks (data1's, drawn at
		// random) off the static address. Without it, TestThrottlingStorm
		// failed under load with InvalidIPAddress.InUse whenever data1's
		// create landed first and drew 10.0.2.200.
		if _, err := e.sim.AddSubnetCidrReservation(e.data.ID, staticAddr+"/32", "explicit", "static address of data3"); err != nil {
			tb.Fatal(err)
		}
	}
	if e.other, err = e.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.3.0/24", AvailabilityZone: "us-west-2a"}); err != nil {
		tb.Fatal(err)
	}
	for i := range spec.ltENIs {
		if spec.ltENIs[i].SubnetID == "" {
			spec.ltENIs[i].SubnetID = e.data.ID
		}
	}
	if e.inst, err = e.sim.AddInstance(ec2sim.InstanceSpec{Type: spec.instanceType, SubnetID: e.primary.ID, LaunchTemplateENIs: spec.ltENIs}); err != nil {
		tb.Fatal(err)
	}

	e.nsName = fmt.Sprintf("npeni-%d-%04x", os.Getpid(), rand.IntN(0xffff))
	if out, err := exec.Command("ip", "netns", "add", e.nsName).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v: %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", e.nsName).Run() })
	if e.ns, err = netns.GetFromName(e.nsName); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.ns.Close() })
	hp := &ec2sim.VethHotplug{NetNS: e.nsName, InstanceID: e.inst.ID, SkipPrimary: true}
	if err := hp.Install(e.sim); err != nil {
		tb.Fatal(err)
	}

	if e.ep, err = e.sim.Serve("127.0.0.1:0", "127.0.0.1:0", e.inst.ID); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.ep.Close() })
	e.client = ec2.NewFromConfig(e.ep.AWSConfig(), eni.ClientOptions(""), func(o *ec2.Options) {
		if spec.transport != nil {
			o.HTTPClient = &http.Client{Transport: spec.transport}
		}
	})
	if e.identity, err = imds.New(e.ep.IMDSURL).Identity(context.Background()); err != nil {
		tb.Fatal(err)
	}
	e.root = hostfs.New(tb.TempDir())
	return e
}

// managed returns a defaulted managed interface in the data subnet.
func (e *env) managed(name string, dev int32, mode api.PrivateIPMode) api.Interface {
	card := int32(0)
	return api.Interface{Name: name, SubnetID: e.data.ID, DeviceIndex: &dev, NetworkCardIndex: &card, PrivateIP: api.PrivateIP{Mode: mode}, Driver: api.DriverKernel}
}

// runResult is one agent run.
type runResult struct {
	report engine.Report
	err    error
	wall   time.Duration
	state  state.File
	// statuses are the progress lines (systemd STATUS=) in order.
	statuses []string
}

// statusLines collects the progress lines a run sends to systemd.
type statusLines struct {
	mu    sync.Mutex
	lines []string
}

func (s *statusLines) Ready() error { return nil }

func (s *statusLines) Status(line string) error {
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	return nil
}

// host is the node's host: the temp root, NICs in the test netns.
func (e *env) host() bootstrap.Host {
	h := bootstrap.NewHost(e.root, &e.ns)
	h.LinkDeadline = 30 * time.Second
	return h
}

// run is `nodeprep run` (or plan) of the config's interfaces through
// bootstrap.Runner, with the ENI and link steps of the production graph.
func (e *env) run(ctx context.Context, ifaces []api.Interface, dryRun bool) runResult {
	e.t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return e.runWith(ctx, e.host(), log, &api.NodePrepConfig{Spec: api.Spec{Interfaces: ifaces}}, dryRun, bootstrap.StepENIs, bootstrap.StepLinks, bootstrap.StepPodNetworks)
}

// runWith runs the given steps of the graph for cfg through bootstrap.Runner.
func (e *env) runWith(ctx context.Context, host bootstrap.Host, log *slog.Logger, cfg *api.NodePrepConfig, dryRun bool, only ...string) runResult {
	e.t.Helper()
	cfg.APIVersion, cfg.Kind = api.APIVersion, api.Kind
	userData, err := yaml.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	statuses := &statusLines{}
	r := &bootstrap.Runner{
		Host:     host,
		Log:      log,
		Notifier: statuses,
		UserData: func(context.Context) ([]byte, error) { return userData, nil },
		NewCloud: func(context.Context) (*bootstrap.Cloud, error) {
			return &bootstrap.Cloud{EC2: e.client, Identity: e.identity, Deadline: 2 * time.Minute}, nil
		},
		DryRun: dryRun,
		Only:   only,
	}
	start := time.Now()
	out, err := r.Run(ctx)
	res := runResult{report: out.Report, err: err, wall: time.Since(start), statuses: statuses.lines}
	if f, rerr := state.Read(e.root); rerr == nil && !dryRun {
		res.state = *f
	}
	return res
}

// ours are the ENIs nodeprep owns on this instance, by tag.
func (e *env) ours() []ec2sim.ENI {
	var out []ec2sim.ENI
	for _, n := range e.sim.ENIs() {
		if n.Tags[eni.TagInstanceID] == e.inst.ID {
			out = append(out, n)
		}
	}
	return out
}

// attachedAt maps device index to the ENI attached there (card 0).
func (e *env) attachedAt() map[int]ec2sim.ENI {
	out := map[int]ec2sim.ENI{}
	for _, n := range e.sim.ENIs() {
		if n.Attachment != nil && n.Attachment.InstanceID == e.inst.ID {
			out[n.Attachment.DeviceIndex] = n
		}
	}
	return out
}

func (e *env) mutations() int {
	m, _ := e.sim.CallCounts()
	return m
}

func (e *env) linkByMAC(mac string) netlink.Link {
	e.t.Helper()
	h, err := netlink.NewHandleAt(e.ns)
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range links {
		if strings.EqualFold(l.Attrs().HardwareAddr.String(), mac) {
			return l
		}
	}
	return nil
}

// checkConverged asserts the invariants every finished run must leave:
// one attached ENI per configured slot, nothing of ours left unattached,
// the NIC ready in the netns, and state that matches EC2.
func (e *env) checkConverged(ifaces []api.Interface, st state.File) {
	e.t.Helper()
	at := e.attachedAt()
	for _, n := range e.ours() {
		if n.Attachment == nil {
			e.t.Errorf("leaked ENI %s (interface %s): ours and unattached", n.ID, n.Tags[eni.TagInterface])
		}
	}
	wantAttached := 1 // primary
	for _, in := range ifaces {
		if !in.Managed() {
			continue
		}
		wantAttached++
		n, ok := at[int(*in.DeviceIndex)]
		if !ok {
			e.t.Errorf("%s: nothing attached at device index %d", in.Name, *in.DeviceIndex)
			continue
		}
		if n.Attachment.Status != "attached" || !n.Attachment.DeleteOnTermination {
			e.t.Errorf("%s: %s attachment %s, DeleteOnTermination=%t", in.Name, n.ID, n.Attachment.Status, n.Attachment.DeleteOnTermination)
		}
		if n.SubnetID != in.SubnetID || n.Tags[eni.TagNoManage] != "true" || n.Tags[eni.TagInstanceID] != e.inst.ID {
			e.t.Errorf("%s: %s subnet %s tags %v", in.Name, n.ID, n.SubnetID, n.Tags)
		}
		if in.SourceDestCheck != nil && n.SourceDestCheck != *in.SourceDestCheck {
			e.t.Errorf("%s: SourceDestCheck=%t, want %t", in.Name, n.SourceDestCheck, *in.SourceDestCheck)
		}
		if got := len(n.PrivateIPs) - 1; got < int(in.SecondaryIPCount) {
			e.t.Errorf("%s: %d secondary IPs, want %d", in.Name, got, in.SecondaryIPCount)
		}
		if got := len(n.IPv4Prefixes); got != int(in.IPv4PrefixCount) {
			e.t.Errorf("%s: %d /28 prefixes %v, want %d", in.Name, got, n.IPv4Prefixes, in.IPv4PrefixCount)
		}
		rec := st.Interfaces[in.Name]
		if a := rec.ENI; a.ENIID != n.ID || !strings.EqualFold(a.MAC, n.MAC) || a.DeviceIndex != *in.DeviceIndex || a.PrimaryIP.String() != n.PrivateIPs[0] || a.Subnet.String() != e.data.CIDR || a.AttachmentID != n.Attachment.ID {
			e.t.Errorf("%s: state %+v does not match EC2 %s %s %v %s", in.Name, rec, n.ID, n.MAC, n.PrivateIPs, n.Attachment.ID)
		}
		l := e.linkByMAC(n.MAC)
		if l == nil {
			e.t.Errorf("%s: no link with MAC %s in the netns", in.Name, n.MAC)
			continue
		}
		if rec.IfName() != l.Attrs().Name {
			e.t.Errorf("%s: state ifName %q, link is %q", in.Name, rec.IfName(), l.Attrs().Name)
		}
		e.checkLinkReady(in, l)
		data, err := e.root.ReadFile(link.NetworkFile(in.Name))
		if err != nil || !strings.Contains(string(data), "MACAddress="+n.MAC) || !strings.Contains(string(data), "Unmanaged=yes") {
			e.t.Errorf("%s: networkd file: %v\n%s", in.Name, err, data)
		}
	}
	if len(at) != wantAttached+e.ltExtra() {
		ids := []string{}
		for d, n := range at {
			ids = append(ids, fmt.Sprintf("%d:%s", d, n.ID))
		}
		sort.Strings(ids)
		e.t.Errorf("attached ENIs %v, want %d", ids, wantAttached+e.ltExtra())
	}
}

// ltExtra counts launch-template ENIs no interface adopts (none in these tests).
func (e *env) ltExtra() int { return 0 }

func (e *env) checkLinkReady(in api.Interface, l netlink.Link) {
	e.t.Helper()
	a := l.Attrs()
	if in.Driver == api.DriverKernel {
		if a.OperState == netlink.OperDown && a.RawFlags&1 == 0 {
			e.t.Errorf("%s: %s is down", in.Name, a.Name)
		}
		if a.Flags&(1<<0) == 0 { // net.FlagUp
			e.t.Errorf("%s: %s not up (flags %v)", in.Name, a.Name, a.Flags)
		}
		found := a.Alias == in.Name
		for _, n := range a.AltNames {
			found = found || n == in.Name
		}
		if !found {
			e.t.Errorf("%s: %s has altnames %v alias %q, want %s", in.Name, a.Name, a.AltNames, a.Alias, in.Name)
		}
		if in.MTU > 0 && a.MTU != in.MTU {
			e.t.Errorf("%s: MTU %d, want %d", in.Name, a.MTU, in.MTU)
		}
	}
}

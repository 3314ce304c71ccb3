package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// simNode is a node whose ENIs come from the EC2 simulator and whose
// NICs appear in a pcitest sysfs: each attachment hot-plugs an ENA function
// carrying the ENI's MAC, so the bind step finds it as on an instance.
type simNode struct {
	*dpdkFixture
	sim    *ec2sim.Sim
	subnet ec2sim.Subnet
	cloud  *Cloud
}

// newSimNode boots an instance of instanceType; types adds to the
// simulator's instance types.
func newSimNode(t *testing.T, instanceType string, types ...ec2sim.InstanceType) *simNode {
	t.Helper()
	return newSimNodeWith(t, ec2sim.Config{Region: "us-west-2", Seed: 7, InstanceTypes: types}, instanceType)
}

// newSimNodeWith is newSimNode with a simulator configuration of its own.
func newSimNodeWith(t testing.TB, cfg ec2sim.Config, instanceType string) *simNode {
	t.Helper()
	sim := ec2sim.New(cfg)
	t.Cleanup(sim.Close)
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.1.0/24", AvailabilityZone: "us-west-2a"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.4.0/24", AvailabilityZone: "us-west-2a"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: instanceType, SubnetID: primary.ID})
	if err != nil {
		t.Fatal(err)
	}
	n := &simNode{dpdkFixture: newDPDKFixture(t, nil, 8), sim: sim, subnet: data}
	sim.OnAttach(func(ev ec2sim.AttachEvent) error {
		if ev.InstanceID != inst.ID || ev.DeviceIndex == 0 {
			return nil
		}
		n.host.AddNIC(pcitest.NIC{BDF: fmt.Sprintf("0000:00:%02x.0", 0x10+ev.DeviceIndex), Driver: "ena",
			IfName: fmt.Sprintf("ens%d", 0x10+ev.DeviceIndex), MAC: ev.MAC})
		return nil
	})
	ep, err := sim.Serve("127.0.0.1:0", "127.0.0.1:0", inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	id, err := imds.New(ep.IMDSURL).Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n.cloud = &Cloud{EC2: ec2.NewFromConfig(ep.AWSConfig(), eni.ClientOptions("")), Identity: id}
	return n
}

// run drives the production graph through Runner: the ENI, DPDK and
// pod-network steps, with the links step (real netlink) stubbed.
func (n *simNode) run(t *testing.T) {
	t.Helper()
	if err := n.tryRun(t); err != nil {
		t.Fatal(err)
	}
}

func (n *simNode) tryRun(t *testing.T) error {
	t.Helper()
	data := userData(t, n.cfg)
	r := &Runner{
		Host:     n.h,
		Log:      slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) { return data, nil },
		NewCloud: func(context.Context) (*Cloud, error) { return n.cloud, nil },
		Only:     []string{StepENIs, StepHugepages, StepModules, StepBind, StepPodNetworks},
	}
	_, err := r.Run(context.Background())
	if errs := n.sim.HookErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return err
}

// TestDeviceInfoOfABoundManagedENI boots a node with an EC2-managed DPDK
// ENI that asks for pod addresses and checks that the device-info file of
// its PCI device holds exactly what EC2 assigned to that ENI.
func TestDeviceInfoOfABoundManagedENI(t *testing.T) {
	n := newSimNode(t, "c5.4xlarge")
	one, two := int32(1), int32(2)
	n.cfg.Spec.Interfaces = []api.Interface{
		{Name: "n3", SubnetID: n.subnet.ID, DeviceIndex: &one, Driver: api.DriverVFIOPCI, IPv4PrefixCount: 1},
		// An mtu in the config is what the pod learns (e.g. 1300 in a Wavelength Zone).
		{Name: "n6", SubnetID: n.subnet.ID, DeviceIndex: &two, Driver: api.DriverVFIOPCI, SecondaryIPCount: 2, MTU: 1300},
	}
	api.SetDefaults(n.cfg)
	if err := api.Validate(n.cfg); err != nil {
		t.Fatal(err)
	}
	n.run(t)

	files := map[string][]byte{}
	for _, e := range n.sim.ENIs() {
		if e.SubnetID != n.subnet.ID {
			continue
		}
		if e.Attachment == nil {
			t.Fatalf("%s not attached", e.ID)
		}
		name := map[int]string{1: "n3", 2: "n6"}[e.Attachment.DeviceIndex]
		bdf := fmt.Sprintf("0000:00:%02x.0", 0x10+e.Attachment.DeviceIndex)
		if d := n.host.Driver(bdf); d != "vfio-pci" {
			t.Fatalf("%s (%s) on %q, want vfio-pci", bdf, name, d)
		}
		path := devinfo.Dir + "/" + devinfo.FileName(bdf)
		raw, err := n.h.Root.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[path] = raw
		var doc devinfo.Document
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want := devinfo.Document{
			Type: devinfo.TypePCI, Version: devinfo.SpecVersion, PCI: devinfo.PCI{Address: bdf},
			ENI: devinfo.ENI{
				Attachment: eni.Attachment{
					Interface: name, ENIID: e.ID, MAC: e.MAC,
					AttachmentID: e.Attachment.ID, SubnetID: e.SubnetID,
					DeviceIndex: int32(e.Attachment.DeviceIndex), NetworkCardIndex: int32(e.Attachment.NetworkCardIndex),
					PrimaryIP: netip.MustParseAddr(e.PrivateIPs[0]), SecondaryIPs: parseAll(t, e.PrivateIPs[1:], netip.ParseAddr),
					IPv4Prefixes: parseAll(t, e.IPv4Prefixes, netip.ParsePrefix), IPv6Addresses: []netip.Addr{}, IPv6Prefixes: []netip.Prefix{},
					Subnet: netip.MustParsePrefix(n.subnet.CIDR),
				},
				Gateway: netip.MustParsePrefix(n.subnet.CIDR).Addr().Next(),
				MTU:     map[string]int{"n3": devinfo.VPCDefaultMTU, "n6": 1300}[name],
			},
		}
		if got := len(want.ENI.SecondaryIPs) + 16*len(want.ENI.IPv4Prefixes); got != 2 && got != 16 {
			t.Fatalf("the simulator assigned %+v, want 2 secondary addresses or one /28", e)
		}
		if !reflect.DeepEqual(doc, want) {
			t.Errorf("%s:\n%s\nwant %+v", path, raw, want)
		}
	}
	if len(files) != 2 {
		t.Fatalf("device-info files of %d ENIs, want 2", len(files))
	}

	// A re-run changes nothing: same bytes, no mutating EC2 call.
	n.sim.ResetCalls()
	n.run(t)
	for path, raw := range files {
		if again, _ := n.h.Root.ReadFile(path); string(again) != string(raw) {
			t.Errorf("re-run rewrote %s:\n%s", path, again)
		}
	}
	if mutating, _ := n.sim.CallCounts(); mutating != 0 {
		t.Errorf("re-run made %d mutating EC2 calls", mutating)
	}

	// Without n6 in the config, its file goes and n3's stays.
	n.cfg.Spec.Interfaces = n.cfg.Spec.Interfaces[:1]
	n.run(t)
	for path := range files {
		_, err := n.h.Root.ReadFile(path)
		if kept := path == devinfo.Dir+"/0000:00:11.0.json"; kept != (err == nil) {
			t.Errorf("%s: present %v after n6 left the config", path, err == nil)
		}
	}
}

// nonNil is what the document holds for none: [], never null.
// parseAll parses what the simulator holds, sorted, and [] for none.
func parseAll[T interface{ Compare(T) int }](t *testing.T, in []string, parse func(string) (T, error)) []T {
	t.Helper()
	out := []T{}
	for _, v := range in {
		x, err := parse(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b T) int { return a.Compare(b) })
	return out
}

// TestLimitsOfATypeNewerThanAnyTable: the per-ENI limit comes from EC2's
// DescribeInstanceTypes, so an instance type launched after any extracted
// table is checked too, before any change, with one Describe per run (asked
// beside the observation's describes: one round trip for all of them).
func TestLimitsOfATypeNewerThanAnyTable(t *testing.T) {
	n := newSimNode(t, "c9.4xlarge", ec2sim.InstanceType{Name: "c9.4xlarge", MaxENIs: 8, NetworkCards: 1, IPv4PerENI: 10})
	dev := int32(1)
	n.cfg.Spec.Interfaces = []api.Interface{{Name: "media", SubnetID: n.subnet.ID, DeviceIndex: &dev, Driver: api.DriverKernel, SecondaryIPCount: 10}}
	api.SetDefaults(n.cfg)
	if err := api.Validate(n.cfg); err != nil {
		t.Fatal(err)
	}
	err := n.tryRun(t)
	if !errors.Is(err, eni.ErrLimit) || !strings.Contains(err.Error(), "interface media") || !strings.Contains(err.Error(), "the instance type has 10 per ENI") {
		t.Fatalf("run: %v", err)
	}
	var calls []string
	types := 0
	for _, c := range n.sim.Calls() {
		calls = append(calls, c.Action)
		if ec2sim.IsMutating(c.Action) {
			t.Errorf("the config does not fit the type, yet the run called %s", c.Action)
		}
		if c.Action == "DescribeInstanceTypes" {
			types++
		}
	}
	if types != 1 {
		t.Errorf("EC2 calls %v, want one DescribeInstanceTypes", calls)
	}
}

// TestOneDescribeInstanceTypesPerRun: the ENI step's limit check and the
// CNI step's maxPods share one answer.
func TestOneDescribeInstanceTypesPerRun(t *testing.T) {
	n := newSimNode(t, "c5.4xlarge")
	dev, card := int32(1), int32(0)
	n.cfg.Spec.Interfaces = []api.Interface{{Name: "media", SubnetID: n.subnet.ID, DeviceIndex: &dev, NetworkCardIndex: &card, Driver: api.DriverKernel, IPv4PrefixCount: 1}}
	node := &Node{Log: slog.New(slog.DiscardHandler), Config: n.cfg, Cloud: n.cloud}
	if _, err := node.instanceLimits().Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	// c5.4xlarge: 8 ENIs of 30 addresses, one of them nodeprep's.
	if got, err := node.instanceLimits().MaxPods(context.Background(), n.cfg.Spec.Interfaces); got != 7*29+2 || err != nil {
		t.Errorf("maxPods %d (%v), want %d", got, err, 7*29+2)
	}
	if calls := n.sim.Calls(); len(calls) != 1 {
		t.Errorf("%d EC2 calls, want one DescribeInstanceTypes: %v", len(calls), calls)
	}
}

// TestLimitsDelayNoChange: a fresh instance (no limits kept yet) whose
// config asks no pod addresses asks DescribeInstanceTypes beside its
// creates, not before them nor in its first calls: its create goes before
// the limits are answered (it used to wait a round trip for them, about
// 150 ms of a fresh boot's ENI step), and its attach after (the config is
// checked first).
func TestLimitsDelayNoChange(t *testing.T) {
	slow := ec2sim.Latency{Base: 300 * time.Millisecond}
	n := newSimNodeWith(t, ec2sim.Config{Region: "us-west-2", Seed: 7, Timing: ec2sim.Timing{Calls: map[string]ec2sim.Latency{"DescribeInstanceTypes": slow}}}, "c5.4xlarge")
	dev := int32(1)
	n.cfg.Spec.Interfaces = []api.Interface{{Name: "media", SubnetID: n.subnet.ID, DeviceIndex: &dev, Driver: api.DriverKernel}}
	api.SetDefaults(n.cfg)
	if err := api.Validate(n.cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.tryRun(t); err != nil {
		t.Fatal(err)
	}
	first := map[string]time.Time{}
	for _, c := range n.sim.Calls() {
		if _, ok := first[c.Action]; !ok {
			first[c.Action] = c.Time
		}
	}
	types, created, attached := first["DescribeInstanceTypes"], first["CreateNetworkInterface"], first["AttachNetworkInterface"]
	if types.IsZero() || created.IsZero() || attached.IsZero() {
		t.Fatalf("first calls %v: want DescribeInstanceTypes, a create and an attach", first)
	}
	if !created.Before(types.Add(slow.Base)) {
		t.Errorf("the create went %s after DescribeInstanceTypes was sent, once it was answered (%s): one after the other", created.Sub(types), slow.Base)
	}
	if attached.Before(types.Add(slow.Base)) {
		t.Errorf("the attach went %s after DescribeInstanceTypes was sent, before its answer: the config was not checked", attached.Sub(types))
	}
}

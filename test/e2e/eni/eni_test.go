package eni_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// threeInterfaces covers the three address modes, secondary addresses,
// SourceDestCheck, MTU and user tags.
// staticAddr is data3's static address, reserved in the data subnet (newEnv).
const staticAddr = "10.0.2.200"

func threeInterfaces(e *env) []api.Interface {
	a := e.managed("data1", 1, api.PrivateIPDHCP)
	a.SecondaryIPCount = 2
	a.MTU = 9001
	a.Tags = map[string]string{"team": "packet-core"}
	b := e.managed("data2", 2, api.PrivateIPFromStartOfSubnet)
	off := false
	b.SourceDestCheck = &off
	c := e.managed("data3", 3, api.PrivateIPStatic)
	c.PrivateIP.Address = staticAddr
	return []api.Interface{a, b, c}
}

func TestENIsConvergeAndRerunIsNoop(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("%d-ENIs", n), func(t *testing.T) {
			e := newEnv(t, envSpec{})
			ifaces := threeInterfaces(e)[:n]
			res := e.run(context.Background(), ifaces, false)
			if res.err != nil {
				t.Fatalf("run: %v", res.err)
			}
			e.checkConverged(ifaces, res.state)
			if n == 3 {
				joined := strings.Join(res.statuses, "\n")
				for _, want := range []string{"creating ENI 2/3 (data2)", "attaching ENI 3/3 (data3)"} {
					if !strings.Contains(joined, want) {
						t.Errorf("no progress line %q in:\n%s", want, joined)
					}
				}
			}
			if n > 0 {
				first := e.ours()
				if len(first) != n {
					t.Fatalf("%d ENIs of ours, want %d", len(first), n)
				}
				for _, x := range first {
					if x.Tags["team"] != "" && x.Tags[eni.TagInterface] != "data1" {
						t.Errorf("user tag on %s", x.ID)
					}
				}
			}
			e.sim.ResetCalls()
			again := e.run(context.Background(), ifaces, false)
			if again.err != nil {
				t.Fatalf("re-run: %v", again.err)
			}
			if m := e.mutations(); m != 0 {
				t.Errorf("re-run made %d mutating EC2 calls, want 0: %v", m, mutatingCalls(e))
			}
			if c := again.report.Changes(); c != 0 {
				t.Errorf("re-run reported %d changes, want 0: %+v", c, again.report.Steps)
			}
			e.checkConverged(ifaces, again.state)
		})
	}
}

func mutatingCalls(e *env) []string {
	var out []string
	for _, c := range e.sim.Calls() {
		if c.Mutating {
			out = append(out, c.Action+"/"+c.ErrorCode)
		}
	}
	return out
}

func TestFromStartOfSubnetSkipsUsedAndReserved(t *testing.T) {
	e := newEnv(t, envSpec{})
	// .4-.7 explicitly reserved, .8 used by someone else's ENI: the picks
	// come from .9 up (random among the lowest free ones).
	if _, err := e.sim.AddSubnetCidrReservation(e.data.ID, "10.0.2.4/30", "explicit", "appliances"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateNetworkInterface(context.Background(), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.data.ID), PrivateIpAddress: aws.String("10.0.2.8")}); err != nil {
		t.Fatal(err)
	}
	a := e.managed("data1", 1, api.PrivateIPFromStartOfSubnet)
	b := e.managed("data2", 2, api.PrivateIPFromStartOfSubnet)
	e.sim.ResetCalls()
	res := e.run(context.Background(), []api.Interface{a, b}, false)
	if res.err != nil {
		t.Fatal(res.err)
	}
	for _, name := range []string{"data1", "data2"} {
		ip := res.state.Interfaces[name].ENI.PrimaryIP
		if ip.Less(netip.MustParseAddr("10.0.2.9")) || !netip.MustParsePrefix("10.0.2.0/24").Contains(ip) {
			t.Errorf("%s got %s, want an address from 10.0.2.9 up", name, ip)
		}
	}
	if res.state.Interfaces["data1"].ENI.PrimaryIP == res.state.Interfaces["data2"].ENI.PrimaryIP {
		t.Errorf("both interfaces got %s", res.state.Interfaces["data1"].ENI.PrimaryIP)
	}
	for _, c := range e.sim.Calls() {
		if ip := c.Params.Get("PrivateIpAddress"); c.Action == "CreateNetworkInterface" && ip != "" && netip.MustParseAddr(ip).Less(netip.MustParseAddr("10.0.2.9")) {
			t.Errorf("asked for reserved or used address %s", ip)
		}
	}
}

func TestAdoptLaunchTemplateENIs(t *testing.T) {
	// A launch-template ENI's DeleteOnTermination is the launch template's:
	// nodeprep may not change an ENI it did not create under its IAM policy
	// (internal/eni TestAdoptedLaunchTemplateENIWithoutDeleteOnTermination...).
	e := newEnv(t, envSpec{ltENIs: []ec2sim.ENISpec{
		{DeviceIndex: 1, Tags: map[string]string{"from": "launch-template"}, DeleteOnTermination: true},
		{DeviceIndex: 2, DeleteOnTermination: true},
	}})
	ifaces := []api.Interface{e.managed("data1", 1, api.PrivateIPDHCP), e.managed("data2", 2, api.PrivateIPDHCP)}
	before := e.sim.ENIs()
	e.sim.ResetCalls()
	res := e.run(context.Background(), ifaces, false)
	if res.err != nil {
		t.Fatal(res.err)
	}
	e.checkConverged(ifaces, res.state)
	if len(e.sim.ENIs()) != len(before) {
		t.Errorf("%d ENIs after adoption, %d before: adoption must not create", len(e.sim.ENIs()), len(before))
	}
	var tagCalls, creates int
	for _, c := range e.sim.Calls() {
		switch c.Action {
		case "CreateTags":
			tagCalls++
			if c.Params.Get("ResourceId.1") == "" || c.Params.Get("ResourceId.2") == "" {
				t.Errorf("CreateTags did not tag both adopted ENIs at once: %v", c.Params)
			}
		case "CreateNetworkInterface":
			creates++
		}
	}
	if tagCalls != 1 || creates != 0 {
		t.Errorf("CreateTags calls %d (want 1), creates %d (want 0)", tagCalls, creates)
	}
	e.sim.ResetCalls()
	if again := e.run(context.Background(), ifaces, false); again.err != nil || e.mutations() != 0 {
		t.Errorf("re-run: %v, %d mutations %v", again.err, e.mutations(), mutatingCalls(e))
	}
}

// TestCrashAfterEachMutation cuts the run short right after each mutating
// call EC2 applied (its answer never reaches the agent), then re-runs.
func TestCrashAfterEachMutation(t *testing.T) {
	// The launch template states DeleteOnTermination: nodeprep may not
	// change it on an ENI it did not create.
	spec := envSpec{ltENIs: []ec2sim.ENISpec{{DeviceIndex: 4, DeleteOnTermination: true}}}
	config := func(e *env) []api.Interface {
		ifaces := threeInterfaces(e)
		// Pod address capacity asked at create (data2) and as a top-up of
		// the adopted launch-template ENI (data4): a crash after either
		// must neither lose nor double a prefix.
		ifaces[1].IPv4PrefixCount = 1
		data4 := e.managed("data4", 4, api.PrivateIPDHCP)
		data4.IPv4PrefixCount = 1
		return append(ifaces, data4)
	}
	// A clean run tells how many mutating calls there are to crash after.
	clean := newEnv(t, spec)
	if res := clean.run(context.Background(), config(clean), false); res.err != nil {
		t.Fatal(res.err)
	}
	total := clean.mutations()
	if total < 8 {
		t.Fatalf("clean run made only %d mutating calls: %v", total, mutatingCalls(clean))
	}
	for k := 1; k <= total; k++ {
		t.Run(fmt.Sprintf("after-mutation-%d", k), func(t *testing.T) {
			e := newEnv(t, spec)
			ifaces := config(e)
			ctx, cancel := context.WithCancel(context.Background())
			var crashedAfter string
			e.sim.OnMutation(func(action string, n int) {
				if n == k {
					crashedAfter = action
					cancel()
				}
			})
			first := e.run(ctx, ifaces, false)
			cancel()
			if crashedAfter == "" {
				// Retries under load can make the clean run's count larger
				// than this run's: there was no k-th mutation to crash after.
				t.Skipf("this run made fewer than %d mutating calls", k)
			}
			if first.err == nil {
				t.Fatalf("run survived a crash after %s", crashedAfter)
			}
			t.Logf("crashed after %s: %v", crashedAfter, first.err)
			second := e.run(context.Background(), ifaces, false)
			if second.err != nil {
				t.Fatalf("re-run after a crash after %s: %v", crashedAfter, second.err)
			}
			e.checkConverged(ifaces, second.state)
			if n := len(e.ours()); n != 4 {
				t.Errorf("%d ENIs of ours after re-run, want 4 (no duplicate, no leak)", n)
			}
			e.sim.ResetCalls()
			if third := e.run(context.Background(), ifaces, false); third.err != nil || e.mutations() != 0 {
				t.Errorf("third run: %v, mutations %v", third.err, mutatingCalls(e))
			}
		})
	}
}

func wantEC2Error(t *testing.T, err error, iface, call, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s %s %s", iface, call, code)
	}
	var ee *eni.Error
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an *eni.Error", err)
	}
	msg := err.Error()
	for _, s := range []string{"interface " + iface, call, code} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not name %q", msg, s)
		}
	}
	if ee.Interface != iface || ee.Call != call || ee.Code != code {
		t.Errorf("eni.Error{%q %q %q}, want {%q %q %q}", ee.Interface, ee.Call, ee.Code, iface, call, code)
	}
}

func TestSubnetOutOfAddresses(t *testing.T) {
	// A /28 has 11 usable addresses; ask for more than are left.
	e := newEnv(t, envSpec{dataCIDR: "10.0.2.0/28"})
	in := e.managed("data1", 1, api.PrivateIPDHCP)
	in.SecondaryIPCount = 11
	e.sim.ResetCalls()
	res := e.run(context.Background(), []api.Interface{in}, false)
	wantEC2Error(t, res.err, "data1", "CreateNetworkInterface", "InsufficientFreeAddressesInSubnet")
	if n := len(e.ours()); n != 0 {
		t.Errorf("%d ENIs left behind", n)
	}
}

func TestDeviceIndexTaken(t *testing.T) {
	t.Run("by-a-foreign-ENI-in-another-subnet", func(t *testing.T) {
		e := newEnv(t, envSpec{ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1}}})
		e.sim.ResetCalls()
		res := e.run(context.Background(), []api.Interface{{Name: "data1", SubnetID: e.other.ID, DeviceIndex: aws.Int32(1), NetworkCardIndex: aws.Int32(0), PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel}}, false)
		if !errors.Is(res.err, eni.ErrSlotTaken) || !strings.Contains(res.err.Error(), "interface data1") || !strings.Contains(res.err.Error(), "device index 1") {
			t.Fatalf("error %v, want ErrSlotTaken naming data1 and device index 1", res.err)
		}
		if m := e.mutations(); m != 0 {
			t.Errorf("%d mutating calls on a config that cannot fit: %v", m, mutatingCalls(e))
		}
	})
	t.Run("taken-while-creating", func(t *testing.T) {
		e := newEnv(t, envSpec{})
		ctx := context.Background()
		foreign, err := e.client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.other.ID)})
		if err != nil {
			t.Fatal(err)
		}
		foreignID := aws.ToString(foreign.NetworkInterface.NetworkInterfaceId)
		var foreignAttachment string
		e.sim.OnMutation(func(action string, n int) {
			if action == "CreateNetworkInterface" && foreignAttachment == "" {
				out, err := e.client.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{InstanceId: aws.String(e.inst.ID), NetworkInterfaceId: aws.String(foreignID), DeviceIndex: aws.Int32(1)})
				if err != nil {
					t.Errorf("attach foreign ENI: %v", err)
					return
				}
				foreignAttachment = aws.ToString(out.AttachmentId)
			}
		})
		ifaces := []api.Interface{e.managed("data1", 1, api.PrivateIPDHCP)}
		res := e.run(ctx, ifaces, false)
		wantEC2Error(t, res.err, "data1", "AttachNetworkInterface", "InvalidParameterValue")
		if n := len(e.ours()); n != 0 {
			t.Errorf("the ENI created for data1 was not deleted after the failed attach: %d left", n)
		}
		// Free the slot and re-run: the replayed client token points at the
		// deleted ENI, and the reconciler must create a fresh one.
		if _, err := e.client.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(foreignAttachment)}); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		again := e.run(ctx, ifaces, false)
		if again.err != nil {
			t.Fatalf("re-run after the slot was freed: %v", again.err)
		}
		e.checkConverged(ifaces, again.state)
	})
}

func TestThrottlingStorm(t *testing.T) {
	e := newEnv(t, envSpec{})
	e.sim.InjectFault(ec2sim.Fault{Kind: ec2sim.FaultThrottle, Probability: 0.3, Count: 15})
	ifaces := threeInterfaces(e)
	res := e.run(context.Background(), ifaces, false)
	if res.err != nil {
		t.Fatalf("run under throttling: %v", res.err)
	}
	throttled := 0
	for _, c := range e.sim.Calls() {
		if c.ErrorCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no call was throttled: the storm did not happen")
	}
	t.Logf("%d throttled calls, converged in %v", throttled, res.wall.Round(time.Millisecond))
	e.checkConverged(ifaces, res.state)
	if n := len(e.ours()); n != 3 {
		t.Errorf("%d ENIs of ours, want 3", n)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	e := newEnv(t, envSpec{ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1}}})
	ifaces := threeInterfaces(e)
	e.sim.ResetCalls()
	res := e.run(context.Background(), ifaces, true)
	if res.err != nil {
		t.Fatalf("plan: %v", res.err)
	}
	if m := e.mutations(); m != 0 {
		t.Errorf("plan made %d mutating calls: %v", m, mutatingCalls(e))
	}
	var whats []string
	for _, s := range res.report.Steps {
		for _, c := range s.Changes {
			whats = append(whats, c.What)
		}
	}
	joined := strings.Join(whats, "\n")
	for _, want := range []string{"create ENI for data2", "create ENI for data3", "attach the new ENI for data3", "tag adopted ENIs", "SourceDestCheck=false on data2"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan does not say %q:\n%s", want, joined)
		}
	}
	if len(e.ours()) != 0 {
		t.Error("plan created ENIs")
	}
}

func TestUnmanagedInterfaceByMAC(t *testing.T) {
	e := newEnv(t, envSpec{})
	h, err := netlink.NewHandleAt(e.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "npeniu0", HardwareAddr: mac}, PeerName: "npeniu1"}); err != nil {
		t.Fatal(err)
	}
	// rp_filter goes through the host root: give it the procfs file.
	rp := "/proc/sys/net/ipv4/conf/npeniu0/rp_filter"
	if _, err := e.root.WriteFile(rp, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	two := 2
	in := api.Interface{Name: "ext0", MAC: mac.String(), Driver: api.DriverKernel, MTU: 1400, RPFilter: &two}
	e.sim.ResetCalls()
	res := e.run(context.Background(), []api.Interface{in}, false)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if m, n := e.sim.CallCounts(); m+n != 0 {
		t.Errorf("an interface picked by MAC made %d EC2 calls", m+n)
	}
	l := e.linkByMAC(mac.String())
	e.checkLinkReady(in, l)
	if got, _ := e.root.ReadFile(rp); strings.TrimSpace(string(got)) != "2" {
		t.Errorf("rp_filter = %q, want 2", got)
	}
	if rec := res.state.Interfaces["ext0"]; rec.IfName() != "npeniu0" || rec.MAC() != mac.String() {
		t.Errorf("state %+v", rec)
	}
	if data, err := e.root.ReadFile(link.NetworkFile("ext0")); err != nil || !strings.Contains(string(data), "MACAddress="+mac.String()) {
		t.Errorf("networkd file: %v %s", err, data)
	}
	again := e.run(context.Background(), []api.Interface{in}, false)
	if again.err != nil || again.report.Changes() != 0 {
		t.Errorf("re-run: %v, %d changes %+v", again.err, again.report.Changes(), again.report.Steps)
	}
}

// TestNewCloudThroughIMDS builds the cloud the way the agent does: region
// and instance from the simulator's IMDS, EC2 at its endpoint.
func TestNewCloudThroughIMDS(t *testing.T) {
	e := newEnv(t, envSpec{})
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEC2SIMEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ec2sim-secret")
	cloud, err := bootstrap.NewCloud(context.Background(), e.ep.IMDSURL, e.ep.EC2URL)
	if err != nil {
		t.Fatal(err)
	}
	if cloud.Identity.InstanceID != e.inst.ID || cloud.Identity.Region != "us-west-2" {
		t.Errorf("identity %+v", cloud.Identity)
	}
	out, err := cloud.EC2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("DescribeNetworkInterfaces through the cloud's client: %v", err)
	}
}

// TestNodeNICPickedByMACIsRefused: a NIC the node uses (here, one with an
// address) must not be claimed from networkd or touched at all.
func TestNodeNICPickedByMACIsRefused(t *testing.T) {
	e := newEnv(t, envSpec{})
	h, err := netlink.NewHandleAt(e.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac, _ := net.ParseMAC("02:00:5e:10:00:02")
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "npeniu2", HardwareAddr: mac}, PeerName: "npeniu3"}); err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName("npeniu2")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.9.0.5/24")
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	in := api.Interface{Name: "node0", MAC: mac.String(), Driver: api.DriverKernel, MTU: 1400}
	res := e.run(context.Background(), []api.Interface{in}, false)
	if !errors.Is(res.err, pci.ErrInUse) || !strings.Contains(res.err.Error(), "10.9.0.5/24") {
		t.Fatalf("err = %v, want ErrInUse naming the address", res.err)
	}
	if _, err := e.root.ReadFile(link.NetworkFile("node0")); err == nil {
		t.Error("wrote a networkd claim for the node's own NIC")
	}
	if l, _ := h.LinkByName("npeniu2"); l.Attrs().MTU == 1400 {
		t.Error("changed the node's own NIC")
	}
}

// Plan never waits for hardware: an interface picked by MAC whose NIC is not
// there is reported at once, however long a run would wait for it.
func TestPlanDoesNotWaitForAMissingNIC(t *testing.T) {
	e := newEnv(t, envSpec{})
	host := e.host()
	host.LinkDeadline = time.Hour
	in := api.Interface{Name: "ext0", MAC: "02:00:5e:10:00:09", Driver: api.DriverKernel}
	// A bound far below LinkDeadline: a plan that waits for the NIC fails.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res := e.runWith(ctx, host, slog.New(slog.DiscardHandler), &api.NodePrepConfig{Spec: api.Spec{Interfaces: []api.Interface{in}}}, true, bootstrap.StepENIs, bootstrap.StepLinks)
	if res.err != nil {
		t.Fatalf("plan: %v", res.err)
	}
	var whats []string
	for _, s := range res.report.Steps {
		for _, c := range s.Changes {
			whats = append(whats, c.What)
		}
	}
	if joined := strings.Join(whats, "\n"); !strings.Contains(joined, "wait for the NIC of ext0 (02:00:5e:10:00:09)") {
		t.Errorf("plan does not say it would wait for the NIC:\n%s", joined)
	}
}

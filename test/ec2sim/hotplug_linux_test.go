package ec2sim_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// testNetNS creates a named network namespace and removes it at cleanup.
func testNetNS(t *testing.T, suffix string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to create network namespaces")
	}
	name := fmt.Sprintf("ec2sim-%d-%s", os.Getpid(), suffix)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// linksByMAC lists the links of a namespace by MAC address.
func linksByMAC(t *testing.T, ns string) map[string]string {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range links {
		out[l.Attrs().HardwareAddr.String()] = l.Attrs().Name
	}
	return out
}

func TestVethHotplug(t *testing.T) {
	node := testNetNS(t, "node")
	wire := testNetNS(t, "wire")
	e := start(t, setup{instType: "c5.xlarge", ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1, Tags: map[string]string{noManage: "true"}}}})
	hp := &ec2sim.VethHotplug{NetNS: node, PeerNetNS: wire, InstanceID: e.inst.ID}
	if err := hp.Install(e.sim); err != nil {
		t.Fatal(err)
	}
	primary, _ := e.sim.ENI(e.inst.PrimaryENIID)
	links := linksByMAC(t, node)
	if links[primary.MAC] != "ens5" {
		t.Fatalf("primary ENI %s not plugged as ens5: %v", primary.MAC, links)
	}
	if len(links) != 3 { // lo, ens5, ens6
		t.Fatalf("links after install: %v", links)
	}

	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	// With no attach delay the hook has run before the response.
	if name := linksByMAC(t, node)[*ni.MacAddress]; name != "ens8" {
		t.Fatalf("attached ENI %s plugged as %q, want ens8", *ni.MacAddress, name)
	}
	if len(linksByMAC(t, wire)) != 4 { // lo + three peers
		t.Fatalf("peers: %v", linksByMAC(t, wire))
	}
	// Re-running a hook is harmless.
	if err := hp.Attach(ec2sim.AttachEvent{InstanceID: e.inst.ID, ENIID: *ni.NetworkInterfaceId, MAC: *ni.MacAddress, DeviceIndex: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}); err != nil {
		t.Fatal(err)
	}
	if name, ok := linksByMAC(t, node)[*ni.MacAddress]; ok {
		t.Fatalf("detached ENI still plugged as %s", name)
	}
	if errs := e.sim.HookErrors(); len(errs) != 0 {
		t.Fatalf("hook errors: %v", errs)
	}
}

// FaultNICNeverAppears: EC2 attaches the ENI and says so, IMDS lists its
// MAC, but no NIC shows up on the host; the other attaches plug theirs.
func TestNICNeverAppearsFault(t *testing.T) {
	node := testNetNS(t, "nonic")
	e := start(t, setup{instType: "c5.xlarge"})
	hp := &ec2sim.VethHotplug{NetNS: node, InstanceID: e.inst.ID, SkipPrimary: true}
	if err := hp.Install(e.sim); err != nil {
		t.Fatal(err)
	}
	id := e.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultNICNeverAppears, Param: "DeviceIndex", Value: "2"})
	var macs []string
	for _, dev := range []int32{1, 2} {
		ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
		if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(dev)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.sim.ENI(*ni.NetworkInterfaceId); got.Attachment == nil || got.Attachment.Status != "attached" {
			t.Fatalf("device index %d: attachment %+v, want attached", dev, got.Attachment)
		}
		macs = append(macs, *ni.MacAddress)
	}
	links := linksByMAC(t, node)
	if _, ok := links[macs[0]]; !ok {
		t.Errorf("the NIC at device index 1 (%s) was not plugged: %v", macs[0], links)
	}
	if name, ok := links[macs[1]]; ok {
		t.Errorf("the NIC at device index 2 (%s) appeared as %s under FaultNICNeverAppears", macs[1], name)
	}
	if n := e.sim.FaultHits(id); n != 1 {
		t.Errorf("fault hit %d times, want once (the attach at device index 2)", n)
	}
}

package doctor

import (
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/internal/api"
)

// The link check through netlink, in a fresh network namespace: a veth
// stands in for the ENI's netdev (dummy links do not exist here).
func TestLinkCheckThroughNetlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth2", MTU: 9001}, PeerName: "eth2p"}); err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName("eth2")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkAddAltName(l, "n2"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.node.Links = NetlinkLinks{Handle: h}
	check := []Check{{Name: "link", Run: checkLinks}}
	fs := Run(context.Background(), f.node, check).Findings
	if len(fs) != 1 || fs[0].Verdict != OK || !strings.Contains(fs[0].Evidence, "altname n2, MTU 9001") {
		t.Fatalf("healthy: %+v", fs)
	}
	// Something (networkd, ec2-net-utils) gives the ENI a host address.
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.0.4.10"), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	fs = Run(context.Background(), f.node, check).Findings
	if len(fs) != 1 || fs[0].Verdict != Fail || !strings.Contains(fs[0].Evidence, "host addresses 10.0.4.10/24") {
		t.Fatalf("with an address: %+v", fs)
	}
	t.Logf("%s  %s  %s  %s", fs[0].Verdict, fs[0].Check, fs[0].Subject, fs[0].Evidence)
}

// A hostDevice ENI a pod holds is gone from the host's namespace by design:
// the link check says so instead of failing, while the same absence of an
// ipvlan ENI's link still fails.
func TestLinkCheckWholeENIInAPod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // no eth2 in it: a pod holds the ENI
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f := newFixture(t)
	f.node.Links = NetlinkLinks{Handle: h}
	check := []Check{{Name: "link", Run: checkLinks}}
	if fs := Run(context.Background(), f.node, check).Findings; len(fs) != 1 || fs[0].Verdict != Fail {
		t.Fatalf("ipvlan ENI without its link: %+v, want a failure", fs)
	}
	for i := range f.node.Config.Spec.Interfaces {
		if f.node.Config.Spec.Interfaces[i].Name == "n2" {
			f.node.Config.Spec.Interfaces[i].PodAttachment = api.PodAttachmentHostDevice
		}
	}
	fs := Run(context.Background(), f.node, check).Findings
	if len(fs) != 1 || fs[0].Verdict != OK || !strings.Contains(fs[0].Evidence, "eth2 is in a pod") {
		t.Fatalf("whole ENI in a pod: %+v", fs)
	}
	t.Logf("%s  %s  %s  %s", fs[0].Verdict, fs[0].Check, fs[0].Subject, fs[0].Evidence)
}

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

package link_test

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/internal/link"
)

// inNetns runs fn on a locked thread inside a fresh network namespace,
// which disappears with its links when the thread leaves it.
func inNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
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
		t.Skipf("cannot create a network namespace: %v", err)
	}
	defer ns.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v", err)
		}
	}()
	fn()
}

func addDummy(t *testing.T, name string) netlink.Link {
	t.Helper()
	// veth, not dummy: kernels without the dummy module have it.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Skipf("cannot create a veth link: %v", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNICUsage(t *testing.T) {
	inNetns(t, func() {
		ctx := context.Background()
		primary := addDummy(t, "pcitest0")
		addr, _ := netlink.ParseAddr("192.0.2.10/24")
		if err := netlink.AddrAdd(primary, addr); err != nil {
			t.Fatal(err)
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: primary.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}); err != nil {
			t.Fatal(err)
		}
		// A secondary ENI as amazon-ec2-net-utils sets it up: its default
		// route lives in its own policy routing table.
		policy := addDummy(t, "pcitest1")
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: policy.Attrs().Index, Scope: netlink.SCOPE_LINK, Table: 10001,
			Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}); err != nil {
			t.Fatal(err)
		}
		free := addDummy(t, "pcitest2")
		_ = free

		var l link.NICUsage
		u, err := l.Usage(ctx, "pcitest0")
		if err != nil || !u.DefaultRoute || len(u.Addresses) != 1 || u.Addresses[0] != "192.0.2.10/24" {
			t.Errorf("pcitest0: %+v, %v", u, err)
		}
		if u, err := l.Usage(ctx, "pcitest1"); err != nil || !u.DefaultRoute || len(u.Addresses) != 0 {
			t.Errorf("pcitest1 (default route in table 10001): %+v, %v", u, err)
		}
		if u, err := l.Usage(ctx, "pcitest2"); err != nil || u.InUse() {
			t.Errorf("pcitest2 (unused; IPv6 link-local only): %+v, %v", u, err)
		}
		if err := l.SetDown(ctx, "pcitest2"); err != nil {
			t.Fatal(err)
		}
		if got, _ := netlink.LinkByName("pcitest2"); got.Attrs().Flags&net.FlagUp != 0 {
			t.Error("pcitest2 still up")
		}
		if _, err := l.Usage(ctx, "pcitest-none"); err == nil {
			t.Error("no error for a missing link")
		}
	})
}

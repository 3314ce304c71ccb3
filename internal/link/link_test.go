package link_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/link"
)

type countingReloader struct{ n int }

func (r *countingReloader) Reload(context.Context) error { r.n++; return nil }

// The claim file must win over every file that would otherwise configure
// an ENI: networkd takes the first match in file-name order.
func TestNetworkFileSortsFirst(t *testing.T) {
	ours := filepath.Base(link.NetworkFile("data1"))
	names := []string{
		"70-eks-ens6.network", // nodeadm udev-net-manager, /run/systemd/network
		"70-ens6.network",     // amazon-ec2-net-utils, /run/systemd/network
		"80-ec2.network",      // amazon-ec2-net-utils, /usr/lib/systemd/network
		"99-default.network",
		ours,
	}
	sort.Strings(names)
	if names[0] != ours {
		t.Errorf("%s does not sort first: %v", ours, names)
	}
}

func TestClaimWritesOnceAndReloads(t *testing.T) {
	root := hostfs.New(t.TempDir())
	rl := &countingReloader{}
	m := &link.Manager{Root: root, Reloader: rl}
	d := &changetest.Actions{}
	ctx := context.Background()
	if err := m.Claim(ctx, d, "data1", "0A:1B:2C:3D:4E:5F"); err != nil {
		t.Fatal(err)
	}
	got, err := root.ReadFile(link.NetworkFile("data1"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by nodeprep: data1 is a Multus interface, not for the host.\n[Match]\nMACAddress=0a:1b:2c:3d:4e:5f\n\n[Link]\nUnmanaged=yes\n"
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	if err := m.Claim(ctx, d, "data1", "0a:1b:2c:3d:4e:5f"); err != nil {
		t.Fatal(err)
	}
	if len(d.Changes()) != 1 || rl.n != 1 {
		t.Errorf("changes %v, reloads %d: the second claim must be a no-op", d.Changes(), rl.n)
	}
	if err := m.Claim(ctx, d, "data1", "not-a-mac"); err == nil {
		t.Error("bad MAC accepted")
	}
}

func testNS(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	name := fmt.Sprintf("nplink-%d-%04x", os.Getpid(), rand.IntN(0xffff))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func TestWaitForMACSeesALinkThatAppearsLater(t *testing.T) {
	ns := testNS(t)
	m := &link.Manager{Root: hostfs.New(t.TempDir()), NetNS: &ns}
	mac, _ := net.ParseMAC("02:00:5e:20:00:07")
	found := make(chan netlink.Link, 1)
	errc := make(chan error, 1)
	go func() {
		l, err := m.WaitForMAC(context.Background(), mac.String())
		errc <- err
		found <- l
	}()
	select {
	case err := <-errc:
		t.Fatalf("returned before the link existed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// NETLINK_ROUTE only, as the package's own handles: without a family
	// NewHandleAt also opens XFRM and NETFILTER sockets, which qemu's user
	// mode (make test-arm64) refuses with EPROTONOSUPPORT.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nplinka", HardwareAddr: mac}, PeerName: "nplinkb"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
		if l := <-found; l.Attrs().Name != "nplinka" {
			t.Errorf("found %s", l.Attrs().Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new link was not seen")
	}
	// Existing links are found too, by waiting and by looking.
	if _, err := m.WaitForMAC(context.Background(), mac.String()); err != nil {
		t.Fatal(err)
	}
	if l, ok, err := m.LinkByMAC(mac.String()); err != nil || !ok || l.Attrs().Name != "nplinka" {
		t.Errorf("LinkByMAC: %v %v %v", l, ok, err)
	}
	if _, ok, err := m.LinkByMAC("02:00:5e:20:00:99"); err != nil || ok {
		t.Errorf("LinkByMAC of a missing NIC: %v %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.WaitForMAC(ctx, "02:00:5e:20:00:99"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("missing NIC: %v, want a deadline error", err)
	}
}

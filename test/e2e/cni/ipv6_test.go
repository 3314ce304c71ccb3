package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// TestIPv6DefaultRouteViaTheVPCRouter runs a dual-stack ENI's conflist IPAM
// through the real host-local, which must return the pod's IPv6 default
// route via the VPC router's link-local address (host-local refuses that
// address as a range gateway), and then puts that very result on a link in
// a pod netns with the real plugins' ConfigureIface: host-device calls the
// same pkg/ipam.ConfigureIface as ipvlan, and this kernel has no ipvlan
// (the VM bed's test runs ipvlan itself). The kernel must take the
// link-local gateway on the pod's link, beside the IPv4 address and no
// IPv4 default route (the pod's primary network keeps that).
func TestIPv6DefaultRouteViaTheVPCRouter(t *testing.T) {
	requireRoot(t)
	built := bundleDir(t)
	e := mediaNetwork(eni.Attachment{
		Subnet:        netip.MustParsePrefix("10.0.16.0/20"),
		PrimaryIP:     netip.MustParseAddr("10.0.18.35"),
		SecondaryIPs:  []netip.Addr{netip.MustParseAddr("10.0.17.200")},
		IPv6Subnet:    netip.MustParsePrefix("2600:1f14:abc:de00::/64"),
		IPv6Addresses: []netip.Addr{netip.MustParseAddr("2600:1f14:abc:de00::5")},
	})
	conflist, err := netconf.Build(e, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP("fe80:ec2::1")

	// host-local alone: the route is in its result, gw and all.
	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-v6%d", prefix, os.Getpid()))
	stdin := pluginConfig(t, conflist, t.TempDir())
	ctx := context.Background()
	args := &invoke.Args{Command: "ADD", ContainerID: "v6pod", NetNS: nsPath, IfName: "net1", Path: built}
	raw, err := invoke.ExecPluginWithResult(ctx, filepath.Join(built, "host-local"), stdin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := current.NewResultFromResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 2 || r.IPs[1].Address.IP.String() != "2600:1f14:abc:de00::5" {
		t.Fatalf("host-local IPs = %v, want the ENI's IPv4 and IPv6 pod addresses", r.IPs)
	}
	var v6default *net.IPNet
	for _, rt := range r.Routes {
		if rt.Dst.String() == "::/0" && rt.GW.Equal(gw) && rt.Priority == 1025 {
			v6default = &rt.Dst
		}
		if rt.Dst.IP.To4() != nil {
			t.Errorf("host-local route %v: an IPv4 route on a Multus network", rt)
		}
	}
	if v6default == nil {
		t.Fatalf("host-local routes = %v, want ::/0 via %s metric 1025", r.Routes, gw)
	}
	args.Command = "DEL"
	if err := invoke.ExecPluginWithoutResult(ctx, filepath.Join(built, "host-local"), stdin, args, nil); err != nil {
		t.Fatal(err)
	}

	// The same IPAM under host-device: ConfigureIface in the pod netns.
	// A veth end stands for the ENI (this kernel has no dummy either).
	dev := fmt.Sprintf("%sv6d", prefix)
	addVeth(t, dev, dev+"p")
	var p map[string]any
	if err := json.Unmarshal(stdin, &p); err != nil {
		t.Fatal(err)
	}
	p["type"], p["device"] = "host-device", dev
	delete(p, "master")
	delete(p, "mode")
	hd, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	args.Command = "ADD"
	if _, err := invoke.ExecPluginWithResult(ctx, filepath.Join(built, "host-device"), hd, args, nil); err != nil {
		t.Fatalf("host-device ADD with the conflist's IPAM: %v", err)
	}
	t.Cleanup(func() {
		args.Command = "DEL"
		_ = invoke.ExecPluginWithoutResult(ctx, filepath.Join(built, "host-device"), hd, args, nil)
	})
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("net1")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := h.RouteList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rt := range routes {
		isDefault := rt.Dst == nil || (rt.Dst.IP.IsUnspecified() && ones(rt.Dst) == 0)
		if isDefault && rt.Family == unix.AF_INET {
			t.Errorf("pod route %v: an IPv4 default on the Multus network", rt)
		}
		if isDefault && rt.Family == unix.AF_INET6 && rt.Gw.Equal(gw) && rt.Priority == 1025 {
			found = true
		}
	}
	if !found {
		t.Errorf("pod routes on net1 = %v, want default via %s dev net1 metric 1025", routes, gw)
	}
}

func ones(n *net.IPNet) int { o, _ := n.Mask.Size(); return o }

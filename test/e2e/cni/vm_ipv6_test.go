package cni

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/vm"
)

// TestVMIpvlanIPv6PodRoutesViaTheVPCRouter runs an IPv6 pod on ipvlan for
// real: the simulator gives the ENI an IPv6 address in its subnet's /64,
// nodeprep writes the node-local conflist, and the real ipvlan and
// host-local plugins (through libcni, as Multus delegates) put the address
// in the pod's netns with a default route via the VPC router fe80:ec2::1 on
// the pod's own link. The address must be one the simulator routes to the
// ENI. (The router address is a VPC constant, so the simulator models it by
// having nothing to model: no per-subnet router address exists to learn.)
func TestVMIpvlanIPv6PodRoutesViaTheVPCRouter(t *testing.T) {
	if vm.InGuest() {
		guestIpvlanIPv6(t)
		return
	}
	runMultusInGuest(t, []string{"ipvlan", "host-local"},
		[]vm.NIC{{MAC: vmENIMAC}}, "eni", "pod.address", "pod.routes")
}

func guestIpvlanIPv6(t *testing.T) {
	ctx := context.Background()
	if err := run("modprobe", "ipvlan"); err != nil {
		t.Fatal(err)
	}
	sim, data, inst, client := simNode(t, 7, ec2sim.SubnetSpec{CIDR: "10.0.16.0/24", IPv6CIDR: "2600:1f14:abc:de00::/64"})
	dev, card := int32(1), int32(0)
	iface := api.Interface{Name: "media", SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card, PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, IPv6AddressCount: 1}
	results, err := (&eni.Reconciler{EC2: client, InstanceID: inst.ID}).Reconcile(ctx, &changetest.Actions{}, []api.Interface{iface})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	vm.Mark("eni", fmt.Sprintf("%s ipv6 %v in %s", r.ENIID, r.IPv6Addresses, r.IPv6Subnet))
	if len(r.IPv6Addresses) != 1 {
		t.Fatalf("ENI IPv6 addresses %v, want 1", r.IPv6Addresses)
	}

	nic := linkByMAC(t, vmENIMAC)
	if err := netlink.LinkAddAltName(nic, "media"); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		t.Fatal(err)
	}
	confDir := t.TempDir()
	if _, err := netconf.Write(hostfs.New("/"), confDir, []netconf.Network{{Config: iface, Attachment: r}}, netconf.Options{}); err != nil {
		t.Fatal(err)
	}
	data6, err := os.ReadFile(filepath.Join(confDir, netconf.FileName("media")))
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data6)
	if err != nil {
		t.Fatal(err)
	}
	nsPath, ns := newNetNS(t, "vmpod6")
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{guestBinDir}, t.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: "vmpod6", NetNS: nsPath, IfName: "net1"}
	if _, err := cniConfig.AddNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("ipvlan ADD: %v", err)
	}
	t.Cleanup(func() { _ = cniConfig.DelNetworkList(ctx, list, rt) })

	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("net1")
	if err != nil {
		t.Fatal(err)
	}
	if l.Type() != "ipvlan" || l.Attrs().ParentIndex != nic.Attrs().Index {
		t.Errorf("net1 is %s on link %d, want ipvlan on the ENI's NIC %d", l.Type(), l.Attrs().ParentIndex, nic.Attrs().Index)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	var pod netip.Addr
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.IsGlobalUnicast() {
			pod = ip
		}
	}
	vm.Mark("pod.address", pod.String())
	if route, ok := sim.RouteTo(pod); !ok || route.ENIID != r.ENIID {
		t.Errorf("pod address %s: the VPC routes it to %+v (%v), want %s", pod, route, ok, r.ENIID)
	}
	// The guest's ip is BusyBox's (no -n, no IPv6 route listing), so the
	// routes are listed from netlink in ip -6 route's words.
	routes, err := h.RouteList(l, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	var found bool
	for _, rt := range routes {
		dst := "default"
		if rt.Dst != nil && ones(rt.Dst) != 0 {
			dst = rt.Dst.String()
		}
		line := dst
		if rt.Gw != nil {
			line += " via " + rt.Gw.String()
		}
		shown = append(shown, fmt.Sprintf("%s dev net1 metric %d", line, rt.Priority))
		if dst == "default" && rt.Gw.Equal(net.ParseIP("fe80:ec2::1")) {
			found = true
		}
	}
	vm.Mark("pod.routes", strings.Join(shown, "; "))
	if !found {
		t.Errorf("pod IPv6 routes: %s; want default via fe80:ec2::1 dev net1", strings.Join(shown, "; "))
	}
}

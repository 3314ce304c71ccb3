package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// TestWholeENIPodTakesTheENIAndGivesItBack runs a hostDevice interface's
// conflist, as netconf builds it from the ENI the EC2 simulator attached,
// through libcni with the bundle's real host-device and static plugins. A
// veth end with the ENI's MAC, its MTU (9001) and its logical name as an
// altname (as the links step leaves it) stands in for the ENI. ADD must move
// that very link into the pod with the ENI's EC2 primary address on the
// subnet's prefix, keep its MTU, and add a default route via the VPC router
// that stays behind the pod's eth0; EC2 must route that address to that ENI.
// DEL must give the link back to the host under its own name, with its
// altname and MTU and without the address. A second pod on the NAD fails
// ADD, and its DEL, like a repeated DEL, succeeds.
func TestWholeENIPodTakesTheENIAndGivesItBack(t *testing.T) {
	requireRoot(t)
	binDir := installBundle(t, bundleDir(t))
	ctx := context.Background()

	in, att, sim, instID := wholeENIOnHost(t, prefix+"wn0", prefix+"wn1")
	hostName := prefix + "wn0"
	if r, ok := sim.RouteTo(att.PrimaryIP); !ok || r.ENIID != att.ENIID || r.InstanceID != instID {
		t.Fatalf("EC2 routes %s to %+v, want ENI %s on %s", att.PrimaryIP, r, att.ENIID, instID)
	}

	// The pod: eth0 stands in for the VPC CNI's, with its default route.
	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-we%d", prefix, os.Getpid()))
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	clusterGW := podEth0(t, h, ns)

	conflist, err := netconf.Build(netconf.Network{Config: in, Attachment: att}, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		t.Fatalf("libcni: %v\n%s", err, conflist)
	}
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: prefix + "-wholeeni", NetNS: nsPath, IfName: "net1"}
	res, err := cniConfig.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatalf("ADD: %v\n%s", err, conflist)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	resJSON, _ := json.Marshal(res)
	t.Logf("conflist:\n%s", conflist)
	t.Logf("CNI result: %s", resJSON)

	wantAddr := netip.PrefixFrom(att.PrimaryIP, att.Subnet.Bits()).String()
	if len(cur.IPs) != 1 || cur.IPs[0].Address.String() != wantAddr || cur.IPs[0].Gateway.String() != att.Gateway().String() {
		t.Errorf("result IPs %v, want %s via %s", cur.IPs, wantAddr, att.Gateway())
	}
	if len(cur.Interfaces) != 1 || cur.Interfaces[0].Mac != att.MAC || cur.Interfaces[0].Sandbox != nsPath {
		t.Errorf("result interfaces %+v, want net1 %s in %s", cur.Interfaces, att.MAC, nsPath)
	}
	if _, err := netlink.LinkByName(hostName); err == nil {
		t.Errorf("%s still on the host after ADD", hostName)
	}
	l, addrs, err := linkInNS(t, ns, "net1")
	if err != nil {
		t.Fatalf("net1 not in the pod: %v", err)
	}
	if l.Attrs().HardwareAddr.String() != att.MAC || l.Attrs().MTU != 9001 {
		t.Errorf("net1 is %s mtu %d, want the ENI's link %s with its mtu 9001", l.Attrs().HardwareAddr, l.Attrs().MTU, att.MAC)
	}
	if !slices.Equal(addrs, []string{wantAddr}) {
		t.Errorf("net1 addresses %v, want the ENI's primary %s", addrs, wantAddr)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Error("net1 is down")
	}
	routes, err := h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def *netlink.Route
	for i, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			def = &routes[i]
		}
	}
	if def == nil || def.Gw.String() != att.Gateway().String() || def.Priority != netconf.HostDeviceRouteMetric {
		t.Errorf("net1 routes %v, want a default via %s at metric %d", routes, att.Gateway(), netconf.HostDeviceRouteMetric)
	}
	// The pod's cluster traffic keeps eth0; the ENI's subnet is on net1.
	for dst, want := range map[string]string{"8.8.8.8": "eth0", "10.0.40.5": "net1"} {
		got, err := h.RouteGet(net.ParseIP(dst))
		if err != nil || len(got) == 0 {
			t.Fatalf("route to %s: %v", dst, err)
		}
		out, err := h.LinkByIndex(got[0].LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		if out.Attrs().Name != want {
			t.Errorf("the pod reaches %s through %s (via %s), want %s (eth0's gateway %s)", dst, out.Attrs().Name, got[0].Gw, want, clusterGW)
		}
	}

	// One ENI, one pod: a second pod on the NAD finds no such link.
	otherNS, _ := newNetNS(t, fmt.Sprintf("%s-wo%d", prefix, os.Getpid()))
	other := &libcni.RuntimeConf{ContainerID: prefix + "-wholeeni-2", NetNS: otherNS, IfName: "net1"}
	if _, err := cniConfig.AddNetworkList(ctx, list, other); err == nil || !strings.Contains(err.Error(), "failed to find host device") {
		t.Errorf("second pod's ADD: %v, want host-device's failed to find host device", err)
	} else {
		t.Logf("second pod's ADD: %v", err)
	}
	// Its sandbox's teardown: nothing to give back, and DEL must say so
	// (host-device's own DEL fails here: "failed to find "net1" in
	// containerNS"), or the teardown fails forever.
	if err := cniConfig.DelNetworkList(ctx, list, other); err != nil {
		t.Errorf("second pod's DEL: %v", err)
	}
	if err := cniConfig.DelNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, _, err := linkInNS(t, ns, "net1"); err == nil {
		t.Error("net1 still in the pod after DEL")
	}
	if err := cniConfig.DelNetworkList(ctx, list, rt); err != nil {
		t.Errorf("repeated DEL: %v", err)
	}
	back, err := netlink.LinkByName(hostName)
	if err != nil {
		t.Fatalf("the ENI's link is not back on the host as %s: %v", hostName, err)
	}
	v4, err := netlink.AddrList(back, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if back.Attrs().HardwareAddr.String() != att.MAC || back.Attrs().MTU != 9001 || len(v4) != 0 || !slices.Contains(back.Attrs().AltNames, in.Name) {
		t.Errorf("back on the host: %s mac %s mtu %d altnames %v addresses %v; want mac %s, mtu 9001, altname %s, no address",
			back.Attrs().Name, back.Attrs().HardwareAddr, back.Attrs().MTU, back.Attrs().AltNames, v4, att.MAC, in.Name)
	}
	if back.Attrs().Alias != "" {
		t.Errorf("alias %q left on the returned link", back.Attrs().Alias)
	}
	t.Logf("returned: %s mac %s mtu %d altnames %v up %v", back.Attrs().Name, back.Attrs().HardwareAddr, back.Attrs().MTU, back.Attrs().AltNames, back.Attrs().Flags&net.FlagUp != 0)
}

// podEth0 gives the pod an eth0 with a default route at metric 0, as the
// VPC CNI's, and returns its gateway.
func podEth0(t *testing.T, h *netlink.Handle, ns netns.NsHandle) net.IP {
	t.Helper()
	addVeth(t, prefix+"we0", prefix+"we1")
	peer, err := netlink.LinkByName(prefix + "we1")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		t.Fatal(err)
	}
	eth0, err := h.LinkByName(prefix + "we1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetName(eth0, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.50/24")
	if err := h.AddrAdd(eth0, addr); err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP("192.0.2.1")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
		t.Fatal(err)
	}
	return gw
}

// wholeENIOnHost has the EC2 simulator create and attach the ENI of a
// hostDevice interface, as the enis step does, and makes its link on the
// host as the links step leaves it: a veth end with the ENI's MAC, the
// interface's MTU (9001) and its logical name as an altname.
func wholeENIOnHost(t *testing.T, hostName, peer string) (api.Interface, eni.Attachment, *ec2sim.Sim, string) {
	t.Helper()
	ctx := context.Background()
	sim, data, inst, client := simNode(t, 19, ec2sim.SubnetSpec{CIDR: "10.0.32.0/20"})
	dev, card := int32(1), int32(0)
	in := api.Interface{Name: prefix + "-upf", SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card,
		PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, PodAttachment: api.PodAttachmentHostDevice, MTU: 9001}
	results, err := (&eni.Reconciler{EC2: client, InstanceID: inst.ID}).Reconcile(ctx, &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	att := results[0]
	link := addVeth(t, hostName, peer)
	mac, err := net.ParseMAC(att.MAC)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetMTU(link, in.MTU); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkAddAltName(link, in.Name); err != nil {
		t.Fatal(err)
	}
	return in, att, sim, inst.ID
}

// TestMultusWholeENIPodNetworkStatus: the real Multus thin plugin resolves
// a config-less NAD (as `nodeprep render nad` writes it for a hostDevice
// interface) from the conflist nodeprep's writer puts in its confDir, runs
// host-device and static, and writes a network-status whose entry for the
// NAD carries the ENI's EC2 primary address and MAC; Multus's DEL gives the
// ENI back to the host.
func TestMultusWholeENIPodNetworkStatus(t *testing.T) {
	requireRoot(t)
	binDir := installBundle(t, bundleDir(t))
	tmp := t.TempDir()
	for _, dir := range []string{"/var/lib/cni", "/var/lib/cni/multus"} {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			break
		}
	}
	addVeth(t, prefix+"wc0", prefix+"wc1")
	in, att, sim, instID := wholeENIOnHost(t, prefix+"wm0", prefix+"wm1")
	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-wm%d", prefix, os.Getpid()))
	kube, cfg, confDir := multusNode(t, tmp, binDir, "macvlan", prefix+"wc0")

	cfg.Spec.Interfaces = []api.Interface{in}
	nads := nad.Build(cfg, nad.Options{Namespace: "default"})
	if len(nads) != 1 || nads[0].Metadata.Name != in.Name || nads[0].Spec.Config != "" || nads[0].Metadata.Annotations != nil {
		t.Fatalf("rendered NADs %+v, want one config-less NAD for %s", nads, in.Name)
	}
	if _, err := netconf.Write(hostfs.New("/"), cfg.Spec.Multus.NetworkConfDir, []netconf.Network{{Config: in, Attachment: att}}, netconf.Options{}); err != nil {
		t.Fatal(err)
	}
	kube.nad, kube.pod = configLessNAD(in.Name), mpod(in.Name)

	conf := multusConf(t, confDir)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	rt := podRuntime(prefix+"-wholeeni-multus", nsPath)
	ctx := context.Background()
	if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus ADD: %v", err)
	}
	t.Cleanup(func() { _ = cniConfig.DelNetwork(context.Background(), conf, rt) })
	kube.mu.Lock()
	status := strings.Join(kube.status, "\n")
	kube.mu.Unlock()
	annotation := networkStatusJSON.FindString(status)
	t.Logf("network-status: %s", annotation)
	var entries []struct {
		Name      string   `json:"name"`
		Interface string   `json:"interface"`
		IPs       []string `json:"ips"`
		MAC       string   `json:"mac"`
	}
	if err := json.Unmarshal([]byte(annotation), &entries); err != nil {
		t.Fatalf("network-status %q: %v", status, err)
	}
	var found bool
	for _, e := range entries {
		if e.Name != "default/"+in.Name {
			continue
		}
		found = true
		if !slices.Equal(e.IPs, []string{att.PrimaryIP.String()}) || e.MAC != att.MAC || e.Interface != "net1" {
			t.Errorf("entry %+v, want net1 with the ENI's %s and %s", e, att.PrimaryIP, att.MAC)
		}
		if r, ok := sim.RouteTo(att.PrimaryIP); !ok || r.ENIID != att.ENIID || r.InstanceID != instID {
			t.Errorf("the VPC routes %s to %+v, want %s on %s", att.PrimaryIP, r, att.ENIID, instID)
		}
	}
	if !found {
		t.Fatalf("no network-status entry for default/%s: %s", in.Name, annotation)
	}
	if l, _, err := linkInNS(t, ns, "net1"); err != nil || l.Attrs().HardwareAddr.String() != att.MAC {
		t.Fatalf("net1 in the pod: %v", err)
	}
	if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus DEL: %v", err)
	}
	if back, err := netlink.LinkByName(prefix + "wm0"); err != nil || back.Attrs().HardwareAddr.String() != att.MAC {
		t.Fatalf("the ENI is not back on the host after Multus's DEL: %v", err)
	}
}

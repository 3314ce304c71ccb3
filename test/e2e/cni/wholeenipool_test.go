package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// TestWholeENIPoolGivesEachPodItsOwnENI runs a whole-ENI pool's one
// conflist, as netconf builds it, through libcni with the bundle's real
// nodeprep-ipam and host-device, for two pods allocated two devices of the
// pool. Two veth ends with the EC2 simulator's ENIs' MACs, MTU 9001 and
// altnames stand in for the ENIs. Multus's part is played as Multus v4
// does it for a NAD with a resourceName: the allocated PCI address as
// deviceID and pciBusID in each plugin entry (addDeviceIDInConfList) and
// as the deviceID capability arg. Each pod must get its own device's link
// with its own ENI's EC2 primary address (from the device-info file
// nodeprep writes for that PCI address, devinfo's own code), the VPC router
// as gateway and the default route at metric 1000; EC2 must route each
// address to that ENI. A pod without the resource request fails ADD naming
// it and its DEL succeeds; DEL gives each link back, and a repeated DEL
// succeeds.
//
// Not covered here: a veth has no PCI function, so host-device's lookup of
// the netdev under /sys/bus/pci/devices/<addr>/net and of its driver runs
// against a stand-in tree bind-mounted over /sys/bus/pci/devices in
// host-device's own mount namespace (a wrapper in the bin dir), not the
// kernel's sysfs; and the device plugin's allocation and Multus itself are
// played, not run (the SR-IOV device plugin's selection is judged by
// test/judges/sriovdp).
func TestWholeENIPoolGivesEachPodItsOwnENI(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is needed for host-device's stand-in sysfs")
	}
	bundleBin := installBundle(t, bundleDir(t))
	ctx := context.Background()
	tmp := t.TempDir()

	members, atts, sim, instID := poolENIsOnHost(t)
	pciAddrs := []string{"0000:00:08.0", "0000:00:09.0"}
	hostNames := []string{prefix + "pa0", prefix + "pb0"}
	binDir := pciStandIn(t, bundleBin, filepath.Join(tmp, "pci"), pciAddrs, hostNames)

	cfg := &api.NodePrepConfig{Spec: api.Spec{Interfaces: members, DevicePlugin: api.DevicePlugin{ResourcePrefix: "amazon.com"}}}
	resource := nad.ResourceName(cfg, members[0])
	var devices []devinfo.Device
	for i := range members {
		devices = append(devices, devinfo.Device{PCIAddress: pciAddrs[i], Network: netconf.Network{Config: members[i], Attachment: atts[i], Resource: resource}})
	}
	if _, err := devinfo.Write(hostfs.New(tmp), "/devinfo", devices); err != nil {
		t.Fatal(err)
	}
	conflist, err := netconf.Build(devices[0].Network, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if other, _ := netconf.Build(devices[1].Network, netconf.Options{}); string(other) != string(conflist) {
		t.Fatalf("the pool's members build different conflists:\n%s\n%s", conflist, other)
	}
	t.Logf("pool conflist:\n%s", conflist)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(tmp, "cache"), nil)

	type pod struct {
		rt   *libcni.RuntimeConf
		list *libcni.NetworkConfigList
		ns   string
	}
	var pods []pod
	for i, addr := range pciAddrs {
		nsPath, ns := newNetNS(t, fmt.Sprintf("%s-pp%d-%d", prefix, i, os.Getpid()))
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		list := multusInjects(t, conflist, addr, filepath.Join(tmp, "devinfo"))
		rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("%s-pool-%d", prefix, i), NetNS: nsPath, IfName: "net1",
			CapabilityArgs: map[string]any{"deviceID": addr, "CNIDeviceInfoFile": filepath.Join(tmp, fmt.Sprintf("dev-%d.json", i))}}
		res, err := cniConfig.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatalf("pod %d (device %s) ADD: %v", i, addr, err)
		}
		pods = append(pods, pod{rt, list, nsPath})
		cur, err := current.NewResultFromResult(res)
		if err != nil {
			t.Fatal(err)
		}
		resJSON, _ := json.Marshal(cur)
		t.Logf("pod %d, device %s: CNI result %s", i, addr, resJSON)
		att := atts[i]
		wantAddr := netip.PrefixFrom(att.PrimaryIP, att.Subnet.Bits()).String()
		if len(cur.IPs) != 1 || cur.IPs[0].Address.String() != wantAddr || cur.IPs[0].Gateway.String() != att.Gateway().String() {
			t.Errorf("pod %d: result IPs %v, want its ENI %s's %s via %s", i, cur.IPs, att.ENIID, wantAddr, att.Gateway())
		}
		if r, ok := sim.RouteTo(att.PrimaryIP); !ok || r.ENIID != att.ENIID || r.InstanceID != instID {
			t.Errorf("EC2 routes pod %d's %s to %+v, want ENI %s on %s", i, att.PrimaryIP, r, att.ENIID, instID)
		}
		l, addrs, err := linkInNS(t, ns, "net1")
		if err != nil {
			t.Fatalf("pod %d: net1: %v", i, err)
		}
		if l.Attrs().HardwareAddr.String() != att.MAC || l.Attrs().MTU != 9001 || !slices.Equal(addrs, []string{wantAddr}) {
			t.Errorf("pod %d: net1 %s mtu %d %v, want ENI %s's link %s, mtu 9001, %s", i, l.Attrs().HardwareAddr, l.Attrs().MTU, addrs, att.ENIID, att.MAC, wantAddr)
		}
		routes, err := h.RouteList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == att.Gateway().String() && r.Priority == netconf.HostDeviceRouteMetric
		}) {
			t.Errorf("pod %d: net1 routes %v, want a default via %s at metric %d", i, routes, att.Gateway(), netconf.HostDeviceRouteMetric)
		}
		if _, err := netlink.LinkByName(hostNames[i]); err == nil {
			t.Errorf("%s still on the host after pod %d's ADD", hostNames[i], i)
		}
		if info, err := os.ReadFile(rt.CapabilityArgs["CNIDeviceInfoFile"].(string)); err != nil || !strings.Contains(string(info), addr) {
			t.Errorf("pod %d: device-info for Multus %s (%v), want device %s", i, info, err, addr)
		}
	}

	// A pod on the pool's NAD without the resource request: Multus passes
	// no device.
	nsPath, _ := newNetNS(t, fmt.Sprintf("%s-pn-%d", prefix, os.Getpid()))
	bare, err := libcni.ConfListFromBytes(withIPAMDir(t, conflist, filepath.Join(tmp, "devinfo")))
	if err != nil {
		t.Fatal(err)
	}
	norequest := &libcni.RuntimeConf{ContainerID: prefix + "-pool-norequest", NetNS: nsPath, IfName: "net1"}
	if _, err := cniConfig.AddNetworkList(ctx, bare, norequest); err == nil || !strings.Contains(err.Error(), "must request resource "+resource) {
		t.Errorf("ADD without the resource request: %v, want an error naming %s", err, resource)
	} else {
		t.Logf("ADD without the resource request: %v", err)
	}
	if err := cniConfig.DelNetworkList(ctx, bare, norequest); err != nil {
		t.Errorf("DEL without the resource request: %v", err)
	}

	for i, p := range pods {
		if err := cniConfig.DelNetworkList(ctx, p.list, p.rt); err != nil {
			t.Fatalf("pod %d DEL: %v", i, err)
		}
		if err := cniConfig.DelNetworkList(ctx, p.list, p.rt); err != nil {
			t.Errorf("pod %d repeated DEL: %v", i, err)
		}
		back, err := netlink.LinkByName(hostNames[i])
		if err != nil {
			t.Fatalf("ENI %s's link is not back on the host as %s: %v", atts[i].ENIID, hostNames[i], err)
		}
		v4, _ := netlink.AddrList(back, netlink.FAMILY_V4)
		if back.Attrs().HardwareAddr.String() != atts[i].MAC || len(v4) != 0 || !slices.Contains(back.Attrs().AltNames, members[i].Name) {
			t.Errorf("back on the host: %s mac %s altnames %v addresses %v", back.Attrs().Name, back.Attrs().HardwareAddr, back.Attrs().AltNames, v4)
		}
	}
}

// poolENIsOnHost has the EC2 simulator create and attach two ENIs of one
// whole-ENI pool, as the enis step does, and makes their links on the host
// as the links step leaves them (veth ends with the ENIs' MACs, MTU 9001,
// the logical names as altnames).
func poolENIsOnHost(t *testing.T) ([]api.Interface, []eni.Attachment, *ec2sim.Sim, string) {
	t.Helper()
	sim, data, inst, client := simNode(t, 27, ec2sim.SubnetSpec{CIDR: "10.0.32.0/20"})
	var members []api.Interface
	for i := range 2 {
		dev, card := int32(i+1), int32(0)
		members = append(members, api.Interface{Name: fmt.Sprintf("%s-upf%d", prefix, i), SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card,
			PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, PodAttachment: api.PodAttachmentHostDevice,
			ResourceName: "upf_pool", MTU: 9001})
	}
	atts, err := (&eni.Reconciler{EC2: client, InstanceID: inst.ID}).Reconcile(context.Background(), &changetest.Actions{}, members)
	if err != nil {
		t.Fatal(err)
	}
	for i, host := range []string{prefix + "pa0", prefix + "pb0"} {
		link := addVeth(t, host, host[:len(host)-1]+"1")
		mac, err := net.ParseMAC(atts[i].MAC)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetMTU(link, 9001); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkAddAltName(link, members[i].Name); err != nil {
			t.Fatal(err)
		}
	}
	return members, atts, sim, inst.ID
}

// pciStandIn makes a bin dir with the bundle's binaries, where host-device
// runs in a mount namespace of its own with tree bind-mounted over
// /sys/bus/pci/devices: for each address, driver -> .../ena (a kernel
// driver, so not DPDK mode) and net/<its link's name>, which is what
// host-device v1.10.0 reads (hasDpdkDriver, getLink by pciaddr).
func pciStandIn(t *testing.T, bundleBin, tree string, addrs, links []string) string {
	t.Helper()
	ena := filepath.Join(tree, "..", "drivers", "ena")
	if err := os.MkdirAll(ena, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, a := range addrs {
		if err := os.MkdirAll(filepath.Join(tree, a, "net", links[i]), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ena, filepath.Join(tree, a, "driver")); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(filepath.Dir(tree), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(bundleBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "host-device" {
			continue
		}
		if err := os.Symlink(filepath.Join(bundleBin, e.Name()), filepath.Join(bin, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n# host-device with a stand-in /sys/bus/pci/devices (veths have no PCI function).\nexec unshare --mount --propagation private sh -c 'mount --bind %s /sys/bus/pci/devices && exec %s' \n",
		tree, filepath.Join(bundleBin, "host-device"))
	if err := os.WriteFile(filepath.Join(bin, "host-device"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// multusInjects is the conflist as Multus v4 hands it to libcni for a
// pod allocated device addr (pkg/types addDeviceIDInConfList: deviceID and
// pciBusID in every plugin entry), with nodeprep-ipam reading the
// device-info files from dir.
func multusInjects(t *testing.T, conflist []byte, addr, dir string) *libcni.NetworkConfigList {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(withIPAMDir(t, conflist, dir), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc["plugins"].([]any) {
		entry := p.(map[string]any)
		entry["deviceID"], entry["pciBusID"] = addr, addr
	}
	b, _ := json.Marshal(doc)
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// withIPAMDir points nodeprep-ipam at the test's device-info directory
// (its ipam "dir"; on a node the default, /run/nodeprep/devinfo).
func withIPAMDir(t *testing.T, conflist []byte, dir string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(conflist, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc["plugins"].([]any) {
		p.(map[string]any)["ipam"].(map[string]any)["dir"] = dir
	}
	b, _ := json.Marshal(doc)
	return b
}

// TestMultusWholeENIPoolPodsNetworkStatus: the real Multus thin plugin
// resolves the pool's config-less NAD (as `nodeprep render nad` writes it,
// with the resource annotation) from the pool's conflist, reads each pod's
// device from kubelet's device-plugin checkpoint (the stand-in Multus's own
// tests use), and runs nodeprep-ipam and host-device (with the stand-in
// /sys/bus/pci/devices of pciStandIn) on it. Each pod's network-status
// entry must carry its own ENI's EC2 primary address and MAC and its
// device's PCI address; a pod without the resource fails ADD naming it and
// its DEL succeeds.
func TestMultusWholeENIPoolPodsNetworkStatus(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is needed for host-device's stand-in sysfs")
	}
	const checkpointDir = "/var/lib/kubelet/device-plugins"
	for _, dir := range []string{"/var/lib/cni", "/var/lib/kubelet"} {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
		}
	}
	if _, err := os.Stat(checkpointDir + "/kubelet_internal_checkpoint"); err == nil {
		t.Skip("this host has a kubelet device-plugin checkpoint; the test would overwrite it")
	}
	bundleBin := installBundle(t, bundleDir(t))
	tmp := t.TempDir()
	ctx := context.Background()
	members, atts, sim, instID := poolENIsOnHost(t)
	pciAddrs := []string{"0000:00:08.0", "0000:00:09.0"}
	binDir := pciStandIn(t, bundleBin, filepath.Join(tmp, "pci"), pciAddrs, []string{prefix + "pa0", prefix + "pb0"})
	addVeth(t, prefix+"mc0", prefix+"mc1")
	kube, cfg, confDir := multusNode(t, tmp, binDir, "macvlan", prefix+"mc0")
	cfg.Spec.Interfaces = members
	nads := nad.Build(cfg, nad.Options{Namespace: "default"})
	resource := nad.ResourceName(cfg, members[0])
	if len(nads) != 1 || nads[0].Metadata.Name != "upf-pool" || nads[0].Metadata.Annotations[nad.ResourceNameAnnotation] != resource {
		t.Fatalf("rendered NADs %+v, want one, upf-pool, naming %s", nads, resource)
	}
	var devices []devinfo.Device
	for i := range members {
		devices = append(devices, devinfo.Device{PCIAddress: pciAddrs[i], Network: netconf.Network{Config: members[i], Attachment: atts[i], Resource: resource}})
	}
	if _, err := devinfo.Write(hostfs.New(tmp), "/devinfo", devices); err != nil {
		t.Fatal(err)
	}
	conflist, err := netconf.Build(devices[0].Network, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, netconf.Path(cfg.Spec.Multus.NetworkConfDir, "upf-pool"), string(withIPAMDir(t, conflist, filepath.Join(tmp, "devinfo"))), 0o644)
	n := configLessNAD("upf-pool")
	n["metadata"].(map[string]any)["annotations"] = map[string]string{nad.ResourceNameAnnotation: resource}
	kube.nad = n
	writeCheckpoint(t, resource, map[string]string{"pod-uid-1": pciAddrs[0], "pod-uid-2": pciAddrs[1]})

	conf := multusConf(t, confDir)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	pod := func(i int) *libcni.RuntimeConf {
		uid := fmt.Sprintf("pod-uid-%d", i)
		nsPath, _ := newNetNS(t, fmt.Sprintf("%s-mp%d-%d", prefix, i, os.Getpid()))
		p := mpod("upf-pool")
		p["metadata"].(map[string]any)["uid"] = uid
		kube.mu.Lock()
		kube.pod, kube.status = p, nil
		kube.mu.Unlock()
		rt := podRuntime(fmt.Sprintf("%s-mpool%d", prefix, i), nsPath)
		for j := range rt.Args {
			if rt.Args[j][0] == "K8S_POD_UID" {
				rt.Args[j][1] = uid
			}
		}
		return rt
	}
	for i := range members {
		rt := pod(i + 1)
		if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
			t.Fatalf("pod %d: multus ADD: %v", i+1, err)
		}
		kube.mu.Lock()
		annotation := networkStatusJSON.FindString(strings.Join(kube.status, "\n"))
		kube.mu.Unlock()
		t.Logf("pod %d network-status: %s", i+1, annotation)
		var entries []poolStatusEntry
		if err := json.Unmarshal([]byte(annotation), &entries); err != nil {
			t.Fatalf("pod %d: network-status %q: %v", i+1, annotation, err)
		}
		at := slices.IndexFunc(entries, func(e poolStatusEntry) bool { return e.Name == "default/upf-pool" })
		if at < 0 {
			t.Fatalf("pod %d: no network-status entry for default/upf-pool: %s", i+1, annotation)
		}
		e, att := entries[at], atts[i]
		if !slices.Equal(e.IPs, []string{att.PrimaryIP.String()}) || e.MAC != att.MAC || e.Interface != "net1" || e.DeviceInfo == nil || e.DeviceInfo.PCI.Address != pciAddrs[i] {
			t.Errorf("pod %d: entry %+v, want net1 with ENI %s's %s and %s on device %s", i+1, e, att.ENIID, att.PrimaryIP, att.MAC, pciAddrs[i])
		}
		if r, ok := sim.RouteTo(att.PrimaryIP); !ok || r.ENIID != att.ENIID || r.InstanceID != instID {
			t.Errorf("the VPC routes %s to %+v, want %s on %s", att.PrimaryIP, r, att.ENIID, instID)
		}
		if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
			t.Errorf("pod %d: multus DEL: %v", i+1, err)
		}
	}
	rt := pod(3)
	_, err = cniConfig.AddNetwork(ctx, conf, rt)
	t.Logf("ADD without the resource: %v", err)
	if err == nil || !strings.Contains(err.Error(), resource) {
		t.Errorf("ADD without the resource: %v, want an error naming %s", err, resource)
	}
	if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
		t.Errorf("DEL without the resource: %v", err)
	}
}

// poolStatusEntry is the part of a network-status entry the pool test reads.
type poolStatusEntry struct {
	Name       string   `json:"name"`
	Interface  string   `json:"interface"`
	IPs        []string `json:"ips"`
	MAC        string   `json:"mac"`
	DeviceInfo *struct {
		PCI struct {
			Address string `json:"pci-address"`
		} `json:"pci"`
	} `json:"device-info"`
}

package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/vm"
)

const (
	vmDPDKMAC1 = "52:54:00:6e:70:03"
	vmDPDKMAC2 = "52:54:00:6e:70:04"
	vmIPv6MAC  = "52:54:00:6e:70:05"
	// dpdkResource is the device plugin resource both devices belong to.
	dpdkResource = "nodeprep.dev/dpdk"
)

// TestVMMultusDPDKPodsGetTheirENIsAddresses is the DPDK pod path on a real
// kernel: two NICs bound to vfio-pci behind the vIOMMU stand for two DPDK
// ENIs the EC2 simulator created; nodeprep writes the device-info files and
// the DPDK conflist; the real Multus thin plugin reads the device-plugin
// allocation from kubelet's checkpoint file (the stand-in Multus's own
// tests use), and runs nodeprep-ipam's device guard, the real host-device
// (DPDK mode) and nodeprep-ipam as its IPAM. Each pod's network-status must
// carry its own ENI's EC2 addresses and its device's PCI address; a pod
// that forgot the resource request fails ADD naming it and its DEL succeeds.
func TestVMMultusDPDKPodsGetTheirENIsAddresses(t *testing.T) {
	if vm.InGuest() {
		guestMultusDPDK(t)
		return
	}
	runMultusInGuest(t, []string{"multus", "ipvlan", "static", "host-local", "host-device", "nodeprep-ipam"},
		[]vm.NIC{{MAC: vmDPDKMAC1}, {MAC: vmDPDKMAC2}, {MAC: vmIPv6MAC}},
		"enis", "pod1.network-status", "pod2.network-status", "nodevice.add", "nodevice.del", "ipv6.eni", "ipv6.pod", "ipv6.routes", "ipv6.network-status")
}

// network is what nodeprep's podnetworks step pairs for an ENI EC2 attached.
func network(in api.Interface, a eni.Attachment) netconf.Network {
	return netconf.Network{Config: in, Attachment: a, Resource: dpdkResource}
}

// bindVFIO binds a PCI function to vfio-pci through driver_override.
func bindVFIO(t *testing.T, bdf string) {
	t.Helper()
	dev := "/sys/bus/pci/devices/" + bdf
	if err := os.WriteFile(dev+"/driver_override", []byte("vfio-pci"), 0o200); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dev + "/driver"); err == nil {
		if err := os.WriteFile(dev+"/driver/unbind", []byte(bdf), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("/sys/bus/pci/drivers_probe", []byte(bdf), 0o200); err != nil {
		t.Fatal(err)
	}
	if drv, err := filepath.EvalSymlinks(dev + "/driver"); err != nil || filepath.Base(drv) != "vfio-pci" {
		t.Fatalf("%s: driver %s (%v), want vfio-pci", bdf, drv, err)
	}
}

// checkpoint is kubelet's device-plugin checkpoint as Multus reads it
// (multus-cni pkg/checkpoint): one entry per pod and resource.
func writeCheckpoint(t *testing.T, resource string, alloc map[string]string) {
	t.Helper()
	type entry struct {
		PodUID        string
		ContainerName string
		ResourceName  string
		DeviceIDs     map[int64][]string
		AllocResp     []byte
	}
	var entries []entry
	for uid, dev := range alloc {
		entries = append(entries, entry{PodUID: uid, ContainerName: "c", ResourceName: resource, DeviceIDs: map[int64][]string{0: {dev}}})
	}
	data, err := json.Marshal(map[string]any{"Data": map[string]any{"PodDeviceEntries": entries, "RegisteredDevices": map[string][]string{}}, "Checksum": 0})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint", string(data), 0o644)
}

var networkStatusJSON = regexp.MustCompile(`(?s)\[\s*\{\s*"name".*\}\s*\]`)

func guestMultusDPDK(t *testing.T) {
	ctx := context.Background()
	for _, m := range []string{"ipvlan", "vfio-pci"} {
		if err := run("modprobe", m); err != nil {
			t.Fatal(err)
		}
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}

	// EC2: two DPDK ENIs in a dual-stack subnet, one IPv6 address each.
	sim, data, inst, client := simNode(t, 11, ec2sim.SubnetSpec{CIDR: "10.0.32.0/20", IPv6CIDR: "2600:1f14:abc:de00::/64"})
	card := int32(0)
	var ifaces []api.Interface
	for i, name := range []string{"media", "media-b"} {
		dev := int32(i + 1)
		ifaces = append(ifaces, api.Interface{Name: name, SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card,
			PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverVFIOPCI, ResourceName: "dpdk", IPv6AddressCount: 1})
	}
	results, err := (&eni.Reconciler{EC2: client, InstanceID: inst.ID}).Reconcile(ctx, &changetest.Actions{}, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	vm.Mark("enis", fmt.Sprintf("%+v", results))

	// The two NICs bound for DPDK, and the files nodeprep writes for them.
	devices := []devinfo.Device{}
	for i, r := range results {
		bdf := vm.NICAddress(i + 1)
		bindVFIO(t, bdf)
		devices = append(devices, devinfo.Device{PCIAddress: bdf, Network: network(ifaces[i], r)})
	}
	if _, err := devinfo.Write(hostfs.New("/"), devinfo.Dir, devices); err != nil {
		t.Fatal(err)
	}

	node := linkByMAC(t, vmNodeMAC)
	tmp := t.TempDir()
	kube, cfg, confDir := multusNode(t, tmp, guestBinDir, "ipvlan", node.Attrs().Name)
	// One NAD, "media", whose pool holds both devices.
	if _, err := netconf.Write(hostfs.New("/"), cfg.Spec.Multus.NetworkConfDir, []netconf.Network{devices[0].Network}, netconf.Options{}); err != nil {
		t.Fatal(err)
	}
	nad := configLessNAD("media")
	nad["metadata"].(map[string]any)["annotations"] = map[string]string{"k8s.v1.cni.cncf.io/resourceName": dpdkResource}
	kube.nad = nad
	writeCheckpoint(t, dpdkResource, map[string]string{"pod-uid-1": devices[0].PCIAddress, "pod-uid-2": devices[1].PCIAddress})

	conf := multusConf(t, confDir)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{guestBinDir}, t.TempDir(), nil)

	pod := func(i int) (uid string, rt *libcni.RuntimeConf) {
		uid = fmt.Sprintf("pod-uid-%d", i)
		nsPath, _ := newNetNS(t, fmt.Sprintf("dpdkpod%d", i))
		p := mpod("media")
		p["metadata"].(map[string]any)["uid"] = uid
		kube.mu.Lock()
		kube.pod, kube.status = p, nil
		kube.mu.Unlock()
		rt = podRuntime(fmt.Sprintf("dpdkpod%d", i), nsPath)
		for j := range rt.Args {
			if rt.Args[j][0] == "K8S_POD_UID" {
				rt.Args[j][1] = uid
			}
		}
		return uid, rt
	}
	for i, d := range devices {
		_, rt := pod(i + 1)
		if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
			t.Fatalf("pod %d: multus ADD: %v", i+1, err)
		}
		kube.mu.Lock()
		status := strings.Join(kube.status, "\n")
		kube.mu.Unlock()
		annotation := networkStatusJSON.FindString(status)
		vm.Mark(fmt.Sprintf("pod%d.network-status", i+1), annotation)
		var entries []struct {
			Name       string   `json:"name"`
			Interface  string   `json:"interface"`
			IPs        []string `json:"ips"`
			DeviceInfo *struct {
				Type string `json:"type"`
				PCI  struct {
					Address string `json:"pci-address"`
				} `json:"pci"`
			} `json:"device-info"`
		}
		if err := json.Unmarshal([]byte(annotation), &entries); err != nil {
			t.Fatalf("pod %d: network-status %q: %v", i+1, status, err)
		}
		var found bool
		for _, e := range entries {
			if e.Name != "default/media" {
				continue
			}
			found = true
			want := []string{d.Network.PrimaryIP.String(), d.Network.IPv6Addresses[0].String()}
			if strings.Join(e.IPs, ",") != strings.Join(want, ",") {
				t.Errorf("pod %d: ips %v, want its ENI's %v", i+1, e.IPs, want)
			}
			if e.DeviceInfo == nil || e.DeviceInfo.Type != "pci" || e.DeviceInfo.PCI.Address != d.PCIAddress {
				t.Errorf("pod %d: device-info %+v, want pci %s", i+1, e.DeviceInfo, d.PCIAddress)
			}
			for _, ip := range e.IPs {
				if route, ok := sim.RouteTo(netip.MustParseAddr(ip)); !ok || route.ENIID != d.Network.ENIID {
					t.Errorf("pod %d: the VPC routes %s to %+v (%v), want %s", i+1, ip, route, ok, d.Network.ENIID)
				}
			}
		}
		if !found {
			t.Errorf("pod %d: no network-status entry for default/media: %s", i+1, annotation)
		}
		if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
			t.Errorf("pod %d: multus DEL: %v", i+1, err)
		}
	}

	// A pod without the resource request: no checkpoint entry.
	_, rt := pod(3)
	_, err = cniConfig.AddNetwork(ctx, conf, rt)
	vm.Mark("nodevice.add", fmt.Sprint(err))
	if err == nil || !strings.Contains(err.Error(), dpdkResource) {
		t.Errorf("ADD without the resource: %v, want an error naming %s", err, dpdkResource)
	}
	err = cniConfig.DelNetwork(ctx, conf, rt)
	vm.Mark("nodevice.del", fmt.Sprint(err))
	if err != nil {
		t.Errorf("DEL without the resource: %v", err)
	}

	guestIPv6Ipvlan(t, sim, client, inst.ID, data.ID, kube, cfg.Spec.Multus.NetworkConfDir, cniConfig, conf, pod)
}

// guestIPv6Ipvlan: a kernel ENI with one /80 IPv6 prefix, as an ipvlan
// master; the pod gets an IPv6 address the VPC routes to the ENI.
func guestIPv6Ipvlan(t *testing.T, sim *ec2sim.Sim, client *ec2.Client, instanceID, subnetID string, kube *fakeAPI, netConfDir string, cniConfig *libcni.CNIConfig, conf *libcni.NetworkConfig, pod func(int) (string, *libcni.RuntimeConf)) {
	ctx := context.Background()
	dev, card := int32(3), int32(0)
	iface := api.Interface{Name: "media", SubnetID: subnetID, DeviceIndex: &dev, NetworkCardIndex: &card,
		PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, IPv6PrefixCount: 1}
	results, err := (&eni.Reconciler{EC2: client, InstanceID: instanceID}).Reconcile(ctx, &changetest.Actions{}, []api.Interface{iface})
	if err != nil {
		t.Errorf("IPv6 ENI: %v", err)
		return
	}
	r := results[0]
	vm.Mark("ipv6.eni", fmt.Sprintf("%s %v", r.ENIID, r.IPv6Prefixes))
	nic := linkByMAC(t, vmIPv6MAC)
	if err := netlink.LinkAddAltName(nic, "media"); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		t.Fatal(err)
	}
	facts := network(iface, r)
	if _, err := netconf.Write(hostfs.New("/"), netConfDir, []netconf.Network{facts}, netconf.Options{}); err != nil {
		t.Fatal(err)
	}
	kube.mu.Lock()
	kube.nad = configLessNAD("media")
	kube.mu.Unlock()
	_, rt := pod(4)
	if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
		t.Errorf("IPv6 pod: multus ADD: %v", err)
		return
	}
	defer func() {
		if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
			t.Errorf("IPv6 pod: multus DEL: %v", err)
		}
	}()
	ns, err := netns.GetFromPath(rt.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("net1")
	if err != nil {
		t.Fatalf("IPv6 pod: net1: %v", err)
	}
	addrs, _ := h.AddrList(l, netlink.FAMILY_V6)
	var podAddr netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && !ip.IsLinkLocalUnicast() {
			podAddr = ip
		}
	}
	vm.Mark("ipv6.pod", podAddr.String())
	if route, ok := sim.RouteTo(podAddr); !ok || route.ENIID != r.ENIID {
		t.Errorf("IPv6 pod address %s: the VPC routes it to %+v (%v), want %s", podAddr, route, ok, r.ENIID)
	}
	routes, _ := h.RouteList(l, netlink.FAMILY_V6)
	var shown []string
	for _, rt := range routes {
		shown = append(shown, fmt.Sprintf("%v via %v", rt.Dst, rt.Gw))
	}
	vm.Mark("ipv6.routes", strings.Join(shown, "; "))
	kube.mu.Lock()
	status := strings.Join(kube.status, "\n")
	kube.mu.Unlock()
	vm.Mark("ipv6.network-status", networkStatusJSON.FindString(status))
}

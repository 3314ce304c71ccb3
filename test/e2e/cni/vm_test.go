package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/vm"
)

const (
	vmNodeMAC = "52:54:00:6e:70:01"
	vmENIMAC  = "52:54:00:6e:70:02"
	// guestBinDir holds the bundle's plugins in the guest.
	guestBinDir = "/opt/cni/bin"
)

// TestVMMultusIpvlanFromNodeConflist is the whole pod path on a real kernel
// with ipvlan (the Debian cloud kernel ships ipvlan.ko; the build machines
// lack it): the EC2 simulator gives the ENI a /28 prefix, nodeprep writes
// the node-local conflist, the real Multus thin plugin resolves a NAD with
// no spec.config (served by a fake API server) from it, and the real ipvlan
// and host-local plugins put an address into the pod's network namespace on
// the ENI's NIC. That address must be one the simulator routes to the ENI.
func TestVMMultusIpvlanFromNodeConflist(t *testing.T) {
	if vm.InGuest() {
		guestMultusIpvlan(t)
		return
	}
	runMultusInGuest(t, []string{"multus", "ipvlan", "host-local", "static"},
		[]vm.NIC{{MAC: vmENIMAC}}, "eni", "pod.address", "network-status")
}

// runMultusInGuest runs the calling test again inside a guest with the
// node's NIC (user networking) plus nics, ipvlan loaded and the bundle's
// plugins in guestBinDir, then logs the markers the guest half reported.
func runMultusInGuest(t *testing.T, plugins []string, nics []vm.NIC, markers ...string) {
	t.Helper()
	bed := vm.NewT(t)
	built := bundleDir(t)
	files := map[string]string{}
	for _, p := range plugins {
		files[guestBinDir+"/"+p] = filepath.Join(built, p)
	}
	res := bed.RunTestInGuest(t, vm.Spec{
		NICs:      append([]vm.NIC{{MAC: vmNodeMAC, Backend: vm.BackendUser}}, nics...),
		Modules:   []string{"ipvlan"},
		Files:     files,
		MemoryMiB: 1024,
	})
	t.Logf("kernel %s, guest boot %s, whole VM run %s", res.Kernel, res.GuestBoot, res.Duration)
	for _, k := range markers {
		t.Logf("%s: %s", k, res.Markers[k])
	}
}

func guestMultusIpvlan(t *testing.T) {
	ctx := context.Background()
	if err := run("modprobe", "ipvlan"); err != nil {
		t.Fatal(err)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}

	// EC2: a node and its Multus ENI asking for one /28 prefix.
	sim, data, inst, client := simNode(t, 7, ec2sim.SubnetSpec{CIDR: "10.0.16.0/24"})
	dev, card := int32(1), int32(0)
	iface := api.Interface{Name: "media", SubnetID: data.ID, DeviceIndex: &dev, NetworkCardIndex: &card, PrivateIP: api.PrivateIP{Mode: api.PrivateIPDHCP}, Driver: api.DriverKernel, IPv4PrefixCount: 1}
	results, err := (&eni.Reconciler{EC2: client, InstanceID: inst.ID}).Reconcile(ctx, &changetest.Actions{}, []api.Interface{iface})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	vm.Mark("eni", fmt.Sprintf("%s primary %s prefixes %v", r.ENIID, r.PrimaryIP, r.IPv4Prefixes))

	// The ENI's NIC, known by its logical name as the links step leaves it.
	nic := linkByMAC(t, vmENIMAC)
	if err := netlink.LinkAddAltName(nic, "media"); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		t.Fatal(err)
	}
	node := linkByMAC(t, vmNodeMAC)

	tmp := t.TempDir()
	nsPath, ns := newNetNS(t, "vmpod")
	// The "cluster network": ipvlan+static on the node's NIC.
	kube, cfg, confDir := multusNode(t, tmp, guestBinDir, "ipvlan", node.Attrs().Name)
	cfg.Spec.Interfaces = []api.Interface{iface}

	// The node-local conflist, from what EC2 assigned; the NAD as rendered.
	facts := netconf.Network{Config: iface, Attachment: eni.Attachment{Subnet: r.Subnet, PrimaryIP: r.PrimaryIP, IPv4Prefixes: r.IPv4Prefixes}}
	if _, err := netconf.Write(hostfs.New("/"), cfg.Spec.Multus.NetworkConfDir, []netconf.Network{facts}, netconf.Options{}); err != nil {
		t.Fatal(err)
	}
	nads := nad.Build(cfg, nad.Options{Namespace: "default"})
	if len(nads) != 1 || nads[0].Spec.Config != "" {
		t.Fatalf("NADs %+v", nads)
	}
	kube.nad, kube.pod = configLessNAD("media"), mpod("media")

	confBytes, err := os.ReadFile(filepath.Join(confDir, multus.ConfName))
	if err != nil {
		t.Fatal(err)
	}
	var mconf map[string]any
	if err := json.Unmarshal(confBytes, &mconf); err != nil || mconf["confDir"] != cfg.Spec.Multus.NetworkConfDir {
		t.Fatalf("00-multus.conf confDir = %v (%v), want %s", mconf["confDir"], err, cfg.Spec.Multus.NetworkConfDir)
	}
	conf, err := libcni.ConfFromBytes(confBytes)
	if err != nil {
		t.Fatal(err)
	}
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{guestBinDir}, t.TempDir(), nil)
	rt := podRuntime("vmpod", nsPath)
	if _, err := cniConfig.AddNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus ADD: %v", err)
	}
	l, addrs, err := linkInNS(t, ns, "net1")
	if err != nil || len(addrs) != 1 {
		t.Fatalf("net1: %v %v", addrs, err)
	}
	if l.Type() != "ipvlan" || l.Attrs().ParentIndex != nic.Attrs().Index {
		t.Errorf("net1 is %s on link %d, want ipvlan on the ENI's NIC %d", l.Type(), l.Attrs().ParentIndex, nic.Attrs().Index)
	}
	podAddr := netip.MustParsePrefix(addrs[0])
	vm.Mark("pod.address", podAddr.String())
	route, ok := sim.RouteTo(podAddr.Addr())
	if !ok || route.ENIID != r.ENIID || route.InstanceID != inst.ID || podAddr.Addr() == r.PrimaryIP {
		t.Errorf("pod address %s: the VPC routes it to %+v (%v), want %s on %s", podAddr, route, ok, r.ENIID, inst.ID)
	}
	if podAddr.Bits() != facts.Subnet.Bits() {
		t.Errorf("pod address %s: want the subnet's /%d", podAddr, facts.Subnet.Bits())
	}
	kube.mu.Lock()
	status := strings.Join(kube.status, "\n")
	kube.mu.Unlock()
	vm.Mark("network-status", fmt.Sprint(strings.Contains(status, podAddr.Addr().String())))
	if !strings.Contains(status, podAddr.Addr().String()) {
		t.Errorf("network-status lacks %s", podAddr.Addr())
	}

	lease := filepath.Join("/var/lib/cni/networks/media", podAddr.Addr().String())
	if _, err := os.Stat(lease); err != nil {
		t.Errorf("no host-local lease: %v", err)
	}
	if err := cniConfig.DelNetwork(ctx, conf, rt); err != nil {
		t.Fatalf("multus DEL: %v", err)
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Errorf("lease %s still there after DEL: %v", lease, err)
	}
}

func linkByMAC(t *testing.T, mac string) netlink.Link {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac {
			return l
		}
	}
	t.Fatalf("no link with MAC %s", mac)
	return nil
}

func run(name string, args ...string) error {
	out, err := osexec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}

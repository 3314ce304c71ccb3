package cni

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// TestDPDKConflistWithoutDeviceDeletes: a pod on a DPDK NAD that forgot the
// resource request gets no deviceID from Multus. Through libcni with the
// bundle's real plugins, ADD must fail naming the resource the pod must
// request, and DEL must succeed, or the sandbox can never be torn down.
// (The bare host-device conflist failed both with "specify either
// "device", "hwaddr", "kernelpath" or "pciBusID"".)
func TestDPDKConflistWithoutDeviceDeletes(t *testing.T) {
	requireRoot(t)
	binDir := installBundle(t, bundleDir(t))
	nsPath, _ := newNetNS(t, prefix+"-nodev")
	data, err := netconf.Build(netconf.Network{Config: api.Interface{Name: "dpdk0", Driver: api.DriverVFIOPCI}, Resource: "amazon.com/dpdk_n3",
		Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.0.16.0/20"), PrimaryIP: netip.MustParseAddr("10.0.17.9")}}, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: "nodevice", NetNS: nsPath, IfName: "net1",
		CapabilityArgs: map[string]any{"CNIDeviceInfoFile": t.TempDir() + "/dev.json"}}
	ctx := context.Background()
	_, err = cni.AddNetworkList(ctx, list, rt)
	if err == nil || !strings.Contains(err.Error(), "amazon.com/dpdk_n3") {
		t.Errorf("ADD without a device: %v, want an error naming the resource amazon.com/dpdk_n3", err)
	}
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		t.Errorf("DEL without a device: %v", err)
	}
}

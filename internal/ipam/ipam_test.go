package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/devinfo"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

const pciA, pciB = "0000:00:06.0", "0000:00:07.0"

// node writes the device-info files nodeprep's boot writes, for two
// devices behind two ENIs, with devinfo's own code.
func node(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	network := func(primary, secondary, v6, v4prefix, v6prefix string) netconf.Network {
		return netconf.Network{
			Config: api.Interface{Name: "dpdk", Driver: api.DriverVFIOPCI},
			Attachment: eni.Attachment{
				ENIID: "eni-" + primary, MAC: "0a:00:00:00:00:01",
				Subnet: netip.MustParsePrefix("10.0.16.0/20"), IPv6Subnet: netip.MustParsePrefix("2600:1f14:abc:de00::/64"),
				PrimaryIP: netip.MustParseAddr(primary), SecondaryIPs: []netip.Addr{netip.MustParseAddr(secondary)},
				IPv6Addresses: []netip.Addr{netip.MustParseAddr(v6)},
				IPv4Prefixes:  []netip.Prefix{netip.MustParsePrefix(v4prefix)},
				IPv6Prefixes:  []netip.Prefix{netip.MustParsePrefix(v6prefix)},
			},
		}
	}
	if _, err := devinfo.Write(hostfs.New(tmp), "/devinfo", []devinfo.Device{
		{PCIAddress: pciA, Network: network("10.0.17.9", "10.0.17.10", "2600:1f14:abc:de00::9", "10.0.18.32/28", "2600:1f14:abc:de00:9::/80")},
		{PCIAddress: pciB, Network: network("10.0.17.20", "10.0.17.21", "2600:1f14:abc:de00::20", "10.0.18.48/28", "2600:1f14:abc:de00:20::/80")},
	}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tmp, "devinfo")
}

// entry is a plugin entry as host-device passes it to its IPAM after
// Multus and libcni injected the device.
func entry(t *testing.T, typ, dir string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": "1.0.0", "name": "dpdk", "type": typ, "ipam": map[string]any{"type": PluginType, "dir": dir}}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func add(t *testing.T, stdin []byte) (*current.Result, error) {
	t.Helper()
	r, _, err := Plugin{}.Add(context.Background(), &skel.CmdArgs{ContainerID: "c", IfName: "net1", StdinData: stdin})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(r)
}

func ips(r *current.Result) []string {
	var out []string
	for _, ip := range r.IPs {
		out = append(out, ip.Address.String()+" via "+ip.Gateway.String())
	}
	return out
}

// Each device gets its own ENI's addresses, whichever key carries it.
func TestEachDeviceGetsItsOwnENIsAddresses(t *testing.T) {
	dir := node(t)
	for name, tc := range map[string]struct {
		extra map[string]any
		want  string
	}{
		"pciBusID":            {map[string]any{"pciBusID": pciA}, "10.0.17.9/20 via 10.0.16.1,2600:1f14:abc:de00::9/64 via fe80:ec2::1"},
		"deviceID":            {map[string]any{"deviceID": pciB, "pciBusID": pciB}, "10.0.17.20/20 via 10.0.16.1,2600:1f14:abc:de00::20/64 via fe80:ec2::1"},
		"runtimeConfig first": {map[string]any{"pciBusID": pciA, "runtimeConfig": map[string]any{"deviceID": pciB}}, "10.0.17.20/20 via 10.0.16.1,2600:1f14:abc:de00::20/64 via fe80:ec2::1"},
	} {
		r, err := add(t, entry(t, "host-device", dir, tc.extra))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := strings.Join(ips(r), ","); got != tc.want {
			t.Errorf("%s: IPs %s, want %s", name, got, tc.want)
		}
	}
}

func TestSecondariesAndRoutesWhenAsked(t *testing.T) {
	dir := node(t)
	m := map[string]any{"cniVersion": "1.0.0", "name": "dpdk", "type": "host-device", "pciBusID": pciA,
		"ipam": map[string]any{"type": PluginType, "dir": dir, "secondaryIPs": true,
			"routes": []any{map[string]any{"dst": "10.9.0.0/16"}, map[string]any{"dst": "2600:1f14:9::/56"}, map[string]any{"dst": "10.8.0.0/16", "gw": "10.0.16.5"}}}}
	stdin, _ := json.Marshal(m)
	r, err := add(t, stdin)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ips(r), ","); got != "10.0.17.9/20 via 10.0.16.1,10.0.17.10/20 via 10.0.16.1,2600:1f14:abc:de00::9/64 via fe80:ec2::1" {
		t.Errorf("IPs %s", got)
	}
	var routes []string
	for _, rt := range r.Routes {
		routes = append(routes, rt.Dst.String()+" via "+rt.GW.String())
	}
	if got := strings.Join(routes, ","); got != "10.9.0.0/16 via 10.0.16.1,2600:1f14:9::/56 via fe80:ec2::1,10.8.0.0/16 via 10.0.16.5" {
		t.Errorf("routes %s", got)
	}
}

// Asked for prefixes, the device's ENI's delegated prefixes come back as
// blocks, each with its family's router, and only that ENI's: the other
// device's are not in the result.
func TestPrefixesWhenAsked(t *testing.T) {
	dir := node(t)
	m := map[string]any{"cniVersion": "1.0.0", "name": "dpdk", "type": "host-device", "pciBusID": pciB,
		"ipam": map[string]any{"type": PluginType, "dir": dir, "prefixes": true}}
	stdin, _ := json.Marshal(m)
	r, err := add(t, stdin)
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.17.20/20 via 10.0.16.1,10.0.18.48/28 via 10.0.16.1,2600:1f14:abc:de00::20/64 via fe80:ec2::1,2600:1f14:abc:de00:20::/80 via fe80:ec2::1"
	if got := strings.Join(ips(r), ","); got != want {
		t.Errorf("IPs %s, want %s", got, want)
	}
	// Not asked, no prefix: the pod's app would take a block as its own.
	r, err = add(t, entry(t, "host-device", dir, map[string]any{"pciBusID": pciB}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range r.IPs {
		if ones, _ := ip.Address.Mask.Size(); ones == 28 || ones == 80 {
			t.Errorf("unasked prefix %s in the result", ip.Address.String())
		}
	}
}

// Multus reads device-info back from the file it named; the plugin writes
// the device's document there unless the device plugin did.
func TestPublishesDeviceInfoForMultus(t *testing.T) {
	dir := node(t)
	out := filepath.Join(t.TempDir(), "cni", "dpdk-c_net1-device.json")
	if _, err := add(t, entry(t, "host-device", dir, map[string]any{"pciBusID": pciA, "runtimeConfig": map[string]any{"CNIDeviceInfoFile": out}})); err != nil {
		t.Fatal(err)
	}
	var doc devinfo.Document
	data, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(data, &doc) != nil || doc.PCI.Address != pciA || doc.Type != "pci" {
		t.Fatalf("device-info %s: %s (%v)", out, data, err)
	}
	// A device plugin's file is left as it is.
	if err := os.WriteFile(out, []byte(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"from-dp"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := add(t, entry(t, "host-device", dir, map[string]any{"pciBusID": pciA, "runtimeConfig": map[string]any{"CNIDeviceInfoFile": out}})); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(out); !strings.Contains(string(data), "from-dp") {
		t.Errorf("the device plugin's device-info was overwritten: %s", data)
	}
}

func TestUnknownDeviceIsATypedError(t *testing.T) {
	dir := node(t)
	for _, dev := range []string{"0000:00:08.0", "../x"} {
		_, err := add(t, entry(t, "host-device", dir, map[string]any{"pciBusID": dev}))
		var de *DeviceError
		if !errors.As(err, &de) || de.Device != dev {
			t.Errorf("%s: err = %v, want *DeviceError naming it", dev, err)
		}
	}
}

// The guard without a device: ADD names the resource the pod must
// request, DEL and the IPAM's DEL succeed.
func TestGuardWithoutDevice(t *testing.T) {
	dir := node(t)
	stdin := entry(t, PluginType, dir, map[string]any{"delegate": "host-device", "resourceName": "nodeprep.io/dpdk"})
	_, err := add(t, stdin)
	var nd *NoDeviceError
	if !errors.As(err, &nd) || !strings.Contains(err.Error(), "nodeprep.io/dpdk") || !errors.Is(err, ErrNoDevice) {
		t.Fatalf("ADD err = %v, want a NoDeviceError naming nodeprep.io/dpdk", err)
	}
	args := &skel.CmdArgs{ContainerID: "c", IfName: "net1", Netns: "/proc/self/ns/net", StdinData: stdin}
	if err := (Plugin{}).Del(context.Background(), args); err != nil {
		t.Errorf("DEL without a device: %v", err)
	}
	args.StdinData = entry(t, "host-device", dir, nil)
	if err := (Plugin{}).Del(context.Background(), args); err != nil {
		t.Errorf("IPAM DEL: %v", err)
	}
}

// The delegate gets the same entry with its own type, so its IPAM call
// comes back to this plugin in the IPAM role.
func TestGuardDelegateConf(t *testing.T) {
	c, err := ParseConf(entry(t, PluginType, "/d", map[string]any{"delegate": "host-device", "pciBusID": pciA}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.delegateConf(entry(t, PluginType, "/d", map[string]any{"delegate": "host-device", "pciBusID": pciA}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseConf(out)
	if err != nil || d.Guard() || d.Type != "host-device" || d.Device() != pciA || d.IPAM.Type != PluginType || d.Delegate != "" {
		t.Errorf("delegate conf %s (%v)", out, err)
	}
}

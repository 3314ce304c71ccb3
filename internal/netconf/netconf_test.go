package netconf

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/dirsync"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// kernelENI has scattered secondaries, two adjacent ones, one next to a
// delegated /28, and IPv6 both as an address and an /80 prefix.
func kernelENI() Network {
	return Network{Config: api.Interface{Name: "media", MTU: 9001}, Attachment: eni.Attachment{
		ENIID:         "eni-0123456789abcdef0",
		MAC:           "0a:1b:2c:3d:4e:5f",
		Subnet:        netip.MustParsePrefix("10.0.16.0/20"),
		IPv6Subnet:    netip.MustParsePrefix("2600:1f14:abc:de00::/64"),
		PrimaryIP:     netip.MustParseAddr("10.0.17.9"),
		SecondaryIPs:  addrs("10.0.20.7", "10.0.17.10", "10.0.17.11", "10.0.18.31"),
		IPv4Prefixes:  prefixes("10.0.18.32/28"),
		IPv6Addresses: addrs("2600:1f14:abc:de00::5"),
		IPv6Prefixes:  prefixes("2600:1f14:abc:de00:1234::/80"),
	}}
}

// assigned is every address EC2 gave the ENI for pods, primary excluded.
func assigned(e Network) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, a := range e.SecondaryIPs {
		out[a] = true
	}
	for _, p := range e.IPv4Prefixes {
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			out[a] = true
		}
	}
	delete(out, e.PrimaryIP)
	return out
}

// hostLocalIPAM is the part of host-local's config (plugins/ipam/host-local
// allocator.IPAMConfig) the test reads back.
type hostLocalIPAM struct {
	Type   string `json:"type"`
	Ranges [][]struct {
		Subnet     string `json:"subnet"`
		RangeStart string `json:"rangeStart"`
		RangeEnd   string `json:"rangeEnd"`
		Gateway    string `json:"gateway"`
	} `json:"ranges"`
	Routes []struct {
		Dst      string `json:"dst"`
		GW       string `json:"gw"`
		Priority int    `json:"priority"`
	} `json:"routes"`
}

func TestKernelConflistPassesLibcniAndCoversExactlyTheAssignedAddresses(t *testing.T) {
	e := kernelENI()
	data, err := Build(e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("libcni rejects the conflist: %v\n%s", err, data)
	}
	if list.Name != "media" || len(list.Plugins) != 1 {
		t.Fatalf("name %q, %d plugins", list.Name, len(list.Plugins))
	}
	var p struct {
		Type   string        `json:"type"`
		Master string        `json:"master"`
		Mode   string        `json:"mode"`
		MTU    int           `json:"mtu"`
		IPAM   hostLocalIPAM `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "ipvlan" || p.Master != "media" || p.Mode != "l2" || p.MTU != 9001 || p.IPAM.Type != "host-local" {
		t.Fatalf("plugin = %+v", p)
	}
	if len(p.IPAM.Ranges) != 2 {
		t.Fatalf("%d range sets, want IPv4 and IPv6", len(p.IPAM.Ranges))
	}
	got := map[netip.Addr]bool{}
	for _, r := range p.IPAM.Ranges[0] {
		if r.Subnet != "10.0.16.0/20" || r.Gateway != "10.0.16.1" {
			t.Errorf("range %+v: want subnet 10.0.16.0/20 and gateway 10.0.16.1", r)
		}
		end := netip.MustParseAddr(r.RangeEnd)
		for a := netip.MustParseAddr(r.RangeStart); a.Compare(end) <= 0; a = a.Next() {
			if got[a] {
				t.Errorf("%s in two ranges", a)
			}
			got[a] = true
		}
	}
	want := assigned(e)
	if len(got) != len(want) {
		t.Errorf("ranges hold %d addresses, EC2 assigned %d", len(got), len(want))
	}
	for a := range want {
		if !got[a] {
			t.Errorf("assigned %s missing from the ranges", a)
		}
	}
	for a := range got {
		if !want[a] {
			t.Errorf("range holds %s, which EC2 did not assign to the ENI", a)
		}
	}
	// 10.0.18.31 and the /28 after it touch: one range, not two.
	if n := len(p.IPAM.Ranges[0]); n != 3 {
		t.Errorf("%d IPv4 ranges, want 3 (10.0.17.10-11, 10.0.18.31-47, 10.0.20.7): %+v", n, p.IPAM.Ranges[0])
	}
	v6 := p.IPAM.Ranges[1]
	if len(v6) != 2 || v6[0].RangeStart != "2600:1f14:abc:de00::5" || v6[1].RangeStart != "2600:1f14:abc:de00:1234::" || v6[1].RangeEnd != "2600:1f14:abc:de00:1234:ffff:ffff:ffff" {
		t.Errorf("IPv6 ranges = %+v", v6)
	}
	// The IPv6 router is the VPC's link-local one, as a route (host-local
	// refuses it as a range gateway); IPv4 gets no default route.
	if rs := p.IPAM.Routes; len(rs) != 1 || rs[0].Dst != "::/0" || rs[0].GW != "fe80:ec2::1" || rs[0].Priority != 1025 {
		t.Errorf("IPAM routes = %+v, want only ::/0 via fe80:ec2::1 metric 1025", rs)
	}
}

func TestPrimaryInsideAPrefixIsCutOut(t *testing.T) {
	e := Network{Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.1.0.0/24"), PrimaryIP: netip.MustParseAddr("10.1.0.37"), IPv4Prefixes: prefixes("10.1.0.32/28")}}
	v4, _, err := e.PodRanges()
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{netip.MustParseAddr("10.1.0.32"), netip.MustParseAddr("10.1.0.36")}, {netip.MustParseAddr("10.1.0.38"), netip.MustParseAddr("10.1.0.47")}}
	if !slices.Equal(v4, want) {
		t.Errorf("ranges %v, want %v", v4, want)
	}
}

func TestSameFactsInAnyOrderGiveTheSameBytes(t *testing.T) {
	a := kernelENI()
	b := kernelENI()
	slices.Reverse(b.SecondaryIPs)
	one, err := Build(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Build(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(one) != string(two) {
		t.Errorf("order changed the conflist:\n%s\n%s", one, two)
	}
}

func TestDPDKConflistNamesNoDevice(t *testing.T) {
	e := kernelENI()
	e.Config.Driver = api.DriverVFIOPCI
	e.Resource = "amazon.com/dpdk_n3"
	data, err := Build(e, Options{CNIVersion: "0.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "0.4.0" || list.Plugins[0].Network.Type != DeviceIPAM || list.Plugins[0].Network.IPAM.Type != DeviceIPAM {
		t.Errorf("conflist %s", data)
	}
	if caps := list.Plugins[0].Network.Capabilities; !caps["deviceID"] || !caps["CNIDeviceInfoFile"] {
		t.Errorf("capabilities %v: Multus passes the device and the device-info file only to a plugin that declares them", caps)
	}
	if !strings.Contains(string(data), `"resourceName": "amazon.com/dpdk_n3"`) {
		t.Errorf("the conflist does not name the resource a pod must request:\n%s", data)
	}
	for _, node := range []string{"pciBusID", `"deviceID": "`, "ranges", "10.0.", e.MAC} {
		if strings.Contains(string(data), node) {
			t.Errorf("DPDK conflist carries %q, which depends on the device allocated:\n%s", node, data)
		}
	}
}

func TestBadFactsAreTypedErrors(t *testing.T) {
	for name, e := range map[string]Network{
		"no pod addresses": {Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.0.0.0/24"), PrimaryIP: netip.MustParseAddr("10.0.0.9")}},
		"only the primary": {Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.0.0.0/24"), PrimaryIP: netip.MustParseAddr("10.0.0.9"), SecondaryIPs: addrs("10.0.0.9")}},
		"outside subnet":   {Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.0.0.0/24"), SecondaryIPs: addrs("10.0.1.9")}},
		"v6 no v6 subnet":  {Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPv6Addresses: addrs("2600::1")}},
		"no subnet":        {Config: api.Interface{Name: "a"}, Attachment: eni.Attachment{SecondaryIPs: addrs("10.0.1.9")}},
	} {
		_, err := Build(e, Options{})
		var ce *Error
		if !errors.As(err, &ce) || ce.Interface != "a" {
			t.Errorf("%s: err = %v, want *Error for interface a", name, err)
		}
		if strings.HasPrefix(name, "no pod") || strings.HasPrefix(name, "only") {
			if !errors.Is(err, ErrNoPodAddresses) {
				t.Errorf("%s: err = %v, want ErrNoPodAddresses", name, err)
			}
		}
	}
}

// TestWrittenConfDirResolvesByNetworkName loads the written confDir the way
// a NAD without spec.config is resolved (libcni.ConfFiles over .conf,
// .json and .conflist, then the first whose name matches), and checks a
// re-run removes the conflist of a dropped interface and nothing else.
func TestWrittenConfDirResolvesByNetworkName(t *testing.T) {
	tmp := t.TempDir()
	root := hostfs.New(tmp)
	const dir = "/etc/cni/multus/net.d"
	hostDir := filepath.Join(tmp, dir)
	media, ctrl := kernelENI(), kernelENI()
	ctrl.Config.Name = "ctrl"
	ctrl.SecondaryIPs = addrs("10.0.30.1")
	ctrl.IPv4Prefixes, ctrl.IPv6Addresses, ctrl.IPv6Prefixes = nil, nil, nil
	if _, err := Write(root, dir, []Network{media, ctrl}, Options{}); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(hostDir, "zz-operator.conflist")
	if err := os.WriteFile(foreign, []byte(`{"cniVersion":"1.0.0","name":"operator","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	resolve := func(name string) *libcni.NetworkConfigList {
		files, err := libcni.ConfFiles(hostDir, []string{".conf", ".json", ".conflist"})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			l, err := libcni.ConfListFromFile(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if l.Name == name {
				return l
			}
		}
		return nil
	}
	if l := resolve("ctrl"); l == nil || !strings.Contains(string(l.Bytes), "10.0.30.1") {
		t.Fatalf("ctrl resolves to %v", l)
	}
	changed, err := Write(root, dir, []Network{media}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"remove " + Path(dir, "ctrl")}; !slices.Equal(changed, want) {
		t.Errorf("second run changed %v, want %v", changed, want)
	}
	if resolve("ctrl") != nil || resolve("media") == nil || resolve("operator") == nil {
		t.Errorf("after the re-run: ctrl gone, media and the operator's file kept; have %v", mustGlob(t, hostDir))
	}
}

func mustGlob(t *testing.T, dir string) []string {
	m, err := filepath.Glob(dir + "/*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// An operator's conflist at the name nodeprep wants is never overwritten:
// the run fails naming the file, and the file keeps its content and mode.
func TestOperatorsConflistIsNeverOverwritten(t *testing.T) {
	tmp := t.TempDir()
	root := hostfs.New(tmp)
	const dir = "/etc/cni/multus/net.d"
	theirs := []byte(`{"cniVersion":"1.0.0","name":"media","plugins":[{"type":"macvlan","master":"eth9"}]}`)
	if err := os.MkdirAll(filepath.Join(tmp, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tmp, dir, "media.conflist")
	if err := os.WriteFile(p, theirs, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Plan(root, dir, []Network{kernelENI()}, Options{})
	var notOurs *dirsync.NotOursError
	if !errors.As(err, &notOurs) || notOurs.Path != Path(dir, "media") || !strings.Contains(err.Error(), Path(dir, "media")) {
		t.Fatalf("err = %v, want a NotOursError naming %s", err, Path(dir, "media"))
	}
	if data, _ := os.ReadFile(p); string(data) != string(theirs) {
		t.Errorf("the operator's conflist changed:\n%s", data)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", st.Mode().Perm())
	}
	// nodeprep's own earlier file at that name is rewritten as before.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(root, dir, []Network{kernelENI()}, Options{}); err != nil {
		t.Fatal(err)
	}
	e := kernelENI()
	e.SecondaryIPs = addrs("10.0.20.8")
	if changed, err := Write(root, dir, []Network{e}, Options{}); err != nil || len(changed) != 1 {
		t.Errorf("rewriting nodeprep's own conflist: %v, %v", changed, err)
	}
}

// wholeENI is a kernel ENI whose pod takes the whole link.
func wholeENI() Network {
	e := kernelENI()
	e.Config.Name, e.Config.PodAttachment = "upf", api.PodAttachmentHostDevice
	e.SecondaryIPs, e.IPv4Prefixes, e.IPv6Addresses, e.IPv6Prefixes = nil, nil, nil, nil
	return e
}

// TestHostDeviceConflistMovesTheENIWithItsPrimaryAddress: libcni takes the
// conflist, and the plugin config, read back as host-device and static
// read theirs, picks the ENI's link by its MAC and gives it the ENI's
// primary address on the subnet's prefix, the VPC router as gateway and a
// default route behind the pod's eth0.
func TestHostDeviceConflistMovesTheENIWithItsPrimaryAddress(t *testing.T) {
	e := wholeENI()
	data, err := Build(e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("libcni rejects the conflist: %v\n%s", err, data)
	}
	if list.Name != "upf" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != DeviceIPAM || list.Plugins[0].Network.IPAM.Type != "static" {
		t.Fatalf("conflist %s", data)
	}
	// The guard hands host-device the entry as it is, under its own type.
	var p struct {
		Delegate string `json:"delegate"`
		// The fields of host-device's NetConf and static's IPAMConfig
		// (containernetworking/plugins v1.10.0).
		Device     string `json:"device"`
		HWAddr     string `json:"hwaddr"`
		KernelPath string `json:"kernelpath"`
		PCIAddr    string `json:"pciBusID"`
		MTU        *int   `json:"mtu"`
		IPAM       struct {
			Addresses []struct {
				Address string `json:"address"`
				Gateway string `json:"gateway"`
			} `json:"addresses"`
			Routes []struct {
				Dst      string `json:"dst"`
				GW       string `json:"gw"`
				Priority int    `json:"priority"`
			} `json:"routes"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
		t.Fatal(err)
	}
	if p.Delegate != "host-device" {
		t.Errorf("delegate %q, want host-device", p.Delegate)
	}
	if p.HWAddr != "0a:1b:2c:3d:4e:5f" || p.Device != "" || p.KernelPath != "" || p.PCIAddr != "" {
		t.Errorf("host-device picks %+v, want only hwaddr, the ENI's MAC", p)
	}
	if p.MTU != nil {
		t.Errorf("mtu %d: host-device has no mtu; the link keeps the one the links step set", *p.MTU)
	}
	if len(p.IPAM.Addresses) != 1 || p.IPAM.Addresses[0].Address != "10.0.17.9/20" || p.IPAM.Addresses[0].Gateway != "10.0.16.1" {
		t.Errorf("addresses %+v, want the ENI's primary 10.0.17.9 on the subnet's /20 via 10.0.16.1", p.IPAM.Addresses)
	}
	if len(p.IPAM.Routes) != 1 || p.IPAM.Routes[0].Dst != "0.0.0.0/0" || p.IPAM.Routes[0].GW != "10.0.16.1" || p.IPAM.Routes[0].Priority != HostDeviceRouteMetric {
		t.Errorf("routes %+v, want the default via 10.0.16.1 at metric %d", p.IPAM.Routes, HostDeviceRouteMetric)
	}
}

func TestHostDeviceWithoutMACOrPrimaryIsATypedError(t *testing.T) {
	noMAC, outside := wholeENI(), wholeENI()
	noMAC.MAC = ""
	outside.PrimaryIP = netip.MustParseAddr("10.0.40.9")
	for want, e := range map[string]Network{"no MAC": noMAC, "10.0.40.9 is not an IPv4 address in subnet 10.0.16.0/20": outside} {
		_, err := Build(e, Options{})
		var ce *Error
		if !errors.As(err, &ce) || ce.Interface != "upf" || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want *Error for interface upf saying %q", err, want)
		}
	}
}

// TestWholeENIPoolConflistNamesNoDevice: a whole-ENI pool's members build
// one conflist, named like the pool, that libcni takes; it names neither a
// device nor an address (Multus adds the allocated PCI address), runs
// under the guard with the pool's resource, declares the capabilities
// Multus passes the device by, and asks nodeprep-ipam for the device's
// ENI's address with a default route behind the pod's eth0.
func TestWholeENIPoolConflistNamesNoDevice(t *testing.T) {
	var built [][]byte
	for _, name := range []string{"upf0", "upf1"} {
		e := wholeENI()
		e.Config.Name, e.Config.ResourceName, e.Resource = name, "upf_pool", "amazon.com/upf_pool"
		if name == "upf1" {
			e.MAC, e.PrimaryIP = "0a:1b:2c:3d:4e:60", netip.MustParseAddr("10.0.17.30")
		}
		data, err := Build(e, Options{})
		if err != nil {
			t.Fatal(err)
		}
		built = append(built, data)
	}
	if string(built[0]) != string(built[1]) {
		t.Fatalf("pool members build different conflists:\n%s\n%s", built[0], built[1])
	}
	data := built[0]
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("libcni rejects the conflist: %v\n%s", err, data)
	}
	if list.Name != "upf-pool" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != DeviceIPAM || list.Plugins[0].Network.IPAM.Type != DeviceIPAM {
		t.Fatalf("conflist %s", data)
	}
	if caps := list.Plugins[0].Network.Capabilities; !caps["deviceID"] || !caps["CNIDeviceInfoFile"] {
		t.Errorf("capabilities %v: Multus passes the device only to a plugin that declares deviceID", caps)
	}
	var p struct {
		Delegate     string `json:"delegate"`
		ResourceName string `json:"resourceName"`
		WholeENIPool bool   `json:"wholeENIPool"`
		IPAM         struct {
			Routes []struct {
				Dst      string `json:"dst"`
				GW       string `json:"gw"`
				Priority int    `json:"priority"`
			} `json:"routes"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
		t.Fatal(err)
	}
	if p.Delegate != "host-device" || p.ResourceName != "amazon.com/upf_pool" || !p.WholeENIPool {
		t.Errorf("guard %+v, want host-device for resource amazon.com/upf_pool as a whole-ENI pool", p)
	}
	if len(p.IPAM.Routes) != 1 || p.IPAM.Routes[0].Dst != "0.0.0.0/0" || p.IPAM.Routes[0].GW != "" || p.IPAM.Routes[0].Priority != HostDeviceRouteMetric {
		t.Errorf("routes %+v, want the default via the device's VPC router (no gw: nodeprep-ipam fills it) at metric %d", p.IPAM.Routes, HostDeviceRouteMetric)
	}
	for _, node := range []string{"pciBusID", `"deviceID": "`, "hwaddr", "10.0.", "0a:1b"} {
		if strings.Contains(string(data), node) {
			t.Errorf("pool conflist carries %q, which depends on the device allocated:\n%s", node, data)
		}
	}
}

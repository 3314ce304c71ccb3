// Package cni runs the bundle's real CNI plugins through libcni: it builds the
// bundle (test/cnibundle/build.sh, cached), installs it with nodeprep's own
// installer, and does ADD, CHECK and DEL of host-device and macvlan against a
// network namespace. It needs root; veth and macvlan must be available.
package cni

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
)

// Names carry this package's prefix so they never clash with other tests.
const prefix = "cnie2e"

// bundleDir builds (or finds in the cache) the CNI bundle and returns it.
func bundleDir(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "test/cnibundle/build.sh"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	t.Logf("CNI bundle %s ready in %v", dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// installBundle installs the bundle with nodeprep's installer into a fresh
// root, the way the cni step does on a node, and returns the bin dir.
func installBundle(t *testing.T, built string) string {
	t.Helper()
	root := hostfs.New(t.TempDir())
	const hostBundle = "/opt/nodeprep/cni"
	version := filepath.Base(built)
	if err := root.MkdirAll(hostBundle, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink to the built bundle keeps the test from copying 90 MB twice.
	if err := os.Symlink(built, hostfstest.Path(t, root, hostBundle+"/"+version)); err != nil {
		t.Fatal(err)
	}
	b, err := cnibundle.Open(root, hostBundle)
	if err != nil {
		t.Fatal(err)
	}
	// Everything the bundle carries, as a config listing all plugins would.
	var names []string
	for name := range b.Sums {
		names = append(names, name)
	}
	slices.Sort(names)
	start := time.Now()
	res, err := b.Install(root, "/opt/cni/bin", names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("installed %d binaries (%s) in %v", len(res.Installed), strings.Join(res.Installed, ","), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	res, err = b.Install(root, "/opt/cni/bin", names)
	if err != nil || len(res.Installed) != 0 {
		t.Fatalf("second install changed %v, %v", res.Installed, err)
	}
	t.Logf("second install (verify only, no change) in %v", time.Since(start).Round(time.Millisecond))
	return hostfstest.Path(t, root, "/opt/cni/bin")
}

// newNetNS creates a named network namespace and returns its path.
func newNetNS(t *testing.T, name string) (string, netns.NsHandle) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	_ = netns.DeleteNamed(name)
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		_ = netns.DeleteNamed(name)
	})
	return filepath.Join("/var/run/netns", name), ns
}

func addVeth(t *testing.T, name, peer string) netlink.Link {
	t.Helper()
	_ = netlink.LinkDel(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	for _, n := range []string{name, peer} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and links and runs CNI plugins")
	}
}

// linkInNS returns the named link in ns and its IPv4 addresses.
func linkInNS(t *testing.T, ns netns.NsHandle, name string) (netlink.Link, []string, error) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, nil, err
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.IPNet.String())
	}
	return l, out, nil
}

type attachment struct {
	name    string
	ifName  string
	address string
	conf    string
	check   func(t *testing.T, l netlink.Link)
	// repeatDel: the CNI spec asks DEL to succeed when repeated. host-device
	// v1.6.2 fails a second DEL once the device is back on the host (it looks
	// for it in the container), so only the others are held to it.
	repeatDel bool
}

func TestRealPluginsAddCheckDel(t *testing.T) {
	requireRoot(t)
	binDir := installBundle(t, bundleDir(t))

	nsPath, ns := newNetNS(t, fmt.Sprintf("%s-%d", prefix, os.Getpid()))
	hostDev := addVeth(t, prefix+"hd0", prefix+"hd1")
	hostDevMAC := hostDev.Attrs().HardwareAddr.String()
	addVeth(t, prefix+"mv0", prefix+"mv1")
	// The links step gives each ENI its logical name as an altname, and the
	// rendered NADs use it as master: the plugins must resolve altnames.
	alt := addVeth(t, prefix+"al0", prefix+"al1")
	if err := netlink.LinkAddAltName(alt, prefix+"-media"); err != nil {
		t.Fatalf("add altname: %v", err)
	}
	hostLocalDir := t.TempDir()

	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	cases := []attachment{
		{
			name: "host-device", ifName: "net1", address: "192.0.2.10/24",
			conf: `{"cniVersion": "1.0.0", "name": "` + prefix + `-hd", "plugins": [{
				"type": "host-device", "device": "` + prefix + `hd0",
				"ipam": {"type": "static", "addresses": [{"address": "192.0.2.10/24", "gateway": "192.0.2.1"}]}}]}`,
			check: func(t *testing.T, l netlink.Link) {
				if l.Type() != "veth" || l.Attrs().HardwareAddr.String() != hostDevMAC {
					t.Errorf("net1 is %s %s, want the host's veth %s", l.Type(), l.Attrs().HardwareAddr, hostDevMAC)
				}
			},
		},
		{
			name: "macvlan", ifName: "net2", address: "198.51.100.10/24", repeatDel: true,
			conf: `{"cniVersion": "1.0.0", "name": "` + prefix + `-mv", "plugins": [{
				"type": "macvlan", "master": "` + prefix + `mv0", "mode": "bridge",
				"ipam": {"type": "static", "addresses": [{"address": "198.51.100.10/24"}]}}]}`,
			check: func(t *testing.T, l netlink.Link) {
				if l.Type() != "macvlan" || l.(*netlink.Macvlan).Mode != netlink.MACVLAN_MODE_BRIDGE {
					t.Errorf("net2 is %s, want a bridge-mode macvlan", l.Type())
				}
			},
		},
	}
	cases = append(cases, attachment{
		name: "macvlan-on-altname-host-local", ifName: "net3", address: "203.0.113.128/24", repeatDel: true,
		// The top half of the subnet, as internal/nad renders it.
		conf: `{"cniVersion": "1.0.0", "name": "` + prefix + `-al", "plugins": [{
			"type": "macvlan", "master": "` + prefix + `-media", "mode": "bridge",
			"ipam": {"type": "host-local", "dataDir": "` + hostLocalDir + `", "ranges": [[{
				"subnet": "203.0.113.0/24", "rangeStart": "203.0.113.128", "rangeEnd": "203.0.113.254", "gateway": "203.0.113.1"}]]}}]}`,
		check: func(t *testing.T, l netlink.Link) {
			if l.Attrs().ParentIndex != alt.Attrs().Index {
				t.Errorf("net3's parent is link %d, want %s (%d)", l.Attrs().ParentIndex, alt.Attrs().Name, alt.Attrs().Index)
			}
		},
	})
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := libcni.ConfListFromBytes([]byte(c.conf))
			if err != nil {
				t.Fatal(err)
			}
			rt := &libcni.RuntimeConf{ContainerID: prefix + "-" + c.name, NetNS: nsPath, IfName: c.ifName}

			start := time.Now()
			result, err := cniConfig.AddNetworkList(ctx, list, rt)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			addTook := time.Since(start)
			l, addrs, err := linkInNS(t, ns, c.ifName)
			if err != nil {
				t.Fatalf("after ADD, %s missing in the namespace: %v (result %v)", c.ifName, err, result)
			}
			if len(addrs) != 1 || addrs[0] != c.address {
				t.Fatalf("after ADD, %s has %v, want %s", c.ifName, addrs, c.address)
			}
			if l.Attrs().OperState != netlink.OperUp && l.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("%s is down", c.ifName)
			}
			c.check(t, l)

			if err := cniConfig.CheckNetworkList(ctx, list, rt); err != nil {
				t.Errorf("CHECK: %v", err)
			}

			start = time.Now()
			if err := cniConfig.DelNetworkList(ctx, list, rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			delTook := time.Since(start)
			if _, _, err := linkInNS(t, ns, c.ifName); err == nil {
				t.Fatalf("after DEL, %s still in the namespace", c.ifName)
			}
			if c.repeatDel {
				if err := cniConfig.DelNetworkList(ctx, list, rt); err != nil {
					t.Errorf("second DEL: %v", err)
				}
			}
			t.Logf("%s ADD %v, DEL %v", c.name, addTook.Round(time.Microsecond), delTook.Round(time.Microsecond))
		})
	}

	// host-device gives the device back to the host under its own name.
	if l, err := netlink.LinkByName(prefix + "hd0"); err != nil || l.Attrs().HardwareAddr.String() != hostDevMAC {
		t.Fatalf("host-device not returned to the host after DEL: %v", err)
	}
}

// TestBinariesSpeakTheWrittenVersions runs each installed binary's VERSION
// command: the cniVersion nodeprep writes into 00-multus.conf (the VPC CNI's,
// 0.4.0 or 1.0.0) and into NADs (1.0.0) must be one the binary supports.
func TestBinariesSpeakTheWrittenVersions(t *testing.T) {
	requireRoot(t)
	built := bundleDir(t)
	binDir := installBundle(t, built)
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	plugins := []string{"multus", "host-device", "macvlan", "ipvlan", "static", "host-local"}
	if _, err := os.Stat(filepath.Join(built, "whereabouts")); err == nil {
		plugins = append(plugins, "whereabouts")
	}
	for _, p := range plugins {
		info, err := cniConfig.GetVersionInfo(context.Background(), p)
		if err != nil {
			t.Errorf("%s VERSION: %v", p, err)
			continue
		}
		supported := info.SupportedVersions()
		for _, want := range []string{"0.4.0", "1.0.0"} {
			if !slices.Contains(supported, want) {
				t.Errorf("%s does not support cniVersion %s (supports %v)", p, want, supported)
			}
		}
	}
}

// BenchmarkMacvlanAddDel measures one ADD+DEL pair of the real macvlan plugin
// with static IPAM: the per-pod cost the bundle's plugins add.
func BenchmarkMacvlanAddDel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	built := strings.TrimSpace(mustOutput(b, "bash", "../../../test/cnibundle/build.sh"))
	binDir := built // the bundle dir itself holds the executables
	nsName := fmt.Sprintf("%s-b%d", prefix, os.Getpid())
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	ns, err := netns.NewNamed(nsName)
	if err != nil {
		b.Fatal(err)
	}
	_ = netns.Set(orig)
	orig.Close()
	runtime.UnlockOSThread()
	defer func() { ns.Close(); _ = netns.DeleteNamed(nsName) }()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: prefix + "bm0"}, PeerName: prefix + "bm1"}
	if err := netlink.LinkAdd(veth); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if l, err := netlink.LinkByName(prefix + "bm0"); err == nil {
			_ = netlink.LinkDel(l)
		}
	}()
	if l, err := netlink.LinkByName(prefix + "bm0"); err == nil {
		_ = netlink.LinkSetUp(l)
	}
	list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion": "1.0.0", "name": "` + prefix + `-bm", "plugins": [{
		"type": "macvlan", "master": "` + prefix + `bm0", "mode": "bridge",
		"ipam": {"type": "static", "addresses": [{"address": "198.51.100.20/24"}]}}]}`))
	if err != nil {
		b.Fatal(err)
	}
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{binDir}, b.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: prefix + "-bench", NetNS: filepath.Join("/var/run/netns", nsName), IfName: "net1"}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cniConfig.AddNetworkList(ctx, list, rt); err != nil {
			b.Fatal(err)
		}
		if err := cniConfig.DelNetworkList(ctx, list, rt); err != nil {
			b.Fatal(err)
		}
	}
}

func mustOutput(b *testing.B, name string, args ...string) string {
	b.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

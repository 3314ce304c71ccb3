package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// TestHostLocalLeasesStayInsideTheENIAddresses runs the real host-local
// plugin on the IPAM of a node-local conflist: every lease is an address
// EC2 assigned to the ENI (never its primary), the pool holds exactly those,
// a DEL releases its lease, and the conflist a re-run writes is the same, so
// no lease is orphaned outside the ranges.
func TestHostLocalLeasesStayInsideTheENIAddresses(t *testing.T) {
	requireRoot(t)
	built := bundleDir(t)
	// CNI_NETNS must differ from the plugin's own namespace.
	nsPath, _ := newNetNS(t, fmt.Sprintf("%s-hl%d", prefix, os.Getpid()))
	hostLocal := filepath.Join(built, "host-local")
	e := mediaNetwork(eni.Attachment{
		Subnet:       netip.MustParsePrefix("10.0.16.0/20"),
		PrimaryIP:    netip.MustParseAddr("10.0.18.35"),
		SecondaryIPs: []netip.Addr{netip.MustParseAddr("10.0.17.200"), netip.MustParseAddr("10.0.31.254")},
		IPv4Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.18.32/28")},
	})
	assigned := map[netip.Addr]bool{}
	for _, a := range e.SecondaryIPs {
		assigned[a] = true
	}
	for a := e.IPv4Prefixes[0].Addr(); e.IPv4Prefixes[0].Contains(a); a = a.Next() {
		assigned[a] = true
	}
	delete(assigned, e.PrimaryIP)

	conflist, err := netconf.Build(e, netconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	stdin := pluginConfig(t, conflist, dataDir)
	ctx := context.Background()
	call := func(cmd, id string) (*current.Result, error) {
		args := &invoke.Args{Command: cmd, ContainerID: id, NetNS: nsPath, IfName: "net1", Path: built}
		if cmd == "DEL" {
			return nil, invoke.ExecPluginWithoutResult(ctx, hostLocal, stdin, args, nil)
		}
		r, err := invoke.ExecPluginWithResult(ctx, hostLocal, stdin, args, nil)
		if err != nil {
			return nil, err
		}
		return current.NewResultFromResult(r)
	}
	leased := map[netip.Addr]string{}
	for i := 0; ; i++ {
		id := fmt.Sprintf("pod%d", i)
		r, err := call("ADD", id)
		if err != nil {
			if len(leased) != len(assigned) {
				t.Fatalf("pool exhausted after %d leases, EC2 assigned %d: %v", len(leased), len(assigned), err)
			}
			break
		}
		if len(r.IPs) != 1 {
			t.Fatalf("ADD %s: %d IPs", id, len(r.IPs))
		}
		a, _ := netip.AddrFromSlice(r.IPs[0].Address.IP.To4())
		if !assigned[a] {
			t.Fatalf("lease %s is not an address EC2 assigned to the ENI for pods", a)
		}
		if ones, _ := r.IPs[0].Address.Mask.Size(); ones != 20 || r.IPs[0].Gateway.String() != "10.0.16.1" {
			t.Errorf("lease %s: /%d via %s, want the subnet's /20 via 10.0.16.1", a, ones, r.IPs[0].Gateway)
		}
		if prev, dup := leased[a]; dup {
			t.Fatalf("%s leased to %s and %s", a, prev, id)
		}
		leased[a] = id
		if i > len(assigned) {
			t.Fatalf("more leases than addresses")
		}
	}
	// DEL releases the lease: the next ADD gets that very address.
	var freed netip.Addr
	for a, id := range leased {
		freed = a
		if _, err := call("DEL", id); err != nil {
			t.Fatal(err)
		}
		break
	}
	r, err := call("ADD", "after-del")
	if err != nil {
		t.Fatalf("ADD after DEL: %v", err)
	}
	if got, _ := netip.AddrFromSlice(r.IPs[0].Address.IP.To4()); got != freed {
		t.Errorf("ADD after DEL got %s, want the released %s", got, freed)
	}
	// A re-run writes the same conflist: the leases stay inside its ranges.
	again, err := netconf.Build(e, netconf.Options{})
	if err != nil || string(again) != string(conflist) {
		t.Errorf("re-run conflist differs (%v):\n%s\n%s", err, conflist, again)
	}
}

// pluginConfig is the config libcni hands the ipvlan plugin (and it
// host-local) for the conflist's first plugin, with leases under dataDir.
func pluginConfig(t *testing.T, conflist []byte, dataDir string) []byte {
	t.Helper()
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &list); err != nil {
		t.Fatal(err)
	}
	p := list.Plugins[0]
	p["cniVersion"], p["name"] = list.CNIVersion, list.Name
	p["ipam"].(map[string]any)["dataDir"] = dataDir
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mediaNetwork is the "media" interface with the ENI facts a test gives it.
func mediaNetwork(a eni.Attachment) netconf.Network {
	return netconf.Network{Config: api.Interface{Name: "media"}, Attachment: a}
}

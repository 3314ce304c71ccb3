package doctor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/hostfs/hostfstest"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/internal/multus/multustest"
	"github.com/nodeprep/nodeprep/internal/state"
)

const vpcCNIConflist = `{"cniVersion":"1.0.0","name":"aws-cni","plugins":[{"name":"aws-cni","type":"aws-cni"},{"type":"portmap","capabilities":{"portMappings":true}}]}`

// cniNode has the AMI's bundle, the plugins installed from it, the VPC
// CNI's conflist, kubelet's kubeconfig and 00-multus.conf as a run writes them.
func cniNode(t testing.TB) *Node {
	t.Helper()
	root := hostfs.New(t.TempDir())
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec: {}\n")})
	if err != nil {
		t.Fatal(err)
	}
	installCNI(t, root, cfg.Spec.Multus, func(name string) []byte { return []byte(name + "-binary") })
	return &Node{Root: root, Config: cfg}
}

// installCNI lays out the AMI's bundle with each wanted plugin's content,
// installs it as the run does, and writes the VPC CNI's conflist, kubelet's
// kubeconfig and the Multus files the run renders from them.
func installCNI(t testing.TB, root hostfs.Root, m api.Multus, content func(name string) []byte) {
	t.Helper()
	var sums []string
	for _, name := range cnibundle.Wanted(m) {
		data := content(name)
		if _, err := root.WriteFile(m.BundleDir+"/v1/"+name, data, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		sums = append(sums, hex.EncodeToString(sum[:])+"  "+name)
	}
	if _, err := root.WriteFile(m.BundleDir+"/v1/"+cnibundle.ManifestName, []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle, err := cnibundle.Open(root, m.BundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Install(root, m.BinDir, cnibundle.Wanted(m)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.WriteFile(multus.DefaultKubeletKubeconfig, []byte(multustest.KubeletKubeconfig(multustest.Server, multustest.CAFile, "aws-iam-authenticator", multustest.ClusterArgs...)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := root.WriteFile(m.ClusterNetwork, []byte(vpcCNIConflist), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := multus.Files(root, m, multus.Options{KubeletKubeconfig: multus.DefaultKubeletKubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := root.WriteFile(f.Path, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

func cniFindings(n *Node) []Finding {
	return Run(context.Background(), n, []Check{{Name: "cni-binaries", Run: checkCNIBinaries}, {Name: "multus-conf", Run: checkMultusConf}}).Findings
}

func TestCNIHealthy(t *testing.T) {
	fs := cniFindings(cniNode(t))
	if len(fs) != 2 {
		t.Fatalf("%+v", fs)
	}
	for _, f := range fs {
		if f.Verdict != OK {
			t.Errorf("%s: %s %s", f.Check, f.Verdict, f.Evidence)
		}
	}
}

func TestCNIFaults(t *testing.T) {
	for _, tc := range []struct {
		name, check, evidence string
		inject                func(t *testing.T, n *Node)
	}{
		{"a plugin binary replaced", "cni-binaries", "differs from bundle v1's checksum", func(t *testing.T, n *Node) {
			p, _ := n.Root.Path(n.Config.Spec.Multus.BinDir + "/multus")
			if err := os.WriteFile(p, []byte("someone else's multus"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"the VPC CNI moved to another cniVersion", "multus-conf", "differs from what the VPC CNI's conflist", func(t *testing.T, n *Node) {
			if _, err := n.Root.WriteFile(n.Config.Spec.Multus.ClusterNetwork, []byte(strings.Replace(vpcCNIConflist, `"1.0.0"`, `"0.4.0"`, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := cniNode(t)
			tc.inject(t, n)
			var hit bool
			for _, f := range cniFindings(n) {
				if f.Check == tc.check && f.Verdict == Fail && strings.Contains(f.Evidence, tc.evidence) {
					hit = true
					t.Logf("%s  %s  %s  %s\n    fix: %s", f.Verdict, f.Check, f.Subject, f.Evidence, f.Fix)
				} else if f.Verdict != OK {
					t.Errorf("unrelated %s %s: %s", f.Verdict, f.Check, f.Evidence)
				}
			}
			if !hit {
				t.Fatalf("no fail from %s: %+v", tc.check, cniFindings(n))
			}
		})
	}
}

// The watcher's cache of the binaries' hashes does not hide a change:
// round after round on the same cache, a binary rewritten in place (same
// size, mtime set back), one replaced and one truncated each fail.
func TestCNIBinariesCachedAcrossRoundsSeeChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"rewritten in place, mtime set back", func(t *testing.T, p string) { hostfstest.RewriteInPlace(t, p) }},
		{"replaced", func(t *testing.T, p string) {
			if err := os.WriteFile(p+".new", []byte("multus-binarY"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := cniNode(t)
			// The watcher started long after the install.
			n.CNIHashes = &cnibundle.HashCache{Now: func() time.Time { return time.Now().Add(time.Hour) }}
			check := []Check{{Name: "cni-binaries", Run: checkCNIBinaries}}
			for range 2 {
				if r := Run(context.Background(), n, check); r.Worst() != OK {
					t.Fatalf("before the change: %+v", r.Findings)
				}
			}
			p := hostfstest.Path(t, n.Root, n.Config.Spec.Multus.BinDir+"/"+cnibundle.Multus)
			hostfstest.AfterNextStamp(t, p)
			tc.change(t, p)
			var failed []string
			for _, f := range Run(context.Background(), n, check).Findings {
				if f.Verdict == Fail {
					failed = append(failed, f.Subject)
				}
			}
			if strings.Join(failed, ",") != cnibundle.Multus {
				t.Fatalf("after the change: failing %q, want multus", failed)
			}
		})
	}
}

// The device plugin check counts a whole-ENI pool's NICs with the bound
// DPDK devices: a file without the pool fails naming the pool's device,
// and the file the run renders with it passes.
func TestDevicePluginCheckCountsWholeENIPoolMembers(t *testing.T) {
	f := newFixture(t)
	cfg := f.node.Config
	cfg.Spec.Interfaces = append(cfg.Spec.Interfaces, api.Interface{Name: "upf0", SubnetID: "subnet-0123456789abcdef0",
		Driver: api.DriverKernel, PodAttachment: api.PodAttachmentHostDevice, ResourceName: "upf_pool"})
	const bdfPool = "0000:00:09.0"
	f.node.State.Interfaces["upf0"] = state.Interface{Name: "upf0", Link: link.Info{IfName: "eth9", MAC: "02:00:00:00:00:09", PCIAddress: bdfPool}}
	got := checkDevicePlugin(context.Background(), f.node)
	if len(got) != 1 || got[0].Verdict != Fail || !strings.Contains(got[0].Evidence, bdfPool) {
		t.Fatalf("file without the pool: %+v, want a failure naming %s", got, bdfPool)
	}
	list, err := bootstrap.DevicePluginResources(cfg, f.node.State.Interfaces)
	if err != nil {
		t.Fatal(err)
	}
	data, err := deviceplugin.Render(cfg.Spec.DevicePlugin.ResourcePrefix, list)
	if err != nil {
		t.Fatal(err)
	}
	f.write(cfg.Spec.DevicePlugin.ConfigPath, string(data))
	got = checkDevicePlugin(context.Background(), f.node)
	if len(got) != 1 || got[0].Verdict != OK || !strings.Contains(got[0].Evidence, bdfPool) {
		t.Fatalf("file with the pool: %+v, want ok listing %s", got, bdfPool)
	}
	t.Logf("%s %s", got[0].Verdict, got[0].Evidence)
}

// bundleSizes are the sizes of the plugins in the CNI bundle the boot bed
// builds (plugins v1.10.0, multus v4.1.4, nodeprep-ipam), the ones a
// default config installs: 72 MB, multus 41 of it.
var bundleSizes = map[string]int{
	cnibundle.Multus: 40857762, cnibundle.NodeprepIPAM: 9523362,
	"host-device": 5345442, "ipvlan": 5378210, "macvlan": 5406882, "static": 2601122, "host-local": 3158178,
}

// bundleNode is the healthy fake-kernel node with Multus installed from a
// bundle of the real plugins' sizes: what a watch round reads on the bed.
func bundleNode(b testing.TB) *fixture {
	f := newFixture(b)
	install := true
	f.node.Config.Spec.Multus.Install = &install
	rng := rand.New(rand.NewPCG(1, 2))
	installCNI(b, f.h.Root, f.node.Config.Spec.Multus, func(name string) []byte {
		size, ok := bundleSizes[name]
		if !ok {
			b.Fatalf("no size for plugin %s", name)
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		return data
	})
	return f
}

// BenchmarkWatchRound is one event-triggered watch round's checks (the
// cheap ones) on a node with a real-sized bundle; each sub-benchmark is
// one of those checks alone, to see which one a round waits on.
func BenchmarkWatchRound(b *testing.B) {
	f := bundleNode(b)
	cheap := Cheap(Checks())
	// The watcher's cache, its clock past the install as on the bed.
	cached := *f.node
	cached.CNIHashes = &cnibundle.HashCache{Now: func() time.Time { return time.Now().Add(time.Minute) }}
	// Its first round, the one at the watcher's start, hashes everything.
	if r := Run(context.Background(), &cached, cheap); r.Worst() != OK {
		b.Fatal(r.Findings)
	}
	b.Run("cheap-cached", func(b *testing.B) {
		for b.Loop() {
			if r := Run(context.Background(), &cached, cheap); r.Worst() != OK {
				b.Fatal(r.Findings)
			}
		}
	})
	b.Run("cni-binaries-cached", func(b *testing.B) {
		for b.Loop() {
			if r := Run(context.Background(), &cached, []Check{{Name: "cni-binaries", Run: checkCNIBinaries}}); r.Worst() != OK {
				b.Fatal(r.Findings)
			}
		}
	})
	b.Run("cheap", func(b *testing.B) {
		for b.Loop() {
			if r := Run(context.Background(), f.node, cheap); r.Worst() != OK {
				b.Fatal(r.Findings)
			}
		}
	})
	for _, c := range cheap {
		b.Run(c.Name, func(b *testing.B) {
			for b.Loop() {
				if r := Run(context.Background(), f.node, []Check{c}); r.Worst() != OK {
					b.Fatal(r.Findings)
				}
			}
		})
	}
}

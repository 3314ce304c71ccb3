package watch

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/internal/state"
)

const cfgYAML = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
    - name: n2
      subnetID: subnet-0a1b2c3d4e5f60718
      secondaryIPCount: 2
    - name: n3
      pciAddress: "0000:00:06.0"
      driver: vfio-pci
  multus: {install: false}
`

type sink struct {
	reports  int
	drifts   []Drift
	standing []Drift // the last round's
	calls    []string
}

func (s *sink) Report(_ context.Context, _ doctor.Report, standing []Drift) {
	s.reports++
	s.standing = standing
	s.calls = append(s.calls, "report")
}
func (s *sink) Drifted(_ context.Context, d Drift) {
	s.drifts = append(s.drifts, d)
	s.calls = append(s.calls, "drift "+d.Finding.Check)
}

// podResources is a fake kubelet pod-resources server: one pod holds the
// devices given.
type podResources struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	resource string
	devices  []string
}

func (p *podResources) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	return &podresourcesv1.ListPodResourcesResponse{PodResources: []*podresourcesv1.PodResources{{
		Name: "upf-0", Namespace: "telco",
		Containers: []*podresourcesv1.ContainerResources{{Name: "dpdk", Devices: []*podresourcesv1.ContainerDevices{{ResourceName: p.resource, DeviceIds: p.devices}}}},
	}}}, nil
}

func servePodResources(t *testing.T, srv *podResources) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(g, srv)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return sock
}

// node is a prepared node: n2 a kernel ENI with its conflist, n3 a DPDK
// device that something has rebound to ena.
func node(t *testing.T) (*doctor.Node, *pcitest.Host) {
	t.Helper()
	h := pcitest.New(t)
	h.AddNIC(pcitest.NIC{BDF: "0000:00:06.0", Driver: "ena", IfName: "eth3", MAC: "02:00:00:00:00:06"})
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: []byte(cfgYAML)})
	if err != nil {
		t.Fatal(err)
	}
	st := &state.File{Version: state.Version, InstanceID: "i-0123456789abcdef0", Interfaces: map[string]state.Interface{
		"n2": {Name: "n2", ENI: eni.Attachment{Interface: "n2", ENIID: "eni-0123456789abcdef0", MAC: "02:00:00:00:00:02", DeviceIndex: 1,
			PrimaryIP: netip.MustParseAddr("10.0.4.10"), Subnet: netip.MustParsePrefix("10.0.4.0/24"),
			SecondaryIPs: []netip.Addr{netip.MustParseAddr("10.0.4.11"), netip.MustParseAddr("10.0.4.12")}},
			Link: link.Info{IfName: "eth2", MAC: "02:00:00:00:00:02"}},
		"n3": {Name: "n3", Device: pci.Binding{Name: "n3", Device: pci.Device{Address: "0000:00:06.0", Vendor: "1d0f", Device: "ec20", Driver: "vfio-pci"}, Driver: api.DriverVFIOPCI}},
	}}
	return &doctor.Node{Root: h.Root, Config: cfg, State: st}, h
}

func conflistPath(n *doctor.Node) string {
	return netconf.Path(n.Config.Spec.Multus.NetworkConfDir, "n2")
}

func TestDeletedConflistIsReportedAndRewritten(t *testing.T) {
	n, _ := node(t)
	w := &Watcher{Node: n, Checks: []doctor.Check{conflistCheck()}, Sink: &sink{}}
	// First round (start): the conflist is missing from the beginning, a
	// failure, so it is reported and repaired at once.
	ds := w.Round(context.Background(), Trigger{Source: "start"})
	if len(ds) == 0 {
		t.Fatal("start: nothing reported")
	}
	for _, d := range ds {
		if d.Repair != "repaired" {
			t.Fatalf("start: %+v", d)
		}
	}
	if _, err := n.Root.ReadFile(conflistPath(n)); err != nil {
		t.Fatalf("not rewritten: %v", err)
	}
	if ds := w.Round(context.Background(), Trigger{Source: "inotify"}); len(ds) != 0 {
		t.Fatalf("a healthy round reported %+v", ds)
	}
	p, _ := n.Root.Path(conflistPath(n))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	ds = w.Round(context.Background(), Trigger{Source: "inotify", Detail: "REMOVE " + p})
	if len(ds) != 1 || ds[0].Finding.Check != "conflist" || ds[0].Repair != "repaired" || !strings.Contains(ds[0].Finding.Evidence, "no such file") {
		t.Fatalf("after delete: %+v", ds)
	}
	if _, err := n.Root.ReadFile(conflistPath(n)); err != nil {
		t.Fatalf("not rewritten: %v", err)
	}
}

func conflistCheck() doctor.Check {
	for _, c := range doctor.Checks() {
		if c.Name == "conflist" {
			return c
		}
	}
	panic("no conflist check")
}

func driverCheck() doctor.Check {
	for _, c := range doctor.Checks() {
		if c.Name == "driver" {
			return c
		}
	}
	panic("no driver check")
}

func TestDeviceHeldByAPodIsNeverRebound(t *testing.T) {
	n, h := node(t)
	sock := servePodResources(t, &podResources{resource: "amazon.com/" + n.Config.Spec.Interfaces[1].ResourceName, devices: []string{"0000:00:06.0"}})
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Holders: PodResources{Socket: sock}}
	ds := w.Round(context.Background(), Trigger{Source: "uevent", Detail: "bind /devices/pci0000:00/0000:00:06.0"})
	if len(ds) != 1 || ds[0].Repair != "refused" || !strings.Contains(ds[0].Why, "telco/upf-0") {
		t.Fatalf("got %+v", ds)
	}
	if d := h.Driver("0000:00:06.0"); d != "ena" {
		t.Fatalf("the watcher moved the device to %s", d)
	}
}

func TestDeviceHeldByNoPodIsReportedNotRebound(t *testing.T) {
	n, h := node(t)
	sock := servePodResources(t, &podResources{resource: "amazon.com/other", devices: []string{"0000:00:09.0"}})
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Holders: PodResources{Socket: sock}}
	ds := w.Round(context.Background(), Trigger{Source: "uevent"})
	if len(ds) != 1 || ds[0].Repair != "not repaired" || !strings.Contains(ds[0].Why, "held by no pod") {
		t.Fatalf("got %+v", ds)
	}
	if h.Driver("0000:00:06.0") != "ena" {
		t.Fatal("moved")
	}
}

// The sources deliver the event itself: each test waits on the trigger,
// never on a clock.
func TestFileSourceReportsAWrite(t *testing.T) {
	dir := t.TempDir()
	out := make(chan Trigger, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Files(ctx, []string{dir}, out); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := os.WriteFile(filepath.Join(dir, "10-n2.conflist"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := <-out
	if tr.Source != "inotify" || !strings.Contains(tr.Detail, "10-n2.conflist") {
		t.Fatalf("got %+v", tr)
	}
	t.Logf("inotify trigger after %s", time.Since(start))
}

func TestLinkSourceReportsANewLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	out := make(chan Trigger, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Links(ctx, &ns, out); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	start := time.Now()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth9"}, PeerName: "eth9p"}); err != nil {
		t.Fatal(err)
	}
	for tr := range out {
		if tr.Source == "netlink" && strings.Contains(tr.Detail, "eth9") {
			t.Logf("netlink trigger after %s: %s", time.Since(start), tr.Detail)
			return
		}
	}
}

func TestRunCoalescesABurstIntoOneRound(t *testing.T) {
	n, _ := node(t)
	s := &sink{}
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Sink: s}
	in := make(chan Trigger, 4)
	in <- Trigger{Source: "netlink", Detail: "del eth3"}
	in <- Trigger{Source: "uevent", Detail: "unbind"}
	in <- Trigger{Source: "uevent", Detail: "bind"}
	close(in)
	if err := w.Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	// The start round and one for the burst.
	if s.reports != 2 {
		t.Fatalf("%d rounds", s.reports)
	}
}

// A refusal is part of every report while the device stays off its
// driver, not only of the round that saw the change, and leaves the
// report once the finding is ok.
func TestRefusalStandsUntilTheDeviceIsBack(t *testing.T) {
	n, h := node(t)
	sock := servePodResources(t, &podResources{resource: "amazon.com/" + n.Config.Spec.Interfaces[1].ResourceName, devices: []string{"0000:00:06.0"}})
	s := &sink{}
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Holders: PodResources{Socket: sock}, Sink: s}
	w.Round(context.Background(), Trigger{Source: "uevent"})
	if len(s.standing) != 1 || s.standing[0].Repair != "refused" {
		t.Fatalf("round of the change: standing %+v", s.standing)
	}
	if ds := w.Round(context.Background(), Trigger{Source: "netlink"}); len(ds) != 0 {
		t.Fatalf("nothing changed, yet %+v", ds)
	}
	if len(s.standing) != 1 || !strings.Contains(s.standing[0].Why, "telco/upf-0") {
		t.Fatalf("a later round: standing %+v", s.standing)
	}
	// n3's record says ena now: the finding is ok.
	in := n.State.Interfaces["n3"]
	in.Device.Driver = api.Driver(h.Driver("0000:00:06.0"))
	n.State.Interfaces["n3"] = in
	n.Config.Spec.Interfaces[1].Driver = in.Device.Driver
	w.Round(context.Background(), Trigger{Source: "uevent"})
	if len(s.standing) != 0 {
		t.Fatalf("finding ok, standing %+v", s.standing)
	}
}

// stuckPodResources accepts List and never answers, like a wedged kubelet.
type stuckPodResources struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
}

func (stuckPodResources) List(ctx context.Context, _ *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A kubelet that never answers does not stall the round: the device is
// reported, not repaired, with kubelet's silence as the reason.
func TestAStuckKubeletDoesNotStallTheWatch(t *testing.T) {
	n, _ := node(t)
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(g, stuckPodResources{})
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Holders: PodResources{Socket: sock, Timeout: 200 * time.Millisecond}}
	done := make(chan []Drift, 1)
	go func() { done <- w.Round(context.Background(), Trigger{Source: "uevent"}) }()
	select {
	case ds := <-done:
		if len(ds) != 1 || ds[0].Repair != "not repaired" || !strings.Contains(ds[0].Why, "DeadlineExceeded") {
			t.Fatalf("got %+v", ds)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the round still waits on kubelet after 30 s")
	}
}

// The drift is told before the round's report: the journal line must not
// wait for the Node condition's round trips to the API server.
func TestDriftIsToldBeforeTheReport(t *testing.T) {
	n, _ := node(t)
	s := &sink{}
	w := &Watcher{Node: n, Checks: []doctor.Check{driverCheck()}, Sink: s}
	w.Round(context.Background(), Trigger{Source: "uevent"})
	if strings.Join(s.calls, ",") != "drift driver,report" {
		t.Fatalf("calls %v, want the drift before the report", s.calls)
	}
}

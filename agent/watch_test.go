package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/metrics"
	"github.com/nodeprep/nodeprep/internal/nodestatus"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/watch"
	"github.com/nodeprep/nodeprep/test/kubeapi"
	"github.com/nodeprep/nodeprep/test/podresources"
)

const heldNodeYAML = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
    - name: n3
      pciAddress: "0000:00:06.0"
      driver: vfio-pci
  multus: {install: false}
`

// A DPDK device a pod holds, rebound to its kernel driver: the Node
// condition and its Event say which pod holds it and that the watch will
// not rebind it, in the round that saw the change and in every later one
// while the device stays off its driver; once it is back, the condition
// no longer says so.
func TestWatchNodeConditionNamesThePodHoldingADevice(t *testing.T) {
	const bdf = "0000:00:06.0"
	h := pcitest.New(t)
	h.SetIOMMU(true)
	h.AddDriver("vfio-pci")
	h.AddNIC(pcitest.NIC{BDF: bdf, Driver: "ena", IfName: "eth3", MAC: "02:00:00:00:00:06", IOMMUGroup: 5})
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: []byte(heldNodeYAML)})
	if err != nil {
		t.Fatal(err)
	}
	st := &state.File{Version: state.Version, InstanceID: "i-0123456789abcdef0", Interfaces: map[string]state.Interface{
		"n3": {Name: "n3", Device: pci.Binding{Name: "n3", Device: pci.Device{Address: bdf, Vendor: "1d0f", Device: "ec20", Driver: "vfio-pci"}, Driver: api.DriverVFIOPCI}},
	}}
	node := &doctor.Node{Root: h.Root, Config: cfg, State: st}

	// kubelet's pod-resources API with the pod holding what the device
	// plugin config for this node lists.
	dp, err := deviceplugin.Render(cfg.Spec.DevicePlugin.ResourcePrefix, []deviceplugin.Resource{{Name: cfg.Spec.Interfaces[0].ResourceName, Devices: []deviceplugin.Device{{Address: bdf}}}})
	if err != nil {
		t.Fatal(err)
	}
	var conf deviceplugin.ResourceConfList
	if err := json.Unmarshal(dp, &conf); err != nil {
		t.Fatal(err)
	}
	srv, err := podresources.FromDevicePlugin(conf, podresources.Pod{Namespace: "default", Name: "dpdk-app", Container: "app"})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := podresources.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = podresources.Serve(ctx, l, srv) }()

	api := kubeapi.New()
	hs := httptest.NewServer(api)
	defer hs.Close()
	client, err := nodestatus.NewClient(&rest.Config{Host: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	const nodeName = "ip-10-0-0-10.ec2.internal"
	checks := doctor.Checks()
	var driver []doctor.Check
	for _, c := range checks {
		if c.Name == "driver" {
			driver = append(driver, c)
		}
	}
	s := &watchSink{log: slog.New(slog.DiscardHandler), root: node.Root, metrics: metrics.NewDoctor(), checks: checks,
		node: &nodestatus.Publisher{Client: client, NodeName: nodeName}}
	w := &watch.Watcher{Node: node, Checks: driver, Holders: watch.PodResources{Socket: sock}, Sink: s}

	says := func(what, msg string) {
		t.Helper()
		for _, want := range []string{"driver n3:", "default/dpdk-app", "not rebinding"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s %q lacks %q", what, msg, want)
			}
		}
	}
	condition := func() string {
		t.Helper()
		n, _ := api.Node(nodeName)
		for _, c := range n.Status.Conditions {
			if c.Type == nodestatus.ConditionType {
				return c.Message
			}
		}
		t.Fatalf("no %s condition: %v", nodestatus.ConditionType, n.Status.Conditions)
		return ""
	}

	ds := w.Round(ctx, watch.Trigger{Source: "uevent", Detail: "bind /devices/pci0000:00/" + bdf})
	if len(ds) != 1 || ds[0].Repair != "refused" {
		t.Fatalf("drifts %+v", ds)
	}
	says("condition", condition())
	evs := api.Events()
	if len(evs) == 0 {
		t.Fatal("no Event")
	}
	says("event", evs[len(evs)-1].Message)

	// Another trigger, nothing changed: the refusal stands.
	if ds := w.Round(ctx, watch.Trigger{Source: "netlink", Detail: "eth2 up"}); len(ds) != 0 {
		t.Fatalf("no change, yet %+v", ds)
	}
	says("condition after an unrelated round", condition())
	if d := h.Driver(bdf); d != "ena" {
		t.Fatalf("the watch moved %s to %s", bdf, d)
	}

	// Back on vfio-pci (nodeprep run, once the pod is drained).
	if err := h.Kernel().WriteAttr("/sys/bus/pci/devices/"+bdf+"/driver_override", "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	if err := h.Kernel().WriteAttr("/sys/bus/pci/drivers/ena/unbind", bdf); err != nil {
		t.Fatal(err)
	}
	if err := h.Kernel().WriteAttr("/sys/bus/pci/drivers_probe", bdf); err != nil {
		t.Fatal(err)
	}
	if d := h.Driver(bdf); d != "vfio-pci" {
		t.Fatalf("fake kernel: %s on %s", bdf, d)
	}
	w.Round(ctx, watch.Trigger{Source: "uevent"})
	if msg := condition(); strings.Contains(msg, "dpdk-app") {
		t.Errorf("device back on vfio-pci, condition still %q", msg)
	}
}

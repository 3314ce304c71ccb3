package eni_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/netconf"
)

// TestRerunLeavesAWholeENIInItsPod: a run of nodeprep while a pod holds a
// hostDevice ENI (the cni-refresh unit re-runs it whenever the VPC CNI's
// conflist changes) must not wait for, or fail on, the NIC host-device moved
// out of the host's namespace; it keeps the ENI's records and conflist.
// Once the pod's DEL gives the link back, the next run readies it again.
func TestRerunLeavesAWholeENIInItsPod(t *testing.T) {
	e := newEnv(t, envSpec{})
	in := e.managed("upf", 1, api.PrivateIPDHCP)
	in.PodAttachment = api.PodAttachmentHostDevice
	ifaces := []api.Interface{in}
	first := e.run(context.Background(), ifaces, false)
	if first.err != nil {
		t.Fatalf("run: %v", first.err)
	}
	rec := first.state.Interfaces["upf"]
	if rec.Link.IfName == "" {
		t.Fatalf("upf not readied: %+v", rec)
	}
	conflist, err := e.root.ReadFile(netconf.Path(api.DefaultNetworkConfDir, "upf"))
	if err != nil {
		t.Fatalf("no conflist for the whole-ENI interface: %v", err)
	}

	// What host-device's ADD does: the link leaves the host's namespace.
	pod := fmt.Sprintf("npwhole-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", pod).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", pod).Run() })
	podNS, err := netns.GetFromName(pod)
	if err != nil {
		t.Fatal(err)
	}
	defer podNS.Close()
	moveLink(t, e.ns, podNS, rec.Link.IfName)

	// A bound below NICAfterAttach (15 s): a run that waits for the NIC
	// fails with the context's deadline instead of passing.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	again := e.run(ctx, ifaces, false)
	if again.err != nil {
		t.Fatalf("re-run with the ENI in its pod: %v (after %v)", again.err, time.Since(start).Round(time.Millisecond))
	}
	if got := again.state.Interfaces["upf"]; got.Link != rec.Link || got.ENI.ENIID != rec.ENI.ENIID {
		t.Errorf("re-run record %+v, want the earlier %+v kept", got, rec)
	}
	if data, err := e.root.ReadFile(netconf.Path(api.DefaultNetworkConfDir, "upf")); err != nil || string(data) != string(conflist) {
		t.Errorf("re-run changed the conflist (%v):\n%s", err, data)
	}

	// host-device's DEL gives it back, down; the next run readies it.
	moveLink(t, podNS, e.ns, rec.Link.IfName)
	back := e.run(context.Background(), ifaces, false)
	if back.err != nil {
		t.Fatalf("run after the pod gave the ENI back: %v", back.err)
	}
	if l := e.linkByMAC(rec.ENI.MAC); l.Attrs().Flags&1 == 0 {
		t.Errorf("%s is down after the run", l.Attrs().Name)
	}
}

func moveLink(t *testing.T, from, to netns.NsHandle, name string) {
	t.Helper()
	h, err := netlink.NewHandleAt(from)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetNsFd(l, int(to)); err != nil {
		t.Fatal(err)
	}
}

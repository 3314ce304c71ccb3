package eni_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// Issue 21 item 11: an ENI whose NIC never appears blocked the whole link
// deadline (bootstrap.DefaultLinkDeadline, 2 minutes, here an hour)
// instead of failing that interface. EC2 attaches both ENIs; the host never
// sees the NIC of the one at device index 2. That interface fails alone,
// with a typed error naming it, its ENI, its MAC and how long it waited,
// once the bound after EC2's "attached" has passed; the other NIC is
// readied and recorded.
func TestENIWhoseNICNeverAppearsFailsOnlyThatInterface(t *testing.T) {
	e := newEnv(t, envSpec{})
	e.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultNICNeverAppears, Param: "DeviceIndex", Value: "2"})
	ifaces := []api.Interface{e.managed("data1", 1, api.PrivateIPDHCP), e.managed("data2", 2, api.PrivateIPDHCP)}
	host := e.host()
	host.LinkDeadline = time.Hour
	// A bound far beyond the NIC wait's: only a run that waits for the
	// link deadline reaches it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := e.runWith(ctx, host, slog.New(slog.DiscardHandler), &api.NodePrepConfig{Spec: api.Spec{Interfaces: ifaces}}, false, bootstrap.StepENIs, bootstrap.StepLinks)
	t.Logf("run: %s, error: %v", res.wall.Round(time.Millisecond), res.err)
	var nic *bootstrap.NICError
	if !errors.As(res.err, &nic) {
		t.Fatalf("run error %v: want a *bootstrap.NICError", res.err)
	}
	gone := e.attachedAt()[2]
	if nic.Interface != "data2" || nic.ENIID != gone.ID || nic.MAC != gone.MAC || nic.Waited <= 0 {
		t.Errorf("NIC error %+v: want interface data2, ENI %s, MAC %s and the time waited", nic, gone.ID, gone.MAC)
	}
	for _, want := range []string{"data2", gone.ID, gone.MAC} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q does not name %s", res.err, want)
		}
	}
	if strings.Contains(res.err.Error(), "data1") {
		t.Errorf("error %q names data1, whose NIC appeared", res.err)
	}
	if got := res.state.Interfaces["data1"].Link; got.IfName == "" {
		t.Errorf("data1's NIC was not readied and recorded: %+v", res.state.Interfaces["data1"])
	}
	if got := res.state.Interfaces["data2"].ENI; got.ENIID != gone.ID {
		t.Errorf("data2's ENI %+v not recorded (it is attached with DeleteOnTermination; the next run adopts it)", got)
	}
}

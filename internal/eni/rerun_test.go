package eni_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
)

// sigtermAtAttach is the EC2 client of a process that gets SIGTERM as it
// sends its first attach: the run is canceled and the attach never reaches
// EC2, so the run gives up and deletes the ENIs it created.
type sigtermAtAttach struct {
	eni.EC2
	stop func()
}

func (s sigtermAtAttach) AttachNetworkInterface(ctx context.Context, in *ec2.AttachNetworkInterfaceInput, opts ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error) {
	s.stop()
	return nil, context.Canceled
}

// Issue 21 item 11: after SIGTERM the re-run waited 20 s per interface. The
// give-up deleted the ENIs the first run created; the re-run's create sent
// the same request, ClientToken included, and EC2 answered with the deleted
// ENI, which the re-run then waited for (the visibility window) before it
// believed it gone. With the deleted ENIs handed over (the state file keeps
// them), the re-run never asks EC2 about them: it makes a new request at
// once.
func TestRerunAfterSIGTERMDoesNotWaitForTheDeletedENIs(t *testing.T) {
	n := newNode(t, nodeSpec{})
	ifaces := []api.Interface{n.iface("a", 1, api.PrivateIPDHCP), n.iface("b", 2, api.PrivateIPDHCP)}

	p := n.start(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	r := n.reconciler(p, time.Minute)
	r.EC2 = sigtermAtAttach{EC2: p.client, stop: func() { once.Do(cancel) }}
	_, err := r.Reconcile(ctx, &changetest.Actions{}, ifaces)
	cancel()
	if err == nil {
		t.Fatal("the SIGTERMed run succeeded")
	}
	deleted := eni.DeletedENIs(err)
	var ids []string
	for _, in := range ifaces {
		if len(deleted[in.Name]) != 1 {
			t.Fatalf("deleted ENIs %v of the first run (error %v): want one per interface", deleted, err)
		}
		ids = append(ids, deleted[in.Name]...)
	}

	n.sim.ResetCalls()
	// Its own access key tells the re-run's calls from requests the
	// SIGTERMed run abandoned, which EC2 answers (and the log records)
	// whenever they arrive.
	second := n.startAs(5*time.Second, "RERUN")
	r2 := n.reconciler(second, time.Minute)
	r2.DeletedENIs = deleted
	start := time.Now()
	got, err := r2.Reconcile(context.Background(), &changetest.Actions{}, ifaces)
	t.Logf("re-run after SIGTERM: %s for %d interfaces, %d calls", time.Since(start), len(ifaces), len(n.sim.Calls()))
	if err != nil || len(got) != len(ifaces) {
		t.Fatalf("re-run: %d attached, %v", len(got), err)
	}
	// Every call that names a deleted ENI is a wait for it: the describes
	// of the visibility wait and the attaches answered NotFound.
	var waits []string
	rerunCalls := 0
	for _, c := range n.sim.Calls() {
		if !strings.HasSuffix(c.Client, "RERUN") {
			continue
		}
		rerunCalls++
		for _, vs := range c.Params {
			for _, v := range vs {
				for _, id := range ids {
					if v == id && c.Action != "CreateNetworkInterface" {
						waits = append(waits, fmt.Sprintf("%s %v", c.Action, c.Params))
					}
				}
			}
		}
	}
	if rerunCalls == 0 {
		t.Fatal("no call of the re-run in the simulator's log")
	}
	if len(waits) != 0 {
		t.Errorf("the re-run made %d calls naming the ENIs the first run deleted (%s): it waited for them: %s", len(waits), strings.Join(ids, ", "), strings.Join(waits, "; "))
	}
	n.terminate(t, "after the re-run")
}

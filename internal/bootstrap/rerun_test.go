package bootstrap

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/state"
)

// stopAtAttach is the EC2 client of an agent that gets SIGTERM as it sends
// its first attach: the run is canceled, the attach never reaches EC2.
type stopAtAttach struct {
	eni.EC2
	stop func()
}

func (s stopAtAttach) AttachNetworkInterface(context.Context, *ec2.AttachNetworkInterfaceInput, ...func(*ec2.Options)) (*ec2.AttachNetworkInterfaceOutput, error) {
	s.stop()
	return nil, context.Canceled
}

// Issue 21 item 11: the ENIs a SIGTERMed run deleted are in the state file,
// and the next run hands them to the reconciler, so it never waits for
// them (EC2 answers the repeated create's ClientToken with the deleted ENI).
func TestStateFileCarriesTheENIsASIGTERMedRunDeleted(t *testing.T) {
	n := newSimNode(t, "c5.4xlarge")
	one, two := int32(1), int32(2)
	n.cfg.Spec.Interfaces = []api.Interface{
		{Name: "n2", SubnetID: n.subnet.ID, DeviceIndex: &one},
		{Name: "n3", SubnetID: n.subnet.ID, DeviceIndex: &two},
	}
	api.SetDefaults(n.cfg)
	if err := api.Validate(n.cfg); err != nil {
		t.Fatal(err)
	}
	data := userData(t, n.cfg)
	run := func(ctx context.Context, c eni.EC2) error {
		cloud := *n.cloud
		cloud.EC2 = c
		r := &Runner{
			Host:     n.h,
			Log:      slog.New(slog.DiscardHandler),
			UserData: func(context.Context) ([]byte, error) { return data, nil },
			NewCloud: func(context.Context) (*Cloud, error) { return &cloud, nil },
			Only:     []string{StepENIs},
		}
		_, err := r.Run(ctx)
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	if err := run(ctx, stopAtAttach{EC2: n.cloud.EC2, stop: func() { once.Do(cancel) }}); err == nil {
		t.Fatal("the SIGTERMed run succeeded")
	}
	cancel()
	f, err := state.Read(n.h.Root)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, in := range n.cfg.Spec.Interfaces {
		ids := f.Interfaces[in.Name].DeletedENIs
		if len(ids) != 1 {
			t.Fatalf("state of %s after SIGTERM: deleted ENIs %v, want the one the run created", in.Name, ids)
		}
		gone = append(gone, ids...)
	}

	n.sim.ResetCalls()
	if err := run(context.Background(), n.cloud.EC2); err != nil {
		t.Fatal(err)
	}
	for _, c := range n.sim.Calls() {
		if c.Action == "CreateNetworkInterface" {
			continue
		}
		for _, vs := range c.Params {
			for _, v := range vs {
				if slices.Contains(gone, v) {
					t.Errorf("the re-run called %s for %s, an ENI the SIGTERMed run deleted: it waits for it", c.Action, v)
				}
			}
		}
	}
}

// Issue 23: a re-run on a prepared node asks EC2 only what can have
// changed. The instance type's limits cannot (the state file keeps them), so
// the re-run makes no DescribeInstanceTypes call, and the first run one.
func TestRerunDoesNotAskForTheInstanceTypeAgain(t *testing.T) {
	n := newSimNode(t, "c5.4xlarge")
	one := int32(1)
	n.cfg.Spec.Interfaces = []api.Interface{{Name: "n2", SubnetID: n.subnet.ID, DeviceIndex: &one, SecondaryIPCount: 2}}
	api.SetDefaults(n.cfg)
	data := userData(t, n.cfg)
	run := func() int {
		n.sim.ResetCalls()
		r := &Runner{
			Host:     n.h,
			Log:      slog.New(slog.DiscardHandler),
			UserData: func(context.Context) ([]byte, error) { return data, nil },
			NewCloud: func(context.Context) (*Cloud, error) { return n.cloud, nil },
			Only:     []string{StepENIs, StepNodeadm},
		}
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n.sim.Stats()["DescribeInstanceTypes"].Calls
	}
	if got := run(); got != 1 {
		t.Errorf("first run: %d DescribeInstanceTypes calls, want 1 (the ENI step and the drop-in share it)", got)
	}
	f, err := state.Read(n.h.Root)
	if err != nil {
		t.Fatal(err)
	}
	if f.Limits == nil || f.Limits.InstanceType != "c5.4xlarge" || f.LimitsInstanceID != n.cloud.Identity.InstanceID {
		t.Fatalf("state file limits %+v of %q: want c5.4xlarge's of %s", f.Limits, f.LimitsInstanceID, n.cloud.Identity.InstanceID)
	}
	if got := run(); got != 0 {
		t.Errorf("re-run: %d DescribeInstanceTypes calls, want 0 (the limits are in the state file)", got)
	}
}

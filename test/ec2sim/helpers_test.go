package ec2sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

type env struct {
	sim    *ec2sim.Sim
	ep     *ec2sim.Endpoints
	subnet ec2sim.Subnet
	inst   ec2sim.Instance
	// ec2 has no retries, so tests see every error code as EC2 sent it.
	ec2 *ec2.Client
}

type setup struct {
	cfg      ec2sim.Config
	cidr     string
	instType string
	ltENIs   []ec2sim.ENISpec
	userData []byte
	role     string
}

func start(t testing.TB, s setup) *env {
	t.Helper()
	if s.cidr == "" {
		s.cidr = "10.0.1.0/24"
	}
	if s.instType == "" {
		s.instType = "c5.xlarge"
	}
	sim := ec2sim.New(s.cfg)
	sn, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: s.cidr, Tags: map[string]string{"Name": "multus-a"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.ltENIs {
		if s.ltENIs[i].SubnetID == "" {
			s.ltENIs[i].SubnetID = sn.ID
		}
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: s.instType, SubnetID: sn.ID, LaunchTemplateENIs: s.ltENIs, UserData: s.userData, Role: s.role})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := sim.Serve("127.0.0.1:0", "127.0.0.1:0", inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		if err := ep.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{sim: sim, ep: ep, subnet: sn, inst: inst, ec2: ec2.NewFromConfig(ep.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = aws.NopRetryer{}
	})}
}

// retryingClient uses the SDK's standard retryer with a short backoff.
func (e *env) retryingClient(attempts int, backoff time.Duration) *ec2.Client {
	return ec2.NewFromConfig(e.ep.AWSConfig(), func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return backoff, nil })
		})
	})
}

func apiCode(t testing.TB, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an smithy.APIError, got %v", err)
	}
	return ae.ErrorCode()
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := apiCode(t, err); got != code {
		t.Fatalf("want error code %s, got %s (%v)", code, got, err)
	}
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

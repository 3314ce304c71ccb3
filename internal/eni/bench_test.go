package eni_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// BenchmarkOwnOverhead is nodeprep's own share of bringing up one node's
// two ENIs: the same Reconcile against a simulator with no latency, no
// attach delay and no visibility delay, so what is left is the
// reconciler's (and the client's) own time, pacing included. Target: at
// most 200 ms (own-ms).
func BenchmarkOwnOverhead(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		f := newFixtureWith(b, 1, "10.9.8.0/24", ec2sim.Config{Seed: int64(i + 1), Timing: ec2sim.Instant()})
		r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
		start := time.Now()
		if _, err := r.Reconcile(context.Background(), &changetest.Actions{}, twoENIs(f, api.PrivateIPDHCP)); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "own-ms")
}

// BenchmarkRerun is a Reconcile on a node whose ENIs are in place (every
// reboot), at the realistic latency model, beside one filtered
// DescribeNetworkInterfaces round trip. Target: rerun-ms at most 1.2 x
// describe-ms + 50.
func BenchmarkRerun(b *testing.B) {
	var rerun, describe time.Duration
	for i := 0; i < b.N; i++ {
		f := newFixtureWith(b, 1, "10.9.8.0/24", ec2sim.Config{Seed: int64(i + 1), Timing: ec2sim.Realistic()})
		r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
		ifaces := twoENIs(f, api.PrivateIPDHCP)
		if _, err := r.Reconcile(context.Background(), &changetest.Actions{}, ifaces); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := r.Reconcile(context.Background(), &changetest.Actions{}, ifaces); err != nil {
			b.Fatal(err)
		}
		rerun += time.Since(start)
		start = time.Now()
		if _, err := f.client.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{{Name: strPtr("attachment.instance-id"), Values: []string{f.insts[0].ID}}},
		}); err != nil {
			b.Fatal(err)
		}
		describe += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(rerun.Milliseconds())/n, "rerun-ms")
	b.ReportMetric(float64(describe.Milliseconds())/n, "describe-ms")
	b.ReportMetric(rerun.Seconds()/describe.Seconds(), "rerun/describe")
}

func strPtr(s string) *string { return &s }

package ec2sim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// A new instance's status checks are "initializing" for Timing.StatusChecks,
// then "ok"; the filters nodeprep counts a boot storm by select them, and a
// terminated instance shows only with IncludeAllInstances.
func TestDescribeInstanceStatus(t *testing.T) {
	clock := ec2sim.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, setup{cfg: ec2sim.Config{Clock: clock, Timing: ec2sim.Timing{StatusChecks: ec2sim.Latency{Base: 3 * time.Minute}}}})
	second, err := e.sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.xlarge", SubnetID: e.subnet.ID})
	if err != nil {
		t.Fatal(err)
	}
	initializing := func(all bool) []string {
		t.Helper()
		out, err := e.ec2.DescribeInstanceStatus(ctx(t), &ec2.DescribeInstanceStatusInput{
			IncludeAllInstances: aws.Bool(all),
			Filters:             []types.Filter{{Name: aws.String("instance-status.status"), Values: []string{"initializing"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, st := range out.InstanceStatuses {
			if st.InstanceStatus.Status != types.SummaryStatusInitializing || st.InstanceState.Name != types.InstanceStateNameRunning {
				t.Errorf("%s: status %s, state %s; want initializing, running", aws.ToString(st.InstanceId), st.InstanceStatus.Status, st.InstanceState.Name)
			}
			ids = append(ids, aws.ToString(st.InstanceId))
		}
		return ids
	}
	if got := initializing(false); len(got) != 2 {
		t.Fatalf("initializing at launch: %v, want both instances", got)
	}
	clock.Advance(3*time.Minute + time.Second)
	if got := initializing(false); len(got) != 0 {
		t.Fatalf("initializing after the checks passed: %v, want none", got)
	}
	out, err := e.ec2.DescribeInstanceStatus(ctx(t), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{second.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceStatuses) != 1 || out.InstanceStatuses[0].InstanceStatus.Status != types.SummaryStatusOk ||
		out.InstanceStatuses[0].InstanceStatus.Details[0].Status != types.StatusTypePassed {
		t.Fatalf("after the checks: %+v, want ok, reachability passed", out.InstanceStatuses)
	}
	if _, err := e.sim.TerminateInstance(second.ID); err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		out, err := e.ec2.DescribeInstanceStatus(ctx(t), &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(all)})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 1, true: 2}[all]; len(out.InstanceStatuses) != want {
			t.Errorf("IncludeAllInstances=%t after a termination: %d statuses, want %d", all, len(out.InstanceStatuses), want)
		}
	}
	if _, err := e.ec2.DescribeInstanceStatus(ctx(t), &ec2.DescribeInstanceStatusInput{Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{"c5.xlarge"}}}}); err == nil {
		t.Error("an unknown filter was accepted")
	}
}

package ec2sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// A fault with AfterApply makes the change and loses the answer: the client
// sees InternalError, yet the ENI exists.
func TestLostResponseAppliesTheChange(t *testing.T) {
	e := start(t, setup{})
	e.sim.InjectFault(ec2sim.Fault{Action: "CreateNetworkInterface", Kind: ec2sim.FaultInternalError, Count: 1, AfterApply: true})
	_, err := e.ec2.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
	wantCode(t, err, "InternalError")
	if n := len(e.sim.ENIs()); n != 2 {
		t.Fatalf("%d ENIs after a lost CreateNetworkInterface answer, want 2 (primary + the new one)", n)
	}
	calls := e.sim.Calls()
	if last := calls[len(calls)-1]; !last.Applied || last.ErrorCode != "InternalError" {
		t.Fatalf("call log %+v: want applied with InternalError", last)
	}

	// A dropped connection after the attach: the attachment exists.
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	e.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultDropConnection, Count: 1, AfterApply: true})
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	if err == nil {
		t.Fatal("attach answered although its connection was dropped")
	}
	if got, _ := e.sim.ENI(*ni.NetworkInterfaceId); got.Attachment == nil {
		t.Fatal("the attach was lost with its answer")
	}
}

// A client that gives up does not cancel EC2's work: the create still
// happens once its latency has passed.
func TestClientTimeoutDoesNotCancelTheAction(t *testing.T) {
	e := start(t, setup{cfg: ec2sim.Config{Timing: ec2sim.Timing{Calls: map[string]ec2sim.Latency{"CreateNetworkInterface": {Base: 300 * time.Millisecond}}}}})
	applied := make(chan ec2sim.Call, 1)
	e.sim.OnCall(func(c ec2sim.Call, _ ec2sim.ActionStats) {
		if c.Action == "CreateNetworkInterface" {
			applied <- c
		}
	})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.ec2.CreateNetworkInterface(short, &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create with a 50ms timeout: %v", err)
	}
	c := <-applied
	if !c.Applied || !c.ClientGone {
		t.Fatalf("call %+v: want applied after the client left", c)
	}
	if n := len(e.sim.ENIs()); n != 2 {
		t.Fatalf("%d ENIs, want the primary and the one the client gave up on", n)
	}
}

// Termination deletes what has DeleteOnTermination and leaves the rest
// behind, unattached.
func TestTerminateHonoursDeleteOnTermination(t *testing.T) {
	e := start(t, setup{instType: "c5.4xlarge"})
	keep := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	drop := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	for i, ni := range []types.NetworkInterface{keep, drop} {
		att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(int32(i + 1))})
		if err != nil {
			t.Fatal(err)
		}
		if ni.NetworkInterfaceId == drop.NetworkInterfaceId {
			if _, err := e.ec2.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: ni.NetworkInterfaceId,
				Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(true)},
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	term, err := e.sim.TerminateInstance(e.inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	left := e.sim.UnattachedENIs()
	if len(term.Detached) != 1 || term.Detached[0] != *keep.NetworkInterfaceId || len(left) != 1 || left[0].ID != *keep.NetworkInterfaceId {
		t.Fatalf("termination %+v, unattached %v: want only %s left behind", term, left, *keep.NetworkInterfaceId)
	}
	if len(term.Deleted) != 2 { // the primary and the one with DeleteOnTermination
		t.Fatalf("deleted %v", term.Deleted)
	}
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: keep.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "IncorrectInstanceState")
}

// The buckets are EC2's documented ones: CreateNetworkInterface holds 100,
// AttachNetworkInterface (plain mutating) 50, and DescribeNetworkInterfaces
// without filter or pagination 50, apart from the filtered 100.
//
// The buckets refill on a manual clock that never moves, so the first
// throttled call is exactly the bucket's size: on the wall clock, refill
// while a loaded machine ran the loop let 2-7 times as many through.
func TestDocumentedBuckets(t *testing.T) {
	e := start(t, setup{cfg: ec2sim.Config{Clock: ec2sim.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}})
	firstThrottled := func(call func() error) int {
		for i := 0; i < 400; i++ {
			if err := call(); err != nil {
				wantCode(t, err, "RequestLimitExceeded")
				return i
			}
		}
		return -1
	}
	exactly := func(what string, got, want int) {
		if got != want {
			t.Errorf("%s: first throttled call #%d, want #%d", what, got, want)
		}
	}
	exactly("unfiltered DescribeNetworkInterfaces", firstThrottled(func() error {
		_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{})
		return err
	}), 50)
	exactly("filtered DescribeNetworkInterfaces", firstThrottled(func() error {
		_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("subnet-id"), Values: []string{e.subnet.ID}}}})
		return err
	}), 100)
	exactly("DetachNetworkInterface", firstThrottled(func() error {
		_, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-0123456789abcdef0")})
		if err != nil && apiCode(t, err) == "InvalidAttachmentID.NotFound" {
			return nil
		}
		return err
	}), 50)
	exactly("CreateTags", firstThrottled(func() error {
		_, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{e.subnet.ID}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
		return err
	}), 100)
}

func TestRealisticHidesNewENIs(t *testing.T) {
	if v := ec2sim.Realistic().Visibility; v.Base <= 0 || v.Jitter <= 0 {
		t.Fatalf("Realistic visibility %+v: want eventual consistency on", v)
	}
}

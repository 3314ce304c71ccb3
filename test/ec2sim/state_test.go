package ec2sim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

func imdsGet(t testing.TB, c *imds.Client, path string) (string, error) {
	t.Helper()
	out, err := c.GetMetadata(ctx(t), &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

func TestAttachmentStateMachine(t *testing.T) {
	// The delays pass on a manual clock, only when the test says: the
	// describes right after each call see the transition however slow the
	// machine is (on the wall clock a loaded machine saw it completed).
	delay := ec2sim.Latency{Base: 300 * time.Millisecond}
	clock := ec2sim.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, setup{cfg: ec2sim.Config{Clock: clock, Timing: ec2sim.Timing{AttachDelay: delay, DetachDelay: delay}}})
	attached := make(chan ec2sim.AttachEvent, 1)
	detached := make(chan ec2sim.AttachEvent, 1)
	e.sim.OnAttach(func(ev ec2sim.AttachEvent) error { attached <- ev; return nil })
	e.sim.OnDetach(func(ev ec2sim.AttachEvent) error { detached <- ev; return nil })
	// Without the IMDS client's default timeouts (250 ms to connect, 500 ms
	// to the answer's header, 5 s per call): a loaded machine exceeds them.
	md := imds.New(imds.Options{Endpoint: e.ep.IMDSURL, HTTPClient: ec2sim.HTTPClient(), DisableDefaultTimeout: true})

	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	att, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	status := func() (types.NetworkInterfaceStatus, types.AttachmentStatus) {
		d := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}})
		if d[0].Attachment == nil {
			return d[0].Status, ""
		}
		return d[0].Status, d[0].Attachment.Status
	}
	if s, a := status(); s != types.NetworkInterfaceStatusInUse || a != types.AttachmentStatusAttaching {
		t.Fatalf("right after attach: %s/%s, want in-use/attaching", s, a)
	}
	macs, err := imdsGet(t, md, "network/interfaces/macs/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(macs, *ni.MacAddress) {
		t.Fatalf("MAC %s in IMDS before the attachment completed: %q", *ni.MacAddress, macs)
	}
	clock.Advance(delay.Base - time.Nanosecond)
	if s, a := status(); a != types.AttachmentStatusAttaching {
		t.Fatalf("just before the attach delay passed: %s/%s, want in-use/attaching", s, a)
	}
	clock.Advance(time.Nanosecond)
	ev := <-attached
	if ev.ENIID != *ni.NetworkInterfaceId || ev.MAC != *ni.MacAddress || ev.DeviceIndex != 1 || ev.NetworkCardIndex != 0 || ev.InstanceID != e.inst.ID || ev.AttachmentID != *att.AttachmentId {
		t.Fatalf("attach event %+v", ev)
	}
	if s, a := status(); s != types.NetworkInterfaceStatusInUse || a != types.AttachmentStatusAttached {
		t.Fatalf("after hook: %s/%s, want in-use/attached", s, a)
	}
	if macs, _ = imdsGet(t, md, "network/interfaces/macs/"); !strings.Contains(macs, *ni.MacAddress+"/") {
		t.Fatalf("MAC missing from IMDS after attach: %q", macs)
	}
	for path, want := range map[string]string{
		"device-number": "1", "network-card": "0", "interface-id": *ni.NetworkInterfaceId, "subnet-id": e.subnet.ID,
		"local-ipv4s": *ni.PrivateIpAddress, "vpc-id": e.subnet.VPCID, "subnet-ipv4-cidr-block": e.subnet.CIDR,
		"security-group-ids": *ni.Groups[0].GroupId, "mac": *ni.MacAddress,
	} {
		got, err := imdsGet(t, md, "network/interfaces/macs/"+*ni.MacAddress+"/"+path)
		if err != nil || got != want {
			t.Errorf("IMDS %s = %q (%v), want %q", path, got, err, want)
		}
	}

	if _, err := e.ec2.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}); err != nil {
		t.Fatal(err)
	}
	if s, a := status(); s != types.NetworkInterfaceStatusInUse || a != types.AttachmentStatusDetaching {
		t.Fatalf("right after detach: %s/%s, want in-use/detaching", s, a)
	}
	_, err = e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId})
	wantCode(t, err, "InvalidParameterValue")
	clock.Advance(delay.Base)
	if ev := <-detached; ev.ENIID != *ni.NetworkInterfaceId || ev.MAC != *ni.MacAddress {
		t.Fatalf("detach event %+v", ev)
	}
	if s, a := status(); s != types.NetworkInterfaceStatusAvailable || a != "" {
		t.Fatalf("after detach: %s/%q, want available and no attachment", s, a)
	}
	if macs, _ = imdsGet(t, md, "network/interfaces/macs/"); strings.Contains(macs, *ni.MacAddress) {
		t.Fatalf("MAC still in IMDS after detach: %q", macs)
	}
	if err := e.sim.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestWaitIdleWaitsForPendingAttachments(t *testing.T) {
	e := start(t, setup{cfg: ec2sim.Config{Timing: ec2sim.Timing{AttachDelay: ec2sim.Latency{Base: 300 * time.Millisecond}}}})
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := e.sim.WaitIdle(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle with a 1ms deadline: %v, want deadline exceeded", err)
	}
	if err := e.sim.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got, _ := e.sim.ENI(*ni.NetworkInterfaceId)
	if got.Attachment.Status != "attached" {
		t.Fatalf("after WaitIdle: %s", got.Attachment.Status)
	}
}

func TestIMDS(t *testing.T) {
	e := start(t, setup{instType: "c5.large", ltENIs: []ec2sim.ENISpec{{DeviceIndex: 1}}})
	md := imds.New(imds.Options{Endpoint: e.ep.IMDSURL})
	for path, want := range map[string]string{
		"instance-id":                 e.inst.ID,
		"instance-type":               "c5.large",
		"placement/region":            "us-west-2",
		"placement/availability-zone": "us-west-2a",
		"local-ipv4":                  e.inst.PrivateIP,
	} {
		if got, err := imdsGet(t, md, path); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", path, got, err, want)
		}
	}
	primary, _ := e.sim.ENI(e.inst.PrimaryENIID)
	if got, _ := imdsGet(t, md, "mac"); got != primary.MAC {
		t.Errorf("mac = %q, want %q", got, primary.MAC)
	}
	macs, _ := imdsGet(t, md, "network/interfaces/macs/")
	if n := len(strings.Split(macs, "\n")); n != 2 {
		t.Errorf("macs listing %q: want 2 entries", macs)
	}
	doc, err := md.GetInstanceIdentityDocument(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.InstanceID != e.inst.ID || doc.Region != "us-west-2" || doc.AvailabilityZone != "us-west-2a" || doc.InstanceType != "c5.large" || doc.PrivateIP != e.inst.PrivateIP {
		t.Errorf("identity document %+v", doc.InstanceIdentityDocument)
	}
	region, err := md.GetRegion(ctx(t), nil)
	if err != nil || region.Region != "us-west-2" {
		t.Errorf("GetRegion %+v %v", region, err)
	}

	// No user data: 404, which the SDK surfaces as an error with that status.
	_, err = md.GetUserData(ctx(t), nil)
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound {
		t.Fatalf("GetUserData without user data: %v, want a 404", err)
	}
	if err := e.sim.SetUserData(e.inst.ID, []byte("apiVersion: nodeprep.dev/v1alpha1\n")); err != nil {
		t.Fatal(err)
	}
	ud, err := md.GetUserData(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(ud.Content)
	if string(b) != "apiVersion: nodeprep.dev/v1alpha1\n" {
		t.Errorf("user data %q", b)
	}
}

func TestIMDSv2Only(t *testing.T) {
	e := start(t, setup{})
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, e.ep.IMDSURL+"/latest/meta-data/instance-id", nil)
		if tok != "" {
			req.Header.Set("X-aws-ec2-metadata-token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Fatalf("GET without token: %d, want 401", code)
	}
	if code := get("made-up"); code != http.StatusUnauthorized {
		t.Fatalf("GET with an unknown token: %d, want 401", code)
	}
	put := func(ttl string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPut, e.ep.IMDSURL+"/latest/api/token", nil)
		if ttl != "" {
			req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", ttl)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, _ := put(""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT token without TTL: %d, want 400", resp.StatusCode)
	}
	if resp, _ := put("21601"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT token with TTL over 6h: %d, want 400", resp.StatusCode)
	}
	resp, tok := put("60")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "60" || tok == "" {
		t.Fatalf("PUT token: %d %q", resp.StatusCode, tok)
	}
	if code := get(tok); code != http.StatusOK {
		t.Fatalf("GET with token: %d", code)
	}
}

func TestThrottlingThenRecovery(t *testing.T) {
	e := start(t, setup{cfg: ec2sim.Config{Throttle: ec2sim.ThrottleConfig{PerAction: map[string]ec2sim.Bucket{
		"DescribeSubnets": {Burst: 3, RefillPerSecond: 5}, // a token per 200ms
	}}}})
	codes := []string{}
	for i := 0; i < 5; i++ {
		_, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{})
		if err != nil {
			codes = append(codes, apiCode(t, err))
			var re *smithyhttp.ResponseError
			if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusServiceUnavailable {
				t.Errorf("RequestLimitExceeded with HTTP %d, want 503", re.HTTPStatusCode())
			}
		} else {
			codes = append(codes, "ok")
		}
	}
	if strings.Join(codes[:3], ",") != "ok,ok,ok" || codes[3] != "RequestLimitExceeded" {
		t.Fatalf("codes %v: want 3 ok then RequestLimitExceeded", codes)
	}
	// Other actions have their own buckets.
	if _, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Fatalf("DescribeNetworkInterfaces throttled by DescribeSubnets' bucket: %v", err)
	}
	// The SDK's standard retryer backs off and gets through once the bucket refills.
	if _, err := e.retryingClient(6, 100*time.Millisecond).DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("retrying client did not recover: %v", err)
	}
}

func TestDefaultThrottleBuckets(t *testing.T) {
	e := start(t, setup{})
	// Non-mutating: 100 tokens. Refill (20/s) may add a few during the loop.
	throttled := -1
	for i := 0; i < 400; i++ {
		if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
			wantCode(t, err, "RequestLimitExceeded")
			throttled = i
			break
		}
	}
	if throttled < 100 || throttled > 300 {
		t.Fatalf("first throttled DescribeSubnets call #%d, want about 100", throttled)
	}
}

func TestFaultInjection(t *testing.T) {
	e := start(t, setup{})
	id := e.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Kind: ec2sim.FaultInternalError, Count: 1})
	_, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "InternalError")
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Fatalf("InternalError status: %v", err)
	}
	if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("fault with Count 1 fired twice: %v", err)
	}
	if e.sim.FaultHits(id) != 1 {
		t.Fatalf("hits %d", e.sim.FaultHits(id))
	}

	// Unavailable twice, then the retrying client gets through on the third attempt.
	e.sim.InjectFault(ec2sim.Fault{Action: "CreateNetworkInterface", Kind: ec2sim.FaultUnavailable, Count: 2})
	e.sim.ResetCalls()
	if _, err := e.retryingClient(3, 20*time.Millisecond).CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID}); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, c := range e.sim.Calls() {
		codes = append(codes, c.Action+":"+c.ErrorCode)
	}
	if strings.Join(codes, ",") != "CreateNetworkInterface:Unavailable,CreateNetworkInterface:Unavailable,CreateNetworkInterface:" {
		t.Fatalf("call log %v", codes)
	}
	if m, n := e.sim.CallCounts(); m != 3 || n != 0 {
		t.Fatalf("counts mutating %d non-mutating %d", m, n)
	}

	// A throttling storm on every action, skipping the first call.
	e.sim.InjectFault(ec2sim.Fault{Kind: ec2sim.FaultThrottle, Skip: 1, Count: 2})
	if _, err := e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{})
	wantCode(t, err, "RequestLimitExceeded")
	_, err = e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "RequestLimitExceeded")
	if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}

	// A timeout holds the call until the client gives up.
	e.sim.ClearFaults()
	e.sim.InjectFault(ec2sim.Fault{Action: "AttachNetworkInterface", Kind: ec2sim.FaultTimeout, Count: 1})
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	_, err = e.ec2.AttachNetworkInterface(short, &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out attach: %v, want deadline exceeded", err)
	}
	if got, _ := e.sim.ENI(*ni.NetworkInterfaceId); got.Attachment != nil {
		t.Fatal("a held call was applied")
	}
}

func TestProbabilisticFaultsAreSeeded(t *testing.T) {
	run := func() string {
		e := start(t, setup{cfg: ec2sim.Config{Seed: 42}})
		e.sim.InjectFault(ec2sim.Fault{Kind: ec2sim.FaultInternalError, Probability: 0.5})
		var b strings.Builder
		for i := 0; i < 40; i++ {
			if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("same seed, different fault pattern:\n%s\n%s", a, b)
	}
	if n := strings.Count(a, "x"); n < 8 || n > 32 {
		t.Fatalf("p=0.5 fired %d/40 times: %s", n, a)
	}
}

func TestMutationHookRunsAfterApplyBeforeResponse(t *testing.T) {
	e := start(t, setup{})
	var mu sync.Mutex
	var seen []string
	e.sim.OnMutation(func(action string, n int) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, action)
		if action == "CreateNetworkInterface" {
			// Applied already: the ENI is there before the client hears back.
			if len(e.sim.ENIs()) != 2 {
				t.Errorf("mutation %d (%s) seen before it was applied", n, action)
			}
		}
		if n != len(seen) {
			t.Errorf("mutation counter %d, want %d", n, len(seen))
		}
	})
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	if _, err := e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{*ni.NetworkInterfaceId}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Fatal(err)
	}
	// A failed mutating call is not a mutation.
	_, err := e.ec2.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0")})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "CreateNetworkInterface,CreateTags" {
		t.Fatalf("mutations %v", seen)
	}
}

func TestCallLogAndCounters(t *testing.T) {
	e := start(t, setup{})
	createENI(t, e, &ec2.CreateNetworkInterfaceInput{TagSpecifications: tagSpec(noManage, "true")})
	if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")
	calls := e.sim.Calls()
	if len(calls) != 3 || calls[0].Action != "CreateNetworkInterface" || !calls[0].Mutating ||
		calls[0].Params.Get("TagSpecification.1.Tag.1.Key") != noManage || calls[2].ErrorCode != "InvalidSubnetID.NotFound" {
		t.Fatalf("call log %+v", calls)
	}
	if m, n := e.sim.CallCounts(); m != 1 || n != 2 {
		t.Fatalf("counts %d/%d", m, n)
	}
	e.sim.ResetCalls()
	if m, n := e.sim.CallCounts(); m != 0 || n != 0 || len(e.sim.Calls()) != 0 {
		t.Fatal("ResetCalls left something")
	}
}

func TestEventualConsistencyOfNewENIs(t *testing.T) {
	const visibility = 300 * time.Millisecond
	e := start(t, setup{cfg: ec2sim.Config{Timing: ec2sim.Timing{Visibility: ec2sim.Latency{Base: visibility}}}})
	ni := createENI(t, e, &ec2.CreateNetworkInterfaceInput{})
	created := time.Now() // the server started the clock before it answered
	_, err := e.ec2.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	if got := describeAll(t, e, &ec2.DescribeNetworkInterfacesInput{}); len(got) != 1 {
		t.Fatalf("unfiltered describe shows %d ENIs, want only the primary", len(got))
	}
	_, err = e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	if _, ok := e.sim.ENI(*ni.NetworkInterfaceId); !ok {
		t.Fatal("introspection should see the ENI at once")
	}
	// The event waited for here is the passage of the visibility delay itself.
	<-time.After(time.Until(created.Add(visibility)))
	if _, err := e.ec2.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{InstanceId: &e.inst.ID, NetworkInterfaceId: ni.NetworkInterfaceId, DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
}

// A mutation hook can drop the response after the change was applied, as a
// crash or a lost connection would; the SDK retries with the same
// ClientToken and EC2 idempotency returns the ENI created the first time.
func TestLostResponseAfterMutationIsIdempotent(t *testing.T) {
	e := start(t, setup{})
	dropped := false
	e.sim.OnMutation(func(action string, n int) {
		if action == "CreateNetworkInterface" && !dropped {
			dropped = true
			panic(http.ErrAbortHandler)
		}
	})
	out, err := e.retryingClient(3, 20*time.Millisecond).CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: &e.subnet.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !dropped {
		t.Fatal("the hook never dropped a response")
	}
	if n := len(e.sim.ENIs()); n != 2 {
		t.Fatalf("%d ENIs after a lost response and a retry, want 2 (primary + one)", n)
	}
	calls := e.sim.Calls()
	if len(calls) != 2 || calls[0].Params.Get("ClientToken") == "" || calls[0].Params.Get("ClientToken") != calls[1].Params.Get("ClientToken") {
		t.Fatalf("calls %+v", calls)
	}
	if got, _ := e.sim.ENI(*out.NetworkInterface.NetworkInterfaceId); got.ID == "" {
		t.Fatal("the retry answered an unknown ENI")
	}
}

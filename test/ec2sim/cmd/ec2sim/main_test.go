package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// TestRunServesWhatItPrints starts the command's run loop and reaches it
// the way the agent would: through the printed environment variables and
// the SDK's default config loader.
func TestRunServesWhatItPrints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	o := options{
		ec2Addr: "127.0.0.1:0", imdsAddr: "127.0.0.1:0", region: "eu-central-1", instanceType: "c5.large",
		subnets: multiFlag{"10.20.0.0/24", "10.20.1.0/24,name=multus-a"}, reserves: multiFlag{"10.20.1.0/28"},
		ltENIs: multiFlag{"device=1,subnet=1,tag=node.k8s.amazonaws.com/no_manage=true"}, latency: "none", seed: 3,
	}
	go func() { done <- run(runCtx, o, slog.New(slog.NewTextHandler(io.Discard, nil)), pw) }()

	env := readExports(pr)
	if env["NODEPREP_EC2_ENDPOINT"] != env["AWS_ENDPOINT_URL_EC2"] || env["NODEPREP_IMDS_ENDPOINT"] == "" {
		t.Fatalf("printed %v", env)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = ec2sim.HTTPClient()
	client := ec2.NewFromConfig(cfg)
	out, err := client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("tag:node.k8s.amazonaws.com/no_manage"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 1 || aws.ToInt32(out.NetworkInterfaces[0].Attachment.DeviceIndex) != 1 || !strings.HasPrefix(aws.ToString(out.NetworkInterfaces[0].PrivateIpAddress), "10.20.1.") {
		t.Fatalf("launch-template ENI: %+v", out.NetworkInterfaces)
	}
	res, err := client.GetSubnetCidrReservations(ctx, &ec2.GetSubnetCidrReservationsInput{SubnetId: out.NetworkInterfaces[0].SubnetId})
	if err != nil || len(res.SubnetIpv4CidrReservations) != 1 {
		t.Fatalf("reservations %+v %v", res, err)
	}
	md := imds.NewFromConfig(cfg)
	id, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(id.Content)
	if string(b) != env["EC2SIM_INSTANCE_ID"] {
		t.Fatalf("IMDS instance-id %q, printed %q", b, env["EC2SIM_INSTANCE_ID"])
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunRejectsNonLoopback(t *testing.T) {
	err := run(context.Background(), options{ec2Addr: "0.0.0.0:0", imdsAddr: "127.0.0.1:0", latency: "none"}, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err %v", err)
	}
}

func TestParseENI(t *testing.T) {
	e, err := parseENI("device=2,card=1,subnet=1,ip=10.0.1.9,tag=a=b,tag=c=", []string{"subnet-a", "subnet-b"})
	if err != nil || e.DeviceIndex != 2 || e.NetworkCardIndex != 1 || e.SubnetID != "subnet-b" || e.PrivateIP != "10.0.1.9" || e.Tags["a"] != "b" || e.Tags["c"] != "" {
		t.Fatalf("%+v %v", e, err)
	}
	for _, bad := range []string{"card=1", "device=x", "device=1,subnet=5", "device=1,colour=red", "device"} {
		if _, err := parseENI(bad, []string{"subnet-a"}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseFaultAndVisibility(t *testing.T) {
	f, err := parseFault("drop,action=AttachNetworkInterface,count=2,skip=1,p=0.5,after-apply")
	if err != nil {
		t.Fatal(err)
	}
	want := ec2sim.Fault{Kind: ec2sim.FaultDropConnection, Action: "AttachNetworkInterface", Count: 2, Skip: 1, Probability: 0.5, AfterApply: true}
	if f != want {
		t.Fatalf("fault %+v, want %+v", f, want)
	}
	f, err = parseFault("nonic,action=AttachNetworkInterface,param=DeviceIndex,value=2")
	if err != nil || f != (ec2sim.Fault{Kind: ec2sim.FaultNICNeverAppears, Action: "AttachNetworkInterface", Param: "DeviceIndex", Value: "2"}) {
		t.Fatalf("nonic fault %+v %v", f, err)
	}
	for _, bad := range []string{"explode", "internal,action=RunInstances", "timeout,p=2", "throttle,count"} {
		if _, err := parseFault(bad); err == nil {
			t.Errorf("-fault %q accepted", bad)
		}
	}
	v, err := parseVisibility("500ms-3s", ec2sim.Latency{})
	if err != nil || v != (ec2sim.Latency{Base: 500 * time.Millisecond, Jitter: 2500 * time.Millisecond}) {
		t.Fatalf("visibility %+v %v", v, err)
	}
	if v, _ := parseVisibility("off", ec2sim.Realistic().Visibility); v != (ec2sim.Latency{}) {
		t.Fatalf("off gave %+v", v)
	}
	if _, err := parseVisibility("3s-1s", ec2sim.Latency{}); err == nil {
		t.Error("MAX below MIN accepted")
	}
}

// Several instances share the simulator; each one's IMDS is printed.
func TestRunServesSeveralInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	o := options{ec2Addr: "127.0.0.1:0", imdsAddr: "127.0.0.1:0", region: "us-west-2", instanceType: "c5.large",
		latency: "none", visibility: "off", seed: 3, instances: 3, faults: multiFlag{"internal,action=DescribeSubnets,count=1"}}
	var logs strings.Builder
	go func() { done <- run(runCtx, o, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)), pw) }()
	env := readExports(pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	ids := map[string]bool{env["EC2SIM_INSTANCE_ID"]: true, env["EC2SIM_INSTANCE_ID_2"]: true, env["EC2SIM_INSTANCE_ID_3"]: true}
	if len(ids) != 3 || ids[""] || env["EC2SIM_IMDS_ENDPOINT_3"] == "" {
		t.Fatalf("printed %v", env)
	}
	for _, n := range []string{"2", "3"} {
		md := imds.New(imds.Options{Endpoint: env["EC2SIM_IMDS_ENDPOINT_"+n]})
		doc, err := md.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
		if err != nil || doc.InstanceID != env["EC2SIM_INSTANCE_ID_"+n] {
			t.Fatalf("IMDS %s: %+v %v", n, doc, err)
		}
	}
	client := ec2.NewFromConfig(ec2sim.AWSConfig(env["AWS_ENDPOINT_URL_EC2"], "us-west-2"), func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
	if _, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err == nil {
		t.Fatal("the -fault did not fire")
	}
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil || len(out.Reservations) != 3 {
		t.Fatalf("DescribeInstances: %d reservations, %v", len(out.Reservations), err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, "action=DescribeSubnets n=1") || !strings.Contains(l, "msg=calls action=DescribeInstances count=1") {
		t.Fatalf("logs lack the per-call lines or the per-action counts:\n%s", l)
	}
}

// readExports reads the printed "export K=V" lines up to the instance ID,
// which run prints last.
func readExports(r io.Reader) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		env[k] = v
		if k == "EC2SIM_INSTANCE_ID" {
			break
		}
	}
	return env
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

package ec2sim_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

func rawPost(t *testing.T, e *env, form url.Values, signed bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ep.EC2URL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if signed {
		// The simulator checks that a SigV4 header is present, not the signature.
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAEC2SIMEXAMPLE/20260101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=0")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type errEnvelope struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

func TestWireErrorEnvelope(t *testing.T) {
	e := start(t, setup{})
	cases := []struct {
		name   string
		form   url.Values
		signed bool
		status int
		code   string
	}{
		{"unknown action", url.Values{"Action": {"RunInstances"}, "Version": {ec2sim.APIVersion}}, true, 400, "InvalidAction"},
		{"no action", url.Values{"Version": {ec2sim.APIVersion}}, true, 400, "MissingAction"},
		{"unsigned", url.Values{"Action": {"DescribeSubnets"}, "Version": {ec2sim.APIVersion}}, false, 401, "AuthFailure"},
		{"missing parameter", url.Values{"Action": {"CreateNetworkInterface"}, "Version": {ec2sim.APIVersion}}, true, 400, "MissingParameter"},
		{"dry run", url.Values{"Action": {"DescribeSubnets"}, "Version": {ec2sim.APIVersion}, "DryRun": {"true"}}, true, 412, "DryRunOperation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawPost(t, e, tc.form, tc.signed)
			if status != tc.status {
				t.Errorf("HTTP %d, want %d", status, tc.status)
			}
			var env errEnvelope
			if err := xml.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("%v in %s", err, body)
			}
			if len(env.Errors) != 1 || env.Errors[0].Code != tc.code || env.Errors[0].Message == "" || len(env.RequestID) != 36 {
				t.Fatalf("envelope %+v from %s", env, body)
			}
		})
	}
	// Through the SDK the request ID reaches the error too.
	_, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	if !strings.Contains(err.Error(), "RequestID: ") || strings.Contains(err.Error(), "RequestID: ,") {
		t.Errorf("request ID missing from %v", err)
	}
}

func TestWireSuccessShape(t *testing.T) {
	e := start(t, setup{})
	status, body := rawPost(t, e, url.Values{
		"Action": {"DescribeNetworkInterfaces"}, "Version": {ec2sim.APIVersion},
		"Filter.1.Name": {"attachment.instance-id"}, "Filter.1.Value.1": {e.inst.ID},
	}, true)
	if status != 200 {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	for _, want := range []string{
		`<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`,
		`<requestId>`, `<networkInterfaceSet><item><networkInterfaceId>eni-`,
		`<tagSet></tagSet>`, `<deviceIndex>0</deviceIndex>`, `<status>in-use</status>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("response lacks %s:\n%s", want, body)
		}
	}
	_, body = rawPost(t, e, url.Values{"Action": {"DescribeNetworkInterfaces"}, "Version": {ec2sim.APIVersion}, "Filter.1.Name": {"status"}, "Filter.1.Value.1": {"available"}}, true)
	if !strings.Contains(body, "<networkInterfaceSet></networkInterfaceSet>") {
		t.Errorf("empty result should carry an empty set:\n%s", body)
	}
	_, body = rawPost(t, e, url.Values{"Action": {"CreateTags"}, "Version": {ec2sim.APIVersion}, "ResourceId.1": {e.subnet.ID}, "Tag.1.Key": {"k"}, "Tag.1.Value": {"v"}}, true)
	if !strings.Contains(body, `<CreateTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) || !strings.Contains(body, "<return>true</return>") {
		t.Errorf("CreateTags response:\n%s", body)
	}
}

func TestCallLatencyIsApplied(t *testing.T) {
	e := start(t, setup{})
	e.sim.SetTiming(ec2sim.Timing{Calls: map[string]ec2sim.Latency{"DescribeSubnets": {Base: 40 * time.Millisecond}}})
	began := time.Now()
	if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 40*time.Millisecond {
		t.Fatalf("DescribeSubnets answered after %v, before its 40ms latency", d)
	}
	e.sim.SetTiming(ec2sim.Instant())
	if _, err := e.ec2.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestRealisticProfileFigures(t *testing.T) {
	r := ec2sim.Realistic()
	check := func(name string, l ec2sim.Latency, lo, hi time.Duration) {
		if l.Base != lo || l.Base+l.Jitter != hi {
			t.Errorf("%s: %v..%v, want %v..%v", name, l.Base, l.Base+l.Jitter, lo, hi)
		}
	}
	ms := time.Millisecond
	check("CreateNetworkInterface", r.Calls["CreateNetworkInterface"], 300*ms, 600*ms)
	check("AttachNetworkInterface", r.Calls["AttachNetworkInterface"], 200*ms, 400*ms)
	check("DescribeNetworkInterfaces", r.Calls["DescribeNetworkInterfaces"], 100*ms, 200*ms)
	check("attach delay", r.AttachDelay, 2*time.Second, 5*time.Second)
	for _, a := range ec2sim.Actions() {
		if _, ok := r.Calls[a]; !ok {
			t.Errorf("realistic profile has no figure for %s", a)
		}
	}
}

func TestServeRejectsUnknownIMDSInstance(t *testing.T) {
	sim := ec2sim.New(ec2sim.Config{})
	defer sim.Close()
	if _, err := sim.Serve("127.0.0.1:0", "127.0.0.1:0", "i-0123456789abcdef0"); err == nil {
		t.Fatal("Serve accepted an IMDS for an unknown instance")
	}
}

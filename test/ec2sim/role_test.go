package ec2sim_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestInstanceProfileCredentials: with a role, any process on the instance
// gets its credentials the way a node's processes do, through the SDK's
// default chain reading IMDS, and a call signed with them is served;
// without one the chain finds nothing, as on an instance without a profile.
func TestInstanceProfileCredentials(t *testing.T) {
	// Keep the chain off the host's own credentials.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	load := func(e *env) aws.Config {
		t.Helper()
		cfg, err := config.LoadDefaultConfig(ctx(t), config.WithRegion("us-west-2"), config.WithEC2IMDSEndpoint(e.ep.IMDSURL),
			config.WithEC2IMDSClientEnableState(imds.ClientEnabled))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	e := start(t, setup{role: "eks-node"})
	cfg := load(e)
	creds, err := cfg.Credentials.Retrieve(ctx(t))
	if err != nil {
		t.Fatalf("credentials from IMDS: %v", err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire {
		t.Errorf("credentials %+v: want temporary ones (ASIA key, session token, expiry)", creds)
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(e.ep.EC2URL) })
	if _, err := client.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Errorf("a call signed with the role's credentials: %v", err)
	}

	none := start(t, setup{})
	if _, err := load(none).Credentials.Retrieve(ctx(t)); err == nil {
		t.Errorf("credentials found on an instance without a role")
	}
}

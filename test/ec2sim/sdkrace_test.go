package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// Responses larger than one read buffer used to fail intermittently with
// "use of closed network connection" (smithy-go request body race; see
// ec2sim.HTTPClient). This fails within a few hundred calls without the
// workaround.
func TestLargeResponsesSurviveSDKBodyRace(t *testing.T) {
	e := start(t, setup{instType: "c5.4xlarge", cfg: ec2sim.Config{Throttle: ec2sim.ThrottleConfig{Disabled: true}}})
	for i := 0; i < 12; i++ {
		createENI(t, e, &ec2.CreateNetworkInterfaceInput{TagSpecifications: tagSpec("role", "x")})
	}
	cl := ec2.NewFromConfig(e.ep.AWSConfig(), func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
	for i := 0; i < 300; i++ {
		if _, err := cl.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
			t.Fatal(i, err)
		}
	}
}

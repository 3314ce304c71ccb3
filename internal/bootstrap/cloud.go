package bootstrap

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/imds"
)

// Cloud is the AWS side of a run: the EC2 client and the instance it acts
// for. NewCloud builds it on a node.
type Cloud struct {
	// EC2 is an *ec2.Client with nodeprep's adaptive retryer.
	EC2 eni.EC2
	// Identity is this instance, from the IMDS identity document.
	Identity imds.Identity
	// Deadline bounds the ENI step; zero is eni.DefaultDeadline.
	Deadline time.Duration
}

// NewCloud discovers the instance and region from IMDS and builds the EC2
// client: credentials from the default chain (the instance profile, read
// through the same IMDS endpoint), adaptive retry, and ec2Endpoint as
// BaseEndpoint when set (VPC endpoint, FIPS, tests). An empty imdsEndpoint
// is the SDK default.
func NewCloud(ctx context.Context, imdsEndpoint, ec2Endpoint string) (*Cloud, error) {
	md := imds.New(imdsEndpoint)
	id, err := md.Identity(ctx)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(id.Region)}
	if imdsEndpoint != "" {
		opts = append(opts, config.WithEC2IMDSEndpoint(imdsEndpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return &Cloud{
		EC2:      ec2.NewFromConfig(cfg, eni.ClientOptions(ec2Endpoint)),
		Identity: id,
	}, nil
}

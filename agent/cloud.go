package main

import (
	"context"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
)

// newCloud builds the AWS clients for EC2-managed interfaces.
func (f *nodeFlags) newCloud(ctx context.Context) (*bootstrap.Cloud, error) {
	return bootstrap.NewCloud(ctx, f.imdsEndpoint, f.ec2Endpoint)
}

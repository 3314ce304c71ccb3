package main

import (
	"context"
	"errors"

	"github.com/nodeprep/nodeprep/internal/bootstrap"
)

// newCloud builds the AWS clients for EC2-managed interfaces.
func (f *nodeFlags) newCloud(ctx context.Context) (*bootstrap.Cloud, error) {
	return nil, errors.New("EC2-managed interfaces are not wired into this build yet")
}

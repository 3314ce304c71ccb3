package ec2sim

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
)

var errNotImplemented = errors.New("ec2sim: not implemented")

// Endpoints are running EC2 and IMDS listeners.
type Endpoints struct {
	EC2URL  string // e.g. http://127.0.0.1:39121
	IMDSURL string // e.g. http://127.0.0.1:39122 ("" when not served)
	Region  string
}

// Serve listens on ec2Addr for the EC2 API and, when imdsAddr is not
// empty, on imdsAddr for instanceID's IMDS. Use "127.0.0.1:0" for a free port.
func (s *Sim) Serve(ec2Addr, imdsAddr, instanceID string) (*Endpoints, error) {
	return nil, errNotImplemented
}

// Close stops both listeners.
func (e *Endpoints) Close() error { return nil }

// AWSConfig returns an aws.Config that reaches the simulator: BaseEndpoint
// set to EC2URL, static credentials, the simulator's region.
func (e *Endpoints) AWSConfig() aws.Config { return aws.Config{} }

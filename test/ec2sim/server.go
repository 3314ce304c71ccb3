package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/nodeprep/nodeprep/internal/sdkhttp"
)

// Endpoints are running EC2 and IMDS listeners.
type Endpoints struct {
	EC2URL  string // e.g. http://127.0.0.1:39121
	IMDSURL string // e.g. http://127.0.0.1:39122 ("" when not served)
	Region  string

	servers []*http.Server
	done    []chan error
}

// Serve listens on ec2Addr for the EC2 API and, when imdsAddr is not
// empty, on imdsAddr for instanceID's IMDS. Use "127.0.0.1:0" for a free
// port. Close the returned Endpoints (and then the Sim) when done.
func (s *Sim) Serve(ec2Addr, imdsAddr, instanceID string) (*Endpoints, error) {
	ep := &Endpoints{Region: s.cfg.Region}
	url, err := ep.listen(ec2Addr, s.Handler())
	if err != nil {
		return nil, fmt.Errorf("EC2 listener: %w", err)
	}
	ep.EC2URL = url
	if imdsAddr != "" {
		if _, ok := s.Instance(instanceID); !ok {
			_ = ep.Close()
			return nil, fmt.Errorf("IMDS listener: instance %q not found", instanceID)
		}
		url, err := ep.listen(imdsAddr, s.IMDSHandler(instanceID))
		if err != nil {
			_ = ep.Close()
			return nil, fmt.Errorf("IMDS listener: %w", err)
		}
		ep.IMDSURL = url
	}
	return ep, nil
}

// ServeIMDS listens on addr for one more instance's IMDS only (several
// instances share one EC2 endpoint, each has its own metadata service).
func (s *Sim) ServeIMDS(addr, instanceID string) (*Endpoints, error) {
	if _, ok := s.Instance(instanceID); !ok {
		return nil, fmt.Errorf("IMDS listener: instance %q not found", instanceID)
	}
	ep := &Endpoints{Region: s.cfg.Region}
	url, err := ep.listen(addr, s.IMDSHandler(instanceID))
	if err != nil {
		return nil, fmt.Errorf("IMDS listener: %w", err)
	}
	ep.IMDSURL = url
	return ep, nil
}

func (e *Endpoints) listen(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	e.servers = append(e.servers, srv)
	e.done = append(e.done, done)
	return "http://" + ln.Addr().String(), nil
}

// Close stops both listeners. Requests held by a FaultTimeout are cut off;
// call Sim.Close first to release them cleanly.
func (e *Endpoints) Close() error {
	var errs []error
	for i, srv := range e.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		cancel()
		if err := <-e.done[i]; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	e.servers, e.done = nil, nil
	return errors.Join(errs...)
}

// AWSConfig returns an aws.Config that reaches the simulator: BaseEndpoint
// set to EC2URL, static credentials, the simulator's region. The SDK's
// default retryer is left in place, as production code would have it.
func (e *Endpoints) AWSConfig() aws.Config {
	return AWSConfig(e.EC2URL, e.Region)
}

// AWSConfig returns an aws.Config for an EC2 endpoint URL with static
// test credentials and HTTPClient().
func AWSConfig(endpointURL, region string) aws.Config {
	return AWSConfigFor(endpointURL, region, "EXAMPLE")
}

// AWSConfigFor is AWSConfig for one of several clients (nodes): its access
// key ID is "AKIAEC2SIM" + client, and the simulator draws that client's
// latencies, delays and fault probabilities from a generator of its own,
// so a seed gives each client the same draws whatever the others do.
func AWSConfigFor(endpointURL, region, client string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpointURL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAEC2SIM"+client, "ec2sim-secret", ""),
		HTTPClient:   HTTPClient(),
	}
}

// HTTPClient returns the HTTP client nodeprep itself gives the SDK, which
// avoids a smithy-go body race that a fast loopback server hits often.
func HTTPClient() *http.Client { return sdkhttp.Client() }

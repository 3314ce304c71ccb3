// Package imds reads what nodeprep needs from the EC2 instance metadata
// service: user data and the instance identity document.
// It speaks IMDSv2 only; the SDK fetches and refreshes the session token.
package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// ErrNoUserData is returned by UserData when the instance was launched
// without user data (IMDS answers 404).
var ErrNoUserData = errors.New("instance has no user data")

// ErrNotFound is returned when a metadata path the caller needs answers 404.
var ErrNotFound = errors.New("instance metadata path not found")

// Defaults for early boot, when the link to IMDS may not be up yet. The SDK
// caps each backoff at 1s and dials with a 250ms timeout, so 40 attempts
// cover roughly 40-50s; Deadline bounds a call whatever the attempts.
const (
	DefaultMaxAttempts = 40
	DefaultDeadline    = 90 * time.Second
	defaultMaxBackoff  = time.Second
)

// Client reads instance metadata.
type Client struct {
	sdk      *imds.Client
	deadline time.Duration
}

type options struct {
	maxAttempts int
	deadline    time.Duration
	httpClient  imds.HTTPClient
}

// Option tunes a Client.
type Option func(*options)

// WithMaxAttempts bounds the attempts of one metadata request (token
// included) while IMDS is unreachable or failing with 5xx.
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithDeadline bounds the whole of one method call, retries included.
func WithDeadline(d time.Duration) Option { return func(o *options) { o.deadline = d } }

// WithHTTPClient replaces the SDK's HTTP client, e.g. to dial inside a netns.
func WithHTTPClient(c imds.HTTPClient) Option { return func(o *options) { o.httpClient = c } }

// New returns a Client for endpoint; an empty endpoint uses the SDK default
// (http://169.254.169.254, or AWS_EC2_METADATA_SERVICE_ENDPOINT).
func New(endpoint string, opts ...Option) *Client {
	o := options{maxAttempts: DefaultMaxAttempts, deadline: DefaultDeadline}
	for _, fn := range opts {
		fn(&o)
	}
	retryer := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.maxAttempts
		so.MaxBackoff = defaultMaxBackoff
		so.Backoff = retry.NewExponentialJitterBackoff(defaultMaxBackoff)
		// The retry quota protects a remote service from retry storms; IMDS is
		// link-local and unreachable early in boot, which would drain it fast.
		so.RateLimiter = ratelimit.None
	})
	sdk := imds.New(imds.Options{
		Endpoint:       endpoint,
		Retryer:        retryer,
		HTTPClient:     o.httpClient,
		EnableFallback: aws.FalseTernary, // never IMDSv1
		// The SDK's 5s per-operation timeout would cut retries short; the
		// caller's deadline bounds each call instead.
		DisableDefaultTimeout: true,
	})
	return &Client{sdk: sdk, deadline: o.deadline}
}

// UserData returns the raw user data, or ErrNoUserData.
func (c *Client) UserData(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	out, err := c.sdk.GetUserData(ctx, &imds.GetUserDataInput{})
	if err != nil {
		if isNotFound(err) {
			return nil, ErrNoUserData
		}
		return nil, fmt.Errorf("imds: read user data: %w", err)
	}
	defer out.Content.Close()
	data, err := io.ReadAll(out.Content)
	if err != nil {
		return nil, fmt.Errorf("imds: read user data: %w", err)
	}
	return data, nil
}

// Identity is the part of the instance identity document nodeprep uses.
type Identity struct {
	InstanceID       string
	Region           string
	AvailabilityZone string
	InstanceType     string
	AccountID        string
}

// Identity reads the instance identity document.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	out, err := c.sdk.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("imds: read identity document: %w", err)
	}
	doc := out.InstanceIdentityDocument
	id := Identity{
		InstanceID:       doc.InstanceID,
		Region:           doc.Region,
		AvailabilityZone: doc.AvailabilityZone,
		InstanceType:     doc.InstanceType,
		AccountID:        doc.AccountID,
	}
	if id.InstanceID == "" || id.Region == "" {
		return Identity{}, fmt.Errorf("imds: identity document has no instanceId or region")
	}
	return id, nil
}

func (c *Client) get(ctx context.Context, path string) (string, error) {
	out, err := c.sdk.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("imds: %s: %w", path, ErrNotFound)
		}
		return "", fmt.Errorf("imds: read %s: %w", path, err)
	}
	defer out.Content.Close()
	data, err := io.ReadAll(out.Content)
	if err != nil {
		return "", fmt.Errorf("imds: read %s: %w", path, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func isNotFound(err error) bool {
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotFound
}

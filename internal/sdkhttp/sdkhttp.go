// Package sdkhttp is the HTTP client nodeprep gives aws-sdk-go-v2.
//
// It avoids a race in smithy-go (seen with v1.22.2, still in v1.28.8): the
// SDK closes the request body as soon as the response headers arrive, and
// when net/http's write loop then probes the body through WriteTo, the
// closed body answers io.EOF as an error, so the write loop closes the
// connection while the response is still being read ("deserialization failed
// ... use of closed network connection", aws/aws-sdk-go-v2#1825, #2737).
// Exposing only Read and Close hides WriteTo from net/http.
//
// The client also bounds every request: the SDK sets no timeout of its own,
// so one hung connection would otherwise use up the caller's whole deadline.
// A request that times out is retried by the SDK like a connection error.
package sdkhttp

import (
	"io"
	"net/http"
	"time"
)

// RequestTimeout bounds one HTTP request (one SDK attempt), headers and
// body. EC2 answers the calls nodeprep makes in well under a second, even
// when throttling (RequestLimitExceeded comes back at once).
const RequestTimeout = 10 * time.Second

// Client returns an HTTP client for SDK clients, with the workaround and
// RequestTimeout.
func Client() *http.Client { return ClientWithTimeout(RequestTimeout) }

// ClientWithTimeout is Client with another per-request timeout.
func ClientWithTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d, Transport: plainBodyTransport{http.DefaultTransport.(*http.Transport).Clone()}}
}

type plainBodyTransport struct{ next http.RoundTripper }

type plainBody struct{ io.ReadCloser }

func (t plainBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = plainBody{r.Body}
	}
	return t.next.RoundTrip(r)
}

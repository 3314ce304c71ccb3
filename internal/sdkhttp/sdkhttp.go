// Package sdkhttp is the HTTP client nodeprep gives aws-sdk-go-v2.
//
// It avoids a race in smithy-go (seen with v1.22.2, still in v1.28.8): the
// SDK closes the request body as soon as the response headers arrive, and
// when net/http's write loop then probes the body through WriteTo, the
// closed body answers io.EOF as an error, so the write loop closes the
// connection while the response is still being read ("deserialization failed
// ... use of closed network connection", aws/aws-sdk-go-v2#1825, #2737).
// Exposing only Read and Close hides WriteTo from net/http.
package sdkhttp

import (
	"io"
	"net/http"
)

// Client returns an HTTP client for SDK clients, with the workaround.
func Client() *http.Client {
	return &http.Client{Transport: plainBodyTransport{http.DefaultTransport.(*http.Transport).Clone()}}
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

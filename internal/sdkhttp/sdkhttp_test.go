package sdkhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type recordingTransport struct{ body io.ReadCloser }

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.body = r.Body
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

// The body net/http sees must not offer WriteTo (or Seek), which is what
// lets its write loop race the SDK's close of the body.
func TestBodyIsReadAndCloseOnly(t *testing.T) {
	next := &recordingTransport{}
	tr := plainBodyTransport{next}
	req, _ := http.NewRequest(http.MethodPost, "http://ec2.invalid/", io.NopCloser(bytes.NewReader([]byte("Action=DescribeSubnets"))))
	req.Body = struct {
		io.ReadCloser
		io.WriterTo
		io.Seeker
	}{req.Body, bytes.NewReader(nil), bytes.NewReader(nil)}
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := next.body.(io.WriterTo); ok {
		t.Error("body still implements io.WriterTo")
	}
	if _, ok := next.body.(io.Seeker); ok {
		t.Error("body still implements io.Seeker")
	}
	got, _ := io.ReadAll(next.body)
	if string(got) != "Action=DescribeSubnets" {
		t.Errorf("body = %q", got)
	}
	if Client().Transport == nil {
		t.Error("Client has no transport")
	}
}

// A server that never answers must not hold a request past its timeout,
// whatever deadline the caller's context has.
func TestHungRequestTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	if Client().Timeout != RequestTimeout || RequestTimeout <= 0 {
		t.Fatalf("Client timeout %v, want RequestTimeout", Client().Timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("Action=AttachNetworkInterface"))
	start := time.Now()
	_, err := ClientWithTimeout(200 * time.Millisecond).Do(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("hung request: %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("hung request returned after %v", took)
	}
}

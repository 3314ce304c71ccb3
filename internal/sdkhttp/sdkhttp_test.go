package sdkhttp

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
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

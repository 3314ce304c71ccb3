// Package userdata finds nodeprep's config documents in EC2 user data: plain
// YAML, base64 and/or gzip wrapped, or MIME multipart beside nodeadm's
// NodeConfig, shell scripts and cloud-config parts.
package userdata

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
)

// ContentType marks a MIME part as a nodeprep config.
const ContentType = "application/nodeprep.dev"

// Limits on what a small input may expand to.
const (
	// MaxExpandedBytes bounds the output of any decompression or decoding.
	MaxExpandedBytes = 4 << 20
	// MaxParts bounds the MIME parts looked at.
	MaxParts = 64
	// maxDepth bounds nesting of multipart, base64 and gzip layers.
	maxDepth = 4
	// maxBoundary is RFC 2046's limit on a multipart boundary.
	maxBoundary = 70
)

var (
	// ErrNoConfig means the user data holds no part for nodeprep.
	ErrNoConfig = errors.New("user data has no nodeprep part")
	// ErrTooLarge means an input expanded past MaxExpandedBytes.
	ErrTooLarge = errors.New("user data expands past 4 MiB")
	// ErrTooDeep means wrappers nest deeper than anyone writes by hand.
	ErrTooDeep = errors.New("user data nests more than 4 layers of multipart, base64 or gzip")
	// ErrUTF16 means the text starts with a UTF-16 byte-order mark; EC2
	// user data, nodeadm and nodeprep read UTF-8.
	ErrUTF16 = errors.New("text is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8")
)

// NodeadmContentType marks a MIME part as a nodeadm NodeConfig.
const NodeadmContentType = "application/node.eks.aws"

// partKind says which documents an extraction keeps: MIME parts of one
// content type, and plain (non-MIME) user data that passes plain.
type partKind struct {
	contentType string
	plain       func([]byte) bool
}

var (
	nodeprepParts = partKind{contentType: ContentType, plain: isOurYAML}
	nodeadmParts  = partKind{contentType: NodeadmContentType, plain: isNodeadmYAML}
)

// Warning is a part of the user data nodeprep skipped that its author may
// have meant for nodeprep, or that nothing on the node reads.
type Warning struct {
	// Part names the part: "user data part 3 (application/x-foo)".
	Part   string
	Reason string
}

func (w Warning) String() string { return w.Part + ": " + w.Reason }

// Found is what Scan found in user data.
type Found struct {
	// Sources are nodeprep's config documents, in order.
	Sources []api.Source
	// Warnings are parts skipped with a reason worth telling the user.
	Warnings []Warning
}

// Scan returns nodeprep's config documents in order, and a warning for
// every part it skipped that nothing on the node reads (an unknown
// Content-Type) or that cannot be decoded but is not nodeprep's. It fails on
// a nodeprep part it cannot read, and on a NodePrepConfig put in nodeadm's
// part, which would otherwise be silently ignored. No nodeprep part is not
// an error: Sources is empty.
func Scan(data []byte) (Found, error) {
	var f Found
	if err := nodeprepParts.extract(data, "user data", 0, &f); err != nil {
		return Found{}, err
	}
	return f, nil
}

// Extract is Scan without the warnings. ErrNoConfig says there were no
// nodeprep documents; it is not a failure.
func Extract(data []byte) ([]api.Source, error) {
	f, err := Scan(data)
	if err != nil {
		return nil, err
	}
	if len(f.Sources) == 0 {
		return nil, ErrNoConfig
	}
	return f.Sources, nil
}

// ExtractNodeadm returns nodeadm's NodeConfig documents in order: the
// application/node.eks.aws parts, or plain user data that is a NodeConfig.
// None is not an error.
func ExtractNodeadm(data []byte) ([]api.Source, error) {
	var f Found
	if err := nodeadmParts.extract(data, "user data", 0, &f); err != nil {
		return nil, err
	}
	return f.Sources, nil
}

func (k partKind) extract(data []byte, name string, depth int, out *Found) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: %w", name, ErrTooDeep)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")):
		return fmt.Errorf("%s: %w", name, ErrUTF16)
	case isGzip(data):
		plain, err := gunzip(data)
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", name, err)
		}
		return k.extract(plain, name, depth+1, out)
	case isMIME(data):
		return k.extractMIME(data, name, depth, out)
	case isBase64(data):
		plain, err := base64.StdEncoding.DecodeString(string(stripSpace(data)))
		if err != nil {
			return fmt.Errorf("%s: base64: %w", name, err)
		}
		return k.extract(plain, name, depth+1, out)
	case k.plain(data):
		out.Sources = append(out.Sources, api.Source{Name: name, Data: data})
	}
	return nil
}

func (k partKind) extractMIME(data []byte, name string, depth int, out *Found) error {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: MIME headers: %w", name, err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s: Content-Type: %w", name, err)
	}
	body, err := decodeTransfer(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		return k.extractPart(mediaType, body, name, depth, out)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return fmt.Errorf("%s: %s without a boundary", name, mediaType)
	}
	// Go's multipart reader fails on a long boundary with only "bufio:
	// buffer full"; say what is wrong instead.
	if len(boundary) > maxBoundary {
		return fmt.Errorf("%s: the MIME boundary is %d characters long; RFC 2046 allows at most %d", name, len(boundary), maxBoundary)
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for i := 1; ; i++ {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: part %d: %w", name, i, err)
		}
		if i > MaxParts {
			return fmt.Errorf("%s: more than %d MIME parts", name, MaxParts)
		}
		partType, partParams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			partType = "text/plain" // RFC 2046's default for a part without a type
		}
		partName := fmt.Sprintf("%s part %d (%s)", name, i, partType)
		partBody, err := decodeTransfer(part, part.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			if partType == k.contentType || errors.Is(err, ErrTooLarge) {
				return fmt.Errorf("%s: %w", partName, err)
			}
			// Another tool's part: its own reader reports it; it is not
			// a reason for nodeprep to refuse the node.
			out.Warnings = append(out.Warnings, Warning{Part: partName, Reason: fmt.Sprintf("cannot be decoded (%v); skipped, it is not nodeprep's", err)})
			continue
		}
		if strings.HasPrefix(partType, "multipart/") {
			nested := append([]byte(fmt.Sprintf("Content-Type: %s\r\n\r\n", mime.FormatMediaType(partType, partParams))), partBody...)
			if err := k.extract(nested, partName, depth+1, out); err != nil {
				return err
			}
			continue
		}
		if err := k.extractPart(partType, partBody, partName, depth, out); err != nil {
			return err
		}
	}
}

// extractPart keeps a part only if it is declared of the wanted type; such
// a part may itself be gzip or base64 wrapped.
func (k partKind) extractPart(mediaType string, body []byte, name string, depth int, out *Found) error {
	if mediaType != k.contentType {
		return k.skipped(mediaType, body, name, out)
	}
	for layer := 0; ; layer++ {
		if depth+layer > maxDepth {
			return fmt.Errorf("%s: %w", name, ErrTooDeep)
		}
		switch {
		case isGzip(body):
			plain, err := gunzip(body)
			if err != nil {
				return fmt.Errorf("%s: gzip: %w", name, err)
			}
			body = plain
		case isBase64(body):
			plain, err := base64.StdEncoding.DecodeString(string(stripSpace(body)))
			if err != nil {
				return fmt.Errorf("%s: base64: %w", name, err)
			}
			body = plain
		default:
			out.Sources = append(out.Sources, api.Source{Name: name, Data: body})
			return nil
		}
	}
}

// readByOthers are the part types something else on the node reads:
// nodeadm, and cloud-init's part handlers (cloudinit/handlers).
var readByOthers = map[string]bool{
	NodeadmContentType:                true,
	"text/plain":                      true, // cloud-init looks at the first line
	"text/x-shellscript":              true,
	"text/x-shellscript-per-boot":     true,
	"text/x-shellscript-per-instance": true,
	"text/x-shellscript-per-once":     true,
	"text/cloud-config":               true,
	"text/cloud-config-archive":       true,
	"text/cloud-config-jsonp":         true,
	"text/cloud-boothook":             true,
	"text/part-handler":               true,
	"text/x-include-url":              true,
	"text/x-include-once-url":         true,
	"text/jinja2":                     true,
	"text/upstart-job":                true,
	"application/x-shellscript":       true,
	"application/x-include-url":       true,
	"application/octet-stream":        true, // cloud-init sniffs it
}

// skipped checks a part that is not of the wanted type: a NodePrepConfig
// put in nodeadm's part is an error (nodeadm cannot read it and nodeprep
// would never see it), and a type nothing on the node reads is a warning.
func (k partKind) skipped(mediaType string, body []byte, name string, out *Found) error {
	if k.contentType != ContentType {
		return nil
	}
	if mediaType == NodeadmContentType && isOurYAML(body) {
		return fmt.Errorf("%s: holds a %s, which nodeprep reads only from a part with Content-Type: %s (nodeadm cannot read it either); give it a part of its own", name, api.Kind, ContentType)
	}
	switch {
	case readByOthers[mediaType]:
	case strings.Contains(mediaType, "nodeprep"):
		out.Warnings = append(out.Warnings, Warning{Part: name, Reason: fmt.Sprintf("Content-Type %s is not nodeprep's (%s); skipped", mediaType, ContentType)})
	default:
		out.Warnings = append(out.Warnings, Warning{Part: name, Reason: fmt.Sprintf("Content-Type %s is read by neither nodeprep (%s), nodeadm (%s) nor cloud-init; skipped", mediaType, ContentType, NodeadmContentType)})
	}
	return nil
}

func decodeTransfer(r io.Reader, encoding string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary":
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &spaceStripper{r: r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	default:
		return nil, fmt.Errorf("unsupported Content-Transfer-Encoding %q", encoding)
	}
	return readLimited(r)
}

// Read reads raw user data, or one config, from r: at most MaxExpandedBytes,
// so that a huge file or a device like /dev/zero is refused instead of
// exhausting memory.
func Read(r io.Reader) ([]byte, error) { return readLimited(r) }

// ReadFile is Read for a named file.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxExpandedBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxExpandedBytes {
		return nil, ErrTooLarge
	}
	return b, nil
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return readLimited(zr)
}

func isGzip(b []byte) bool { return len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b }

// isMIME is true for a message that starts with MIME headers, as nodeadm and
// cloud-init user data do.
func isMIME(b []byte) bool {
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	l := strings.ToLower(string(line))
	return strings.HasPrefix(l, "mime-version:") || strings.HasPrefix(l, "content-type:")
}

// isBase64 is true for text of only the base64 alphabet. YAML configs always
// contain ':' and so are never mistaken for it.
func isBase64(b []byte) bool {
	s := stripSpace(b)
	if len(s) == 0 || len(s)%4 != 0 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// isOurYAML accepts plain user data when it looks like a nodeprep config: a
// top-level apiVersion that names nodeprep, or kind NodePrepConfig. A shell
// script or a bare nodeadm NodeConfig is left alone, while a config with a
// misspelled apiVersion is taken, so that decoding reports the mistake
// instead of the run silently doing nothing. Lines have no length limit:
// the input is already bounded by MaxExpandedBytes.
func isOurYAML(b []byte) bool {
	if bytes.HasPrefix(b, []byte("#!")) {
		return false
	}
	return topLevelValue(b, "apiVersion", func(v string) bool { return strings.Contains(v, "nodeprep") }) ||
		topLevelValue(b, "kind", func(v string) bool { return v == strings.ToLower(api.Kind) })
}

// topLevelValue reports whether a top-level "key: value" line has a value
// (unquoted, lower-cased) that match accepts.
func topLevelValue(b []byte, key string, match func(string) bool) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := strings.Cut(string(bytes.TrimRight(line, " \t\r")), ":")
		if ok && k == key && match(strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`))) {
			return true
		}
	}
	return false
}

// isNodeadmYAML is true for plain user data that is a nodeadm NodeConfig.
func isNodeadmYAML(b []byte) bool {
	return topLevelValue(b, "apiVersion", func(v string) bool { return strings.HasPrefix(v, "node.eks.aws/") })
}

func stripSpace(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			out = append(out, c)
		}
	}
	return out
}

type spaceStripper struct{ r io.Reader }

func (s *spaceStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}

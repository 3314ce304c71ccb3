package boot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Console collects the guest's serial console line by line and lets a test
// wait for a line, woken by each write rather than by polling.
type Console struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	changed chan struct{}
	tee     io.Writer
}

// NewConsole returns a Console that also copies everything to tee (may be nil).
func NewConsole(tee io.Writer) *Console {
	return &Console{changed: make(chan struct{}), tee: tee}
}

func (c *Console) Write(p []byte) (int, error) {
	if c.tee != nil {
		_, _ = c.tee.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.lines = append(c.lines, strings.TrimRight(string(c.partial[:i]), "\r"))
		c.partial = c.partial[i+1:]
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// Len is the number of complete lines so far: a position for WaitFor.
func (c *Console) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// WaitFor returns the first line at or after position from that matches re.
func (c *Console) WaitFor(ctx context.Context, re *regexp.Regexp, from int) (string, error) {
	_, line, err := c.WaitForAt(ctx, re, from)
	return line, err
}

// WaitForAt is WaitFor that also returns the line's position.
func (c *Console) WaitForAt(ctx context.Context, re *regexp.Regexp, from int) (int, string, error) {
	for {
		c.mu.Lock()
		for i := from; i < len(c.lines); i++ {
			if re.MatchString(c.lines[i]) {
				c.mu.Unlock()
				return i, c.lines[i], nil
			}
		}
		from = len(c.lines)
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, "", fmt.Errorf("console: no line matching %q: %w", re, ctx.Err())
		}
	}
}

// Tail returns the last n lines.
func (c *Console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines[max(0, len(c.lines)-n):], "\n")
}

package nodeprep

import (
	"bytes"
	"fmt"
	"strings"
)

// StageError stops the build: it names the stage, the command, its exit
// status and the tail of its stderr.
type StageError struct {
	Stage      string
	Command    string
	ExitStatus int
	Stderr     string
	Err        error
}

func (e *StageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nodeprep stage %q failed", e.Stage)
	if e.Command != "" {
		fmt.Fprintf(&b, ": command %s", e.Command)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	} else {
		fmt.Fprintf(&b, " exited with status %d", e.ExitStatus)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "; stderr tail:\n%s", e.Stderr)
	}
	return b.String()
}

func (e *StageError) Unwrap() error { return e.Err }

const stderrTailBytes = 2048

// tail returns at most the last n bytes of b, starting at a line boundary.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// shortCmd keeps error messages readable: the label and the first line.
func shortCmd(what, script string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(script), "\n")
	if len(first) > 160 {
		first = first[:160] + "..."
	}
	return fmt.Sprintf("%q (%s)", what, first)
}

package state

import (
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Issue 21 item 11: a corrupt state file made every later run exit 1 with
// no hint how to recover. Open (every run) and Read (status) say how.
func TestCorruptStateFileSaysHowToRecover(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":     `{"version": 1, "command": "ru`,
		"other version": `{"version": 99}`,
	} {
		root := hostfs.New(t.TempDir())
		if err := root.MkdirAll("/run/nodeprep", 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := root.WriteFile(Path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errRead := Read(root)
		_, errOpen := Open(root, "run", time.Now())
		for call, err := range map[string]error{"Read": errRead, "Open": errOpen} {
			if err == nil || !strings.Contains(err.Error(), "rm "+Path) {
				t.Errorf("%s, %s: %v; want the way out (rm %s)", name, call, err, Path)
			}
		}
	}
}

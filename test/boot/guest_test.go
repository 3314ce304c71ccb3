package boot

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitProps reads systemd properties of a unit in the guest.
func unitProps(t *testing.T, b *Bed, unit string, props ...string) map[string]string {
	t.Helper()
	cmd := "systemctl show " + unit
	for _, p := range props {
		cmd += " -p " + p
	}
	out := b.MustSSH(t, cmd)
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// monotonic parses a *TimestampMonotonic property: microseconds since the
// guest kernel booted; 0 means the event never happened.
func monotonic(t *testing.T, props map[string]string, key string) time.Duration {
	t.Helper()
	us, err := strconv.ParseInt(props[key], 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, props[key], err)
	}
	return time.Duration(us) * time.Microsecond
}

// journalEntry is one journal entry as `journalctl -o json` prints it.
type journalEntry map[string]any

func (e journalEntry) str(k string) string {
	s, _ := e[k].(string)
	return s
}

// journal returns nodeprep's journal entries of the current boot matching
// the given journalctl arguments (field matches, -p ...).
func journal(t *testing.T, b *Bed, args ...string) []journalEntry {
	t.Helper()
	return parseJournal(t, b.MustSSH(t, "journalctl -b -u nodeprep.service -o json --no-pager "+strings.Join(args, " ")))
}

// parseJournal reads `journalctl -o json` output, one entry a line.
func parseJournal(t *testing.T, out string) []journalEntry {
	t.Helper()
	var entries []journalEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journalctl -o json line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries
}

// messages is the MESSAGE of each entry, for failure output and logs.
func messages(entries []journalEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s\n", e.str("MESSAGE"))
	}
	return b.String()
}

// guestFile returns a file's content in the guest, and whether it exists.
func guestFile(t *testing.T, b *Bed, path string) (string, bool) {
	t.Helper()
	out, err := b.SSH("cat " + path)
	if err != nil {
		exists, _ := b.SSH("test -e " + path + " && echo yes")
		if strings.TrimSpace(exists) == "yes" {
			t.Fatal(err)
		}
		return "", false
	}
	return out, true
}

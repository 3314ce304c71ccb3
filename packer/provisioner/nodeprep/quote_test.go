package nodeprep

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTripsThroughShell(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `a"b`, "$(reboot)", "`id`", "a\nb", "'; rm -rf / #", `\'\\`} {
		out, err := exec.Command("sh", "-c", "printf %s "+q(s)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != s {
			t.Errorf("q(%q) came back as %q", s, out)
		}
	}
}

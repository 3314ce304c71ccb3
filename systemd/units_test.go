package systemd

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// unitValues returns every value of key (e.g. "ExecStart") in a unit's text.
func unitValues(unit []byte, key string) []string {
	var values []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			values = append(values, v)
		}
	}
	return values
}

func mustUnit(t *testing.T, name string) []byte {
	t.Helper()
	data, err := Unit(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The constants are what installers rely on: they must name what the files say.
func TestNamesMatchTheShippedUnits(t *testing.T) {
	for _, name := range []string{AgentService, CNIRefreshService} {
		execs := unitValues(mustUnit(t, name), "ExecStart")
		if len(execs) != 1 || !strings.HasPrefix(execs[0], BinaryPath+" ") {
			t.Errorf("%s: ExecStart %q, want one starting with %s", name, execs, BinaryPath)
		}
	}
	if got := unitValues(mustUnit(t, CNIRefreshPath), "Unit"); len(got) != 1 || got[0] != CNIRefreshService {
		t.Errorf("%s: Unit= %q, want %s", CNIRefreshPath, got, CNIRefreshService)
	}
	if got := unitValues(mustUnit(t, CNIRefreshService), "Requisite"); len(got) != 1 || got[0] != AgentService {
		t.Errorf("%s: Requisite= %q, want %s", CNIRefreshService, got, AgentService)
	}
}

func TestUnitRejectsUnknownName(t *testing.T) {
	_, err := Unit("kubelet.service")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "kubelet.service") {
		t.Fatalf("Unit(kubelet.service) = %v, want a not-exist error naming it", err)
	}
}

package systemd

import (
	"testing"
)

func TestWatchUnitRunsTheWatcherHardened(t *testing.T) {
	u := mustUnit(t, WatchService)
	if got := unitValues(u, "ExecStart"); len(got) != 1 || got[0] != BinaryPath+" watch" {
		t.Errorf("ExecStart %q", got)
	}
	if got := unitValues(u, "Requisite"); len(got) != 1 || got[0] != AgentService {
		t.Errorf("Requisite %q, want %s", got, AgentService)
	}
	for key, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes"} {
		if got := unitValues(u, key); len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	// The vermagic check, cheap and so run by the watch, reads
	// /lib/modules, which ProtectKernelModules= hides (the boot bed's watch
	// failed it at start: "modules.dep: permission denied").
	if got := unitValues(u, "ProtectKernelModules"); len(got) != 0 {
		t.Errorf("ProtectKernelModules=%q hides /lib/modules from the vermagic check", got)
	}
	// What it may write derives from what it writes: test/systemd
	// (TestUnitsLetNodeprepWriteWhatItWrites) checks it against the
	// watcher's repair steps and its metrics file.
}

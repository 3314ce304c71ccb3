package systemd_test

import (
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
)

// On first boot 10-aws.conflist appears after nodeprep ran: the path unit
// must watch exactly the file nodeprep reads the cluster network from and
// start a unit that runs nodeprep again, only after nodeprep's boot run.
func TestCNIRefreshUnitsWatchTheClusterNetwork(t *testing.T) {
	path := parseUnitFile(t, "../../systemd/nodeprep-cni-refresh.path")
	if path["Path.PathChanged"] != api.DefaultClusterNetwork {
		t.Errorf("PathChanged = %q, want %s", path["Path.PathChanged"], api.DefaultClusterNetwork)
	}
	if path["Path.Unit"] != "nodeprep-cni-refresh.service" || path["Install.WantedBy"] == "" {
		t.Errorf("path unit: %v", path)
	}
	svc := parseUnitFile(t, "../../systemd/nodeprep-cni-refresh.service")
	if svc["Service.ExecStart"] != "/usr/bin/nodeprep run" || svc["Service.Type"] != "oneshot" {
		t.Errorf("service: %v", svc)
	}
	if svc["Unit.Requisite"] != "nodeprep.service" || !strings.Contains(svc["Unit.After"], "nodeprep.service") {
		t.Errorf("the refresh must only follow a successful boot run: %v", svc)
	}

	verifyUnits(t, "nodeprep.service", "nodeprep-cni-refresh.service", "nodeprep-cni-refresh.path")
}

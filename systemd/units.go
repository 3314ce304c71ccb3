// Package systemd carries the units nodeprep ships and the names they share
// with whatever installs them, so an image builder installs exactly these
// files and cannot disagree with them about a unit name or the binary path.
package systemd

import (
	"embed"
	"fmt"
)

const (
	// BinaryPath is where every unit's ExecStart expects the agent.
	BinaryPath = "/usr/bin/nodeprep"
	// UnitDir is where an image installs units of its own.
	UnitDir = "/etc/systemd/system"

	// AgentService runs nodeprep at boot, before kubelet.
	AgentService = "nodeprep.service"
	// CNIRefreshPath watches the VPC CNI's conflist and starts CNIRefreshService,
	// so 00-multus.conf follows the file once aws-node writes it. It is the one
	// of the two an image enables.
	CNIRefreshPath = "nodeprep-cni-refresh.path"
	// CNIRefreshService runs nodeprep again after its boot run.
	CNIRefreshService = "nodeprep-cni-refresh.service"
	// WatchService runs `nodeprep watch` after boot, reporting drift.
	WatchService = "nodeprep-watch.service"
)

// The embedded copies are the files in this directory; there is no other source.
//
//go:embed nodeprep.service nodeprep-cni-refresh.path nodeprep-cni-refresh.service nodeprep-watch.service
var unitFiles embed.FS

// Unit returns the content of a shipped unit, by its name.
func Unit(name string) ([]byte, error) {
	data, err := unitFiles.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("systemd unit %s: %w", name, err)
	}
	return data, nil
}

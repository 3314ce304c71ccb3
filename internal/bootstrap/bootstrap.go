// Package bootstrap assembles nodeprep's step graph for one node. Each area
// (ENIs, DPDK, CNI) contributes its steps from its own file; the graph is the
// same on every run, and a step whose config section is empty does nothing.
package bootstrap

import (
	"log/slog"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/engine"
)

// Step names. Steps name their predecessors with these constants.
const (
	StepConfig       = "config"
	StepENIs         = "enis"
	StepLinks        = "links"
	StepHugepages    = "hugepages"
	StepModules      = "modules"
	StepBind         = "bind"
	StepDevicePlugin = "deviceplugin"
	StepCNI          = "cni"
)

// Node is everything the steps of one run share.
type Node struct {
	Host   Host
	Log    *slog.Logger
	Config *api.NodePrepConfig
	// Cloud reaches EC2. It is nil when the config has no EC2-managed
	// interfaces (offline runs, the VM test bed).
	Cloud *Cloud
	model *model
}

// Steps returns the whole graph, config first.
func (n *Node) Steps(config engine.Step) []engine.Step {
	steps := []engine.Step{config}
	for _, area := range n.areas() {
		steps = append(steps, area()...)
	}
	return steps
}

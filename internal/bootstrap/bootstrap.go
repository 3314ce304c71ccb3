// Package bootstrap assembles nodeprep's step graph for one node. Each area
// (ENIs, DPDK, CNI) contributes its steps from its own file; the graph is the
// same on every run, and a step whose config section is empty does nothing.
package bootstrap

import (
	"log/slog"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
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

// Node is everything the steps share. The config step fills Config; every
// other step runs after it and reads it.
type Node struct {
	Root   hostfs.Root
	State  *state.Store
	Log    *slog.Logger
	Config *api.NodePrepConfig
	// Cloud reaches IMDS and EC2. It is nil when the node has no managed ENIs to
	// reconcile and no cloud was configured (offline runs, the VM test bed).
	Cloud *Cloud
	// NodeadmConfigs are user data's nodeadm NodeConfig documents, whose
	// taints and maxPods the nodeadm drop-in carries forward.
	NodeadmConfigs [][]byte
}

// Steps returns the whole graph, config first.
func (n *Node) Steps(config engine.Step) []engine.Step {
	steps := []engine.Step{config}
	for _, area := range n.areas() {
		steps = append(steps, area()...)
	}
	return steps
}

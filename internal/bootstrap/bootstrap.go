// Package bootstrap assembles nodeprep's step graph for one node. Each area
// (ENIs, DPDK, CNI) contributes its steps from its own file; the graph is the
// same on every run, and a step whose config section is empty does nothing.
package bootstrap

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
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
	// cloudErr is why Cloud could not be set up; the ENI step fails with it.
	cloudErr error
	// NodeadmConfigs are user data's nodeadm NodeConfig documents, whose
	// taints and maxPods the nodeadm drop-in carries forward.
	NodeadmConfigs [][]byte
	// loadTime is how long fetching and validating the config took.
	loadTime time.Duration
	model    *model
	// limits caches the instance type's network limits for one run.
	limitsMu sync.Mutex
	limits   *eni.LimitsOnce
	// tainted is set by the nodeadm step once the failure taint is in its
	// drop-in.
	tainted atomic.Bool
}

// Steps returns the whole graph, config first.
func (n *Node) Steps() []engine.Step {
	steps := []engine.Step{n.configStep()}
	for _, area := range n.areas() {
		steps = append(steps, area()...)
	}
	return steps
}

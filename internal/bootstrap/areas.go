package bootstrap

import (
	"github.com/nodeprep/nodeprep/internal/engine"
)

// areas lists each area's step constructor. Each lives in its own file.
func (n *Node) areas() []func() []engine.Step {
	return []func() []engine.Step{n.eniSteps, n.dpdkSteps, n.cniSteps, n.podNetSteps, n.cpuSteps, n.nicLocalSteps, n.nodeadmSteps}
}

package bootstrap

import (
	"context"

	"github.com/nodeprep/nodeprep/internal/engine"
)

// areas lists each area's step constructor. Each lives in its own file.
func (n *Node) areas() []func() []engine.Step {
	return []func() []engine.Step{n.eniSteps, n.dpdkSteps, n.cniSteps, n.podNetSteps, n.cpuSteps, n.nicLocalSteps}
}

// finishers run after the graph, whatever its outcome.
func (n *Node) finishers() []func(ctx context.Context, failed []string) error {
	return []func(ctx context.Context, failed []string) error{n.WriteNodeConfig}
}

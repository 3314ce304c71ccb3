package bootstrap

import "github.com/nodeprep/nodeprep/internal/engine"

// areas lists each area's step constructor. Each lives in its own file.
func (n *Node) areas() []func() []engine.Step {
	return nil
}

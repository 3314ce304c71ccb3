package bootstrap

import (
	"context"
	"log/slog"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
)

// userData is cfg as the user data a node would be launched with.
func userData(t testing.TB, cfg *api.NodePrepConfig) []byte {
	t.Helper()
	c := *cfg
	c.APIVersion, c.Kind = api.APIVersion, api.Kind
	b, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runGraph runs the production graph through Runner on host, with cfg as
// user data. With only set, it runs just those steps, their predecessors
// stubbed, as the engine orders them in production.
func runGraph(t testing.TB, host Host, cfg *api.NodePrepConfig, dryRun bool, only ...string) (Summary, error) {
	t.Helper()
	data := userData(t, cfg)
	r := &Runner{
		Host:     host,
		Log:      slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) { return data, nil },
		DryRun:   dryRun,
		Only:     only,
	}
	return r.Run(context.Background())
}

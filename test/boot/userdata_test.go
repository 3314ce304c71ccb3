package boot

import (
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

// TestUserDataPassesTheAgentsValidation judges the bed's user data with the
// agent's own parser and validator, without booting: a typo here would
// otherwise cost a whole boot to find.
func TestUserDataPassesTheAgentsValidation(t *testing.T) {
	for name, part := range map[string]string{
		"healthy node":      twoENIs,
		"failing hugepages": failingHugepages("Block"),
	} {
		t.Run(name, func(t *testing.T) {
			sources, err := userdata.Extract(UserData(part))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(sources) != 1 {
				t.Fatalf("%d nodeprep parts, want 1 (the nodeadm and shell parts are not nodeprep's)", len(sources))
			}
			cfg, err := api.Load(sources...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := api.Validate(cfg); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

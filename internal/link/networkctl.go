package link

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// Networkctl reloads systemd-networkd with networkctl when it is running.
// On nodes without networkd (or before it starts) there is nothing to
// reload: networkd reads the file when it starts.
type Networkctl struct{}

// Reload implements Reloader.
func (Networkctl) Reload(ctx context.Context) error {
	systemctl, err := exec.LookPath("systemctl")
	if err != nil {
		return nil
	}
	if err := exec.CommandContext(ctx, systemctl, "is-active", "--quiet", "systemd-networkd.service").Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil // inactive
		}
		return err
	}
	out, err := exec.CommandContext(ctx, "networkctl", "reload").CombinedOutput()
	if err != nil {
		return fmt.Errorf("networkctl reload: %w: %s", err, out)
	}
	return nil
}

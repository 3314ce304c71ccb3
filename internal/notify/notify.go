// Package notify tells systemd how a Type=notify service is doing.
package notify

import (
	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier reports readiness and progress to the service manager.
type Notifier interface {
	Ready() error
	Status(line string) error
}

// Systemd sends sd_notify messages over $NOTIFY_SOCKET. Outside systemd it
// does nothing, so the same binary runs by hand and in tests.
type Systemd struct{}

// Ready sends READY=1: kubelet may start.
func (Systemd) Ready() error { return send(daemon.SdNotifyReady) }

// Status sends STATUS=, shown by `systemctl status nodeprep`.
func (Systemd) Status(line string) error { return send("STATUS=" + line) }

func send(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

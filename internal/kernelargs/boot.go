package kernelargs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nodeprep/nodeprep/internal/change"
)

// Host paths Boot reads and writes.
const (
	ProcCmdline = "/proc/cmdline"
	BootIDPath  = "/proc/sys/kernel/random/boot_id"
	// MarkerPath records the one reboot nodeprep asked for.
	MarkerPath = "/var/lib/nodeprep/kernelargs-reboot.json"
)

// ErrStillMissing: nodeprep already rebooted once for these arguments and
// the kernel still did not boot with them (a boot loader that ignores the
// entries, an instance that boots another volume). Rebooting again would
// loop, so the step fails and the failure policy decides.
var ErrStillMissing = errors.New("kernel arguments still missing after the reboot nodeprep asked for")

// Rebooter asks the init system to reboot. It returns once the request is
// queued; the reboot itself then stops nodeprep like every other service.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Marker is what nodeprep writes before it reboots: the boot it rebooted
// from and the arguments it rebooted for.
type Marker struct {
	BootID string   `json:"bootID"`
	Args   []string `json:"args"`
}

// Decision is what this boot must do about the kernel arguments.
type Decision struct {
	// Missing are the wanted arguments /proc/cmdline lacks.
	Missing Args
	// Reboot is true when this boot must persist Missing and reboot once.
	Reboot bool
}

// Boot decides, and makes, the at-most-one reboot. Persisting comes first
// (Persister), then the marker (fsynced), then the reboot request, so a
// crash anywhere leaves a state the next run converges from:
//
//   - crash before the marker: the next run of this boot persists (a no-op
//     by then) and reboots;
//   - crash after the marker, before the reboot: the marker names this very
//     boot, so the re-run still reboots, once;
//   - after the reboot the marker names an earlier boot: if the arguments
//     are there, nothing is done; if they are not, ErrStillMissing, never a
//     second reboot for the same arguments. A loop would need the wanted
//     arguments to change on every boot, and they are a function of the
//     config and the CPU topology only.
type Boot struct {
	Persist Persister
	Reboot  Rebooter
}

// Decide reads /proc/cmdline, the boot id and the marker; it changes nothing.
func (b Boot) Decide(want Args) (Decision, error) {
	raw, err := b.Persist.Root.ReadFile(ProcCmdline)
	if err != nil {
		return Decision{}, err
	}
	missing := Missing(Parse(string(raw)), want)
	if len(missing) == 0 {
		return Decision{}, nil
	}
	bootID, err := b.bootID()
	if err != nil {
		return Decision{}, err
	}
	m, err := b.marker()
	if err != nil {
		return Decision{}, err
	}
	if m != nil && m.BootID != bootID && (m.Args == nil || strings.Join(m.Args, " ") == want.String()) {
		return Decision{Missing: missing}, fmt.Errorf("%s: /proc/cmdline lacks %s after the reboot of boot %s (marker %s; remove it to allow one more): %w",
			strings.TrimSpace(string(raw)), missing, m.BootID, MarkerPath, ErrStillMissing)
	}
	return Decision{Missing: missing, Reboot: true}, nil
}

// Plan is the changes of this boot: none when the command line already has
// want; otherwise the persistence, the marker and the reboot request.
func (b Boot) Plan(ctx context.Context, want Args) (Decision, []change.Change, error) {
	d, err := b.Decide(want)
	if err != nil || !d.Reboot {
		return d, nil, err
	}
	changes, err := b.Persist.Plan(ctx, want)
	if err != nil {
		return d, nil, err
	}
	bootID, err := b.bootID()
	if err != nil {
		return d, nil, err
	}
	data, err := json.Marshal(Marker{BootID: bootID, Args: want.Strings()})
	if err != nil {
		return d, nil, err
	}
	changes = append(changes,
		change.Change{
			What: "record the one reboot for the kernel arguments in " + MarkerPath,
			Apply: func(context.Context) error {
				_, err := b.Persist.Root.WriteFile(MarkerPath, append(data, '\n'), 0o644)
				return err
			},
		},
		change.Change{
			What: fmt.Sprintf("reboot once, before kubelet starts, to boot with %s", d.Missing),
			Apply: func(ctx context.Context) error {
				return b.Reboot.Reboot(ctx)
			},
		})
	return d, changes, nil
}

func (b Boot) bootID() (string, error) {
	raw, err := b.Persist.Root.ReadFile(BootIDPath)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(raw))
	if id == "" {
		return "", fmt.Errorf("%s is empty", BootIDPath)
	}
	return id, nil
}

func (b Boot) marker() (*Marker, error) {
	raw, err := b.Persist.Root.ReadFile(MarkerPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(raw, &m); err != nil {
		// A marker that does not parse (it is written atomically, so only
		// damage does this) cannot tell which boot or arguments it was for:
		// it counts as an earlier boot's for any arguments, the side that
		// never reboots twice.
		return &Marker{BootID: "unreadable"}, nil
	}
	return &m, nil
}

package kernelargs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// DefaultGrub is the file grub2-mkconfig and update-grub build entries from.
const DefaultGrub = "/etc/default/grub"

// ErrGrubEdit is returned for an /etc/default/grub nodeprep will not edit.
var ErrGrubEdit = errors.New("cannot edit GRUB_CMDLINE_LINUX")

// Runner runs a host command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Persister makes kernel arguments survive reboots and kernel updates.
type Persister struct {
	Root hostfs.Root
	Run  Runner
}

// grubbyPaths are where distributions install grubby; AL2023 has it, Debian
// and Ubuntu do not (they regenerate grub.cfg with update-grub instead).
var grubbyPaths = []string{"/usr/sbin/grubby", "/usr/bin/grubby", "/sbin/grubby"}

func (p Persister) grubby() string {
	for _, g := range grubbyPaths {
		if p.Root.Exists(g) {
			return g
		}
	}
	return ""
}

// Plan returns the changes that make every boot entry and
// GRUB_CMDLINE_LINUX carry want; none when both already do.
func (p Persister) Plan(ctx context.Context, want Args) ([]change.Change, error) {
	if len(want) == 0 {
		return nil, nil
	}
	var changes []change.Change
	cur, err := p.Root.ReadFile(DefaultGrub)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	next, edited, err := SetGrubCmdline(cur, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DefaultGrub, err)
	}
	if edited {
		changes = append(changes, change.Change{
			What: fmt.Sprintf("set %s in GRUB_CMDLINE_LINUX of %s", want, DefaultGrub),
			Apply: func(context.Context) error {
				_, err := p.Root.WriteFile(DefaultGrub, next, 0o644)
				return err
			},
		})
	}
	if g := p.grubby(); g != "" {
		out, err := p.Run.Run(ctx, g, "--info=ALL")
		if err != nil {
			return nil, fmt.Errorf("grubby --info=ALL: %w", err)
		}
		if entriesLack(out, want) {
			changes = append(changes, change.Change{
				What: fmt.Sprintf("grubby --update-kernel=ALL --args=%q", want.String()),
				Apply: func(ctx context.Context) error {
					if _, err := p.Run.Run(ctx, g, "--update-kernel=ALL", "--args="+want.String()); err != nil {
						return fmt.Errorf("grubby --update-kernel=ALL: %w", err)
					}
					return nil
				},
			})
		}
	} else if edited {
		changes = append(changes, change.Change{
			What: "update-grub (no grubby: regenerate grub.cfg from " + DefaultGrub + ")",
			Apply: func(ctx context.Context) error {
				if _, err := p.Run.Run(ctx, "update-grub"); err != nil {
					return fmt.Errorf("update-grub: %w", err)
				}
				return nil
			},
		})
	}
	return changes, nil
}

// entriesLack reports whether any boot entry grubby --info=ALL lists lacks
// one of want. An output with no entry at all counts as lacking.
func entriesLack(info []byte, want Args) bool {
	found := false
	for _, line := range strings.Split(string(info), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "args=")
		if !ok {
			continue
		}
		found = true
		if len(Missing(Parse(strings.Trim(v, `"`)), want)) > 0 {
			return true
		}
	}
	return !found
}

// SetGrubCmdline sets args in the GRUB_CMDLINE_LINUX line of an
// /etc/default/grub file: tokens with the same key are replaced, other
// tokens keep their order, and a missing line is appended. It reports
// whether the content changed. A value using shell expansion is refused
// rather than guessed at.
func SetGrubCmdline(content []byte, args Args) ([]byte, bool, error) {
	lines := strings.SplitAfter(string(content), "\n")
	found := false
	for i, line := range lines {
		trimmed := strings.TrimRight(line, "\n")
		if !strings.HasPrefix(trimmed, "GRUB_CMDLINE_LINUX=") {
			continue
		}
		if found {
			return nil, false, fmt.Errorf("GRUB_CMDLINE_LINUX is set more than once: %w", ErrGrubEdit)
		}
		found = true
		unq, err := unquoteGrubValue(strings.TrimPrefix(trimmed, "GRUB_CMDLINE_LINUX="))
		if err != nil {
			return nil, false, err
		}
		lines[i] = `GRUB_CMDLINE_LINUX="` + Parse(unq).Set(args).String() + "\"\n"
	}
	out := strings.Join(lines, "")
	if !found {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += `GRUB_CMDLINE_LINUX="` + args.String() + "\"\n"
	}
	return []byte(out), out != string(content), nil
}

// unquoteGrubValue accepts the plain forms seen in /etc/default/grub: a
// double- or single-quoted string without expansions, or a bare word.
func unquoteGrubValue(v string) (string, error) {
	switch {
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		inner := v[1 : len(v)-1]
		if strings.ContainsAny(inner, "\"$`\\") {
			return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s uses shell expansion: %w", v, ErrGrubEdit)
		}
		return inner, nil
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		inner := v[1 : len(v)-1]
		if strings.Contains(inner, "'") {
			return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s is not a plain quoted string: %w", v, ErrGrubEdit)
		}
		return inner, nil
	case !strings.ContainsAny(v, "\"'$`\\ \t"):
		return v, nil
	}
	return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s is not a plain value: %w", v, ErrGrubEdit)
}

// Exec runs host commands for real.
type Exec struct{}

// Run runs name with args and returns its standard output; a failure
// carries the command's standard error.
func (Exec) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Systemctl reboots through systemd: the reboot job replaces nodeprep's
// pending dependents (nodeadm-run.service, kubelet), so kubelet never starts
// on this boot.
type Systemctl struct{ Run Runner }

// Reboot queues systemd's reboot job and returns.
func (s Systemctl) Reboot(ctx context.Context) error {
	_, err := s.Run.Run(ctx, "systemctl", "reboot")
	return err
}

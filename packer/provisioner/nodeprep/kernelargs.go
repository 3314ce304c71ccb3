package nodeprep

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// stageKernelArgs sets the boot arguments: grubby on AL2023; on Debian an edit
// of /etc/default/grub made here (so it can be tested and left alone when it
// already matches), then update-grub.
func stageKernelArgs(ctx context.Context, s *session) error {
	if s.tgt.family == FamilyAL2023 {
		_, err := s.runScript(ctx, "grubby --update-kernel=ALL", "kernel_args_al2023.sh", true)
		return err
	}
	cur, err := s.download("/etc/default/grub")
	if err != nil {
		return err
	}
	next, changed, err := setGrubCmdline(cur, s.cfg.kernelArgs())
	if err != nil {
		return &StageError{Stage: s.stage, Command: "edit /etc/default/grub", Err: err}
	}
	const what = "update-grub"
	script := ""
	if changed {
		if err := s.uploadBytes(next, s.staged("grub")); err != nil {
			return err
		}
		if script, err = s.render(what, "install_grub_default.sh"); err != nil {
			return err
		}
	} else {
		s.ui.Message("/etc/default/grub already has the kernel arguments")
	}
	update, err := s.render(what, "update_grub.sh")
	if err != nil {
		return err
	}
	_, err = s.run(ctx, what, script+update, true)
	return err
}

// setGrubCmdline sets args in the GRUB_CMDLINE_LINUX line of an
// /etc/default/grub file: tokens with the same key are replaced, other tokens
// are kept in order, and a missing line is appended. It reports whether the
// content changed.
func setGrubCmdline(content []byte, args []string) ([]byte, bool, error) {
	keys := map[string]bool{}
	for _, a := range args {
		k, _, _ := strings.Cut(a, "=")
		keys[k] = true
	}
	lines := strings.SplitAfter(string(content), "\n")
	found := false
	for i, line := range lines {
		trimmed := strings.TrimRight(line, "\n")
		if !strings.HasPrefix(trimmed, "GRUB_CMDLINE_LINUX=") {
			continue
		}
		if found {
			return nil, false, errors.New("GRUB_CMDLINE_LINUX is set more than once")
		}
		found = true
		val := strings.TrimPrefix(trimmed, "GRUB_CMDLINE_LINUX=")
		unq, err := unquoteGrubValue(val)
		if err != nil {
			return nil, false, err
		}
		var kept []string
		for _, tok := range strings.Fields(unq) {
			k, _, _ := strings.Cut(tok, "=")
			if !keys[k] {
				kept = append(kept, tok)
			}
		}
		lines[i] = `GRUB_CMDLINE_LINUX="` + strings.Join(append(kept, args...), " ") + "\"\n"
	}
	out := strings.Join(lines, "")
	if !found {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += `GRUB_CMDLINE_LINUX="` + strings.Join(args, " ") + "\"\n"
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
			return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s uses shell expansion; refusing to edit it", v)
		}
		return inner, nil
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		inner := v[1 : len(v)-1]
		if strings.Contains(inner, "'") {
			return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s is not a plain quoted string", v)
		}
		return inner, nil
	case !strings.ContainsAny(v, "\"'$`\\ \t"):
		return v, nil
	}
	return "", fmt.Errorf("GRUB_CMDLINE_LINUX=%s is not a plain value; refusing to edit it", v)
}

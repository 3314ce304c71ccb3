package nodeprep

import (
	"context"
	"strings"

	"github.com/nodeprep/nodeprep/internal/kernelargs"
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
// /etc/default/grub file; internal/kernelargs owns the edit, which the agent
// makes the same way on a node that sets its own arguments at boot.
func setGrubCmdline(content []byte, args []string) ([]byte, bool, error) {
	return kernelargs.SetGrubCmdline(content, kernelargs.Parse(strings.Join(args, " ")))
}

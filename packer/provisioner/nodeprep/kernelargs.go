package nodeprep

import (
	"context"
	"fmt"
	"strings"

	"github.com/nodeprep/nodeprep/internal/kernelargs"
)

// kernelArgs is the full set of arguments the image must boot with, rendered
// by internal/kernelargs (the agent renders its own from the same functions).
// iommu_args unset means the architecture's: intel_iommu=on iommu=pt on
// x86_64, and what kernelargs.IOMMU says for arm64.
func (c *Config) kernelArgs(goarch string) kernelargs.Args {
	args := kernelargs.Hugepages(c.HugepageSize, c.Hugepages)
	if c.IOMMUArgs != nil {
		args = append(args, kernelargs.Parse(strings.Join(c.IOMMUArgs, " "))...)
	} else {
		args = append(args, kernelargs.IOMMU(goarch)...)
	}
	if c.Isolcpus != "" {
		args = append(args, kernelargs.KV("isolcpus", c.Isolcpus))
	}
	return append(args, kernelargs.Parse(strings.Join(c.ExtraKernelArgs, " "))...)
}

// stageKernelArgs makes the arguments persist in both places a later boot
// reads them from: GRUB_CMDLINE_LINUX in /etc/default/grub (edited here, so
// it can be tested and left alone when it already matches), from which a
// kernel update or grub2-mkconfig regenerates the entries, and the boot
// entries themselves: grubby on AL2023 (amazon-eks-ami #2741: arguments set
// with grubby alone were lost when the entries were regenerated; its
// set-kernel-arg writes both since #2746), update-grub on Debian.
func stageKernelArgs(ctx context.Context, s *session) error {
	args := s.cfg.kernelArgs(s.tgt.arch)
	cur, err := s.download(grubDefault)
	if err != nil {
		return err
	}
	next, changed, err := kernelargs.SetGrubCmdline(cur, args)
	if err != nil {
		return &StageError{Stage: s.stage, Command: "edit " + grubDefault, Err: err}
	}
	what := "update-grub"
	entries := "update_grub.sh"
	if s.tgt.family == FamilyAL2023 {
		what, entries = "grubby --update-kernel=ALL", "kernel_args_al2023.sh"
	}
	script := ""
	if changed {
		if err := s.uploadBytes(next, s.staged("grub")); err != nil {
			return err
		}
		if script, err = s.render(what, "install_grub_default.sh"); err != nil {
			return err
		}
	} else {
		s.ui.Message(fmt.Sprintf("%s already has the kernel arguments", grubDefault))
	}
	update, err := s.render(what, entries)
	if err != nil {
		return err
	}
	_, err = s.run(ctx, what, script+update, true)
	return err
}

package nodeprep

import (
	"context"
	"fmt"
)

// stageAgent installs the agent binary, its units and the optional baked config.
func stageAgent(ctx context.Context, s *session) error {
	c := s.cfg
	// An agent built for the other architecture would only fail at boot; a
	// file that is no ELF at all fails validate's "nodeprep version".
	if arch, err := elfGOARCH(c.NodeprepBinary); err == nil && arch != s.tgt.arch {
		return &StageError{Stage: s.stage, Command: "check nodeprep_binary", Err: fmt.Errorf("nodeprep_binary %s is built for %s, the target is %s (build it with GOARCH=%s)", c.NodeprepBinary, arch, s.tgt.arch, s.tgt.arch)}
	}
	if err := s.uploadFile(c.NodeprepBinary, s.staged("nodeprep")); err != nil {
		return err
	}
	if err := s.uploadFile(c.ServiceFile, s.staged("nodeprep.service")); err != nil {
		return err
	}
	for _, u := range s.p.units {
		if err := s.uploadBytes(u.Content, s.staged(u.Name)); err != nil {
			return err
		}
	}
	if c.ConfigFile != "" {
		if err := s.uploadFile(c.ConfigFile, s.staged("config.yaml")); err != nil {
			return err
		}
	}
	_, err := s.runScript(ctx, "install agent files", "install_agent.sh", true)
	return err
}

func stageEnable(ctx context.Context, s *session) error {
	_, err := s.runScript(ctx, "systemctl enable", "enable_unit.sh", true)
	return err
}

// stageMaskUdev keeps amazon-ec2-net-utils away from the ENIs the agent manages.
func stageMaskUdev(ctx context.Context, s *session) error {
	if len(s.cfg.MaskUdevRules) == 0 {
		s.skip("mask_udev_rules is empty")
		return nil
	}
	_, err := s.runScript(ctx, "mask udev rules", "mask_udev.sh", true)
	return err
}

package nodeprep

import "context"

// stageAgent installs the agent binary, its unit and the optional baked config.
func stageAgent(ctx context.Context, s *session) error {
	c := s.cfg
	if err := s.uploadFile(c.NodeprepBinary, s.staged("nodeprep")); err != nil {
		return err
	}
	if err := s.uploadFile(c.ServiceFile, s.staged("nodeprep.service")); err != nil {
		return err
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

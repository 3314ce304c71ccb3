package nodeprep

import (
	"context"
	"strings"
)

// stageBuildDeps installs a compiler and the headers of every installed kernel.
func stageBuildDeps(ctx context.Context, s *session) error {
	if s.cfg.SkipIgbUio && s.cfg.VfioWCScript == "" && !s.cfg.vfioWCEnabled() {
		s.skip("nothing to build")
		return nil
	}
	_, err := s.runScript(ctx, "install build deps", "build_deps_"+string(s.tgt.family)+".sh", true)
	return err
}

// stageIgbUio builds igb_uio from the pinned dpdk-kmods source for every
// installed kernel.
func stageIgbUio(ctx context.Context, s *session) error {
	c := s.cfg
	if c.SkipIgbUio {
		s.skip("skip_igb_uio")
		return nil
	}
	if c.IgbUioSource != "" {
		if err := s.uploadFile(c.IgbUioSource, s.staged("dpdk-kmods.src")); err != nil {
			return err
		}
	} else if _, err := s.runScript(ctx, "fetch dpdk-kmods source", "fetch_igb_uio.sh", false); err != nil {
		return err
	}
	_, err := s.runScript(ctx, "build and install igb_uio", "build_igb_uio.sh", true)
	return err
}

func (c *Config) modulesLoadConf() []byte {
	var b strings.Builder
	b.WriteString("# Written by packer-plugin-nodeprep: modules DPDK interfaces are bound to.\n")
	for _, m := range c.Modules {
		b.WriteString(m + "\n")
	}
	return []byte(b.String())
}

func (c *Config) modprobeConf() []byte {
	var b strings.Builder
	b.WriteString("# Written by packer-plugin-nodeprep.\n")
	if c.IgbUioWCActivate {
		b.WriteString("options igb_uio wc_activate=1\n")
	}
	if c.VfioNoIOMMU {
		b.WriteString("options vfio enable_unsafe_noiommu_mode=1\n")
	}
	return []byte(b.String())
}

func stageModuleConfig(ctx context.Context, s *session) error {
	if err := s.uploadBytes(s.cfg.modulesLoadConf(), s.staged("modules-load.conf")); err != nil {
		return err
	}
	if err := s.uploadBytes(s.cfg.modprobeConf(), s.staged("modprobe.conf")); err != nil {
		return err
	}
	_, err := s.runScript(ctx, "install module config", "install_module_config.sh", true)
	return err
}

package nodeprep

import (
	"context"
	"fmt"
	"path/filepath"
)

// stageCNI uploads the bundle checked in Prepare and installs it where the
// agent looks for it, checked again on the target.
func stageCNI(ctx context.Context, s *session) error {
	c := s.cfg
	if c.CNIBundleDir == "" {
		s.skip("no cni_bundle_dir")
		return nil
	}
	// Plugins built for the other architecture would only fail at the first pod.
	for _, f := range s.p.bundle {
		p := filepath.Join(c.CNIBundleDir, f.Name)
		if arch, err := elfGOARCH(p); err == nil && arch != s.tgt.arch {
			return &StageError{Stage: s.stage, Command: "check cni_bundle_dir", Err: fmt.Errorf("%s is built for %s, the target is %s (CNI_BUNDLE_GOARCH=%s test/cnibundle/build.sh)", p, arch, s.tgt.arch, s.tgt.arch)}
		}
	}
	if _, err := s.runScript(ctx, "create CNI staging dir", "cni_staging.sh", false); err != nil {
		return err
	}
	for _, f := range append(append([]cniFile{}, s.p.bundle...), cniFile{Name: sumsFile}) {
		if err := s.uploadFile(c.CNIBundleDir+"/"+f.Name, s.staged("cni/"+f.Name)); err != nil {
			return err
		}
	}
	_, err := s.runScript(ctx, "verify and install CNI bundle", "install_cni.sh", true)
	return err
}

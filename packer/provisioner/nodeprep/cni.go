package nodeprep

import "context"

// stageCNI uploads the bundle checked in Prepare and installs it where the
// agent looks for it, checked again on the target.
func stageCNI(ctx context.Context, s *session) error {
	c := s.cfg
	if c.CNIBundleDir == "" {
		s.skip("no cni_bundle_dir")
		return nil
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

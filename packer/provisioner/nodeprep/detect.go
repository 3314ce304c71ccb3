package nodeprep

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// target is what stage 0 learns about the image.
type target struct {
	family  Family
	root    bool     // SSH user is root: no sudo
	kernels []string // kernels installed in the image, not the builder's uname -r
}

// Kernel names reach later scripts, quoted; anything else is refused outright.
var reKernelVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9._+-]{0,127}$`)

func stageDetect(ctx context.Context, s *session) error {
	out, err := s.run(ctx, "id -u", "id -u\n", false)
	if err != nil {
		return err
	}
	s.tgt.root = strings.TrimSpace(out) == "0"

	osr, err := s.download("/etc/os-release")
	if err != nil {
		return err
	}
	if s.tgt.family, err = parseOSRelease(osr); err != nil {
		return &StageError{Stage: s.stage, Command: "read /etc/os-release", Err: err}
	}

	const listKernels = "list installed kernels"
	out, err = s.runScript(ctx, listKernels, "list_kernels.sh", false)
	if err != nil {
		return err
	}
	for _, k := range strings.Fields(out) {
		if !reKernelVersion.MatchString(k) {
			return &StageError{Stage: s.stage, Command: listKernels, Err: fmt.Errorf("unexpected kernel directory name %q", k)}
		}
		s.tgt.kernels = append(s.tgt.kernels, k)
	}
	if len(s.tgt.kernels) == 0 {
		return &StageError{Stage: s.stage, Command: listKernels, Err: errors.New("no installed kernel found under /lib/modules")}
	}
	s.ui.Message(fmt.Sprintf("family %s, installed kernels: %s", s.tgt.family, strings.Join(s.tgt.kernels, ", ")))

	_, err = s.runScript(ctx, "create staging dir", "staging_create.sh", false)
	return err
}

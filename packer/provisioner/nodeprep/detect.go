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
	arch    string   // GOARCH spelling: amd64 or arm64
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

	out, err = s.run(ctx, "uname -m", "uname -m\n", false)
	if err != nil {
		return err
	}
	if s.tgt.arch, err = goarch(strings.TrimSpace(out)); err != nil {
		return &StageError{Stage: s.stage, Command: "uname -m", Err: err}
	}

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
	s.ui.Message(fmt.Sprintf("family %s, architecture %s, installed kernels: %s", s.tgt.family, s.tgt.arch, strings.Join(s.tgt.kernels, ", ")))

	_, err = s.runScript(ctx, "create staging dir", "staging_create.sh", false)
	return err
}

// goarch maps uname -m to the GOARCH spelling the agent binary and
// internal/kernelargs use. Only the architectures EKS publishes AMIs for.
func goarch(machine string) (string, error) {
	switch machine {
	case "x86_64":
		return "amd64", nil
	case "aarch64":
		return "arm64", nil
	}
	return "", fmt.Errorf("unsupported architecture %q (want x86_64 or aarch64)", machine)
}

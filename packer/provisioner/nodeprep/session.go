package nodeprep

import (
	"bytes"
	"context"
	"os"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// session carries one Provision call: the communicator, ui and what was detected.
type session struct {
	cfg   *Config
	p     *Provisioner
	ui    packersdk.Ui
	comm  packersdk.Communicator
	tgt   target
	stage string
	// The kernels write-combining vfio-pci is built for, and their patch
	// (set by stageVfioWC, checked again by stageValidate).
	vfioWC []vfioWCKernel
}

// run executes script on the target with sh, as root when asRoot (through
// sudo -n unless the SSH user is root). Output streams to the ui.
func (s *session) run(ctx context.Context, what, script string, asRoot bool) (string, error) {
	body := "set -eu\nexport LC_ALL=C\n" + script
	cmd := "sh -c " + q(body)
	if asRoot && !s.tgt.root {
		cmd = "sudo -n " + cmd
	}
	var stdout, stderr bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: cmd, Stdout: &stdout, Stderr: &stderr}
	if err := rc.RunWithUi(ctx, s.comm, s.ui); err != nil {
		return "", &StageError{Stage: s.stage, Command: shortCmd(what, script), Err: err}
	}
	if st := rc.ExitStatus(); st != 0 {
		return stdout.String(), &StageError{Stage: s.stage, Command: shortCmd(what, script), ExitStatus: st, Stderr: tail(stderr.Bytes(), stderrTailBytes)}
	}
	return stdout.String(), nil
}

// render fills in scripts/<name> for this session.
func (s *session) render(what, name string) (string, error) {
	data := newScriptData(s.cfg, s.tgt, s.p.bundle, s.p.units, s.p.binarySHA, s.p.serviceSHA)
	data.VfioWC = s.vfioWC
	script, err := renderScript(name, data)
	if err != nil {
		return "", &StageError{Stage: s.stage, Command: what, Err: err}
	}
	return script, nil
}

// runScript renders scripts/<name> and runs it like run.
func (s *session) runScript(ctx context.Context, what, name string, asRoot bool) (string, error) {
	script, err := s.render(what, name)
	if err != nil {
		return "", err
	}
	return s.run(ctx, what, script, asRoot)
}

func (s *session) uploadFile(local, remote string) error {
	f, err := os.Open(local)
	if err != nil {
		return &StageError{Stage: s.stage, Command: "upload " + local, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &StageError{Stage: s.stage, Command: "upload " + local, Err: err}
	}
	if err := s.comm.Upload(remote, f, &fi); err != nil {
		return &StageError{Stage: s.stage, Command: "upload " + local + " to " + remote, Err: err}
	}
	return nil
}

func (s *session) uploadBytes(data []byte, remote string) error {
	if err := s.comm.Upload(remote, bytes.NewReader(data), nil); err != nil {
		return &StageError{Stage: s.stage, Command: "upload " + remote, Err: err}
	}
	return nil
}

func (s *session) download(remote string) ([]byte, error) {
	var buf bytes.Buffer
	if err := s.comm.Download(remote, &buf); err != nil {
		return nil, &StageError{Stage: s.stage, Command: "download " + remote, Err: err}
	}
	return buf.Bytes(), nil
}

func (s *session) staged(name string) string { return stagedPath(s.cfg.StagingDir, name) }

func (s *session) skip(reason string) { s.ui.Message("skipped: " + reason) }

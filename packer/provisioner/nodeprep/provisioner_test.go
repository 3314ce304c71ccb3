package nodeprep

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// recordingComm is the SDK's MockCommunicator with per-command answers and a
// record of every call, so a test can check the whole command sequence.
type recordingComm struct {
	packersdk.MockCommunicator

	mu        sync.Mutex
	calls     []string          // "run: <cmd>", "upload: <path>", "download: <path>"
	uploads   map[string]string // remote path -> content
	files     map[string]string // what Download returns
	respond   func(cmd string) (stdout, stderr string, exit int)
	startedBy []string
}

func (c *recordingComm) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	c.mu.Lock()
	c.calls = append(c.calls, "run: "+rc.Command)
	c.mu.Unlock()
	c.StartStdout, c.StartStderr, c.StartExitStatus = "", "", 0
	if c.respond != nil {
		c.StartStdout, c.StartStderr, c.StartExitStatus = c.respond(rc.Command)
	}
	return c.MockCommunicator.Start(ctx, rc)
}

func (c *recordingComm) Upload(path string, r io.Reader, fi *os.FileInfo) error {
	if err := c.MockCommunicator.Upload(path, r, fi); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "upload: "+path)
	if c.uploads == nil {
		c.uploads = map[string]string{}
	}
	c.uploads[path] = c.UploadData
	return nil
}

func (c *recordingComm) Download(path string, w io.Writer) error {
	c.mu.Lock()
	c.calls = append(c.calls, "download: "+path)
	data, ok := c.files[path]
	c.mu.Unlock()
	if !ok {
		return errors.New("no such file " + path)
	}
	c.DownloadData = data
	return c.MockCommunicator.Download(path, w)
}

// runs returns the raw commands that were started.
func (c *recordingComm) runs() []string {
	var out []string
	for _, call := range c.calls {
		if cmd, ok := strings.CutPrefix(call, "run: "); ok {
			out = append(out, cmd)
		}
	}
	return out
}

// scripts returns each started command as "[sudo] <script>" or "<script>",
// with the script unquoted by the local shell exactly as the target would.
func (c *recordingComm) scripts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, cmd := range c.runs() {
		prefix := ""
		if rest, ok := strings.CutPrefix(cmd, "sudo -n "); ok {
			prefix, cmd = "[sudo] ", rest
		}
		quoted, ok := strings.CutPrefix(cmd, "sh -c ")
		if !ok {
			t.Fatalf("command is not sh -c: %s", cmd)
		}
		script, err := exec.Command("sh", "-c", "printf %s "+quoted).Output()
		if err != nil {
			t.Fatalf("unquoting %s: %v", cmd, err)
		}
		out = append(out, prefix+string(script))
	}
	return out
}

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

const al2023OSRelease = `NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
`

const debianGrub = `GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=ttyS0 hugepages=2"
`

// targetAnswers plays an image with two installed kernels whose SSH user is
// not root.
func targetAnswers(kernels string) func(string) (string, string, int) {
	return func(cmd string) (string, string, int) {
		switch {
		case strings.Contains(cmd, "id -u"):
			return "1000\n", "", 0
		case strings.Contains(cmd, "uname -m"):
			return "x86_64\n", "", 0
		case strings.Contains(cmd, "/lib/modules/*/"):
			return kernels, "", 0
		}
		return "", "", 0
	}
}

func prepared(t *testing.T, mutate func(map[string]interface{})) *Provisioner {
	t.Helper()
	f := newFixture(t)
	raw := f.raw()
	if mutate != nil {
		mutate(raw)
	}
	p := &Provisioner{}
	if err := p.Prepare(raw); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return p
}

// indexAfter finds the first run command at or after from containing all needles.
func indexAfter(t *testing.T, runs []string, from int, needles ...string) int {
	t.Helper()
	for i := from; i < len(runs); i++ {
		ok := true
		for _, n := range needles {
			if !strings.Contains(runs[i], n) {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	t.Fatalf("no command after #%d contains %q; commands:\n%s", from, needles, strings.Join(runs, "\n----\n"))
	return -1
}

func TestProvisionDebianCommandSequence(t *testing.T) {
	p := prepared(t, nil)
	comm := &recordingComm{
		files:   map[string]string{"/etc/os-release": debianOSRelease, "/etc/default/grub": debianGrub},
		respond: targetAnswers("6.1.0-26-cloud-amd64\n6.1.0-27-cloud-amd64\n"),
	}
	ui := packersdk.TestUi(t)
	if err := p.Provision(context.Background(), ui, comm, nil); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	runs := comm.scripts(t)
	for _, r := range runs {
		// uname -m (the architecture) is the image's; uname -r would be the builder's kernel.
		if strings.Contains(r, "uname -r") {
			t.Errorf("a command consults the builder's running kernel: %s", r)
		}
	}
	// Not root: everything that changes the image goes through sudo -n.
	i := indexAfter(t, runs, 0, "id -u")
	i = indexAfter(t, runs, i, "/lib/modules/*/")
	i = indexAfter(t, runs, i, "mkdir -p -m 0700 '/tmp/packer-nodeprep'")
	i = indexAfter(t, runs, i, "[sudo] ", "/tmp/packer-nodeprep/nodeprep", "/usr/bin/nodeprep", "/etc/systemd/system/nodeprep.service", "/etc/nodeprep/config.yaml",
		"/tmp/packer-nodeprep/nodeprep-cni-refresh.path' '/etc/systemd/system/nodeprep-cni-refresh.path'",
		"/tmp/packer-nodeprep/nodeprep-cni-refresh.service' '/etc/systemd/system/nodeprep-cni-refresh.service'",
		"rm -f '/etc/systemd/system/nodeprep-cni-refresh.service.d/nodeprep-binary-path.conf'")
	i = indexAfter(t, runs, i, "[sudo] ", "sha256sum -c --strict SHA256SUMS", "root='/opt/nodeprep/cni'", "v='v1.6.2'", `mv -T "$root/.current.new" "$root/current"`)
	i = indexAfter(t, runs, i, "dpkg-query", "linux-headers-6.1.0-26-cloud-amd64", "linux-headers-6.1.0-27-cloud-amd64", "apt-get install")
	i = indexAfter(t, runs, i, "sha256sum -c --strict -", "make -C", "6.1.0-26-cloud-amd64", "6.1.0-27-cloud-amd64", "depmod -a")
	i = indexAfter(t, runs, i, "/etc/modules-load.d/nodeprep-image.conf", "/etc/modprobe.d/nodeprep-image.conf")
	i = indexAfter(t, runs, i, "/etc/default/grub", "update-grub")
	i = indexAfter(t, runs, i, "systemctl enable 'nodeprep.service' 'nodeprep-cni-refresh.path'")
	i = indexAfter(t, runs, i, "ln -sfn /dev/null", "99-vpc-policy-routes.rules")
	i = indexAfter(t, runs, i, "MISSING", "igb_uio", "grub.cfg", "is-enabled 'nodeprep-cni-refresh.path'",
		"'/etc/systemd/system/nodeprep-cni-refresh.path'", "'/etc/systemd/system/nodeprep-cni-refresh.service'")
	indexAfter(t, runs, i, "rm -rf '/tmp/packer-nodeprep'")
	if strings.Contains(strings.Join(runs, "\n"), "grubby") || strings.Contains(strings.Join(runs, "\n"), "dnf") {
		t.Error("Debian build ran AL2023 tooling")
	}

	for _, path := range []string{
		"/tmp/packer-nodeprep/nodeprep", "/tmp/packer-nodeprep/nodeprep.service", "/tmp/packer-nodeprep/config.yaml",
		"/tmp/packer-nodeprep/cni/bridge", "/tmp/packer-nodeprep/cni/multus-shim", "/tmp/packer-nodeprep/cni/SHA256SUMS",
		"/tmp/packer-nodeprep/dpdk-kmods.src", "/tmp/packer-nodeprep/grub",
		"/tmp/packer-nodeprep/nodeprep-cni-refresh.path", "/tmp/packer-nodeprep/nodeprep-cni-refresh.service",
	} {
		if _, ok := comm.uploads[path]; !ok {
			t.Errorf("%s was not uploaded", path)
		}
	}
	if got := comm.uploads["/tmp/packer-nodeprep/nodeprep"]; got != "agent binary" {
		t.Errorf("uploaded agent = %q", got)
	}
	// The refresh units are the agent module's files, byte for byte.
	for _, name := range []string{"nodeprep-cni-refresh.path", "nodeprep-cni-refresh.service"} {
		if got := comm.uploads["/tmp/packer-nodeprep/"+name]; got != string(shippedUnit(t, name)) {
			t.Errorf("uploaded %s:\n%s\nwant systemd/%s", name, got, name)
		}
	}
	if _, ok := comm.uploads["/tmp/packer-nodeprep/nodeprep-binary-path.conf"]; ok {
		t.Error("a drop-in was uploaded for the default binary_path")
	}
	wantGrub := `GRUB_CMDLINE_LINUX="console=ttyS0 default_hugepagesz=1G hugepagesz=1G hugepages=4 intel_iommu=on iommu=pt isolcpus=2-3"`
	if got := comm.uploads["/tmp/packer-nodeprep/grub"]; !strings.Contains(got, wantGrub+"\n") || !strings.Contains(got, `GRUB_CMDLINE_LINUX_DEFAULT="quiet"`) {
		t.Errorf("uploaded /etc/default/grub:\n%s\nwant line %s", got, wantGrub)
	}
	if got := comm.uploads["/tmp/packer-nodeprep/modules-load.conf"]; !strings.Contains(got, "\nvfio-pci\nigb_uio\n") {
		t.Errorf("modules-load.d content:\n%s", got)
	}
	assertShellSyntax(t, comm.runs())
}

func TestProvisionAL2023CommandSequence(t *testing.T) {
	p := prepared(t, func(m map[string]interface{}) {
		m["igb_uio_wc_activate"] = true
		m["vfio_unsafe_noiommu"] = true
	})
	comm := &recordingComm{
		files:   map[string]string{"/etc/os-release": al2023OSRelease, "/etc/default/grub": al2023Grub},
		respond: targetAnswers("6.1.112-122.189.amzn2023.x86_64\n6.12.20-1.amzn2023.x86_64\n"),
	}
	if err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	runs := comm.scripts(t)
	i := indexAfter(t, runs, 0, "rpm -q", "dnf install -y", "kernel-devel-uname-r = $k", "6.1.112-122.189.amzn2023.x86_64", "6.12.20-1.amzn2023.x86_64")
	i = indexAfter(t, runs, i, "make -C", "6.12.20-1.amzn2023.x86_64")
	i = indexAfter(t, runs, i, "grubby --update-kernel=ALL --args=", "default_hugepagesz=1G hugepagesz=1G hugepages=4 intel_iommu=on iommu=pt isolcpus=2-3")
	indexAfter(t, runs, i, "grubby --info=ALL")
	all := strings.Join(runs, "\n")
	for _, bad := range []string{"apt-get", "update-grub ", "dpkg-query"} {
		if strings.Contains(all, bad) {
			t.Errorf("AL2023 build ran %s", bad)
		}
	}
	got := comm.uploads["/tmp/packer-nodeprep/modprobe.conf"]
	for _, want := range []string{"options igb_uio wc_activate=1\n", "options vfio enable_unsafe_noiommu_mode=1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("modprobe.d content %q lacks %q", got, want)
		}
	}
	assertShellSyntax(t, comm.runs())
}

func TestProvisionStopsWithPreciseStageError(t *testing.T) {
	p := prepared(t, nil)
	answers := targetAnswers("6.1.0-26-cloud-amd64\n")
	comm := &recordingComm{
		files: map[string]string{"/etc/os-release": debianOSRelease, "/etc/default/grub": debianGrub},
		respond: func(cmd string) (string, string, int) {
			if strings.Contains(cmd, "make -C") {
				return "", "make: *** /lib/modules/6.1.0-26-cloud-amd64/build: No such file or directory.  Stop.\n", 2
			}
			return answers(cmd)
		},
	}
	err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil)
	var se *StageError
	if !errors.As(err, &se) {
		t.Fatalf("Provision error = %v, want *StageError", err)
	}
	if se.Stage != "build igb_uio" || se.ExitStatus != 2 || !strings.Contains(se.Stderr, "No such file or directory") {
		t.Fatalf("StageError = %+v", se)
	}
	msg := err.Error()
	for _, want := range []string{`"build igb_uio"`, "status 2", "build and install igb_uio", "stderr tail"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, r := range comm.runs() {
		if strings.Contains(r, "update-grub") || strings.Contains(r, "systemctl enable") {
			t.Fatalf("a later stage ran after the failure: %s", r)
		}
	}
}

func TestProvisionRejectsUnknownDistroAndBadKernelNames(t *testing.T) {
	p := prepared(t, nil)
	comm := &recordingComm{
		files:   map[string]string{"/etc/os-release": "ID=arch\n"},
		respond: targetAnswers("6.1.0\n"),
	}
	err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil)
	if !errors.Is(err, ErrUnsupportedDistro) {
		t.Fatalf("Provision on Arch = %v, want ErrUnsupportedDistro", err)
	}

	comm = &recordingComm{
		files:   map[string]string{"/etc/os-release": debianOSRelease},
		respond: targetAnswers("6.1.0-26'$(reboot)\n"),
	}
	err = p.Provision(context.Background(), packersdk.TestUi(t), comm, nil)
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "detect target" {
		t.Fatalf("Provision with a hostile kernel dir name = %v, want a detect-target StageError", err)
	}
}

// A root SSH user gets no sudo (minimal images have none).
func TestProvisionAsRootUsesNoSudo(t *testing.T) {
	p := prepared(t, nil)
	answers := targetAnswers("6.1.0-26-cloud-amd64\n")
	comm := &recordingComm{
		files: map[string]string{"/etc/os-release": debianOSRelease, "/etc/default/grub": debianGrub},
		respond: func(cmd string) (string, string, int) {
			if strings.Contains(cmd, "id -u") {
				return "0\n", "", 0
			}
			return answers(cmd)
		},
	}
	if err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range comm.runs() {
		if strings.Contains(r, "sudo") {
			t.Fatalf("root run used sudo: %s", r)
		}
	}
}

// assertShellSyntax parses every generated command with the local sh.
func assertShellSyntax(t *testing.T, runs []string) {
	t.Helper()
	for _, r := range runs {
		cmd := strings.TrimPrefix(r, "sudo -n ")
		cmd = strings.Replace(cmd, "sh -c ", "sh -n -c ", 1)
		var stderr bytes.Buffer
		c := exec.Command("sh", "-c", cmd)
		c.Stderr = &stderr
		if err := c.Run(); err != nil {
			t.Errorf("generated command does not parse (%v: %s):\n%s", err, stderr.String(), r)
		}
	}
}

// shippedUnit reads a unit from the repository's systemd/ directory, the
// files the agent module embeds.
func shippedUnit(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../../systemd/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// With another binary_path the refresh service must run that binary too: a
// drop-in replaces its ExecStart, validation checks it, and systemd-analyze,
// reading the shipped unit with the drop-in, finds only that binary to run.
func TestProvisionPointsRefreshServiceAtBinaryPath(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "bin", "nodeprep")
	if err := os.MkdirAll(filepath.Dir(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binary, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := prepared(t, func(m map[string]interface{}) { m["binary_path"] = binary })
	comm := &recordingComm{
		files:   map[string]string{"/etc/os-release": debianOSRelease, "/etc/default/grub": debianGrub},
		respond: targetAnswers("6.1.0-26-cloud-amd64\n"),
	}
	if err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	const dropIn = "/etc/systemd/system/nodeprep-cni-refresh.service.d/nodeprep-binary-path.conf"
	got := comm.uploads["/tmp/packer-nodeprep/nodeprep-binary-path.conf"]
	if !strings.Contains(got, "[Service]\nExecStart=\nExecStart="+binary+" run\n") {
		t.Errorf("drop-in:\n%s\nwant ExecStart reset, then %s run", got, binary)
	}
	runs := comm.scripts(t)
	i := indexAfter(t, runs, 0, "install -D -m 0644 '/tmp/packer-nodeprep/nodeprep-binary-path.conf' '"+dropIn+"'")
	indexAfter(t, runs, i, "MISSING", "sha256sum", "'"+dropIn+"'")
	assertShellSyntax(t, comm.runs())

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (make test installs it)")
	}
	units := filepath.Join(dir, "units")
	for name, content := range map[string]string{
		"nodeprep.service":                       string(shippedUnit(t, "nodeprep.service")),
		"nodeprep-cni-refresh.service":           comm.uploads["/tmp/packer-nodeprep/nodeprep-cni-refresh.service"],
		"nodeprep-cni-refresh.service.d/np.conf": got,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(units, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(units, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The unit still names /usr/bin/nodeprep, absent here: verify fails unless
	// the drop-in replaced that ExecStart rather than adding one.
	cmd := exec.Command(analyze, "verify", filepath.Join(units, "nodeprep-cni-refresh.service"))
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+units+":")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify with the drop-in: %v\n%s", err, out)
	}
}

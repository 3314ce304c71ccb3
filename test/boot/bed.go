package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/test/ec2sim"
	"github.com/nodeprep/nodeprep/test/kubeapi"
	"github.com/nodeprep/nodeprep/test/vm"
)

// IDs the bed's VPC uses, so that user data can name them.
const (
	SubnetPrimary = "subnet-0b00d0000000000a1"
	SubnetMultusA = "subnet-0a1b2c3d4e5f60718"
	SubnetMultusB = "subnet-0f1e2d3c4b5a69788"
	SecurityGroup = "sg-0123456789abcdef0"
	InstanceType  = "c5.xlarge" // 4 ENIs: primary plus three Multus ENIs
)

// The guest reaches IMDS and the EC2 API at the link-local address EC2 uses.
const (
	IMDSAddr = "169.254.169.254:80"
	EC2Addr  = "169.254.169.254:8773" // NODEPREP_EC2_ENDPOINT in guest/nodeprep-bed.conf
	// KubeAPIAddr is the fake API server (Bed.KubeAPI), the server of
	// guest/watch-kubeconfig.
	KubeAPIAddr = "169.254.169.254:8775"
	// InstanceRole is the instance profile's role: IMDS serves its
	// credentials to every process on the node, as EC2 does.
	InstanceRole = "nodeprep-boot-bed-node"
	// guestNet is the user network of the primary NIC. QEMU forwards
	// (guestfwd) only addresses inside it, so it is the link-local /16.
	guestNet = "169.254.0.0/16"
	// hotplugPorts is the number of pcie-root-ports, for device indexes 1..n.
	hotplugPorts = 3
)

var (
	imageOnce sync.Once
	imageDir  string
	imageErr  error
	// imageHold keeps holdImage's descriptor reachable: a collected
	// *os.File is closed by its finalizer, which would drop the lock.
	imageHold *os.File
)

// Image returns the cached guest image directory for this tree, as built by
// test/boot/image.sh (make test-boot), or NODEPREP_BOOT_IMAGE when set.
// The tests run only with NODEPREP_BOOT=1 (each boot takes minutes under
// TCG); otherwise they skip with the reason. With NODEPREP_BOOT=1 a missing
// image or QEMU fails the test.
func Image(t testing.TB) string {
	t.Helper()
	if os.Getenv("NODEPREP_BOOT") != "1" {
		t.Skip("boot: set NODEPREP_BOOT=1 to boot the image (make test-boot builds it and runs these)")
	}
	imageOnce.Do(func() {
		if dir := os.Getenv("NODEPREP_BOOT_IMAGE"); dir != "" {
			imageDir = dir
			return
		}
		imageDir, imageErr = findImage()
	})
	if imageErr != nil {
		t.Fatalf("boot: %v", imageErr)
	}
	return imageDir
}

func findImage() (string, error) {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "socat", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not installed (make test-boot installs it)", tool)
		}
	}
	root, err := vm.RepoRoot()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "test/boot/image.sh"), "--check")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("image.sh --check: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if err := holdImage(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// holdImage takes a shared flock on the image's in-use file for the rest of
// this test process (the descriptor is kept open in imageHold): image.sh, building a
// newer image for another tree, removes an older one only when it can lock
// it exclusively, so the disk and SSH key cannot vanish under a running bed.
func holdImage(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "in-use"), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hold image: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("hold image: flock %s: %w", f.Name(), err)
	}
	imageHold = f
	return nil
}

// Spec is what one boot of the bed looks like.
type Spec struct {
	// NodeprepPart is the application/nodeprep.dev part of the user data.
	NodeprepPart string
	// Timing is ec2sim's latency model (zero: instant).
	Timing ec2sim.Timing
	// BeforeBoot runs after the simulator is set up and before QEMU starts,
	// e.g. to install OnMutation hooks.
	BeforeBoot func(*Bed)
	// CPUs shapes the guest's processors; zero is two vCPUs in one node.
	CPUs Topology
	// NodeprepReboots says the first boot ends in nodeprep's reboot (kernel
	// arguments missing): Boot waits through it to the boot after, and
	// fails if the first boot finishes without one.
	NodeprepReboots bool
}

// Topology is the guest's CPU shape: each socket is one NUMA node with an
// equal share of the memory, as on a two-socket instance.
type Topology struct {
	Sockets, Cores, Threads int
}

// qemuArgs are the -smp, -object and -numa options for t on memMB of RAM.
func (t Topology) qemuArgs(memMB int) []string {
	if t.Sockets == 0 {
		return []string{"-smp", "2"}
	}
	n := t.Sockets * t.Cores * t.Threads
	args := []string{"-smp", fmt.Sprintf("%d,sockets=%d,cores=%d,threads=%d", n, t.Sockets, t.Cores, t.Threads)}
	per := n / t.Sockets
	for s := 0; s < t.Sockets; s++ {
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-ram,id=mem%d,size=%dM", s, memMB/t.Sockets),
			"-numa", fmt.Sprintf("node,nodeid=%d,cpus=%d-%d,memdev=mem%d", s, s*per, (s+1)*per-1, s))
	}
	return args
}

// Bed is one guest booted from the bed image, with ec2sim on the host as its
// IMDS and EC2 API and ENI attachments hot-plugged over QMP.
type Bed struct {
	T        *testing.T
	Sim      *ec2sim.Sim
	Instance ec2sim.Instance
	Console  *Console
	QMP      *QMP
	// EC2 is where ec2sim serves (on the host), for tests that act as EC2.
	EC2 *ec2sim.Endpoints
	// KubeAPI is the fake Kubernetes API server the watch publishes the
	// Node condition to; it records every PATCH.
	KubeAPI *kubeapi.Server
	// QEMUStart is when QEMU was started, on the host clock.
	QEMUStart time.Time
	// NodeprepReboot is when the first boot's kernel printed its restart
	// line (Spec.NodeprepReboots), and Booted when Boot's wait ended; both
	// on the host clock.
	NodeprepReboot, Booted time.Time

	image      string
	kubeAPIURL string
	cpus       Topology
	dir        string
	sshPort    string
	cmd        *exec.Cmd
	exited     chan error
	// qemuDone is closed when QEMU exits.
	qemuDone chan struct{}

	logMu      sync.Mutex
	hotplugLog []string
}

// UserData is the MIME multipart user data of a node: a nodeadm part, a
// shell script part (cloud-init's) and the nodeprep part.
func UserData(nodeprepPart string) []byte {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.SetBoundary("//")
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"//\"\r\n\r\n")
	parts := []struct{ typ, body string }{
		{"application/node.eks.aws", `apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: boot-bed
    apiServerEndpoint: https://nodeprep-boot-bed.invalid
    certificateAuthority: Y2VydGlmaWNhdGUK
    cidr: 10.100.0.0/16
`},
		{`text/x-shellscript; charset="us-ascii"`, "#!/bin/bash\necho 'cloud-init runs this, not nodeprep'\n"},
		{"application/nodeprep.dev", nodeprepPart},
	}
	for _, p := range parts {
		pw, _ := w.CreatePart(textproto.MIMEHeader{"Content-Type": {p.typ}})
		_, _ = pw.Write([]byte(p.body))
	}
	_ = w.Close()
	return b.Bytes()
}

// Boot sets up ec2sim, starts the guest and waits until systemd has
// finished starting it (every unit settled, nodeprep included).
func Boot(t *testing.T, spec Spec) *Bed {
	t.Helper()
	image := Image(t)
	b := &Bed{T: t, image: image, dir: t.TempDir(), exited: make(chan error, 1), qemuDone: make(chan struct{}), cpus: spec.CPUs}

	b.Sim = ec2sim.New(ec2sim.Config{Timing: spec.Timing, Seed: 12})
	t.Cleanup(b.Sim.Close)
	for _, sn := range []ec2sim.SubnetSpec{
		{ID: SubnetPrimary, CIDR: "10.0.0.0/24"},
		{ID: SubnetMultusA, CIDR: "10.0.1.0/24"},
		{ID: SubnetMultusB, CIDR: "10.0.2.0/24"},
	} {
		if _, err := b.Sim.AddSubnet(sn); err != nil {
			t.Fatalf("AddSubnet: %v", err)
		}
	}
	var err error
	b.Instance, err = b.Sim.AddInstance(ec2sim.InstanceSpec{
		Type: InstanceType, SubnetID: SubnetPrimary, SecurityGroupIDs: []string{SecurityGroup},
		UserData: UserData(spec.NodeprepPart), Role: InstanceRole,
	})
	if err != nil {
		t.Fatalf("AddInstance: %v", err)
	}
	ep, err := b.Sim.Serve("127.0.0.1:0", "127.0.0.1:0", b.Instance.ID)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	b.EC2 = ep
	b.KubeAPI = kubeapi.New()
	kube := httptest.NewServer(b.KubeAPI)
	t.Cleanup(kube.Close)
	b.kubeAPIURL = kube.URL
	if spec.BeforeBoot != nil {
		spec.BeforeBoot(b)
	}
	if err := b.start(ep); err != nil {
		t.Fatalf("boot: %v", err)
	}
	from := 0
	if spec.NodeprepReboots {
		from = b.waitNodeprepReboot(t)
	}
	b.WaitBooted(t, from)
	b.Booted = time.Now()
	return b
}

// restarting is the kernel's last console line before a reboot (pr_emerg,
// so printed whatever the console log level): every line after it is the
// next boot's.
var restarting = regexp.MustCompile(`reboot: Restarting system`)

// waitNodeprepReboot waits for the first boot to end in a reboot and
// returns the console position the next boot starts at. A first boot that
// finishes starting every unit instead did not reboot: that fails at once
// rather than at the timeout.
func (b *Bed) waitNodeprepReboot(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	finished := make(chan string, 1)
	go func() {
		if _, _, err := b.Console.WaitForAt(ctx, sshdUp, 0); err != nil {
			return
		}
		// On the boot that reboots, this ends with the SSH session, in state
		// "stopping"; only a boot that settled answers running or degraded.
		out, err := b.SSH("systemctl is-system-running --wait")
		if err == nil || strings.Contains(out, "degraded") {
			finished <- strings.TrimSpace(out)
		}
	}()
	restarted := make(chan int, 1)
	go func() {
		if i, _, err := b.Console.WaitForAt(ctx, restarting, 0); err == nil {
			restarted <- i
		}
	}()
	select {
	case i := <-restarted:
		b.NodeprepReboot = time.Now()
		return i + 1
	case state := <-finished:
		t.Fatalf("the first boot settled (%s) without the reboot nodeprep owes it", state)
	case <-b.qemuDone:
		t.Fatalf("QEMU exited during the first boot\n%s", b.Console.Tail(40))
	case <-ctx.Done():
		t.Fatalf("no reboot in the first boot: %v\n%s", ctx.Err(), b.Console.Tail(40))
	}
	return 0
}

func hostPort(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// accel is TCG unless NODEPREP_BOOT_ACCEL=kvm: a /dev/kvm that opens is
// not proof that KVM runs a stock kernel (a nested "kvm-pvm" host does not).
func accel() []string {
	if os.Getenv("NODEPREP_BOOT_ACCEL") == "kvm" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
}

func (b *Bed) primaryMAC() (string, error) {
	e, ok := b.Sim.ENI(b.Instance.PrimaryENIID)
	if !ok {
		return "", fmt.Errorf("primary ENI %s not in the simulator", b.Instance.PrimaryENIID)
	}
	return e.MAC, nil
}

func (b *Bed) start(ep *ec2sim.Endpoints) error {
	imds, err := hostPort(ep.IMDSURL)
	if err != nil {
		return err
	}
	ec2, err := hostPort(ep.EC2URL)
	if err != nil {
		return err
	}
	kube, err := hostPort(b.kubeAPIURL)
	if err != nil {
		return err
	}
	if b.sshPort, err = freePort(); err != nil {
		return err
	}
	mac, err := b.primaryMAC()
	if err != nil {
		return err
	}
	disk := filepath.Join(b.dir, "disk.qcow2")
	// A copy-on-write overlay: the cached image stays as image.sh left it.
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
		"-b", filepath.Join(b.image, "disk.raw"), disk).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img create: %w: %s", err, out)
	}
	qmpSock := filepath.Join(b.dir, "qmp.sock")
	// Each guest connection to a forwarded address spawns its own socat to
	// the simulator (guestfwd "cmd:"), so the agent's concurrent HTTP
	// connections each get their own stream.
	netdev := "user,id=n0,restrict=on,net=" + guestNet +
		",hostfwd=tcp:127.0.0.1:" + b.sshPort + "-:22" +
		",guestfwd=tcp:" + IMDSAddr + "-cmd:socat - TCP:" + imds +
		",guestfwd=tcp:" + EC2Addr + "-cmd:socat - TCP:" + ec2 +
		",guestfwd=tcp:" + KubeAPIAddr + "-cmd:socat - TCP:" + kube
	args := append([]string{
		// A vIOMMU with interrupt remapping, so vfio-pci can take a NIC.
		"-machine", "q35,kernel-irqchip=split", "-device", "intel-iommu,intremap=on",
	}, accel()...)
	const memMB = 2048
	args = append(args, "-m", fmt.Sprint(memMB))
	args = append(args, b.cpus.qemuArgs(memMB)...)
	args = append(args, "-nodefaults", "-display", "none", "-serial", "stdio",
		// GRUB from the image reads the grub.cfg the provisioner's update-grub
		// wrote, so the guest boots with the image's kernel arguments.
		"-kernel", filepath.Join(b.image, "grub.lnx"),
		"-drive", "file="+disk+",format=qcow2,if=virtio",
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=n0,mac="+mac+",bus=pcie.0,addr=0x05,romfile=",
		// QEMU connects to our listener: no waiting for its socket to appear.
		"-qmp", "unix:"+qmpSock,
	)
	ports := map[int]string{}
	for i := 1; i <= hotplugPorts; i++ {
		id := fmt.Sprintf("rp%d", i)
		ports[i] = id
		args = append(args, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,addr=0x%02x", id, i, 0x10+i-1))
	}
	qmpListener, err := net.Listen("unix", qmpSock)
	if err != nil {
		return fmt.Errorf("qmp listen: %w", err)
	}
	defer qmpListener.Close()
	consoleLog, err := os.Create(filepath.Join(b.dir, "console.log"))
	if err != nil {
		return err
	}
	b.Console = NewConsole(consoleLog)
	b.cmd = exec.Command("qemu-system-x86_64", args...)
	b.cmd.Stdout = b.Console
	b.cmd.Stderr = b.Console
	b.QEMUStart = time.Now()
	if err := b.cmd.Start(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	go func() {
		err := b.cmd.Wait()
		consoleLog.Close()
		close(b.qemuDone)
		b.exited <- err
	}()
	b.T.Cleanup(b.stop)

	ctx, cancel := context.WithTimeout(b.T.Context(), 30*time.Second)
	defer cancel()
	if b.QMP, err = b.acceptQMP(ctx, qmpListener); err != nil {
		return err
	}
	hp := &QMPHotplug{QMP: b.QMP, InstanceID: b.Instance.ID, Ports: ports, Timeout: 2 * time.Minute, Logf: b.logHotplug}
	hp.Install(b.Sim)
	return nil
}

// acceptQMP takes QEMU's connection to the QMP socket (QEMU is the client,
// so there is nothing to wait for but the connection), unless QEMU exits.
func (b *Bed) acceptQMP(ctx context.Context, ln net.Listener) (*QMP, error) {
	type accepted struct {
		conn net.Conn
		err  error
	}
	ch := make(chan accepted, 1)
	go func() { c, err := ln.Accept(); ch <- accepted{c, err} }()
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, fmt.Errorf("qmp accept: %w", a.err)
		}
		return NewQMP(ctx, a.conn)
	case exitErr := <-b.exited:
		b.exited <- exitErr
		return nil, fmt.Errorf("qemu exited: %v\n%s", exitErr, b.Console.Tail(20))
	case <-ctx.Done():
		_ = ln.Close()
		return nil, fmt.Errorf("qmp: QEMU did not connect: %w", ctx.Err())
	}
}

func (b *Bed) logHotplug(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	b.logMu.Lock()
	b.hotplugLog = append(b.hotplugLog, time.Since(b.QEMUStart).Round(time.Millisecond).String()+" "+line)
	b.logMu.Unlock()
	b.T.Log(line)
}

// HotplugLog is every hot-plug action so far, with its time since QEMU started.
func (b *Bed) HotplugLog() []string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return append([]string(nil), b.hotplugLog...)
}

// PCIAddress is the guest PCI address of the NIC hot-plugged for an ENI.
func (b *Bed) PCIAddress(t testing.TB, eniID string) string {
	t.Helper()
	addr, err := PCIAddress(t.Context(), b.QMP, eniID)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func (b *Bed) stop() {
	if b.QMP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = b.QMP.Execute(ctx, "quit", nil)
		cancel()
		_ = b.QMP.Close()
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	if b.T.Failed() {
		b.T.Logf("guest console (last 60 lines):\n%s", b.Console.Tail(60))
	}
}

// sshdUp is what guest/bed-ready.service prints once ssh.service started.
var sshdUp = regexp.MustCompile(`nodeprep-boot-bed: sshd is up`)

// WaitBooted waits (from console line from on) for sshd, then for systemd to
// finish starting every unit (`systemctl is-system-running --wait`).
func (b *Bed) WaitBooted(t testing.TB, from int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// A guest that dies (QEMU exits) ends the wait at once.
	go func() {
		select {
		case <-b.qemuDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := b.Console.WaitFor(ctx, sshdUp, from); err != nil {
		t.Fatalf("guest did not start sshd: %v\n%s", err, b.Console.Tail(40))
	}
	// "degraded" (a unit failed) is a finished boot too; the tests judge units.
	out, err := b.SSH("systemctl is-system-running --wait")
	if err != nil && !strings.Contains(out, "degraded") {
		t.Fatalf("systemctl is-system-running --wait: %v: %s", err, out)
	}
}

// SSHError is a failed command in the guest.
type SSHError struct {
	Command string
	Output  string
	Err     error
}

func (e *SSHError) Error() string {
	return fmt.Sprintf("guest %q: %v: %s", e.Command, e.Err, strings.TrimSpace(e.Output))
}

func (e *SSHError) Unwrap() error { return e.Err }

// SSH runs a shell command as root in the guest and returns its stdout
// (stderr is included in the error).
func (b *Bed) SSH(command string) (string, error) {
	ctx, cancel := context.WithTimeout(b.T.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-i", filepath.Join(b.image, "id_ed25519"), "-p", b.sshPort,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30", "root@127.0.0.1", command)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &SSHError{Command: command, Output: stdout.String() + stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// MustSSH is SSH that fails t on error.
func (b *Bed) MustSSH(t testing.TB, command string) string {
	t.Helper()
	out, err := b.SSH(command)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Reboot reboots the guest (QEMU resets the machine and keeps every
// hot-plugged NIC, as an instance keeps its ENIs) and waits for the boot.
func (b *Bed) Reboot(t testing.TB) {
	t.Helper()
	from := b.Console.Len()
	// The connection drops as the guest goes down; that error is expected.
	_, err := b.SSH("systemctl reboot")
	var sshErr *SSHError
	if err != nil && !errors.As(err, &sshErr) {
		t.Fatal(err)
	}
	b.WaitBooted(t, from)
}

// Upload copies the local file to path in the guest (mode 0755), over the
// bed's SSH connection: for the bed's stand-ins that are no part of the
// node image (test/podresources in place of kubelet's API).
func (b *Bed) Upload(t testing.TB, local, path string) {
	t.Helper()
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	command := "cat > " + path + ".tmp && chmod 0755 " + path + ".tmp && mv " + path + ".tmp " + path
	cmd := exec.CommandContext(ctx, "ssh", "-i", filepath.Join(b.image, "id_ed25519"), "-p", b.sshPort,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30", "root@127.0.0.1", command)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upload %s to the guest's %s: %v: %s", local, path, err, out)
	}
}

// GuestBinary builds a Go package of this module for the guest (linux/amd64,
// static) and returns the binary's path.
func GuestBinary(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s for the guest: %v\n%s", pkg, err, msg)
	}
	return out
}

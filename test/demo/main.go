// Command demo runs nodeprep on an embedded simulated node: the EC2 Query
// API and IMDS simulator in-process, ENIs hot-plugged as veths into a
// private network namespace, and a temp directory as the host root. It runs
// the real nodeprep binary twice, to show the first run's work and that the
// second changes nothing.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nodeprep/nodeprep/internal/multus/multustest"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

const insideEnv = "NODEPREP_DEMO_NETNS"

func main() {
	bin := flag.String("nodeprep", "bin/nodeprep", "the nodeprep binary")
	userData := flag.String("user-data", "configs/userdata/demo.txt", "user data served by the simulated IMDS")
	bundle := flag.String("cni-bundle", filepath.Join(cacheDir(), "cni-bundle"), "the CNI bundle built by make cni-bundle")
	latency := flag.String("latency", "realistic", "EC2 latency profile: realistic or none")
	keep := flag.Bool("keep", false, "keep the temp root")
	flag.Parse()
	if err := run(*bin, *userData, *bundle, *latency, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func cacheDir() string {
	if d := os.Getenv("NODEPREP_CACHE"); d != "" {
		return d
	}
	return ".cache"
}

func run(bin, userDataPath, bundle, latency string, keep bool) error {
	if os.Geteuid() != 0 {
		return errors.New("the demo hot-plugs veth NICs into a private network namespace and needs root")
	}
	// Re-run in a fresh network namespace, so the hot-plugged NICs and the
	// simulator's loopback listeners vanish with the process.
	if os.Getenv(insideEnv) == "" {
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Env = append(os.Environ(), insideEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS}
		return cmd.Run()
	}
	runtime.LockOSThread()
	if err := loopbackUp(); err != nil {
		return err
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	userData, err := os.ReadFile(userDataPath)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "nodeprep-demo-root-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(root)
	}
	if err := seedRoot(root, bundle); err != nil {
		return err
	}

	timing := ec2sim.Realistic()
	if latency == "none" {
		timing = ec2sim.Instant()
	}
	sim := ec2sim.New(ec2sim.Config{Region: "us-west-2", Timing: timing, Seed: 1})
	defer sim.Close()
	for id, cidr := range map[string]string{
		"subnet-0a1b2c3d4e5f60718": "10.0.0.0/24", // the node's primary subnet
		"subnet-0b1b2c3d4e5f60718": "10.0.4.0/24",
		"subnet-0f1e2d3c4b5a69788": "10.0.5.0/24",
	} {
		if _, err := sim.AddSubnet(ec2sim.SubnetSpec{ID: id, CIDR: cidr, AvailabilityZone: "us-west-2a"}); err != nil {
			return err
		}
	}
	// The security group the example configs name; EC2 refuses ENIs in
	// groups that do not exist.
	if _, err := sim.AddSecurityGroup("sg-0123456789abcdef0", "multus"); err != nil {
		return err
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.2xlarge", SubnetID: "subnet-0a1b2c3d4e5f60718", UserData: userData})
	if err != nil {
		return err
	}
	hot := &ec2sim.VethHotplug{NetNS: "/proc/self/ns/net", InstanceID: inst.ID, SkipPrimary: true}
	if err := hot.Install(sim); err != nil {
		return err
	}
	ep, err := sim.Serve("127.0.0.1:0", "127.0.0.1:0", inst.ID)
	if err != nil {
		return err
	}
	defer ep.Close()

	fmt.Printf("== simulated node %s (%s): EC2 at %s, IMDS at %s, latency %s\n", inst.ID, "c5.2xlarge", ep.EC2URL, ep.IMDSURL, latency)
	fmt.Printf("== host root %s\n\n", root)
	agent := func(args ...string) error {
		args = append(args, "--root", root, "--imds-endpoint", ep.IMDSURL, "--ec2-endpoint", ep.EC2URL)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=demo", "AWS_SECRET_ACCESS_KEY=demo")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		return cmd.Run()
	}

	before := snapshot(root)
	fmt.Println("== nodeprep run")
	start := time.Now()
	if err := agent("run"); err != nil {
		return fmt.Errorf("nodeprep run: %w", err)
	}
	elapsed := time.Since(start)
	mutating, reads := sim.CallCounts()
	fmt.Printf("\n== first run: %s wall, %d mutating and %d read-only EC2 calls\n", elapsed.Round(time.Millisecond), mutating, reads)
	printENIs(sim, inst.ID)
	printLinks()
	printFiles(root, before)

	fmt.Println("\n== nodeprep status")
	status := exec.Command(bin, "status", "--root", root)
	status.Stdout, status.Stderr = os.Stdout, os.Stdout
	_ = status.Run()

	fmt.Println("\n== nodeprep status --timeline (steps, and each ENI's stages)")
	chart := exec.Command(bin, "status", "--timeline", "--root", root)
	chart.Stdout, chart.Stderr = os.Stdout, os.Stdout
	_ = chart.Run()

	fmt.Println("\n== nodeprep plan (a healthy node needs nothing)")
	if err := agent("plan", "--log-level", "warn"); err != nil {
		return fmt.Errorf("nodeprep plan: %w", err)
	}
	sim.ResetCalls()
	after := snapshot(root)
	fmt.Println("\n== nodeprep run, again")
	start = time.Now()
	if err := agent("run", "--log-level", "warn"); err != nil {
		return fmt.Errorf("second nodeprep run: %w", err)
	}
	mutating, reads = sim.CallCounts()
	changed := diff(after, snapshot(root), root)
	fmt.Printf("== second run: %s wall, %d mutating and %d read-only EC2 calls, files changed: %s\n",
		time.Since(start).Round(time.Millisecond), mutating, reads, listOrNone(changed))
	if mutating != 0 {
		return fmt.Errorf("the second run made %d mutating EC2 calls", mutating)
	}
	return nil
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// seedRoot gives the temp root what an AMI built by the Packer plugin has:
// the CNI bundle, the VPC CNI's conflist, and sysfs/procfs files for hugepages.
func seedRoot(root, bundle string) error {
	files := map[string]string{
		"/etc/cni/net.d/10-aws.conflist": `{"cniVersion":"0.4.0","name":"aws-cni","plugins":[{"name":"aws-cni","type":"aws-cni"}]}`,
		// What AL2023's nodeadm-config.service has written by the time nodeprep runs.
		"/var/lib/kubelet/kubeconfig": demoKubeletKubeconfig,
		"/proc/meminfo":               "MemTotal:       16000000 kB\nMemFree:        15000000 kB\nHugepagesize:       2048 kB\n",
		"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages":                 "0\n",
		"/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages":              "0\n",
		"/sys/devices/system/node/online":                                        "0\n",
		"/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages": "0\n",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if _, err := os.Stat(bundle); err != nil {
		fmt.Printf("== no CNI bundle at %s (make cni-bundle builds it); the cni step will report it\n", bundle)
		return nil
	}
	dst := filepath.Join(root, "opt/nodeprep/cni")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return exec.Command("cp", "-a", bundle, dst).Run()
}

type fileInfo struct {
	size int64
	mod  time.Time
}

func snapshot(root string) map[string]fileInfo {
	out := map[string]fileInfo{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			out[p] = fileInfo{info.Size(), info.ModTime()}
		}
		return nil
	})
	return out
}

func diff(before, after map[string]fileInfo, root string) []string {
	var changed []string
	for p, a := range after {
		if b, ok := before[p]; !ok || b != a {
			changed = append(changed, strings.TrimPrefix(p, root))
		}
	}
	sort.Strings(changed)
	return changed
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func printENIs(sim *ec2sim.Sim, instanceID string) {
	fmt.Println("\n== ENIs in the simulated EC2")
	for _, e := range sim.ENIs() {
		att := "unattached"
		if e.Attachment != nil {
			att = fmt.Sprintf("%s to %s at card %d device %d", e.Attachment.Status, e.Attachment.InstanceID, e.Attachment.NetworkCardIndex, e.Attachment.DeviceIndex)
		}
		var tags []string
		for k, v := range e.Tags {
			tags = append(tags, k+"="+v)
		}
		sort.Strings(tags)
		fmt.Printf("  %s %s %-12s %s\n      tags: %s\n", e.ID, e.MAC, e.PrivateIPs[0], att, strings.Join(tags, " "))
	}
}

func printLinks() {
	fmt.Println("\n== links in the node's network namespace")
	links, _ := netlink.LinkList()
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || strings.HasPrefix(a.Name, "sim") {
			continue
		}
		fmt.Printf("  %-8s %s mtu %d %s altnames %v\n", a.Name, a.HardwareAddr, a.MTU, a.OperState, a.AltNames)
	}
}

func printFiles(root string, before map[string]fileInfo) {
	changed := diff(before, snapshot(root), root)
	fmt.Println("\n== files written under the host root")
	for _, p := range changed {
		fmt.Printf("  %s\n", p)
	}
	for _, p := range changed {
		if strings.HasPrefix(p, "/opt/") || strings.HasPrefix(p, "/run/nodeprep/state.json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || len(data) > 4096 {
			continue
		}
		fmt.Printf("\n--- %s\n%s", p, data)
		if !strings.HasSuffix(string(data), "\n") {
			fmt.Println()
		}
	}
}

// demoKubeletKubeconfig is what AL2023's nodeadm-config.service has written
// by the time nodeprep runs.
var demoKubeletKubeconfig = multustest.KubeletKubeconfig("https://EXAMPLE0123456789.gr7.us-west-2.eks.amazonaws.com", multustest.CAFile,
	"aws-iam-authenticator", "token", "-i", "demo-cluster", "--region", "us-west-2")

package kernelargs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/kernelargs"
)

func TestParseAndMissing(t *testing.T) {
	cmd := kernelargs.Parse(`BOOT_IMAGE=(hd0,gpt1)/vmlinuz root=UUID=abc ro console=ttyS0,115200n8 quiet dyndbg="file x.c +p" hugepages=2 hugepages=8` + "\n")
	if got := len(cmd); got != 8 {
		t.Fatalf("%d args: %v", got, cmd)
	}
	if a, _ := cmd.Lookup("dyndbg"); a.Value != "file x.c +p" {
		t.Errorf("quoted value %q", a.Value)
	}
	if a, _ := cmd.Lookup("hugepages"); a.Value != "8" {
		t.Errorf("last hugepages wins: %q", a.Value)
	}
	want := kernelargs.Args{kernelargs.KV("hugepages", "8"), kernelargs.Flag("quiet"), kernelargs.KV("nohz_full", "1-3")}
	if got := kernelargs.Missing(cmd, want).String(); got != "nohz_full=1-3" {
		t.Errorf("missing %q", got)
	}
	if got := kernelargs.Missing(cmd, kernelargs.Args{kernelargs.KV("quiet", "")}).String(); got != "quiet=" {
		t.Errorf("quiet= is not quiet: %q", got)
	}
}

func TestCPUIsolation(t *testing.T) {
	p := cpuset.Partition{Reserved: cpuset.MustParse("0,48,96,144"), Isolated: cpuset.MustParse("1-47,49-95,97-143,145-191")}
	all := kernelargs.Isolation{NohzFull: true, RCUNocbs: true, ManagedIRQ: true, IRQAffinity: true}
	want := "nohz_full=1-47,49-95,97-143,145-191 rcu_nocbs=1-47,49-95,97-143,145-191 isolcpus=managed_irq,1-47,49-95,97-143,145-191 irqaffinity=0,48,96,144"
	if got := kernelargs.CPUIsolation(p, all).String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := kernelargs.CPUIsolation(p, kernelargs.Isolation{IRQAffinity: true}).String(); got != "irqaffinity=0,48,96,144" {
		t.Errorf("irqaffinity only: %s", got)
	}
	if got := kernelargs.Hugepages("1G", 8).String(); got != "default_hugepagesz=1G hugepagesz=1G hugepages=8" {
		t.Errorf("hugepages %s", got)
	}
	if kernelargs.IOMMU("arm64") != nil || kernelargs.IOMMU("amd64").String() != "intel_iommu=on iommu=pt" {
		t.Error("iommu")
	}
}

func TestSetGrubCmdline(t *testing.T) {
	args := kernelargs.Parse("default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt isolcpus=managed_irq,1-3")
	tail := "default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt isolcpus=managed_irq,1-3"
	cases := []struct{ name, in, want string }{
		{"replaces same keys, keeps others", "A=1\nGRUB_CMDLINE_LINUX=\"console=ttyS0 hugepages=2 iommu=off isolcpus=2\"\nB=2\n",
			"A=1\nGRUB_CMDLINE_LINUX=\"console=ttyS0 " + tail + "\"\nB=2\n"},
		{"empty value", "GRUB_CMDLINE_LINUX=\"\"\n", "GRUB_CMDLINE_LINUX=\"" + tail + "\"\n"},
		{"single quotes", "GRUB_CMDLINE_LINUX='net.ifnames=0'\n", "GRUB_CMDLINE_LINUX=\"net.ifnames=0 " + tail + "\"\n"},
		{"missing line, no trailing newline", "GRUB_TIMEOUT=0", "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"" + tail + "\"\n"},
		{"no file", "", "GRUB_CMDLINE_LINUX=\"" + tail + "\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := kernelargs.SetGrubCmdline([]byte(tc.in), args)
			if err != nil || !changed || string(got) != tc.want {
				t.Fatalf("changed=%v err=%v\n%s\nwant\n%s", changed, err, got, tc.want)
			}
			again, changed, err := kernelargs.SetGrubCmdline(got, args)
			if err != nil || changed || string(again) != string(got) {
				t.Fatalf("second application changed the file: %v %v\n%s", changed, err, again)
			}
		})
	}
	for _, bad := range []string{"GRUB_CMDLINE_LINUX=\"$X\"\n", "GRUB_CMDLINE_LINUX=a\nGRUB_CMDLINE_LINUX=b\n", "GRUB_CMDLINE_LINUX=a b\n"} {
		if _, _, err := kernelargs.SetGrubCmdline([]byte(bad), args); !errors.Is(err, kernelargs.ErrGrubEdit) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// node is a fake boot: a root with /proc/cmdline and a boot id, a grubby
// that keeps one boot entry's args, and a boot loader that, on reboot,
// boots that entry (or, when ignoresEntries, the old command line).
type node struct {
	t              *testing.T
	root           hostfs.Root
	dir            string
	entryArgs      string
	boots          int
	reboots        int
	ignoresEntries bool
	calls          []string
}

func newNode(t *testing.T, cmdline string, grubby bool) *node {
	n := &node{t: t, dir: t.TempDir(), entryArgs: cmdline}
	n.root = hostfs.New(n.dir)
	n.write(kernelargs.ProcCmdline, cmdline+"\n")
	n.write(kernelargs.DefaultGrub, "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n")
	if grubby {
		n.write("/usr/sbin/grubby", "")
	}
	n.boot()
	return n
}

func (n *node) write(p, s string) {
	n.t.Helper()
	full := filepath.Join(n.dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) boot() {
	n.boots++
	n.write(kernelargs.BootIDPath, fmt.Sprintf("boot-%d\n", n.boots))
}

func (n *node) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	n.calls = append(n.calls, strings.Join(append([]string{filepath.Base(name)}, args...), " "))
	switch {
	case len(args) == 1 && args[0] == "--info=ALL":
		return []byte("index=0\nkernel=\"/boot/vmlinuz-6.1\"\nargs=\"" + n.entryArgs + "\"\nroot=\"UUID=abc\"\n"), nil
	case len(args) == 2 && args[0] == "--update-kernel=ALL":
		n.entryArgs = kernelargs.Parse(n.entryArgs).Set(kernelargs.Parse(strings.TrimPrefix(args[1], "--args="))).String()
		return nil, nil
	case name == "update-grub" && len(args) == 0:
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %s %v", name, args)
}

func (n *node) Reboot(context.Context) error {
	n.reboots++
	return nil
}

// restart is the reboot the Rebooter queued actually happening.
func (n *node) restart() {
	if !n.ignoresEntries {
		n.write(kernelargs.ProcCmdline, n.entryArgs+"\n")
	}
	n.boot()
}

type act struct{ did []string }

func (a *act) DryRun() bool { return false }
func (a *act) Do(ctx context.Context, what string, fn func(context.Context) error) error {
	a.did = append(a.did, what)
	return fn(ctx)
}
func (a *act) Plan(string)           {}
func (a *act) Status(string, ...any) {}
func (a *act) Log() *slog.Logger     { return slog.Default() }

func (n *node) run(want kernelargs.Args) (kernelargs.Decision, error) {
	b := kernelargs.Boot{Persist: kernelargs.Persister{Root: n.root, Run: n}, Reboot: n}
	d, changes, err := b.Plan(context.Background(), want)
	if err != nil {
		return d, err
	}
	return d, change.Apply(context.Background(), &act{}, changes)
}

var want = kernelargs.Parse("nohz_full=1-3,5-7 rcu_nocbs=1-3,5-7 isolcpus=managed_irq,1-3,5-7 irqaffinity=0,4")

func TestBootRebootsOnceThenNothing(t *testing.T) {
	n := newNode(t, "root=UUID=abc ro console=ttyS0", true)
	d, err := n.run(want)
	if err != nil || !d.Reboot || n.reboots != 1 {
		t.Fatalf("first boot: %+v %v reboots=%d", d, err, n.reboots)
	}
	grub, _ := n.root.ReadFile(kernelargs.DefaultGrub)
	if !strings.Contains(string(grub), `GRUB_CMDLINE_LINUX="console=ttyS0 `+want.String()+`"`) {
		t.Errorf("GRUB_CMDLINE_LINUX not persisted:\n%s", grub)
	}
	n.restart()
	for i := 0; i < 3; i++ {
		d, err = n.run(want)
		if err != nil || d.Reboot || len(d.Missing) != 0 {
			t.Fatalf("boot %d: %+v %v", n.boots, d, err)
		}
		n.boot()
	}
	if n.reboots != 1 {
		t.Fatalf("%d reboots, want 1", n.reboots)
	}
}

// TestBootNeverLoops: a boot loader that ignores the entries gets one
// reboot, and every later boot fails with ErrStillMissing instead of
// rebooting again.
func TestBootNeverLoops(t *testing.T) {
	n := newNode(t, "root=UUID=abc ro", true)
	n.ignoresEntries = true
	if _, err := n.run(want); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		n.restart()
		if _, err := n.run(want); !errors.Is(err, kernelargs.ErrStillMissing) {
			t.Fatalf("boot %d: %v, want ErrStillMissing", n.boots, err)
		}
	}
	if n.reboots != 1 {
		t.Fatalf("%d reboots, want exactly 1", n.reboots)
	}
	// A damaged marker never grants another reboot either.
	n.write(kernelargs.MarkerPath, "{torn")
	n.restart()
	if _, err := n.run(want); !errors.Is(err, kernelargs.ErrStillMissing) || n.reboots != 1 {
		t.Fatalf("torn marker: %v, %d reboots", err, n.reboots)
	}
}

// TestBootCrashBeforeReboot: nodeprep dies after writing the marker but
// before the reboot request; the re-run in the same boot still reboots.
func TestBootCrashBeforeReboot(t *testing.T) {
	n := newNode(t, "root=UUID=abc ro", false)
	b := kernelargs.Boot{Persist: kernelargs.Persister{Root: n.root, Run: n}, Reboot: n}
	_, changes, err := b.Plan(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	// Without grubby: GRUB_CMDLINE_LINUX, update-grub, marker, reboot.
	if len(changes) != 4 || !strings.HasPrefix(changes[1].What, "update-grub") {
		t.Fatalf("changes: %v", whats(changes))
	}
	if err := change.Apply(context.Background(), &act{}, changes[:3]); err != nil {
		t.Fatal(err)
	}
	if d, err := n.run(want); err != nil || !d.Reboot || n.reboots != 1 {
		t.Fatalf("re-run after crash: %+v %v reboots=%d", d, err, n.reboots)
	}
}

// TestBootNothingWhenBaked: an image that already boots with the
// arguments (the Packer plugin baked them) changes nothing at all.
func TestBootNothingWhenBaked(t *testing.T) {
	n := newNode(t, "root=UUID=abc ro "+want.String(), true)
	b := kernelargs.Boot{Persist: kernelargs.Persister{Root: n.root, Run: n}, Reboot: n}
	d, changes, err := b.Plan(context.Background(), want)
	if err != nil || d.Reboot || len(changes) != 0 || len(n.calls) != 0 {
		t.Fatalf("%+v %v %v calls %v", d, err, whats(changes), n.calls)
	}
}

func whats(cs []change.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.What)
	}
	return out
}

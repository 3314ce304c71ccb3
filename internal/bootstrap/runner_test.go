package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/nodeadm"
	"github.com/nodeprep/nodeprep/internal/state"
)

// A config whose hugepages step must fail: the root has no hugepage sysfs.
const failingConfig = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, count: 8}]
  multus: {install: false}
  node: {labels: {team: telco}}
  failurePolicy: %s
`

type recordingNotifier struct{ lines []string }

func (n *recordingNotifier) Ready() error             { n.lines = append(n.lines, "READY=1"); return nil }
func (n *recordingNotifier) Status(line string) error { n.lines = append(n.lines, line); return nil }

func runWith(t *testing.T, policy string) (Summary, error, hostfs.Root, *recordingNotifier) {
	t.Helper()
	root := hostfs.New(t.TempDir())
	notifier := &recordingNotifier{}
	r := &Runner{
		Host:     Host{Root: root},
		Log:      slog.New(slog.DiscardHandler),
		Notifier: notifier,
		UserData: func(context.Context) ([]byte, error) {
			return []byte(strings.Replace(failingConfig, "%s", policy, 1)), nil
		},
	}
	out, err := r.Run(context.Background())
	return out, err, root, notifier
}

func TestFailurePolicyBlock(t *testing.T) {
	out, err, root, notifier := runWith(t, "Block")
	if !errors.Is(err, ErrStepsFailed) || out.Tainted {
		t.Fatalf("err = %v, tainted = %v", err, out.Tainted)
	}
	if got := out.Report.Failed(); len(got) != 1 || got[0] != StepHugepages {
		t.Errorf("failed = %v", got)
	}
	f, rerr := state.Read(root)
	if rerr != nil || f.Result != state.ResultFailed || !strings.Contains(f.Error, "hugepages") {
		t.Errorf("state = %+v, %v", f, rerr)
	}
	if last := notifier.lines[len(notifier.lines)-1]; !strings.HasPrefix(last, "failed: ") {
		t.Errorf("last status = %q", last)
	}
	dropIn, _ := root.ReadFile(nodeadm.DropInPath)
	if strings.Contains(string(dropIn), "NoSchedule") {
		t.Errorf("Block must not taint; kubelet does not start at all:\n%s", dropIn)
	}
}

func TestFailurePolicyTaint(t *testing.T) {
	out, err, root, _ := runWith(t, "Taint")
	if !errors.Is(err, ErrStepsFailed) || !out.Tainted {
		t.Fatalf("err = %v, tainted = %v", err, out.Tainted)
	}
	dropIn, rerr := root.ReadFile(nodeadm.DropInPath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"NoSchedule", "team=telco"} {
		if !strings.Contains(string(dropIn), want) {
			t.Errorf("drop-in lacks %q:\n%s", want, dropIn)
		}
	}
}

func TestBadConfigTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{
		Host: Host{Root: hostfs.New(dir)},
		Log:  slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) {
			return []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  hugepages: [{size: 1Gi, count: 99999999}]\n"), nil
		},
	}
	if _, err := r.Run(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	// The only file is the run's own record, so that `nodeprep status`
	// shows the refusal and its field path; nothing else on the node.
	var files []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && p != filepath.Join(dir, state.Path) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("bad config wrote %v", files)
	}
	f, err := state.Read(hostfs.New(dir))
	if err != nil {
		t.Fatalf("the refused run is not recorded: %v", err)
	}
	if f.Result != state.ResultInvalidConfig || !f.Failed() || !strings.Contains(f.Error, "hugepages[0].count") {
		t.Errorf("recorded result %q, error %q; want %q naming hugepages[0].count", f.Result, f.Error, state.ResultInvalidConfig)
	}
}

// An instance launched without user data has nothing for nodeprep: the
// run succeeds and records it, as for user data without a nodeprep part.
func TestNoUserDataIsNoConfig(t *testing.T) {
	root := hostfs.New(t.TempDir())
	r := &Runner{
		Host:     Host{Root: root},
		Log:      slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) { return nil, fmt.Errorf("imds: %w", imds.ErrNoUserData) },
	}
	out, err := r.Run(context.Background())
	if err != nil || !out.NoConfig {
		t.Fatalf("out %+v, err %v", out, err)
	}
	if f, err := state.Read(root); err != nil || f.Result != state.ResultNoConfig {
		t.Errorf("state %+v, %v", f, err)
	}
}

// AWS clients that cannot be set up are not a user data problem.
func TestCloudSetupErrorIsNotUserData(t *testing.T) {
	r := &Runner{
		Host: Host{Root: hostfs.New(t.TempDir())},
		Log:  slog.New(slog.DiscardHandler),
		UserData: func(context.Context) ([]byte, error) {
			return []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces: [{name: data1, subnetID: subnet-0123456789abcdef0}]\n"), nil
		},
		NewCloud: func(context.Context) (*Cloud, error) { return nil, errors.New("no credentials") },
	}
	_, err := r.Run(context.Background())
	if !errors.Is(err, ErrCloud) || errors.Is(err, ErrUserData) {
		t.Fatalf("err = %v, want ErrCloud only", err)
	}
}

// The drop-in written after a run carries the taints of user data's nodeadm
// NodeConfig (Karpenter's startup taint) beside nodeprep's failure taint.
func TestDropInKeepsUserDataTaints(t *testing.T) {
	ud := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n" +
		"--//\nContent-Type: application/node.eks.aws\n\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      registerWithTaints: [{key: karpenter.sh/unregistered, effect: NoExecute}]\n" +
		"--//\nContent-Type: application/nodeprep.dev\n\n" + strings.Replace(failingConfig, "%s", "Taint", 1) + "--//--\n"
	root := hostfs.New(t.TempDir())
	r := &Runner{Host: Host{Root: root}, Log: slog.New(slog.DiscardHandler), UserData: func(context.Context) ([]byte, error) { return []byte(ud), nil }}
	if _, err := r.Run(context.Background()); !errors.Is(err, ErrStepsFailed) {
		t.Fatalf("err = %v", err)
	}
	dropIn, _ := root.ReadFile(nodeadm.DropInPath)
	if !strings.Contains(string(dropIn), "--register-with-taints=karpenter.sh/unregistered:NoExecute,nodeprep.dev/failed=true:NoSchedule") {
		t.Errorf("drop-in:\n%s", dropIn)
	}
}

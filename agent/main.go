// Command nodeprep prepares an EKS worker node before kubelet starts:
// Multus ENIs, DPDK binding, hugepages and the CNI configuration.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the README and in `nodeprep help`.
const (
	exitOK       = 0
	exitFailed   = 1 // a step failed (failurePolicy Block), or the last run failed (status)
	exitInvalid  = 2 // the config or the command line is invalid; the node was not touched
	exitUserData = 3 // user data could not be read
	exitNoState  = 4 // status: no run has been recorded
)

const usage = `nodeprep prepares an EKS worker node for Multus ENIs and DPDK before kubelet starts.

Usage:
  nodeprep run       [flags]        the service: apply the config from user data
  nodeprep plan      [flags]        print what run would change, and change nothing
  nodeprep validate  [--root DIR] FILE|-  check a config or a whole user-data blob offline;
                                    --root also resolves spec.cpu on the CPU topology
                                    under DIR (a node's /, or a copy of its sys/devices/system)
  nodeprep status    [--json|--timeline]  what the last run did (from /run/nodeprep/state.json);
                                    --timeline charts its steps and changes, critical path marked
  nodeprep doctor    [--json]       check the node against its config: ok/warn/fail
                                    with evidence and fix; exit 0 ok, 1 a check failed,
                                    2 could not check (node-problem-detector's convention)
  nodeprep watch     [flags]        after boot: re-run the checks on netlink, uevent and file
                                    events, report drift (journal, metrics, Node condition),
                                    rewrite drifted conflists; never rebinds a device
  nodeprep render nad [flags]       NetworkAttachmentDefinitions (offline, no node values)
  nodeprep render conflists [flags] this node's conflists for Multus's confDir
  nodeprep version

Flags (run, plan, status, render; each also read from the environment):
  --root DIR            host root prefix (NODEPREP_ROOT, default /)
  --imds-endpoint URL   IMDS endpoint (NODEPREP_IMDS_ENDPOINT, default the SDK's)
  --ec2-endpoint URL    EC2 endpoint (NODEPREP_EC2_ENDPOINT, default the region's)
  --user-data FILE      read user data from FILE instead of IMDS (NODEPREP_USER_DATA)
  --log-level LEVEL     debug, info, warn or error (NODEPREP_LOG_LEVEL, default info)
  --timeout DURATION    overall deadline (NODEPREP_TIMEOUT, default 8m)

Exit codes:
  0  success; also when there is no nodeprep config (none in user data, or no
     user data, and no baked /etc/nodeprep/config.yaml), and under
     failurePolicy Taint when steps failed (the node registers tainted)
  1  a step failed under failurePolicy Block; plan: a step could not be
     planned; status: the last run failed
  2  invalid config or command line; the node was not touched
  3  user data could not be read, or the AWS clients could not be set up
  4  status: no run recorded yet
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitInvalid
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, false, stdout, stderr)
	case "plan":
		return cmdRun(ctx, rest, true, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdin, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "render":
		return cmdRender(rest, stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, rest, stdout, stderr)
	case "watch":
		return cmdWatch(ctx, rest, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "nodeprep %s\n", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "nodeprep: unknown command %q\n\n%s", cmd, usage)
	return exitInvalid
}

// parseFlags parses a subcommand's flags, printing usage on error.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return false
	}
	return true
}

func logLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	if err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

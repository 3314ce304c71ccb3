package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

func cmdValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	// Offline there is no topology, so a list that splits a core or names a
	// CPU the node lacks passes; --root gives one (a node's / or a copy of
	// its /sys/devices/system), and spec.cpu is resolved on it as the
	// cpu-profile step would.
	topoRoot := fs.String("root", "", "resolve spec.cpu on the CPU topology under this root (its sys/devices/system)")
	if !parseFlags(fs, args, stderr) {
		return exitInvalid
	}
	args = fs.Args()
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: nodeprep validate [--root DIR] FILE|-")
		return exitInvalid
	}
	started := time.Now()
	name := args[0]
	var data []byte
	var err error
	if name == "-" {
		name = "stdin"
		data, err = userdata.Read(stdin)
	} else {
		data, err = userdata.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nodeprep validate: %v\n", err)
		return exitInvalid
	}
	found, err := userdata.Scan(data)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitInvalid
	}
	for _, w := range found.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", name, w)
	}
	sources := found.Sources
	if len(sources) == 0 {
		fmt.Fprintf(stderr, "%s: no nodeprep config found: expected a NodePrepConfig (apiVersion: %s) or user data with a %s MIME part\n", name, api.APIVersion, userdata.ContentType)
		return exitInvalid
	}
	cfg, err := api.Load(sources...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid:\n", name)
		printProblems(stderr, err)
		return exitInvalid
	}
	if *topoRoot != "" && cfg.Spec.CPU != nil {
		p, err := cpuprofile.Resolve(hostfs.New(*topoRoot), cfg.Spec.CPU)
		if err != nil {
			fmt.Fprintf(stderr, "%s: invalid on the topology under %s:\n", name, *topoRoot)
			printProblems(stderr, err)
			return exitInvalid
		}
		fmt.Fprintf(stdout, "%s: spec.cpu on %s: reserved %s, isolated %s (%d NUMA node(s), %d thread(s) per core)\n",
			name, *topoRoot, p.Partition.Reserved, p.Partition.Isolated, len(p.Topology.Nodes), p.Topology.ThreadsPerCore())
	}
	fmt.Fprintf(stdout, "%s: valid: %d part(s), %d interface(s), %d hugepage size(s), failurePolicy %s (%s)\n",
		name, len(sources), len(cfg.Spec.Interfaces), len(cfg.Spec.Hugepages), cfg.Spec.FailurePolicy, time.Since(started).Round(time.Microsecond))
	return exitOK
}

// printProblems prints one problem per line, however they are joined.
func printProblems(w io.Writer, err error) {
	var ve *api.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			fmt.Fprintf(w, "  %s\n", fe.Error())
		}
		return
	}
	var pe *cpuset.PartitionError
	if errors.As(err, &pe) {
		for _, p := range pe.Problems {
			fmt.Fprintf(w, "  %s\n", p.Error())
		}
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			printProblems(w, e)
		}
		return
	}
	fmt.Fprintf(w, "  %v\n", err)
}

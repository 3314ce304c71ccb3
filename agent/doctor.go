package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/doctor"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/state"
)

// Exit codes of `nodeprep doctor`, node-problem-detector's custom plugin
// convention: 0 OK, 1 NonOK, 2 Unknown.
const (
	doctorOK      = 0
	doctorProblem = 1
	doctorUnknown = 2
)

// doctorFlags are doctor's own flags.
type doctorFlags struct {
	root        string
	ec2Endpoint string
	imds        string
	offline     bool
	asJSON      bool
	timeout     time.Duration
}

// register adds the flags doctor and watch share: where the node is and
// how to reach EC2.
func (df *doctorFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&df.root, "root", env("NODEPREP_ROOT", "/"), "host root prefix")
	fset.StringVar(&df.ec2Endpoint, "ec2-endpoint", env("NODEPREP_EC2_ENDPOINT", ""), "EC2 endpoint")
	fset.StringVar(&df.imds, "imds-endpoint", env("NODEPREP_IMDS_ENDPOINT", ""), "IMDS endpoint")
	fset.BoolVar(&df.offline, "offline", false, "make no EC2 call (the ENI check says it was not run)")
}

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("doctor", flag.ContinueOnError)
	var df doctorFlags
	df.register(fset)
	fset.BoolVar(&df.asJSON, "json", false, "print the report as JSON")
	fset.DurationVar(&df.timeout, "timeout", 10*time.Second, "deadline for the whole run")
	if !parseFlags(fset, args, stderr) {
		return doctorUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, df.timeout)
	defer cancel()
	node, err := loadDoctorNode(ctx, df)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep doctor:", err)
		return doctorUnknown
	}
	report := doctor.Run(ctx, node, doctor.Checks())
	if df.asJSON {
		err = doctor.WriteJSON(stdout, report)
	} else {
		err = doctor.WriteTable(stdout, report)
	}
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep doctor:", err)
		return doctorUnknown
	}
	if report.Worst() == doctor.Fail {
		return doctorProblem
	}
	return doctorOK
}

// loadDoctorNode reads what the last run left: its effective config and
// its state record. EC2 is asked unless --offline; netlink is read only on
// the real root (an offline --root tree has no kernel behind it).
func loadDoctorNode(ctx context.Context, df doctorFlags) (*doctor.Node, error) {
	root := hostfs.New(df.root)
	data, err := root.ReadFile(bootstrap.EffectiveConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s: nodeprep has not run on this node since boot", bootstrap.EffectiveConfigPath)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := api.Load(api.Source{Name: bootstrap.EffectiveConfigPath, Data: data})
	if err != nil {
		return nil, err
	}
	st, err := state.Read(root)
	if err != nil {
		return nil, err
	}
	node := &doctor.Node{Root: root, Config: cfg, State: st}
	if root.Dir() == "/" {
		if h, err := link.OpenNetlink(nil); err == nil {
			node.Links = doctor.NetlinkLinks{Handle: h}
		}
	}
	if !df.offline && needsEC2(cfg) {
		cloud, err := bootstrap.NewCloud(ctx, df.imds, df.ec2Endpoint)
		if err != nil {
			return nil, fmt.Errorf("EC2 client (pass --offline to skip the ENI check): %w", err)
		}
		node.EC2 = cloud.EC2
		node.InstanceID = cloud.Identity.InstanceID
	}
	return node, nil
}

func needsEC2(cfg *api.NodePrepConfig) bool {
	for _, in := range cfg.Spec.Interfaces {
		if in.Managed() {
			return true
		}
	}
	return false
}

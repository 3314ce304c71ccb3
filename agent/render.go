package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/nad"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

const renderUsage = `usage:
  nodeprep render nad [--config FILE] [--root DIR] [--namespace NS]
      NetworkAttachmentDefinitions for the configured interfaces: cluster
      objects with no node-specific value, rendered offline from the config.
  nodeprep render conflists [--root DIR] [--config FILE]
      this node's conflists for Multus's confDir, from the last run's state.
`

// cmdRender prints NetworkAttachmentDefinitions (offline, from the config)
// or this node's conflists (from the last run's state).
func cmdRender(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "nad" && args[0] != "conflists") {
		fmt.Fprint(stderr, renderUsage)
		return exitInvalid
	}
	what := args[0]
	fset := flag.NewFlagSet("render "+what, flag.ContinueOnError)
	root := fset.String("root", env("NODEPREP_ROOT", "/"), "host root prefix")
	configFile := fset.String("config", "", "a config or user-data file; default: the last run's config")
	namespace := fset.String("namespace", "", "metadata.namespace of the NADs")
	if !parseFlags(fset, args[1:], stderr) {
		return exitInvalid
	}
	host := hostfs.New(*root)
	cfg, err := renderConfig(host, *configFile)
	if err != nil {
		fmt.Fprintf(stderr, "nodeprep render %s: %v\n", what, err)
		return exitInvalid
	}
	if what == "conflists" {
		return renderConflists(host, cfg, stdout, stderr)
	}
	out, err := nad.Render(cfg, nad.Options{Namespace: *namespace})
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep render nad:", err)
		return exitFailed
	}
	for _, name := range nad.Unattachable(cfg) {
		fmt.Fprintf(stderr, "nodeprep render nad: no NAD for %s: it asks EC2 for no pod addresses (secondaryIPCount, ipv4PrefixCount, ipv6PrefixCount, ipv6AddressCount); ask for some, or set podAttachment: hostDevice to give one pod the whole ENI\n", name)
	}
	_, _ = stdout.Write(out)
	return exitOK
}

// renderConflists prints, per interface, the conflist nodeprep writes into
// Multus's confDir on this node, preceded by its path.
func renderConflists(host hostfs.Root, cfg *api.NodePrepConfig, stdout, stderr io.Writer) int {
	f, err := state.Read(host)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep render conflists:", err)
		return exitFailed
	}
	nets, err := bootstrap.PodNetworks(cfg, f.Interfaces)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep render conflists:", err)
		return exitFailed
	}
	code := exitOK
	printed := map[string]bool{}
	for _, e := range nets {
		// A whole-ENI pool's members share the pool's one conflist.
		if printed[e.NetworkName()] {
			continue
		}
		printed[e.NetworkName()] = true
		data, err := netconf.Build(e, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion})
		if err != nil {
			fmt.Fprintln(stderr, "nodeprep render conflists:", err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "# %s\n%s", netconf.Path(cfg.Spec.Multus.NetworkConfDir, e.NetworkName()), data)
	}
	return code
}

func renderConfig(host hostfs.Root, file string) (*api.NodePrepConfig, error) {
	if file == "" {
		data, err := host.ReadFile(bootstrap.EffectiveConfigPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no %s: nodeprep has not run here; pass --config", bootstrap.EffectiveConfigPath)
		}
		if err != nil {
			return nil, err
		}
		return api.Load(api.Source{Name: bootstrap.EffectiveConfigPath, Data: data})
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	sources, err := userdata.Extract(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return api.Load(sources...)
}

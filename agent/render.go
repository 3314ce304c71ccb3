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
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/userdata"
)

// cmdRender prints NetworkAttachmentDefinitions for the configured
// interfaces, from the last run's config and state, or from a given config.
func cmdRender(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "nad" {
		fmt.Fprintln(stderr, "usage: nodeprep render nad [--root DIR] [--config FILE] [--namespace NS] [--placeholders]")
		return exitInvalid
	}
	fset := flag.NewFlagSet("render nad", flag.ContinueOnError)
	root := fset.String("root", env("NODEPREP_ROOT", "/"), "host root prefix")
	configFile := fset.String("config", "", "a config or user-data file; default: the last run's config")
	namespace := fset.String("namespace", "", "metadata.namespace of the objects")
	placeholders := fset.Bool("placeholders", false, "write placeholders for what only a run knows (PCI addresses, subnets)")
	if !parseFlags(fset, args[1:], stderr) {
		return exitInvalid
	}
	host := hostfs.New(*root)
	cfg, err := renderConfig(host, *configFile)
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep render nad:", err)
		return exitInvalid
	}
	var ifaces []nad.Interface
	if f, err := state.Read(host); err == nil {
		for name, in := range f.Interfaces {
			ifaces = append(ifaces, nad.Interface{Name: name, PCIAddress: in.PCIAddress, PrivateIP: in.PrivateIP, SubnetCIDR: in.SubnetCIDR})
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(stderr, "nodeprep render nad:", err)
		return exitFailed
	}
	out, err := nad.Render(cfg, ifaces, nad.Options{Namespace: *namespace, Placeholders: *placeholders})
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep render nad:", err)
		if errors.Is(err, nad.ErrMissingState) {
			fmt.Fprintln(stderr, "run it on a node after `nodeprep run`, or pass --placeholders")
		}
		return exitFailed
	}
	_, _ = stdout.Write(out)
	return exitOK
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

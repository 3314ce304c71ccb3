package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/internal/timeline"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("status", flag.ContinueOnError)
	root := fset.String("root", env("NODEPREP_ROOT", "/"), "host root prefix")
	asJSON := fset.Bool("json", false, "print the state file as JSON")
	asTimeline := fset.Bool("timeline", false, "draw the run's steps and changes on a time axis, critical path marked")
	if !parseFlags(fset, args, stderr) {
		return exitInvalid
	}
	f, err := state.Read(hostfs.New(*root))
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "nodeprep has not run on this node since boot (no %s)\n", state.Path)
		return exitNoState
	}
	if err != nil {
		fmt.Fprintln(stderr, "nodeprep status:", err)
		return exitFailed
	}
	if *asTimeline {
		_ = timeline.Write(stdout, f, timeline.Options{Changes: true})
	} else if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(f)
	} else {
		printStatus(stdout, f)
	}
	if f.Failed() {
		return exitFailed
	}
	return exitOK
}

func printStatus(w io.Writer, f *state.File) {
	fmt.Fprintf(w, "last %s: %s", f.Command, f.Result)
	if !f.Finished.IsZero() {
		fmt.Fprintf(w, " at %s in %s", f.Finished.Format(time.RFC3339), f.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if f.InstanceID != "" {
		fmt.Fprintf(w, "instance: %s\n", f.InstanceID)
	}
	if f.Error != "" {
		fmt.Fprintf(w, "error: %s\n", f.Error)
	}
	if len(f.Steps) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tOUTCOME\tDURATION\tCHANGES")
		for _, s := range f.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", s.Name, s.Outcome, s.Duration.Round(time.Microsecond), len(s.Changes))
		}
		_ = tw.Flush()
	}
	if len(f.Interfaces) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INTERFACE\tENI\tMAC\tIFNAME\tPCI\tDRIVER")
		for _, in := range sortedInterfaces(f.Interfaces) {
			pciAddress := in.Device.Device.Address
			if pciAddress == "" {
				pciAddress = in.Link.PCIAddress
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, dash(in.ENI.ENIID), dash(in.MAC()), dash(in.IfName()), dash(pciAddress), dash(in.Device.Device.Driver))
		}
		_ = tw.Flush()
	}
}

func sortedInterfaces(m map[string]state.Interface) []state.Interface {
	out := make([]state.Interface, 0, len(m))
	for _, in := range m {
		out = append(out, in)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

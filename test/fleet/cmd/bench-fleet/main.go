// Command bench-fleet boots FLEET_NODES nodes (default 500) with FLEET_ENIS
// ENIs each (default 2) at once against one EC2 simulator, then terminates
// them, and prints one line:
//
//	fleet: nodes=N enis=M sdc=unset|true|false faults=F ok=K failed=F leaked_unattached=U leaked_after_termination=T node_p50=As node_p99=Bs node_max=Cs makespan=Xs bound=Ys ratio=R calls=C throttled=H throttled_share=S% first_wave=W
//
// Every node runs at the defaults a user gets (eni.ClientOptions' retry
// mode and rate control, the Reconciler's default deadline).
// FLEET_SOURCE_DEST_CHECK=false gives every interface sourceDestCheck:
// false (one more attribute change per ENI); FLEET_FAULTS=mix injects
// fleet.FaultMix (lost answers, 5xx, slow visibility); FLEET_DEADLINE
// overrides each node's ENI deadline (to study it, never for a figure
// that claims the defaults); FLEET_SEED the simulator's seed;
// FLEET_OTHER_BOOTING adds that many instances booting beside the fleet
// without nodeprep (they stretch a throttled node's storm turn). See package
// test/fleet for how the bound is computed.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nodeprep/nodeprep/test/fleet"
)

func main() {
	spec := fleet.Spec{Nodes: 500, ENIs: 2, Seed: 1}
	var err error
	if v := os.Getenv("FLEET_NODES"); v != "" {
		spec.Nodes, err = strconv.Atoi(v)
		exitIf("FLEET_NODES", err)
	}
	if v := os.Getenv("FLEET_ENIS"); v != "" {
		spec.ENIs, err = strconv.Atoi(v)
		exitIf("FLEET_ENIS", err)
	}
	if v := os.Getenv("FLEET_SEED"); v != "" {
		spec.Seed, err = strconv.ParseInt(v, 10, 64)
		exitIf("FLEET_SEED", err)
	}
	if v := os.Getenv("FLEET_OTHER_BOOTING"); v != "" {
		spec.OtherBooting, err = strconv.Atoi(v)
		exitIf("FLEET_OTHER_BOOTING", err)
	}
	if v := os.Getenv("FLEET_DEADLINE"); v != "" {
		spec.Deadline, err = time.ParseDuration(v)
		exitIf("FLEET_DEADLINE", err)
	}
	switch v := os.Getenv("FLEET_SOURCE_DEST_CHECK"); v {
	case "", "unset":
	case "false", "true":
		b := v == "true"
		spec.SourceDestCheck = &b
	default:
		exitIf("FLEET_SOURCE_DEST_CHECK", fmt.Errorf("%q: want unset, true or false", v))
	}
	switch v := os.Getenv("FLEET_FAULTS"); v {
	case "", "none":
	case "mix":
		faults, vis := fleet.FaultMix()
		spec.Faults, spec.Visibility = faults, &vis
	default:
		exitIf("FLEET_FAULTS", fmt.Errorf("%q: want none or mix", v))
	}
	rep, err := fleet.Run(context.Background(), spec)
	exitIf("fleet", err)
	fmt.Println(rep)
	if path := os.Getenv("FLEET_TIMELINE"); path != "" {
		exitIf("FLEET_TIMELINE", writeTimeline(path, rep))
	}
	if os.Getenv("FLEET_VERBOSE") != "" {
		for a, st := range rep.PerAction {
			fmt.Fprintf(os.Stderr, "%-32s calls=%d throttled=%d errors=%d\n", a, st.Calls, st.Throttled, st.Errors)
		}
		for k, n := range rep.Answers {
			fmt.Fprintf(os.Stderr, "answer %-60s %d\n", k, n)
		}
		for _, e := range rep.Errors {
			fmt.Fprintln(os.Stderr, e)
		}
	}
}

func exitIf(what string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-fleet: %s: %v\n", what, err)
		os.Exit(2)
	}
}

// writeTimeline writes one line per call: seconds into the storm, the
// action, the error code ("" granted) and the caller.
func writeTimeline(path string, rep fleet.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, c := range rep.Timeline {
		fmt.Fprintf(w, "%.3f\t%s\t%s\t%s\n", c.Time.Sub(rep.Start).Seconds(), c.Action, c.ErrorCode, c.Client)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

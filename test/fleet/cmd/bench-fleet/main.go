// Command bench-fleet boots FLEET_NODES nodes (default 500) with FLEET_ENIS
// ENIs each (default 2) at once against one EC2 simulator, then terminates
// them, and prints one line:
//
//	fleet: nodes=N enis=M ok=K failed=F leaked_unattached=U leaked_after_termination=T makespan=Xs bound=Ys ratio=R calls=C throttled=H
//
// FLEET_SOURCE_DEST_CHECK=false gives every interface sourceDestCheck:
// false (one more attribute change per ENI); FLEET_DEADLINE sets each
// node's ENI deadline (default 30m: EC2's buckets alone need 190 s for
// 500x2 and 580 s for 500x3 with sourceDestCheck false, past nodeprep's
// 5-minute default); FLEET_SEED the simulator's seed. See package
// test/fleet for how the bound is computed.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nodeprep/nodeprep/test/fleet"
)

func main() {
	spec := fleet.Spec{Nodes: 500, ENIs: 2, Deadline: 30 * time.Minute, Seed: 1}
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
	rep, err := fleet.Run(context.Background(), spec)
	exitIf("fleet", err)
	fmt.Println(rep)
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

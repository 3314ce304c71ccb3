package nodeadm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuprofile"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// DropIn writes nodeprep's drop-in as the run's last step, whatever the
// other steps did: labels, the node's taints and, under failurePolicy
// Taint after a failure, the failure taint.
type DropIn struct {
	Root   hostfs.Root
	Config *api.NodePrepConfig
	// UserData are user data's NodeConfig documents (userdata.ExtractNodeadm),
	// whose taints and maxPods the drop-in carries forward.
	UserData [][]byte
	// MaxPods, when set, is kubelet's maxPods with nodeprep's no_manage
	// ENIs taken out of the VPC CNI's count, 0 when it needs no change. It
	// is asked only when no earlier NodeConfig sets maxPods.
	MaxPods func(ctx context.Context) (int, error)
	// CPU, when set, is the CPU profile's kubelet settings once the earlier
	// NodeConfigs' own values took precedence (cpuprofile.Kubelet.Respect);
	// nil or a nil result: no CPU management in the drop-in.
	CPU func(inherited Inherited) (*cpuprofile.Kubelet, error)
}

// Apply brings the drop-in to what a run whose failed steps are failed
// asks of kubelet. It reports whether the failure taint reaches kubelet.
//
// Under failurePolicy Taint a failure must never let the node join
// untainted, the drop-in's own included: when the full drop-in cannot be
// built (a label kubelet refuses) or written, Apply writes one with only
// the taints, and still returns the error, so the step fails as it should.
func (d DropIn) Apply(ctx context.Context, act change.Actions, failed []string) (tainted bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	inherited, err := Inherit(d.Root, d.UserData)
	if err != nil {
		act.Log().Warn("cannot read the NodeConfigs before nodeprep's drop-in; it inherits nothing from them", "error", err)
	}
	out := Facts{Failed: failed, Inherited: inherited}
	if !inherited.MaxPodsSet && d.MaxPods != nil {
		if out.MaxPods, err = d.MaxPods(ctx); err != nil {
			act.Log().Warn("cannot compute maxPods; kubelet keeps nodeadm's value, which counts nodeprep's ENIs", "error", err)
			out.MaxPods = 0
		}
	}
	if d.CPU != nil {
		if out.CPU, err = d.CPU(inherited); err != nil {
			// The kernelargs step fails with the same error; kubelet keeps
			// its default CPU management rather than a half-agreed one.
			act.Log().Warn("no CPU profile in the nodeadm drop-in", "error", err)
			out.CPU = nil
		}
	}
	underTaint := d.Config.Spec.FailurePolicy == api.FailurePolicyTaint
	data, err := Render(d.Config, out)
	if err == nil {
		err = d.write(ctx, act, data, fmt.Sprintf("write %s (%s)", DropInPath, summary(data)))
		if err == nil {
			return underTaint && len(failed) > 0, nil
		}
	}
	err = fmt.Errorf("nodeadm drop-in %s: %w", DropInPath, err)
	if !underTaint {
		return false, err
	}
	// This step failed too: under Taint the taint goes to kubelet anyway.
	only, rerr := RenderTaintOnly(inherited, append(append([]string(nil), failed...), "nodeadm"))
	if rerr == nil {
		rerr = d.write(ctx, act, only, fmt.Sprintf("write %s with only the taints (%s)", DropInPath, summary(only)))
	}
	if rerr != nil {
		return false, errors.Join(err, fmt.Errorf("and the drop-in with only the failure taint: %w", rerr))
	}
	return true, err
}

func (d DropIn) write(ctx context.Context, act change.Actions, data []byte, what string) error {
	differs, err := d.Root.Differs(DropInPath, data, 0o644)
	if err != nil || !differs {
		return err
	}
	return act.Do(ctx, what, func(context.Context) error {
		_, err := d.Root.WriteFile(DropInPath, data, 0o644)
		return err
	})
}

// RenderTaintOnly is the drop-in of a node whose full drop-in cannot be
// built: no labels, only the failure taint and the taints the NodeConfigs
// before it set (--register-with-taints is last-wins).
func RenderTaintOnly(inherited Inherited, failed []string) ([]byte, error) {
	taints := unionTaints(inherited.Taints, []api.Taint{{Key: FailedTaintKey, Value: "true", Effect: "NoSchedule"}})
	nc := &NodeConfig{APIVersion: APIVersion, Kind: Kind, Spec: NodeConfigSpec{Kubelet: KubeletOptions{Flags: []string{"--register-with-taints=" + joinTaints(taints)}}}}
	body, err := yaml.Marshal(nc)
	if err != nil {
		return nil, err
	}
	header := "# Written by nodeprep: the full drop-in could not be written, so only the failure taint.\n# Failed steps: " + strings.Join(sorted(failed), ", ") + "\n"
	return append([]byte(header), body...), nil
}

// summary is the drop-in's kubelet flags and maxPods, for the change record.
func summary(data []byte) string {
	var nc NodeConfig
	if err := yaml.Unmarshal(data, &nc); err != nil {
		return "unreadable"
	}
	parts := append([]string(nil), nc.Spec.Kubelet.Flags...)
	if c := nc.Spec.Kubelet.Config; c != nil && c.MaxPods > 0 {
		parts = append(parts, fmt.Sprintf("maxPods %d", c.MaxPods))
	}
	return strings.Join(parts, " ")
}

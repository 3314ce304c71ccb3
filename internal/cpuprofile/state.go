package cpuprofile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"

	"github.com/nodeprep/nodeprep/internal/change"
	"github.com/nodeprep/nodeprep/internal/cpuset"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// kubelet's checkpoint files, and nodeprep's record of what it last told
// kubelet.
const (
	CPUManagerState    = "/var/lib/kubelet/cpu_manager_state"
	MemoryManagerState = "/var/lib/kubelet/memory_manager_state"
	Record             = "/var/lib/nodeprep/kubelet-cpu.json"
)

// record is what a changed profile is judged against: the values kubelet's
// CPU and memory managers validate their checkpoints with.
type record struct {
	CPUManagerPolicy    string              `json:"cpuManagerPolicy"`
	ReservedSystemCPUs  string              `json:"reservedSystemCPUs"`
	MemoryManagerPolicy string              `json:"memoryManagerPolicy"`
	ReservedMemory      []MemoryReservation `json:"reservedMemory,omitempty"`
}

func recordOf(k Kubelet) record {
	mm := k.MemoryManagerPolicy
	if mm == "" {
		mm = "None"
	}
	return record{CPUManagerPolicy: k.CPUManagerPolicy, ReservedSystemCPUs: k.ReservedSystemCPUs, MemoryManagerPolicy: mm, ReservedMemory: k.ReservedMemory}
}

// checkpoint is the part of kubelet's cpu_manager_state and
// memory_manager_state read here.
type checkpoint struct {
	PolicyName    string `json:"policyName"`
	DefaultCPUSet string `json:"defaultCpuSet"`
}

// PlanState returns the changes that remove kubelet's CPU and memory
// manager checkpoints when they were written under another policy or
// reserved set, which makes kubelet refuse to start (kubernetes #110478,
// #109996), and that record the profile for the next boot. It removes
// nothing when the profile is unchanged, so pinned pods that survive a
// kubelet restart keep their CPUs. It must run before kubelet starts.
func PlanState(root hostfs.Root, k Kubelet) ([]change.Change, error) {
	want := recordOf(k)
	var prev *record
	if b, err := root.ReadFile(Record); err == nil {
		var r record
		if json.Unmarshal(b, &r) == nil {
			prev = &r
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []change.Change
	for _, f := range []struct {
		path, policy string
		stale        func(prev *record, cp checkpoint) string
	}{
		{CPUManagerState, want.CPUManagerPolicy, func(prev *record, cp checkpoint) string {
			if prev != nil && (prev.CPUManagerPolicy != want.CPUManagerPolicy || prev.ReservedSystemCPUs != want.ReservedSystemCPUs) {
				return fmt.Sprintf("reserved CPUs %q under policy %s became %q under %s", prev.ReservedSystemCPUs, prev.CPUManagerPolicy, want.ReservedSystemCPUs, want.CPUManagerPolicy)
			}
			// kubelet's static policy refuses a checkpoint whose default
			// set lacks a reserved CPU.
			def, err := cpuset.Parse(cp.DefaultCPUSet)
			if res, _ := cpuset.Parse(want.ReservedSystemCPUs); err == nil && cp.PolicyName == "static" && !res.SubsetOf(def) {
				return fmt.Sprintf("its defaultCpuSet %q lacks reserved CPUs %s", cp.DefaultCPUSet, res.Difference(def))
			}
			return ""
		}},
		{MemoryManagerState, want.MemoryManagerPolicy, func(prev *record, cp checkpoint) string {
			if prev != nil && (prev.MemoryManagerPolicy != want.MemoryManagerPolicy || !reflect.DeepEqual(prev.ReservedMemory, want.ReservedMemory)) {
				return fmt.Sprintf("memory manager %s with reservedMemory %v became %s with %v", prev.MemoryManagerPolicy, prev.ReservedMemory, want.MemoryManagerPolicy, want.ReservedMemory)
			}
			return ""
		}},
	} {
		b, err := root.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var cp checkpoint
		reason := ""
		if err := json.Unmarshal(b, &cp); err != nil {
			reason = "it does not parse"
		} else if f.policy != "" && cp.PolicyName != f.policy {
			reason = fmt.Sprintf("it was written under policy %q, kubelet now runs %q", cp.PolicyName, f.policy)
		} else {
			reason = f.stale(prev, cp)
		}
		if reason == "" {
			continue
		}
		p := f.path
		out = append(out, change.Change{What: fmt.Sprintf("remove kubelet's stale %s: %s", p, reason),
			Apply: func(context.Context) error { _, err := root.Remove(p); return err }})
	}
	data, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	if differs, err := root.Differs(Record, data, 0o644); err != nil {
		return nil, err
	} else if differs {
		out = append(out, change.Change{What: "record kubelet's CPU and memory manager settings in " + Record,
			Apply: func(context.Context) error { _, err := root.WriteFile(Record, data, 0o644); return err }})
	}
	return out, nil
}

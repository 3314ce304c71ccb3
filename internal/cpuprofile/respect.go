package cpuprofile

import (
	"errors"
	"fmt"

	"github.com/nodeprep/nodeprep/internal/cpuset"
)

// ErrConflict is returned when the user's own NodeConfig sets a kubelet
// value that would make kubelet disagree with the kernel, systemd and the
// IRQs about which CPUs are reserved.
var ErrConflict = errors.New("the NodeConfig's kubelet config conflicts with spec.cpu")

// Respect takes out of k every value the user's own NodeConfigs already
// set (user is their merged kubelet.config, as nodeadm merges the documents
// before the drop-in), as the drop-in does for maxPods: what the user wrote
// wins. Memory reservations the user set are used as given in the
// reservedMemory sum, so it still equals what kubelet checks. Two things
// cannot be left to the user, because the rest of the node would disagree
// with kubelet: a reservedSystemCPUs other than the reserved set, and a
// kubeReservedCgroup or systemReservedCgroup, which kubelet refuses beside
// reservedSystemCPUs.
func (k Kubelet) Respect(user map[string]any, nodes []int) (Kubelet, error) {
	out := k
	if v, ok := user["reservedSystemCPUs"]; ok {
		s, _ := v.(string)
		set, err := cpuset.Parse(s)
		want := cpuset.MustParse(k.ReservedSystemCPUs)
		if err != nil || !set.Equal(want) {
			return Kubelet{}, fmt.Errorf("kubelet reservedSystemCPUs %q in the NodeConfig, but spec.cpu reserves %s: %w", s, want, ErrConflict)
		}
		out.ReservedSystemCPUs = ""
	}
	for _, key := range []string{"kubeReservedCgroup", "systemReservedCgroup"} {
		if v, ok := user[key]; ok {
			if s, _ := v.(string); s != "" {
				return Kubelet{}, fmt.Errorf("kubelet %s %q in the NodeConfig: kubelet refuses it beside reservedSystemCPUs: %w", key, s, ErrConflict)
			}
		}
	}
	if _, ok := user["cpuManagerPolicy"]; ok {
		out.CPUManagerPolicy = ""
	}
	if _, ok := user["cpuManagerPolicyOptions"]; ok {
		out.CPUManagerPolicyOptions = nil
	}
	if _, ok := user["topologyManagerPolicy"]; ok {
		out.TopologyManagerPolicy = ""
	}
	if k.MemoryManagerPolicy == "" {
		return out, nil
	}
	if _, ok := user["memoryManagerPolicy"]; ok {
		out.MemoryManagerPolicy = ""
	}
	kube, okK := nested(user, "kubeReserved", "memory")
	sys, okS := nested(user, "systemReserved", "memory")
	evict, okE := nested(user, "evictionHard", evictionMemory)
	if okK {
		out.KubeReserved = nil
	} else {
		kube = k.KubeReserved["memory"]
	}
	if okS {
		out.SystemReserved = nil
	} else {
		sys = k.SystemReserved["memory"]
	}
	if okE {
		out.EvictionHard = nil
	} else {
		evict = k.EvictionHard[evictionMemory]
	}
	if _, ok := user["reservedMemory"]; ok {
		out.ReservedMemory = nil
		return out, nil
	}
	rm, err := ReservedMemory(nodes, kube, sys, evict)
	if err != nil {
		return Kubelet{}, fmt.Errorf("the NodeConfig's kubelet memory reservations: %w", err)
	}
	out.ReservedMemory = rm
	return out, nil
}

func nested(m map[string]any, key, sub string) (string, bool) {
	inner, ok := m[key].(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := inner[sub]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

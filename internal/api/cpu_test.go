package api

import (
	"errors"
	"reflect"
	"testing"
)

func cpuConfig(t *testing.T, doc string) error {
	t.Helper()
	c, err := Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n" + doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	SetDefaults(c)
	return Validate(c)
}

func TestCPUDefaults(t *testing.T) {
	c, err := Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu:\n    topologyManagerPolicy: single-numa-node\n"))
	if err != nil {
		t.Fatal(err)
	}
	SetDefaults(c)
	cpu := c.Spec.CPU
	if cpu.Reserved != CPUReservedAuto || !*cpu.KernelIsolation.NohzFull || !*cpu.KernelIsolation.IRQAffinity || !cpu.MemoryManagerOn() {
		t.Fatalf("defaults: %+v", cpu)
	}
	if cpu.MemoryManager.KubeReserved != "1Gi" || cpu.MemoryManager.SystemReserved != "500Mi" || cpu.MemoryManager.EvictionHard != "100Mi" {
		t.Fatalf("memory defaults: %+v", cpu.MemoryManager)
	}
	if err := Validate(c); err != nil {
		t.Fatal(err)
	}
	// best-effort (the default) leaves the memory manager off, as the
	// PerformanceProfile does.
	c2, _ := Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  cpu: {}\n"))
	SetDefaults(c2)
	if c2.Spec.CPU.TopologyManagerPolicy != TopologyBestEffort || c2.Spec.CPU.MemoryManagerOn() {
		t.Fatalf("best-effort defaults: %+v", c2.Spec.CPU)
	}
	// No spec.cpu: nothing.
	c3, _ := Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec: {}\n"))
	SetDefaults(c3)
	if c3.Spec.CPU != nil {
		t.Fatal("spec.cpu defaulted into existence")
	}
}

func TestCPUValidation(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"overlap", "  cpu:\n    reserved: 0-1,32-33\n    isolated: 1-31,33-63\n", []string{"spec.cpu.isolated"}},
		{"bad lists", "  cpu:\n    reserved: zero\n    isolated: 3-1\n", []string{"spec.cpu.reserved", "spec.cpu.isolated"}},
		{"cores with a list", "  cpu:\n    reserved: 0,4\n    reservedCores: 2\n", []string{"spec.cpu.reservedCores"}},
		{"policy and memory", "  cpu:\n    topologyManagerPolicy: numa\n    memoryManager:\n      kubeReserved: lots\n      evictionHard: \"0\"\n",
			[]string{"spec.cpu.topologyManagerPolicy", "spec.cpu.memoryManager.kubeReserved", "spec.cpu.memoryManager.evictionHard"}},
		{"nicLocal without DPDK", "  hugepages:\n  - size: 1Gi\n    count: 4\n    placement: nicLocal\n", []string{"spec.hugepages[0].placement"}},
		{"bad placement", "  hugepages:\n  - size: 1Gi\n    count: 4\n    placement: near\n", []string{"spec.hugepages[0].placement"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ve *ValidationError
			if err := cpuConfig(t, tc.doc); !errors.As(err, &ve) {
				t.Fatalf("err = %v", err)
			}
			if got := ve.Fields(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fields %v, want %v\n%v", got, tc.want, ve)
			}
		})
	}
	if err := cpuConfig(t, "  cpu:\n    reserved: 0-1,32-33\n    isolated: 2-31,34-63\n    topologyManagerPolicy: single-numa-node\n"); err != nil {
		t.Fatalf("valid: %v", err)
	}
}

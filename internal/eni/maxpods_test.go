package eni_test

import (
	"context"
	"testing"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// The judge is the VPC CNI's generated misc/eni-max-pods.txt (amazon-vpc-cni-k8s):
// with nothing reserved the formula must give its numbers; every no_manage
// ENI on network card 0 takes one ENI's addresses away.
func TestMaxPodsMatchesVPCCNIAndSubtractsReservedENIs(t *testing.T) {
	f := newFixture(t, 0, "10.9.1.0/24")
	for _, c := range []struct {
		instanceType string
		reserved     int
		want         int
	}{
		{"t3.medium", 0, 17},
		{"m5.large", 0, 29},
		{"m5.xlarge", 0, 58},
		{"c5.4xlarge", 0, 234},
		{"c5n.18xlarge", 0, 737},
		{"c5.4xlarge", 2, 176},
		{"m5.large", 2, 11},
	} {
		got, err := eni.MaxPods(context.Background(), f.client, c.instanceType, c.reserved)
		if err != nil || got != c.want {
			t.Errorf("%s with %d reserved: %d, %v; want %d", c.instanceType, c.reserved, got, err, c.want)
		}
	}
	if _, err := eni.MaxPods(context.Background(), f.client, "m5.large", 3); err == nil {
		t.Error("no ENI left for pods: want an error")
	}
}

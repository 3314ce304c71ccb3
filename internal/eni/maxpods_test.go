package eni_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// The judge is the VPC CNI's generated misc/eni-max-pods.txt (amazon-vpc-cni-k8s):
// with nothing reserved the formula, fed by DescribeInstanceTypes, must
// give its numbers; every no_manage ENI on network card 0 takes one ENI's
// addresses away.
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
		l, err := eni.DescribeLimits(context.Background(), f.client, c.instanceType)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.MaxPods(c.reserved)
		if err != nil || got != c.want {
			t.Errorf("%s with %d reserved: %d, %v; want %d", c.instanceType, c.reserved, got, err, c.want)
		}
	}
	l, err := eni.DescribeLimits(context.Background(), f.client, "m5.large")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.MaxPods(3); err == nil {
		t.Error("no ENI left for pods: want an error")
	}
}

func TestDescribeLimitsReadsEC2(t *testing.T) {
	f := newFixture(t, 0, "10.9.1.0/24")
	l, err := eni.DescribeLimits(context.Background(), f.client, "c5.4xlarge")
	if err != nil {
		t.Fatal(err)
	}
	if want := (eni.Limits{InstanceType: "c5.4xlarge", ENIsOnCard0: 8, IPv4PerENI: 30, IPv6PerENI: 30, Nitro: true, ENIsPerCard: map[int32]int{0: 8}}); !reflect.DeepEqual(l, want) {
		t.Errorf("%+v, want %+v", l, want)
	}
	_, err = eni.DescribeLimits(context.Background(), f.client, "x9.nonexistent")
	var le *eni.LimitsError
	if !errors.As(err, &le) || le.Code != "InvalidInstanceType" || le.InstanceType != "x9.nonexistent" {
		t.Fatalf("err = %#v", err)
	}
}

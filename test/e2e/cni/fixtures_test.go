package cni

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/containernetworking/cni/libcni"

	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/multus"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// simNode is a c5.xlarge node of a simulated VPC, in a primary subnet
// 10.0.1.0/24, beside the Multus subnet data, and nodeprep's own EC2 client
// to the simulator (its retryer and pacing).
func simNode(t testing.TB, seed int64, data ec2sim.SubnetSpec) (*ec2sim.Sim, ec2sim.Subnet, ec2sim.Instance, *ec2.Client) {
	t.Helper()
	sim := ec2sim.New(ec2sim.Config{Seed: seed})
	t.Cleanup(sim.Close)
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := sim.AddSubnet(data)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.xlarge", SubnetID: primary.ID})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, sn, inst, ec2.NewFromConfig(ec2sim.AWSConfig(srv.URL, "us-west-2"), eni.ClientOptions(""))
}

// multusConf is the 00-multus.conf nodeprep wrote in confDir, as libcni
// reads it.
func multusConf(t testing.TB, confDir string) *libcni.NetworkConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(confDir, multus.ConfName))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := libcni.ConfFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

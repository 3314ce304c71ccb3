package eni_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change/changetest"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

type fixture struct {
	sim    *ec2sim.Sim
	url    string
	client *ec2.Client
	data   ec2sim.Subnet
	insts  []ec2sim.Instance
}

// newFixture is a simulator with instant timing and n instances sharing
// one data subnet; no host side (these tests need no root).
func newFixture(t *testing.T, n int, dataCIDR string) *fixture {
	t.Helper()
	return newFixtureWith(t, n, dataCIDR, ec2sim.Config{Seed: 3})
}

// newFixtureWith is newFixture with another simulator configuration.
func newFixtureWith(t testing.TB, n int, dataCIDR string, cfg ec2sim.Config) *fixture {
	t.Helper()
	f := &fixture{sim: ec2sim.New(cfg)}
	t.Cleanup(f.sim.Close)
	primary, err := f.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if f.data, err = f.sim.AddSubnet(ec2sim.SubnetSpec{CIDR: dataCIDR}); err != nil {
		t.Fatal(err)
	}
	for range n {
		inst, err := f.sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: primary.ID})
		if err != nil {
			t.Fatal(err)
		}
		f.insts = append(f.insts, inst)
	}
	srv := httptest.NewServer(f.sim.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.client = ec2.NewFromConfig(ec2sim.AWSConfig(srv.URL, "us-west-2"), eni.ClientOptions(""))
	return f
}

// nodeClient is the EC2 client of one node, as each node has its own.
func (f *fixture) nodeClient(i int) *ec2.Client {
	return ec2.NewFromConfig(ec2sim.AWSConfigFor(f.url, "us-west-2", fmt.Sprintf("NODE%d", i)), eni.ClientOptions(""))
}

func managed(name, subnet string, dev int32, mode api.PrivateIPMode) api.Interface {
	card := int32(0)
	return api.Interface{Name: name, SubnetID: subnet, DeviceIndex: &dev, NetworkCardIndex: &card, PrivateIP: api.PrivateIP{Mode: mode}, Driver: api.DriverKernel}
}

// TestFromStartOfSubnetConcurrentNodes boots 50 nodes at once, each with
// two fromStartOfSubnet ENIs in one subnet. They all scan the same free
// list; every ENI must get a distinct address, and the races must cost
// O(1) creates per ENI: taking the lowest free address made 2,525 creates
// for these 100 ENIs (each InUse answer costs a create, quadratic in the
// number of nodes).
func TestFromStartOfSubnetConcurrentNodes(t *testing.T) {
	const nodes = 50
	// Throttling off: this test is about the address race alone.
	f := newFixtureWith(t, nodes, "10.9.8.0/24", ec2sim.Config{Seed: 3, Throttle: ec2sim.ThrottleConfig{Disabled: true}})
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	results := make([][]eni.Attachment, nodes)
	for i, inst := range f.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &eni.Reconciler{EC2: f.nodeClient(i), InstanceID: inst.ID}
			results[i], errs[i] = r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{
				managed("a", f.data.ID, 1, api.PrivateIPFromStartOfSubnet),
				managed("b", f.data.ID, 2, api.PrivateIPFromStartOfSubnet),
			})
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i, rs := range results {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		for _, r := range rs {
			if prev, dup := seen[r.PrimaryIP.String()]; dup {
				t.Errorf("%s given to %s and %s/%d", r.PrimaryIP, prev, r.Interface, i)
			}
			seen[r.PrimaryIP.String()] = fmt.Sprintf("%s/%d", r.Interface, i)
		}
	}
	st := f.sim.Stats()["CreateNetworkInterface"]
	perENI := float64(st.Calls) / float64(2*nodes)
	t.Logf("%d CreateNetworkInterface calls for %d ENIs (%.2f per ENI), %d errors", st.Calls, 2*nodes, perENI, st.Errors)
	if perENI > 2 {
		t.Errorf("%.2f creates per ENI, want O(1) (at most 2)", perENI)
	}
}

func TestPlanMakesNoMutatingCalls(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	act := &changetest.Actions{DryRunning: true}
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	if _, err := r.Reconcile(context.Background(), act, []api.Interface{managed("a", f.data.ID, 1, api.PrivateIPFromStartOfSubnet)}); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.sim.CallCounts(); m != 0 {
		t.Errorf("%d mutating calls under plan", m)
	}
	if got := strings.Join(act.Changes(), "\n"); !strings.Contains(got, "create ENI for a") || !strings.Contains(got, "attach the new ENI for a") {
		t.Errorf("plan:\n%s", got)
	}
}

func TestMissingSubnetNamesTheInterface(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	r := &eni.Reconciler{EC2: f.client, InstanceID: f.insts[0].ID}
	_, err := r.Reconcile(context.Background(), &changetest.Actions{}, []api.Interface{managed("lost", "subnet-0123456789abcdef0", 1, api.PrivateIPDHCP)})
	if err == nil || !strings.Contains(err.Error(), "interface lost") || !strings.Contains(err.Error(), "subnet-0123456789abcdef0 not found") {
		t.Fatalf("error %v", err)
	}
	if m, _ := f.sim.CallCounts(); m != 0 {
		t.Errorf("%d mutating calls for a config that cannot work", m)
	}
}

// TestOrphanFromAnOldConfigIsReplaced leaves an unattached ENI of ours from
// a run under another security group; the reconciler must not attach it,
// and must not leak it.
func TestOrphanFromAnOldConfigIsReplaced(t *testing.T) {
	f := newFixture(t, 1, "10.9.8.0/24")
	inst := f.insts[0].ID
	ctx := context.Background()
	for _, sg := range []string{"sg-0000000000000old1", "sg-0000000000000new1"} {
		if _, err := f.sim.AddSecurityGroup(sg, ""); err != nil {
			t.Fatal(err)
		}
	}
	old, err := f.client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(f.data.ID),
		Groups:   []string{"sg-0000000000000old1"},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
			{Key: aws.String(eni.TagNoManage), Value: aws.String("true")},
			{Key: aws.String(eni.TagInstanceID), Value: aws.String(inst)},
			{Key: aws.String(eni.TagInterface), Value: aws.String("a")},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := managed("a", f.data.ID, 1, api.PrivateIPDHCP)
	in.SecurityGroupIDs = []string{"sg-0000000000000new1"}
	r := &eni.Reconciler{EC2: f.client, InstanceID: inst}
	res, err := r.Reconcile(ctx, &changetest.Actions{}, []api.Interface{in})
	if err != nil {
		t.Fatal(err)
	}
	oldID := aws.ToString(old.NetworkInterface.NetworkInterfaceId)
	if res[0].ENIID == oldID || res[0].How != "created" {
		t.Errorf("result %+v: the ENI with the old security group was reused", res[0])
	}
	if _, ok := f.sim.ENI(oldID); ok {
		t.Errorf("stale ENI %s was not deleted", oldID)
	}
	if e, _ := f.sim.ENI(res[0].ENIID); !slices.Equal(e.SecurityGroupIDs, in.SecurityGroupIDs) {
		t.Errorf("new ENI groups %v", e.SecurityGroupIDs)
	}
}

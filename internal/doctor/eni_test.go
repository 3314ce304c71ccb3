package doctor

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/state"
	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// eniNode is a node with one Multus ENI, created, tagged and attached
// through the EC2 simulator as a run leaves it, and its conflist on disk.
type eniNode struct {
	t      *testing.T
	client *ec2.Client
	node   *Node
	eniID  string
}

func newENINode(t *testing.T) *eniNode {
	t.Helper()
	sim := ec2sim.New(ec2sim.Config{Seed: 5})
	t.Cleanup(sim.Close)
	primary, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.9.4.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := sim.AddInstance(ec2sim.InstanceSpec{Type: "c5.4xlarge", SubnetID: primary.ID})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := ec2.NewFromConfig(ec2sim.AWSConfig(srv.URL, "us-west-2"), eni.ClientOptions(""))
	ctx := context.Background()
	created, err := client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(data.ID), SecondaryPrivateIpAddressCount: aws.Int32(2),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String(NoManageTag), Value: aws.String("true")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.NetworkInterface.NetworkInterfaceId)
	if _, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: &id, SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: &id, InstanceId: aws.String(inst.ID), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: fmt.Appendf(nil, `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
    - name: n2
      subnetID: %s
      secondaryIPCount: 2
      sourceDestCheck: false
  multus: {install: false}
`, data.ID)})
	if err != nil {
		t.Fatal(err)
	}
	e := created.NetworkInterface
	att := eni.Attachment{Interface: "n2", ENIID: id, MAC: aws.ToString(e.MacAddress), SubnetID: data.ID, DeviceIndex: 1,
		PrimaryIP: netip.MustParseAddr(aws.ToString(e.PrivateIpAddress)), Subnet: netip.MustParsePrefix("10.9.4.0/24")}
	for _, a := range e.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) {
			att.SecondaryIPs = append(att.SecondaryIPs, netip.MustParseAddr(aws.ToString(a.PrivateIpAddress)))
		}
	}
	in := state.Interface{Name: "n2", ENI: att}
	st := &state.File{Version: state.Version, InstanceID: inst.ID, Interfaces: map[string]state.Interface{"n2": in}}
	root := hostfs.New(t.TempDir())
	enis, err := bootstrap.PodNetworks(cfg, st.Interfaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netconf.Write(root, cfg.Spec.Multus.NetworkConfDir, enis, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion}); err != nil {
		t.Fatal(err)
	}
	return &eniNode{t: t, client: client, eniID: id, node: &Node{Root: root, Config: cfg, State: st, EC2: client}}
}

func (e *eniNode) eniFindings() []Finding {
	return Run(context.Background(), e.node, []Check{{Name: "eni", Run: checkENIs}, {Name: "conflist", Run: checkConflists}}).Findings
}

func TestENIHealthy(t *testing.T) {
	e := newENINode(t)
	fs := e.eniFindings()
	if len(fs) < 3 {
		t.Fatalf("findings %+v", fs)
	}
	for _, f := range fs {
		if f.Verdict != OK {
			t.Errorf("%s %s: %s %s", f.Check, f.Subject, f.Verdict, f.Evidence)
		}
	}
}

func TestENIOffline(t *testing.T) {
	e := newENINode(t)
	e.node.EC2 = nil
	fs := Run(context.Background(), e.node, []Check{{Name: "eni", Run: checkENIs}}).Findings
	if len(fs) != 1 || fs[0].Verdict != Warn || !strings.Contains(fs[0].Evidence, "offline") {
		t.Fatalf("%+v", fs)
	}
}

func TestENIFaults(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		inject   func(e *eniNode)
		check    string
		evidence string
	}{
		{"detached in the console", func(e *eniNode) {
			out, err := e.client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{e.eniID}})
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := e.client.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: out.NetworkInterfaces[0].Attachment.AttachmentId, Force: aws.Bool(true)}); err != nil {
				e.t.Fatal(err)
			}
		}, "eni", "not attached to"},
		{"no_manage tag changed", func(e *eniNode) {
			if _, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{e.eniID}, Tags: []types.Tag{{Key: aws.String(NoManageTag), Value: aws.String("false")}}}); err != nil {
				e.t.Fatal(err)
			}
		}, "eni", "no " + NoManageTag + "=true tag"},
		{"sourceDestCheck re-enabled", func(e *eniNode) {
			if _, err := e.client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: &e.eniID, SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
				e.t.Fatal(err)
			}
		}, "eni", "sourceDestCheck true, config false"},
		{"EC2 assigned another address", func(e *eniNode) {
			if _, err := e.client.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &e.eniID, SecondaryPrivateIpAddressCount: aws.Int32(1)}); err != nil {
				e.t.Fatal(err)
			}
		}, "eni", "differs from the conflist for EC2's addresses now"},
		{"conflist deleted", func(e *eniNode) {
			p, _ := e.node.Root.Path(netconf.Path(e.node.Config.Spec.Multus.NetworkConfDir, "n2"))
			if err := os.Remove(p); err != nil {
				e.t.Fatal(err)
			}
		}, "conflist", "no such file"},
		{"conflist edited", func(e *eniNode) {
			p, _ := e.node.Root.Path(netconf.Path(e.node.Config.Spec.Multus.NetworkConfDir, "n2"))
			data, _ := os.ReadFile(p)
			_ = os.WriteFile(filepath.Clean(p), []byte(strings.Replace(string(data), e.node.State.Interfaces["n2"].ENI.SecondaryIPs[0].String(), "10.9.4.250", 1)), 0o644)
		}, "conflist", "differs from the conflist for the last run's record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newENINode(t)
			e.t = t
			tc.inject(e)
			var hit bool
			for _, f := range e.eniFindings() {
				if f.Check == tc.check && f.Verdict == Fail && strings.Contains(f.Evidence, tc.evidence) {
					hit = true
					t.Logf("%s  %s  %s  %s\n    fix: %s", f.Verdict, f.Check, f.Subject, f.Evidence, f.Fix)
				}
			}
			if !hit {
				t.Fatalf("no fail from %s with %q: %+v", tc.check, tc.evidence, e.eniFindings())
			}
		})
	}
}

package iam_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// The judge: @cloud-copilot/iam-simulate, installed by `make test` (make
// iam-simulate) into $NODEPREP_CACHE/iam-simulate.
const simulatorVersion = "0.1.173"

const (
	account   = "111122223333"
	region    = "us-east-1"
	thisNode  = "i-0aaaaaaaaaaaaaaaa"
	otherNode = "i-0bbbbbbbbbbbbbbbb"
	nodeVPC   = "vpc-0123456789abcdef0"
	nodeIP    = "10.0.0.5"
)

func arn(resource string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s", region, account, resource)
}

// onInstance is the request context of a call signed with this node's role
// credentials, made from the node through the VPC's EC2 endpoint.
func onInstance(extra map[string]any) map[string]any {
	ctx := map[string]any{
		"ec2:SourceInstanceARN":            arn("instance/" + thisNode),
		"aws:EC2InstanceSourceVPC":         nodeVPC,
		"aws:EC2InstanceSourcePrivateIPv4": nodeIP,
		"aws:SourceVpc":                    nodeVPC,
		"aws:VpcSourceIp":                  nodeIP,
		"ec2:Region":                       region,
	}
	for k, v := range extra {
		if v == nil {
			delete(ctx, k)
			continue
		}
		ctx[k] = v
	}
	return ctx
}

// offInstance is the same credentials copied to another machine: the
// credential-bound keys come along, the network-bound ones do not match.
func offInstance(extra map[string]any) map[string]any {
	ctx := onInstance(map[string]any{"aws:SourceVpc": nil, "aws:VpcSourceIp": nil, "aws:SourceIp": "203.0.113.9"})
	for k, v := range extra {
		ctx[k] = v
	}
	return ctx
}

func eniTags(instance string) map[string]any {
	return map[string]any{
		"ec2:ResourceTag/" + eni.TagNoManage:   "true",
		"ec2:ResourceTag/" + eni.TagInstanceID: instance,
		"ec2:ResourceTag/" + eni.TagInterface:  "n2",
	}
}

func createTags(instance string) map[string]any {
	return map[string]any{
		"aws:RequestTag/" + eni.TagNoManage:   "true",
		"aws:RequestTag/" + eni.TagInstanceID: instance,
		"aws:RequestTag/" + eni.TagInterface:  "n2",
		"aws:TagKeys":                         []string{eni.TagNoManage, eni.TagInstanceID, eni.TagInterface},
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

type request struct {
	Name     string         `json:"name"`
	Action   string         `json:"action"`
	Resource string         `json:"resource"`
	Context  map[string]any `json:"context"`
	allowed  bool
}

func requests() []request {
	ownENI := arn("network-interface/eni-0aaaaaaaaaaaaaaaa")
	otherENI := arn("network-interface/eni-0bbbbbbbbbbbbbbbb")
	vpcCNIENI := arn("network-interface/eni-0ccccccccccccccccc")
	ltENI := arn("network-interface/eni-0ddddddddddddddddd")
	multusSubnet := arn("subnet/subnet-0a1b2c3d4e5f60718")
	multusSG := arn("security-group/sg-0123456789abcdef0")
	adoptTags := map[string]any{
		"aws:RequestTag/" + eni.TagNoManage:   "true",
		"aws:RequestTag/" + eni.TagInstanceID: thisNode,
		"aws:TagKeys":                         []string{eni.TagNoManage, eni.TagInstanceID},
	}
	return []request{
		// This node's own work.
		{"this node: create an ENI tagged for itself", "ec2:CreateNetworkInterface", arn("network-interface/*"), onInstance(createTags(thisNode)), true},
		{"this node: create in a subnet tagged nodeprep.dev/multus", "ec2:CreateNetworkInterface", multusSubnet, onInstance(map[string]any{"ec2:ResourceTag/nodeprep.dev/multus": "true"}), true},
		{"this node: create with a security group tagged nodeprep.dev/multus", "ec2:CreateNetworkInterface", multusSG, onInstance(map[string]any{"ec2:ResourceTag/nodeprep.dev/multus": "true"}), true},
		{"this node: tag on create", "ec2:CreateTags", arn("network-interface/*"), onInstance(merge(createTags(thisNode), map[string]any{"ec2:CreateAction": "CreateNetworkInterface"})), true},
		{"this node: adopt its launch-template ENI (tagged nodeprep.dev/interface)", "ec2:CreateTags", ltENI, onInstance(merge(adoptTags, map[string]any{"ec2:ResourceTag/" + eni.TagInterface: "n3"})), true},
		{"this node: attach to itself", "ec2:AttachNetworkInterface", arn("instance/" + thisNode), onInstance(map[string]any{"ec2:InstanceID": thisNode}), true},
		{"this node: attach its ENI", "ec2:AttachNetworkInterface", ownENI, onInstance(eniTags(thisNode)), true},
		{"this node: DeleteOnTermination on its attachment", "ec2:ModifyNetworkInterfaceAttribute", arn("instance/" + thisNode), onInstance(map[string]any{"ec2:InstanceID": thisNode}), true},
		{"this node: modify its ENI", "ec2:ModifyNetworkInterfaceAttribute", ownENI, onInstance(eniTags(thisNode)), true},
		{"this node: assign IPv4 to its ENI", "ec2:AssignPrivateIpAddresses", ownENI, onInstance(eniTags(thisNode)), true},
		{"this node: assign IPv6 to its ENI", "ec2:AssignIpv6Addresses", ownENI, onInstance(eniTags(thisNode)), true},
		{"this node: delete its ENI", "ec2:DeleteNetworkInterface", ownENI, onInstance(eniTags(thisNode)), true},
		{"this node: describe", "ec2:DescribeNetworkInterfaces", "*", onInstance(nil), true},
		{"this node: count a boot storm", "ec2:DescribeInstanceStatus", "*", onInstance(nil), true},

		// Reaching for another node's ENIs, or the VPC CNI's.
		{"create an ENI tagged for another node", "ec2:CreateNetworkInterface", arn("network-interface/*"), onInstance(createTags(otherNode)), false},
		{"create an ENI without no_manage", "ec2:CreateNetworkInterface", arn("network-interface/*"), onInstance(map[string]any{"aws:RequestTag/" + eni.TagInstanceID: thisNode, "aws:RequestTag/" + eni.TagInterface: "n2"}), false},
		{"create in a subnet not tagged nodeprep.dev/multus", "ec2:CreateNetworkInterface", arn("subnet/subnet-0f1e2d3c4b5a69788"), onInstance(nil), false},
		{"create with a security group not tagged nodeprep.dev/multus", "ec2:CreateNetworkInterface", arn("security-group/sg-0fedcba9876543210"), onInstance(nil), false},
		{"tag a VPC CNI ENI no_manage", "ec2:CreateTags", vpcCNIENI, onInstance(merge(adoptTags, map[string]any{"ec2:ResourceTag/node.k8s.amazonaws.com/instance_id": otherNode})), false},
		{"re-tag another node's ENI as its own", "ec2:CreateTags", otherENI, onInstance(merge(adoptTags, eniTags(otherNode))), false},
		{"tag an ENI nodeprep.dev/interface after creation", "ec2:CreateTags", vpcCNIENI, onInstance(map[string]any{"aws:RequestTag/" + eni.TagInterface: "n2", "aws:TagKeys": []string{eni.TagInterface}}), false},
		{"attach to another instance", "ec2:AttachNetworkInterface", arn("instance/" + otherNode), onInstance(map[string]any{"ec2:InstanceID": otherNode}), false},
		{"attach another node's ENI", "ec2:AttachNetworkInterface", otherENI, onInstance(eniTags(otherNode)), false},
		{"modify another instance's attachment", "ec2:ModifyNetworkInterfaceAttribute", arn("instance/" + otherNode), onInstance(map[string]any{"ec2:InstanceID": otherNode}), false},
		{"modify another node's ENI", "ec2:ModifyNetworkInterfaceAttribute", otherENI, onInstance(eniTags(otherNode)), false},
		{"modify a VPC CNI ENI", "ec2:ModifyNetworkInterfaceAttribute", vpcCNIENI, onInstance(map[string]any{"ec2:ResourceTag/node.k8s.amazonaws.com/instance_id": thisNode}), false},
		{"assign IPv4 to another node's ENI", "ec2:AssignPrivateIpAddresses", otherENI, onInstance(eniTags(otherNode)), false},
		{"delete another node's ENI", "ec2:DeleteNetworkInterface", otherENI, onInstance(eniTags(otherNode)), false},
		{"delete a VPC CNI ENI", "ec2:DeleteNetworkInterface", vpcCNIENI, onInstance(map[string]any{"ec2:ResourceTag/node.k8s.amazonaws.com/instance_id": thisNode}), false},

		// This node's credentials, copied off the instance.
		{"off-instance: create an ENI", "ec2:CreateNetworkInterface", arn("network-interface/*"), offInstance(createTags(thisNode)), false},
		{"off-instance: tag on create", "ec2:CreateTags", arn("network-interface/*"), offInstance(merge(createTags(thisNode), map[string]any{"ec2:CreateAction": "CreateNetworkInterface"})), false},
		{"off-instance: assign IPv4", "ec2:AssignPrivateIpAddresses", ownENI, offInstance(eniTags(thisNode)), false},
		{"off-instance: delete", "ec2:DeleteNetworkInterface", ownENI, offInstance(eniTags(thisNode)), false},
		{"off-instance: attach", "ec2:AttachNetworkInterface", arn("instance/" + thisNode), offInstance(map[string]any{"ec2:InstanceID": thisNode}), false},
		{"another VPC's endpoint: delete", "ec2:DeleteNetworkInterface", ownENI, onInstance(merge(eniTags(thisNode), map[string]any{"aws:SourceVpc": "vpc-0fffffffffffffff0", "aws:VpcSourceIp": "10.9.0.7"})), false},
		{"the node's VPC, another address: delete", "ec2:DeleteNetworkInterface", ownENI, onInstance(merge(eniTags(thisNode), map[string]any{"aws:VpcSourceIp": "10.0.0.99"})), false},
	}
}

// TestPolicyUnderSimulator enumerates what the shipped policy allows and
// denies, as judged by @cloud-copilot/iam-simulate, and checks every action
// and condition key against the Service Authorization Reference.
func TestPolicyUnderSimulator(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (make test installs it)")
	}
	cache := os.Getenv("NODEPREP_CACHE")
	if cache == "" {
		cache = "../../.cache"
	}
	modules, err := filepath.Abs(filepath.Join(cache, "iam-simulate", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "@cloud-copilot", "iam-simulate")); err != nil {
		t.Skipf("@cloud-copilot/iam-simulate not installed in %s (make iam-simulate)", modules)
	}
	policy := readPolicyJSON(t)
	reqs := requests()
	in, err := json.Marshal(map[string]any{
		"policy":    policy,
		"principal": fmt.Sprintf("arn:aws:sts::%s:assumed-role/nodeprep-node/%s", account, thisNode),
		"accountId": account,
		"requests":  reqs,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Node resolves an ES module's imports from node_modules beside it.
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "simulate.mjs")
	src, err := os.ReadFile("simulate.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var out struct {
		SAR     []string
		Results []struct{ Name, Result, Errors string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("simulator output: %v\n%s", err, stdout.String())
	}
	for _, p := range out.SAR {
		t.Errorf("Service Authorization Reference: %s", p)
	}
	if len(out.Results) != len(reqs) {
		t.Fatalf("%d results for %d requests", len(out.Results), len(reqs))
	}
	var table strings.Builder
	table.WriteString("| request | action | simulator | want |\n|---|---|---|---|\n")
	for i, r := range out.Results {
		want := "denied"
		if reqs[i].allowed {
			want = "Allowed"
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", r.Name, reqs[i].Action, r.Result, want)
		switch {
		case r.Result == "error":
			t.Errorf("%s: the simulator refused the request: %s", r.Name, r.Errors)
		case reqs[i].allowed != (r.Result == "Allowed"):
			t.Errorf("%s (%s on %s): simulator says %s", r.Name, reqs[i].Action, reqs[i].Resource, r.Result)
		}
	}
	t.Logf("IAM allow/deny table (@cloud-copilot/iam-simulate %s):\n%s", simulatorVersion, table.String())
}

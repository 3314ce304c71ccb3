// Package iam_test judges configs/iam-policy.json: against the code (the
// actions it calls) and under an IAM policy simulator.
package iam_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/eni"
)

// policy is the part of the IAM policy grammar configs/iam-policy.json uses.
type policy struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]any
	}
}

// stringList is an IAM "string or list of strings".
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func readPolicyJSON(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../../configs/iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func readPolicy(t *testing.T) policy {
	t.Helper()
	data, err := os.ReadFile("../../configs/iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var p policy
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("parse configs/iam-policy.json: %v", err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("Version %q", p.Version)
	}
	return p
}

// TestPolicyGrantsExactlyTheCallsUsed ties the policy to the code: every
// method of eni.EC2 is an IAM action the policy must allow, and the policy
// allows nothing else.
func TestPolicyGrantsExactlyTheCallsUsed(t *testing.T) {
	p := readPolicy(t)
	granted := map[string]bool{}
	for _, st := range p.Statement {
		if st.Effect != "Allow" {
			continue
		}
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s grants a wildcard action %q", st.Sid, a)
			}
			granted[a] = true
		}
	}
	used := eni.IAMActions()
	if len(used) < 9 {
		t.Fatalf("IAMActions() = %v: the EC2 interface lost methods?", used)
	}
	for _, a := range used {
		if !granted[a] {
			t.Errorf("the code calls %s but configs/iam-policy.json does not allow it", a)
		}
		delete(granted, a)
	}
	for a := range granted {
		t.Errorf("configs/iam-policy.json allows %s, which the code never calls", a)
	}
}

// changeActions are the calls that could take over an ENI: move it, change
// its security groups, give it addresses or delete it.
var changeActions = []string{"ec2:AttachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute", "ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface"}

// TestTaggingGrantsNoChangeRights closes the re-tag-then-change path: the
// node may tag ENIs it did not create (adoption), so every statement that
// lets it change a network interface must require a resource tag that only
// tag-on-create can set (CreateTags conditioned on ec2:CreateAction, see the
// EC2 service authorization reference's condition keys ec2:CreateAction,
// aws:TagKeys, aws:RequestTag/${TagKey} and ec2:ResourceTag/${TagKey}).
// Otherwise a compromised node could tag any ENI in the account and then
// change it.
func TestTaggingGrantsNoChangeRights(t *testing.T) {
	p := readPolicy(t)
	// Tag keys the node can put on an existing ENI.
	retaggable := map[string]bool{}
	for _, st := range p.Statement {
		if st.Effect != "Allow" || !slices.Contains(st.Action, "ec2:CreateTags") || st.Condition["StringEquals"]["ec2:CreateAction"] != nil {
			continue
		}
		keys, ok := st.Condition["ForAllValues:StringEquals"]["aws:TagKeys"].([]any)
		if !ok {
			t.Fatalf("statement %s lets any tag key be set on existing resources", st.Sid)
		}
		for _, k := range keys {
			retaggable[k.(string)] = true
		}
	}
	for _, st := range p.Statement {
		if st.Effect != "Allow" || !slices.ContainsFunc(st.Resource, func(r string) bool { return strings.Contains(r, ":network-interface/") }) {
			continue
		}
		if !slices.ContainsFunc(st.Action, func(a string) bool { return slices.Contains(changeActions, a) }) {
			continue
		}
		var creationOnly []string
		for op, kv := range st.Condition {
			for key, want := range kv {
				tag, ok := strings.CutPrefix(key, "ec2:ResourceTag/")
				if !ok {
					tag, ok = strings.CutPrefix(key, "aws:ResourceTag/")
				}
				// Null "false" means the tag must be present.
				if ok && !retaggable[tag] && (op != "Null" || want == "false") {
					creationOnly = append(creationOnly, tag)
				}
			}
		}
		if len(creationOnly) == 0 {
			t.Errorf("statement %s changes ENIs whose required tags the node can set itself with CreateTags (%v): re-tag then take over", st.Sid, mapKeys(retaggable))
		}
	}
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

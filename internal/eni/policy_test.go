package eni_test

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

func TestPolicyScopesMutations(t *testing.T) {
	p := readPolicy(t)
	for _, st := range p.Statement {
		for _, a := range st.Action {
			read := strings.HasPrefix(a, "ec2:Describe") || strings.HasPrefix(a, "ec2:Get")
			if !read && slices.Contains(st.Resource, "*") {
				t.Errorf("statement %s allows %s on every resource", st.Sid, a)
			}
			if a == "ec2:CreateTags" && len(st.Condition) == 0 {
				t.Errorf("statement %s allows CreateTags without a condition", st.Sid)
			}
			if a == "ec2:CreateNetworkInterface" && slices.ContainsFunc(st.Resource, func(r string) bool { return strings.Contains(r, ":network-interface/") }) {
				if st.Condition["StringEquals"]["aws:RequestTag/"+eni.TagNoManage] != "true" {
					t.Errorf("statement %s lets an ENI be created without %s=true", st.Sid, eni.TagNoManage)
				}
			}
			if a == "ec2:AttachNetworkInterface" && slices.ContainsFunc(st.Resource, func(r string) bool { return strings.Contains(r, ":instance/") }) {
				t.Errorf("statement %s lets the node attach ENIs to other instances", st.Sid)
			}
		}
	}
}

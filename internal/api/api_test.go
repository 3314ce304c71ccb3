package api

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../configs/examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(Source{Name: f, Data: data}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Each file in testdata/bad names, in "# want:" lines, text that the error
// must contain: normally the field path of every problem in it.
func TestBadConfigsNameEveryField(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d bad configs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			var wants []string
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("no # want: lines")
			}
			_, err := Load(Source{Name: "user-data", Data: data})
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidationErrorIsTyped(t *testing.T) {
	_, err := Load(Source{Name: "x", Data: []byte("apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  interfaces:\n  - name: a\n    subnetID: subnet-zz\n")})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %T %v", err, err)
	}
	if got := ve.Fields(); len(got) != 1 || got[0] != "spec.interfaces[0].subnetID" {
		t.Errorf("fields = %v", got)
	}
	want := `spec.interfaces[0].subnetID: "subnet-zz": not a subnet ID`
	if ve.Errors[0].Error() != want {
		t.Errorf("got %q, want %q", ve.Errors[0].Error(), want)
	}
}

func TestUnknownFieldPosition(t *testing.T) {
	_, err := Decode([]byte("apiVersion: nodeprep.dev/v1alpha1\nspec:\n  hugepages:\n  - size: 2Mi\n    cuont: 3\n"))
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	if de.Line != 5 || de.Column != 5 || de.Path != "spec.hugepages[0].cuont" {
		t.Errorf("got %+v", de)
	}
}

func TestDefaultsAssignDeviceIndexesAroundExplicitOnes(t *testing.T) {
	two := int32(2)
	c := &NodePrepConfig{Spec: Spec{Interfaces: []Interface{
		{Name: "a", SubnetID: "subnet-0a1b2c3d"},
		{Name: "b", SubnetID: "subnet-0a1b2c3d", DeviceIndex: &two},
		{Name: "c", SubnetID: "subnet-0a1b2c3d", Driver: DriverVFIOPCI},
		{Name: "d", MAC: "02:00:00:00:00:01"},
	}}}
	SetDefaults(c)
	got := []int32{*c.Spec.Interfaces[0].DeviceIndex, *c.Spec.Interfaces[1].DeviceIndex, *c.Spec.Interfaces[2].DeviceIndex}
	if got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("device indexes = %v", got)
	}
	if c.Spec.Interfaces[3].DeviceIndex != nil {
		t.Error("an unmanaged NIC got a device index")
	}
	if c.Spec.Interfaces[2].ResourceName != "c" || c.Spec.Interfaces[0].ResourceName != "" {
		t.Error("resourceName defaults wrong")
	}
	if err := Validate(c); err != nil {
		t.Fatal(err)
	}
	// Defaulting twice changes nothing.
	before := *c.Spec.Interfaces[0].DeviceIndex
	SetDefaults(c)
	if *c.Spec.Interfaces[0].DeviceIndex != before {
		t.Error("SetDefaults is not idempotent")
	}
}

func TestMergeLaterPartsWinByKey(t *testing.T) {
	baked := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, count: 64}]
  devicePlugin: {resourcePrefix: example.com}
  node: {labels: {a: "1"}}
  interfaces:
  - {name: one, subnetID: subnet-0a1b2c3d, mtu: 1500}
`)
	user := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, count: 128}, {size: 1Gi, count: 1}]
  node: {labels: {b: "2"}}
  interfaces:
  - {name: one, mtu: 9001}
  - {name: two, subnetID: subnet-0a1b2c3d}
`)
	c, err := Load(Source{Name: "baked", Data: baked}, Source{Name: "user", Data: user})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec
	if len(s.Hugepages) != 2 || s.Hugepages[0].Count != 128 {
		t.Errorf("hugepages = %+v", s.Hugepages)
	}
	if s.DevicePlugin.ResourcePrefix != "example.com" {
		t.Errorf("prefix = %q", s.DevicePlugin.ResourcePrefix)
	}
	if s.Node.Labels["a"] != "1" || s.Node.Labels["b"] != "2" {
		t.Errorf("labels = %v", s.Node.Labels)
	}
	if len(s.Interfaces) != 2 || s.Interfaces[0].MTU != 9001 || s.Interfaces[0].SubnetID != "subnet-0a1b2c3d" {
		t.Errorf("interfaces = %+v", s.Interfaces)
	}
}

func TestLoadReportsEverySourcesErrors(t *testing.T) {
	_, err := Load(Source{Name: "part-1", Data: []byte("bogus: 1\n")}, Source{Name: "part-2", Data: []byte("spec: {nope: 2}\n")})
	if err == nil || !strings.Contains(err.Error(), "part-1") || !strings.Contains(err.Error(), "part-2") {
		t.Errorf("err = %v", err)
	}
}

// A field a later part gives wins even when it is false or zero: presence,
// not zero-ness, decides.
func TestMergeLaterPartSetsFalseAndZero(t *testing.T) {
	baked := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  multus: {whereabouts: {enabled: true}}
  hugepages: [{size: 2Mi, count: 64}]
  interfaces:
  - {name: one, subnetID: subnet-0a1b2c3d, mtu: 9001, secondaryIPCount: 5}
`)
	user := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  multus: {whereabouts: {enabled: false}}
  hugepages: [{size: 2Mi, count: 0}]
  interfaces:
  - {name: one, mtu: 0, secondaryIPCount: 0}
`)
	c, err := Load(Source{Name: "baked", Data: baked}, Source{Name: "user", Data: user})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec
	if s.Multus.Whereabouts.Enabled {
		t.Error("whereabouts.enabled: false in the later part was dropped")
	}
	if s.Hugepages[0].Count != 0 {
		t.Errorf("count = %d, want 0", s.Hugepages[0].Count)
	}
	if in := s.Interfaces[0]; in.MTU != 0 || in.SecondaryIPCount != 0 || in.SubnetID != "subnet-0a1b2c3d" {
		t.Errorf("interface = %+v, want mtu 0, secondaryIPCount 0 and the earlier subnet", in)
	}
}

func TestMergeRemoveDeletesAnEarlierElement(t *testing.T) {
	baked := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, count: 64}, {size: 1Gi, perNUMANode: {0: 2}}]
  interfaces:
  - {name: one, subnetID: subnet-0a1b2c3d}
  - {name: two, subnetID: subnet-0a1b2c3d}
`)
	user := []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  hugepages: [{size: 2Mi, remove: true}, {size: 1Gi, count: 4}]
  interfaces:
  - {name: one, remove: true}
`)
	c, err := Load(Source{Name: "baked", Data: baked}, Source{Name: "user", Data: user})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Spec
	if len(s.Interfaces) != 1 || s.Interfaces[0].Name != "two" || *s.Interfaces[0].DeviceIndex != 1 {
		t.Errorf("interfaces = %+v, want only two, at device index 1", s.Interfaces)
	}
	// count replaces the earlier perNUMANode rather than clashing with it.
	if len(s.Hugepages) != 1 || s.Hugepages[0].Size != "1Gi" || s.Hugepages[0].Count != 4 || s.Hugepages[0].PerNUMANode != nil {
		t.Errorf("hugepages = %+v, want only 1Gi × 4", s.Hugepages)
	}
	_, err = Load(Source{Name: "baked", Data: baked}, Source{Name: "user", Data: []byte("spec: {interfaces: [{name: one, remove: true, mtu: 1500}]}\n")})
	if err == nil || !strings.Contains(err.Error(), "spec.interfaces[0]: an element with remove: true gives only name") {
		t.Errorf("remove with other fields: err = %v", err)
	}
}

// A message about one field stays one short line: a raw newline in a map key
// is escaped and a huge value is cut short, not echoed whole.
func TestMessagesEscapeAndTruncate(t *testing.T) {
	huge := strings.Repeat("v", 900<<10)
	doc := "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec:\n  node:\n    labels:\n      \"bad\\nkey\": ok\n      good: " + huge + "\n"
	_, err := Load(Source{Name: "user data", Data: []byte(doc)})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 2 {
		t.Fatalf("err = %.300v", err)
	}
	for _, fe := range ve.Errors {
		msg := fe.Error()
		if strings.ContainsAny(msg, "\n\r") || len(msg) > 400 {
			t.Errorf("message is %d bytes or spans lines: %.300q", len(msg), msg)
		}
	}
	if msg := ve.Errors[0].Error(); !strings.Contains(msg, `labels[bad\nkey]`) {
		t.Errorf("newline not shown escaped: %q", msg)
	}
	if msg := ve.Errors[1].Error(); !strings.Contains(msg, "(921600 bytes)") {
		t.Errorf("truncated value does not say its length: %.300q", msg)
	}
}

package api

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestPodAttachmentDefaultsAndHostDevice: a kernel interface defaults to
// ipvlan (today's behaviour), a DPDK one to none, and hostDevice is taken.
func TestPodAttachmentDefaultsAndHostDevice(t *testing.T) {
	c, err := Load(Source{Name: "x", Data: []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
  - {name: media, subnetID: subnet-0123456789abcdef0, secondaryIPCount: 2}
  - {name: upf, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, mtu: 9001}
  - {name: n3, subnetID: subnet-0123456789abcdef0, driver: vfio-pci}
`)})
	if err != nil {
		t.Fatal(err)
	}
	got := []PodAttachment{}
	for _, in := range c.Spec.Interfaces {
		got = append(got, in.PodAttachment)
	}
	if want := []PodAttachment{PodAttachmentIPVLAN, PodAttachmentHostDevice, ""}; !slices.Equal(got, want) {
		t.Errorf("podAttachment = %q, want %q", got, want)
	}
	if !c.Spec.Interfaces[1].HostDevice() || c.Spec.Interfaces[0].HostDevice() {
		t.Errorf("HostDevice() wrong: %+v", c.Spec.Interfaces)
	}
}

// TestPodAttachmentProblemsAreAllReported: every misuse of podAttachment
// in one config is reported at once, each naming its field and reason.
func TestPodAttachmentProblemsAreAllReported(t *testing.T) {
	_, err := Load(Source{Name: "x", Data: []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
  - {name: a, subnetID: subnet-0123456789abcdef0, driver: vfio-pci, podAttachment: hostDevice}
  - {name: b, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, secondaryIPCount: 3, ipv6PrefixCount: 1}
  - {name: c, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, ipv4PrefixCount: 1, ipv6AddressCount: 2}
  - {name: d, subnetID: subnet-0123456789abcdef0, podAttachment: host-device}
  - {name: e, subnetID: subnet-0123456789abcdef0, driver: igb_uio, podAttachment: ipvlan}
  - {name: f, mac: "0a:1b:2c:3d:4e:5f", podAttachment: hostDevice}
`)})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %T %v, want a *ValidationError", err, err)
	}
	want := []string{
		`spec.interfaces[0].podAttachment: "hostDevice": applies to kernel interfaces only; a device bound to vfio-pci reaches its pod through the device plugin`,
		`spec.interfaces[1].secondaryIPCount: "3": podAttachment hostDevice gives the pod the ENI's primary address; pod address counts are for ipvlan pods`,
		`spec.interfaces[1].ipv6PrefixCount: "1": podAttachment hostDevice gives the pod the ENI's primary address; pod address counts are for ipvlan pods`,
		`spec.interfaces[2].ipv4PrefixCount: "1": podAttachment hostDevice gives the pod the ENI's primary address; pod address counts are for ipvlan pods`,
		`spec.interfaces[2].ipv6AddressCount: "2": podAttachment hostDevice gives the pod the ENI's primary address; pod address counts are for ipvlan pods`,
		`spec.interfaces[3].podAttachment: "host-device": must be ipvlan or hostDevice`,
		`spec.interfaces[4].podAttachment: "ipvlan": applies to kernel interfaces only; a device bound to igb_uio reaches its pod through the device plugin`,
		`spec.interfaces[5].podAttachment: "hostDevice": needs subnetID: the pod's address is the ENI's EC2 primary address, which nodeprep learns only for an ENI it creates or adopts`,
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWholeENIPool: hostDevice interfaces sharing a resourceName are one
// pool, whose network is named like the resource; without resourceName a
// hostDevice interface stays its own network.
func TestWholeENIPool(t *testing.T) {
	c, err := Load(Source{Name: "x", Data: []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
  - {name: upf0, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: upf_pool, mtu: 9001}
  - {name: upf1, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: upf_pool, mtu: 9001}
  - {name: n6, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice}
`)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range c.Spec.Interfaces {
		got = append(got, in.NetworkName())
	}
	if want := []string{"upf-pool", "upf-pool", "n6"}; !slices.Equal(got, want) {
		t.Errorf("networks %q, want %q", got, want)
	}
	if !c.Spec.Interfaces[0].Pooled() || c.Spec.Interfaces[2].Pooled() {
		t.Errorf("Pooled() wrong: %+v", c.Spec.Interfaces)
	}
}

// TestWholeENIPoolProblemsAreAllReported: members that disagree, a pool
// shared with DPDK, a resource name the device plugin or a NAD cannot
// take, and a resourceName on an ipvlan interface, each naming its field.
func TestWholeENIPoolProblemsAreAllReported(t *testing.T) {
	_, err := Load(Source{Name: "x", Data: []byte(`apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
  - {name: a, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: pool}
  - {name: b, subnetID: subnet-0fedcba9876543210, podAttachment: hostDevice, resourceName: pool, mtu: 1500}
  - {name: c, subnetID: subnet-0123456789abcdef0, driver: vfio-pci, resourceName: pool}
  - {name: d, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: up-pool}
  - {name: e, subnetID: subnet-0123456789abcdef0, podAttachment: hostDevice, resourceName: F}
  - {name: f, subnetID: subnet-0123456789abcdef0, secondaryIPCount: 2, resourceName: g}
`)})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %T %v, want a *ValidationError", err, err)
	}
	want := []string{
		`spec.interfaces[3].resourceName: "up-pool": the SR-IOV device plugin takes 1-63 characters of A-Z, a-z, 0-9 and '_'`,
		`spec.interfaces[5].resourceName: "g": only DPDK interfaces (driver vfio-pci or igb_uio) and podAttachment hostDevice ones (a whole-ENI pool) are device plugin resources`,
		`spec.interfaces[1].subnetID: "subnet-0fedcba9876543210": whole-ENI pool pool: spec.interfaces[0] has subnet "subnet-0123456789abcdef0"; a pool's members must share a subnet`,
		`spec.interfaces[1].mtu: "1500": whole-ENI pool pool: spec.interfaces[0] has mtu 0; a pool's members must share an MTU`,
		`spec.interfaces[2].resourceName: "pool": shared by spec.interfaces[0] (podAttachment hostDevice) and this one (driver vfio-pci); a whole-ENI pool's members must all be podAttachment hostDevice kernel interfaces`,
		`spec.interfaces[4].resourceName: "F": names the pool's NAD "f", which is spec.interfaces[5].name's network`,
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

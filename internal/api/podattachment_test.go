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

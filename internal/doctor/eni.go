package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/state"
)

// NoManageTag is the tag that keeps the VPC CNI off an ENI.
const NoManageTag = "node.k8s.amazonaws.com/no_manage"

// Describer is the one EC2 call doctor makes; *ec2.Client has it.
type Describer interface {
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
}

// LinkInfo is the kernel's view of one interface.
type LinkInfo struct {
	MTU      int
	AltNames []string
	// Addresses are the global-scope addresses on the link.
	Addresses []netip.Prefix
	// Routes counts the routes whose output interface is the link.
	Routes int
}

// ErrNoLink is a Links error for a link the host's namespace does not have.
var ErrNoLink = errors.New("no such link in the host's network namespace")

// Links reads links by name (netlink on a node).
type Links interface {
	Link(ctx context.Context, ifname string) (LinkInfo, error)
}

// checkLinks: each kernel-driver Multus ENI is as nodeprep left it:
// altname = logical name, MTU as configured, no host address or route
// (networkd and the host leave it alone), and networkd's Unmanaged file
// in place.
func checkLinks(ctx context.Context, n *Node) []Finding {
	var out []Finding
	for _, i := range n.interfaces() {
		if i.Config.DPDK() {
			continue
		}
		name := i.Config.Name
		if !i.Known || i.State.IfName() == "" {
			out = append(out, fail(name, "no netdev recorded in "+state.Path, "nodeprep run"))
			continue
		}
		var problems []string
		if i.State.MAC() != "" {
			want := link.UnmanagedNetwork(name, i.State.MAC())
			if differs, err := n.Root.Differs(link.NetworkFile(name), want, 0o644); err != nil || differs {
				problems = append(problems, link.NetworkFile(name)+" is missing or changed: networkd may configure the ENI (DHCP address, host route)")
			}
		}
		var seen string
		if n.Links == nil {
			// An offline root has no netlink: the MTU is in sysfs, altname,
			// addresses and routes are not.
			mtu, err := sysfsMTU(n.Root, i.State.IfName())
			switch {
			case err != nil:
				problems = append(problems, i.State.IfName()+": "+err.Error())
			case i.Config.MTU > 0 && mtu != i.Config.MTU:
				problems = append(problems, fmt.Sprintf("%s MTU %d, config %d", i.State.IfName(), mtu, i.Config.MTU))
			}
			seen = fmt.Sprintf("%s MTU %d (netlink not read: altname, addresses and routes unchecked)", i.State.IfName(), mtu)
		} else {
			info, err := n.Links.Link(ctx, i.State.IfName())
			if err != nil && i.Config.HostDevice() && errors.Is(err, ErrNoLink) && len(problems) == 0 {
				// host-device moved it into the pod that owns it; its DEL
				// gives it back under this name.
				out = append(out, ok(name, i.State.IfName()+" is in a pod (podAttachment hostDevice); networkd file in place for its return"))
				continue
			}
			if err != nil {
				out = append(out, fail(name, i.State.IfName()+": "+err.Error(), "the ENI's NIC is gone: check its attachment (doctor's eni check)"))
				continue
			}
			if !slices.Contains(info.AltNames, name) {
				problems = append(problems, fmt.Sprintf("no altname %s (has %s)", name, join(info.AltNames)))
			}
			if i.Config.MTU > 0 && info.MTU != i.Config.MTU {
				problems = append(problems, fmt.Sprintf("MTU %d, config %d", info.MTU, i.Config.MTU))
			}
			if len(info.Addresses) > 0 {
				var a []string
				for _, p := range info.Addresses {
					a = append(a, p.String())
				}
				problems = append(problems, "host addresses "+strings.Join(a, ", ")+" (something manages it)")
			}
			if info.Routes > 0 {
				problems = append(problems, strconv.Itoa(info.Routes)+" routes through it")
			}
			seen = fmt.Sprintf("%s altname %s, MTU %d, no host address or route", i.State.IfName(), name, info.MTU)
		}
		if len(problems) > 0 {
			out = append(out, fail(name, i.State.IfName()+": "+strings.Join(problems, "; "), "nodeprep run restores the networkd file, altname and MTU; remove addresses/routes and find what added them (networkd, ec2-net-utils)"))
			continue
		}
		out = append(out, ok(name, seen+"; networkd leaves it alone"))
	}
	return out
}

func sysfsMTU(root hostfs.Root, ifname string) (int, error) {
	b, err := root.ReadFile("/sys/class/net/" + ifname + "/mtu")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// checkENIs asks EC2 about each managed ENI: attached to this instance at
// its device index, tagged no_manage, sourceDestCheck as configured, and
// the conflist's ranges equal to the addresses EC2 has assigned now.
func checkENIs(ctx context.Context, n *Node) []Finding {
	var managed []iface
	var ids []string
	for _, i := range n.interfaces() {
		if i.Config.Managed() && i.State.ENI.ENIID != "" {
			managed = append(managed, i)
			ids = append(ids, i.State.ENI.ENIID)
		}
	}
	if len(managed) == 0 {
		return nil
	}
	if n.EC2 == nil {
		return []Finding{warn("", "not checked: no EC2 client (offline run)", "run on the node, or pass --ec2-endpoint")}
	}
	got := map[string]types.NetworkInterface{}
	var lastErr error
	// Describe by ID fails the whole call for one deleted ENI, so ask one
	// by one only when the batch fails.
	outp, err := n.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
	if err == nil {
		for _, e := range outp.NetworkInterfaces {
			got[aws.ToString(e.NetworkInterfaceId)] = e
		}
	} else {
		for _, id := range ids {
			o, err := n.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
			if err != nil {
				lastErr = err
				continue
			}
			for _, e := range o.NetworkInterfaces {
				got[aws.ToString(e.NetworkInterfaceId)] = e
			}
		}
	}
	var out []Finding
	known := n.known()
	for _, i := range managed {
		name, id := i.Config.Name, i.State.ENI.ENIID
		e, found := got[id]
		if !found {
			ev := id + " not found in EC2"
			if lastErr != nil {
				ev += ": " + lastErr.Error()
			}
			out = append(out, fail(name, ev, "it was deleted: nodeprep run creates a new one"))
			continue
		}
		var problems []string
		att := e.Attachment
		switch {
		case att == nil || aws.ToString(att.InstanceId) != n.InstanceID:
			problems = append(problems, "not attached to "+n.InstanceID)
		case att.Status != types.AttachmentStatusAttached:
			problems = append(problems, "attachment "+string(att.Status))
		case aws.ToInt32(att.DeviceIndex) != i.State.ENI.DeviceIndex:
			problems = append(problems, fmt.Sprintf("at device index %d, recorded %d", aws.ToInt32(att.DeviceIndex), i.State.ENI.DeviceIndex))
		}
		if i.Config.DeviceIndex != nil && att != nil && aws.ToInt32(att.DeviceIndex) != *i.Config.DeviceIndex {
			problems = append(problems, fmt.Sprintf("device index %d, config %d", aws.ToInt32(att.DeviceIndex), *i.Config.DeviceIndex))
		}
		if tagValue(e.TagSet, NoManageTag) != "true" {
			problems = append(problems, "no "+NoManageTag+"=true tag: the VPC CNI may take it")
		}
		if sdc := i.Config.SourceDestCheck; sdc != nil && aws.ToBool(e.SourceDestCheck) != *sdc {
			problems = append(problems, fmt.Sprintf("sourceDestCheck %t, config %t (Tx works, Rx of other addresses drops)", aws.ToBool(e.SourceDestCheck), *sdc))
		}
		if len(problems) > 0 {
			out = append(out, fail(name, id+": "+strings.Join(problems, "; "), fixENI(i.Config)))
		} else {
			out = append(out, ok(name, fmt.Sprintf("%s attached at device index %d, tagged no_manage", id, aws.ToInt32(att.DeviceIndex))))
		}
		withEC2(known, name, e)
	}
	if n.Config != nil {
		for _, f := range n.conflistDrift(known, "EC2's addresses now") {
			f.Subject = strings.TrimSpace(f.Subject + " conflist")
			out = append(out, f)
		}
	}
	return out
}

func fixENI(in api.Interface) string {
	return "nodeprep run re-attaches and re-tags it; if it was detached in the console, check who did"
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// withEC2 replaces the pod addresses of one known interface with those
// EC2 reports now, through the ENI step's own reading of them.
func withEC2(known map[string]state.Interface, name string, e types.NetworkInterface) {
	s, found := known[name]
	if !found {
		return
	}
	_ = s.ENI.SetPodAddresses(e) // an address EC2 cannot have meant is left out; the conflist then differs
	known[name] = s
}

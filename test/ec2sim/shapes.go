package ec2sim

import (
	"encoding/xml"
	"sort"
	"time"
)

// items renders an EC2 list: <fooSet><item>..</item></fooSet>, and an empty
// element when the list is empty, as EC2 does.
type items[T any] struct {
	Item []T `xml:"item"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagItems(tags map[string]string) items[xmlTag] {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out items[xmlTag]
	for _, k := range keys {
		out.Item = append(out.Item, xmlTag{Key: k, Value: tags[k]})
	}
	return out
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

func (s *Sim) groupItems(ids []string) items[xmlGroup] {
	var out items[xmlGroup]
	for _, id := range ids {
		name := "sg-" + id[len(id)-6:]
		if id == s.defaultSG {
			name = "default"
		}
		out.Item = append(out.Item, xmlGroup{GroupID: id, GroupName: name})
	}
	return out
}

type xmlPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName"`
	Primary          bool   `xml:"primary"`
}

type xmlENIAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlENI struct {
	NetworkInterfaceID    string                `xml:"networkInterfaceId"`
	SubnetID              string                `xml:"subnetId"`
	VPCID                 string                `xml:"vpcId"`
	AvailabilityZone      string                `xml:"availabilityZone"`
	Description           string                `xml:"description"`
	OwnerID               string                `xml:"ownerId"`
	RequesterManaged      bool                  `xml:"requesterManaged"`
	Status                string                `xml:"status"`
	MACAddress            string                `xml:"macAddress"`
	PrivateIPAddress      string                `xml:"privateIpAddress"`
	PrivateDNSName        string                `xml:"privateDnsName"`
	SourceDestCheck       bool                  `xml:"sourceDestCheck"`
	GroupSet              items[xmlGroup]       `xml:"groupSet"`
	Attachment            *xmlENIAttachment     `xml:"attachment,omitempty"`
	TagSet                items[xmlTag]         `xml:"tagSet"`
	PrivateIPAddressesSet items[xmlPrivateIP]   `xml:"privateIpAddressesSet"`
	IPv4PrefixSet         items[xmlIPv4Prefix]  `xml:"ipv4PrefixSet"`
	IPv6AddressesSet      items[xmlIPv6Address] `xml:"ipv6AddressesSet"`
	IPv6PrefixSet         items[xmlIPv6Prefix]  `xml:"ipv6PrefixSet"`
	InterfaceType         string                `xml:"interfaceType"`
}

func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// privateDNS is the VPC's default hostname for an address in region.
func (s *Sim) privateDNS(ip string) string {
	b := []byte("ip-" + ip)
	for i := range b {
		if b[i] == '.' {
			b[i] = '-'
		}
	}
	if s.cfg.Region == "us-east-1" {
		return string(b) + ".ec2.internal"
	}
	return string(b) + "." + s.cfg.Region + ".compute.internal"
}

func (s *Sim) eniXML(e *ENI, status string) xmlENI {
	x := xmlENI{
		NetworkInterfaceID: e.ID,
		SubnetID:           e.SubnetID,
		VPCID:              e.VPCID,
		AvailabilityZone:   e.AvailabilityZone,
		Description:        e.Description,
		OwnerID:            s.cfg.AccountID,
		RequesterManaged:   e.RequesterManaged,
		Status:             status,
		MACAddress:         e.MAC,
		SourceDestCheck:    e.SourceDestCheck,
		GroupSet:           s.groupItems(e.SecurityGroupIDs),
		TagSet:             tagItems(e.Tags),
		InterfaceType:      e.InterfaceType,
	}
	if len(e.PrivateIPs) > 0 {
		x.PrivateIPAddress = e.PrivateIPs[0]
		x.PrivateDNSName = s.privateDNS(e.PrivateIPs[0])
	}
	for i, ip := range e.PrivateIPs {
		x.PrivateIPAddressesSet.Item = append(x.PrivateIPAddressesSet.Item, xmlPrivateIP{PrivateIPAddress: ip, PrivateDNSName: s.privateDNS(ip), Primary: i == 0})
	}
	for _, p := range e.IPv4Prefixes {
		x.IPv4PrefixSet.Item = append(x.IPv4PrefixSet.Item, xmlIPv4Prefix{IPv4Prefix: p})
	}
	s.ipv6XML(e, &x)
	if a := e.Attachment; a != nil {
		x.Attachment = &xmlENIAttachment{
			AttachmentID:        a.ID,
			InstanceID:          a.InstanceID,
			InstanceOwnerID:     s.cfg.AccountID,
			DeviceIndex:         a.DeviceIndex,
			NetworkCardIndex:    a.NetworkCardIndex,
			Status:              a.Status,
			AttachTime:          ec2Time(a.AttachTime),
			DeleteOnTermination: a.DeleteOnTermination,
		}
	}
	return x
}

type xmlSubnet struct {
	SubnetID                string                    `xml:"subnetId"`
	SubnetArn               string                    `xml:"subnetArn"`
	State                   string                    `xml:"state"`
	OwnerID                 string                    `xml:"ownerId"`
	VPCID                   string                    `xml:"vpcId"`
	CIDRBlock               string                    `xml:"cidrBlock"`
	AvailableIPAddressCount int                       `xml:"availableIpAddressCount"`
	AvailabilityZone        string                    `xml:"availabilityZone"`
	AvailabilityZoneID      string                    `xml:"availabilityZoneId"`
	DefaultForAz            bool                      `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool                      `xml:"mapPublicIpOnLaunch"`
	TagSet                  items[xmlTag]             `xml:"tagSet"`
	IPv6CIDRBlocks          items[xmlIPv6Association] `xml:"ipv6CidrBlockAssociationSet"`
}

func (s *Sim) subnetXML(sn *subnetState) xmlSubnet {
	return xmlSubnet{
		SubnetID:                sn.ID,
		SubnetArn:               "arn:aws:ec2:" + s.cfg.Region + ":" + s.cfg.AccountID + ":subnet/" + sn.ID,
		State:                   "available",
		OwnerID:                 s.cfg.AccountID,
		VPCID:                   sn.VPCID,
		CIDRBlock:               sn.CIDR,
		AvailableIPAddressCount: s.freeCount(sn),
		AvailabilityZone:        sn.AvailabilityZone,
		AvailabilityZoneID:      sn.AvailabilityZoneID,
		TagSet:                  tagItems(sn.Tags),
		IPv6CIDRBlocks:          s.ipv6Associations(sn.ID),
	}
}

type xmlCidrReservation struct {
	SubnetCidrReservationID string        `xml:"subnetCidrReservationId"`
	SubnetID                string        `xml:"subnetId"`
	Cidr                    string        `xml:"cidr"`
	ReservationType         string        `xml:"reservationType"`
	OwnerID                 string        `xml:"ownerId"`
	Description             string        `xml:"description,omitempty"`
	TagSet                  items[xmlTag] `xml:"tagSet"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type xmlInstanceENIAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlInstanceENI struct {
	NetworkInterfaceID    string                   `xml:"networkInterfaceId"`
	SubnetID              string                   `xml:"subnetId"`
	VPCID                 string                   `xml:"vpcId"`
	Description           string                   `xml:"description"`
	OwnerID               string                   `xml:"ownerId"`
	Status                string                   `xml:"status"`
	MACAddress            string                   `xml:"macAddress"`
	PrivateIPAddress      string                   `xml:"privateIpAddress"`
	PrivateDNSName        string                   `xml:"privateDnsName"`
	SourceDestCheck       bool                     `xml:"sourceDestCheck"`
	GroupSet              items[xmlGroup]          `xml:"groupSet"`
	Attachment            xmlInstanceENIAttachment `xml:"attachment"`
	PrivateIPAddressesSet items[xmlPrivateIP]      `xml:"privateIpAddressesSet"`
	InterfaceType         string                   `xml:"interfaceType"`
}

type xmlInstance struct {
	InstanceID          string                `xml:"instanceId"`
	ImageID             string                `xml:"imageId"`
	InstanceState       xmlInstanceState      `xml:"instanceState"`
	PrivateDNSName      string                `xml:"privateDnsName"`
	AmiLaunchIndex      int                   `xml:"amiLaunchIndex"`
	InstanceType        string                `xml:"instanceType"`
	LaunchTime          string                `xml:"launchTime"`
	Placement           xmlPlacement          `xml:"placement"`
	SubnetID            string                `xml:"subnetId"`
	VPCID               string                `xml:"vpcId"`
	PrivateIPAddress    string                `xml:"privateIpAddress"`
	SourceDestCheck     bool                  `xml:"sourceDestCheck"`
	GroupSet            items[xmlGroup]       `xml:"groupSet"`
	Architecture        string                `xml:"architecture"`
	RootDeviceType      string                `xml:"rootDeviceType"`
	RootDeviceName      string                `xml:"rootDeviceName"`
	VirtualizationType  string                `xml:"virtualizationType"`
	Hypervisor          string                `xml:"hypervisor"`
	EnaSupport          bool                  `xml:"enaSupport"`
	TagSet              items[xmlTag]         `xml:"tagSet"`
	NetworkInterfaceSet items[xmlInstanceENI] `xml:"networkInterfaceSet"`
}

type xmlReservation struct {
	ReservationID string             `xml:"reservationId"`
	OwnerID       string             `xml:"ownerId"`
	GroupSet      items[xmlGroup]    `xml:"groupSet"`
	InstancesSet  items[xmlInstance] `xml:"instancesSet"`
}

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	respMeta
	ReservationSet items[xmlReservation] `xml:"reservationSet"`
	NextToken      string                `xml:"nextToken,omitempty"`
}

type describeSubnetsResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeSubnetsResponse"`
	respMeta
	SubnetSet items[xmlSubnet] `xml:"subnetSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

type describeNetworkInterfacesResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeNetworkInterfacesResponse"`
	respMeta
	NetworkInterfaceSet items[xmlENI] `xml:"networkInterfaceSet"`
	NextToken           string        `xml:"nextToken,omitempty"`
}

type getSubnetCidrReservationsResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ GetSubnetCidrReservationsResponse"`
	respMeta
	IPv4      items[xmlCidrReservation] `xml:"subnetIpv4CidrReservationSet"`
	IPv6      items[xmlCidrReservation] `xml:"subnetIpv6CidrReservationSet"`
	NextToken string                    `xml:"nextToken,omitempty"`
}

type createNetworkInterfaceResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ CreateNetworkInterfaceResponse"`
	respMeta
	NetworkInterface xmlENI `xml:"networkInterface"`
	ClientToken      string `xml:"clientToken,omitempty"`
}

type attachNetworkInterfaceResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ AttachNetworkInterfaceResponse"`
	respMeta
	AttachmentID     string `xml:"attachmentId"`
	NetworkCardIndex int    `xml:"networkCardIndex"`
}

type xmlAssignedIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type assignPrivateIPAddressesResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ AssignPrivateIpAddressesResponse"`
	respMeta
	NetworkInterfaceID string               `xml:"networkInterfaceId"`
	Assigned           items[xmlAssignedIP] `xml:"assignedPrivateIpAddressesSet"`
	AssignedPrefixes   items[xmlIPv4Prefix] `xml:"assignedIpv4PrefixSet"`
}

// returnResponse is the <return>true</return> body of actions without output.
type returnResponse struct {
	XMLName xml.Name
	respMeta
	Return bool `xml:"return"`
}

func okResponse(action string) *returnResponse {
	return &returnResponse{XMLName: xml.Name{Space: ec2NS, Local: action + "Response"}, Return: true}
}

type xmlNetworkCard struct {
	NetworkCardIndex         int    `xml:"networkCardIndex"`
	NetworkPerformance       string `xml:"networkPerformance"`
	MaximumNetworkInterfaces int    `xml:"maximumNetworkInterfaces"`
}

type xmlNetworkInfo struct {
	NetworkPerformance        string                `xml:"networkPerformance"`
	MaximumNetworkInterfaces  int                   `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int                   `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int                   `xml:"defaultNetworkCardIndex"`
	NetworkCards              items[xmlNetworkCard] `xml:"networkCards"`
	IPv4AddressesPerInterface int                   `xml:"ipv4AddressesPerInterface"`
	IPv6AddressesPerInterface int                   `xml:"ipv6AddressesPerInterface"`
	IPv6Supported             bool                  `xml:"ipv6Supported"`
	EnaSupport                string                `xml:"enaSupport"`
	EfaSupported              bool                  `xml:"efaSupported"`
}

type xmlInstanceType struct {
	InstanceType      string         `xml:"instanceType"`
	CurrentGeneration bool           `xml:"currentGeneration"`
	Hypervisor        string         `xml:"hypervisor"`
	NetworkInfo       xmlNetworkInfo `xml:"networkInfo"`
}

type describeInstanceTypesResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstanceTypesResponse"`
	respMeta
	InstanceTypeSet items[xmlInstanceType] `xml:"instanceTypeSet"`
	NextToken       string                 `xml:"nextToken,omitempty"`
}

type describeInstanceStatusResponse struct {
	XMLName xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstanceStatusResponse"`
	respMeta
	InstanceStatusSet items[xmlInstanceStatus] `xml:"instanceStatusSet"`
	NextToken         string                   `xml:"nextToken,omitempty"`
}

type xmlInstanceStatus struct {
	InstanceID       string           `xml:"instanceId"`
	AvailabilityZone string           `xml:"availabilityZone"`
	InstanceState    xmlInstanceState `xml:"instanceState"`
	SystemStatus     xmlStatusSummary `xml:"systemStatus"`
	InstanceStatus   xmlStatusSummary `xml:"instanceStatus"`
}

type xmlStatusSummary struct {
	Status  string                 `xml:"status"`
	Details items[xmlStatusDetail] `xml:"details"`
}

type xmlStatusDetail struct {
	Name   string `xml:"name"`
	Status string `xml:"status"`
}

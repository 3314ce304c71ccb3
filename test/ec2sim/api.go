package ec2sim

import (
	"net/url"
	"time"
)

// Config configures a Sim. The zero value is usable: region us-west-2,
// instant timing, default EC2 throttling buckets.
type Config struct {
	// Region answered by IMDS and used in availability zone defaults.
	Region string
	// AccountID is the owner ID on ENIs and the identity document.
	AccountID string
	// Timing holds call latencies and attach/detach delays. Zero means Instant().
	Timing Timing
	// Throttle configures the per-action token buckets.
	Throttle ThrottleConfig
	// Seed makes jitter, fault probabilities, IDs and MACs reproducible.
	// Latencies, delays and fault draws come from one generator per client
	// (per access key ID, see AWSConfigFor) derived from Seed, so a client
	// sees the same draws whatever other clients do in between.
	Seed int64
	// InstanceTypes adds to (or overrides) the built-in instance type table.
	InstanceTypes []InstanceType
	// DeleteInUseCode is the error code DeleteNetworkInterface answers for an
	// attached ENI. Empty means "InvalidParameterValue" (message "Network
	// interface '<id>' is currently in use."), which is what EC2 has been
	// observed to return; the API reference also documents
	// "InvalidNetworkInterface.InUse", so set that to test both paths.
	DeleteInUseCode string
	// Clock drives the token buckets' refill, the attach and detach delays
	// and the visibility of new ENIs; nil is the wall clock (see Clock).
	Clock Clock
}

// Latency is a base duration plus a uniformly drawn jitter in [0, Jitter).
type Latency struct {
	Base   time.Duration
	Jitter time.Duration
}

// Timing is the latency model: per-action call latency and the delays of
// the attachment state machine.
type Timing struct {
	// Calls maps an action name (e.g. "CreateNetworkInterface") to its latency.
	Calls map[string]Latency
	// Default applies to actions missing from Calls.
	Default Latency
	// AttachDelay is how long an attachment stays "attaching".
	AttachDelay Latency
	// DetachDelay is how long an attachment stays "detaching".
	DetachDelay Latency
	// Visibility is how long a new ENI stays invisible after
	// CreateNetworkInterface returns: describes leave it out and calls
	// naming it answer InvalidNetworkInterfaceID.NotFound, as EC2's eventual
	// consistency can. Zero turns this off; Realistic draws it from
	// 0.5-3 s (see the package comment).
	Visibility Latency
	// StatusChecks is how long a new instance's status checks stay
	// "initializing" in DescribeInstanceStatus (EC2 runs the first ones a
	// few minutes after launch). Zero reports them "ok" at once.
	StatusChecks Latency
}

// ThrottleConfig configures EC2's request-rate throttling: one token
// bucket per action, sized by the action's category. Zero fields take
// EC2's documented values (DefaultThrottle).
type ThrottleConfig struct {
	// Disabled turns throttling off.
	Disabled bool
	// Mutating is the bucket of each mutating action without its own size.
	// Zero means 50 burst, 5/s.
	Mutating Bucket
	// NonMutating is the bucket of each describe action. Zero means 100 burst, 20/s.
	NonMutating Bucket
	// Unfiltered is the separate bucket DescribeInstances and
	// DescribeNetworkInterfaces draw from when sent with neither a filter
	// nor MaxResults/NextToken. Zero means 50 burst, 10/s.
	Unfiltered Bucket
	// PerAction overrides (or adds to) the buckets of single actions; the
	// unfiltered bucket of an action is keyed "<Action> (unfiltered)".
	PerAction map[string]Bucket
}

// Bucket is a token bucket: Burst tokens, refilled at RefillPerSecond.
type Bucket struct {
	Burst           int
	RefillPerSecond float64
}

// InstanceType describes the network limits of an EC2 instance type.
type InstanceType struct {
	Name string
	// MaxENIs is the total number of network interfaces across all cards.
	MaxENIs int
	// NetworkCards is the number of network cards (1 for most types).
	NetworkCards int
	// MaxENIsPerCard limits each card; 0 means MaxENIs / NetworkCards.
	MaxENIsPerCard int
	// IPv4PerENI is the number of private IPv4 addresses per interface.
	IPv4PerENI int
}

// SubnetSpec describes a subnet to create with AddSubnet.
type SubnetSpec struct {
	ID               string // generated when empty
	VPCID            string // generated (one shared VPC) when empty
	CIDR             string // required, e.g. "10.0.1.0/24"
	IPv6CIDR         string // optional /64, e.g. "2600:1f14:abc:de00::/64" (ipv6.go)
	AvailabilityZone string // Region+"a" when empty
	Tags             map[string]string
}

// Subnet is a subnet as the simulator holds it.
type Subnet struct {
	ID                 string
	VPCID              string
	CIDR               string
	AvailabilityZone   string
	AvailabilityZoneID string
	Tags               map[string]string
	// AvailableIPs is what DescribeSubnets reports as AvailableIpAddressCount.
	AvailableIPs int
}

// CidrReservation is a subnet CIDR reservation.
type CidrReservation struct {
	ID          string
	SubnetID    string
	CIDR        string
	Type        string // "explicit" or "prefix"
	Description string
}

// InstanceSpec describes an instance to create with AddInstance.
type InstanceSpec struct {
	ID               string // generated when empty
	Type             string // e.g. "c5.xlarge"; "c5.large" when empty
	SubnetID         string // subnet of the primary ENI (required)
	PrivateIP        string // primary address; allocated when empty
	SecurityGroupIDs []string
	UserData         []byte
	Tags             map[string]string
	// LaunchTemplateENIs are attached at setup besides the primary ENI,
	// as a launch template with several network interfaces would.
	LaunchTemplateENIs []ENISpec
	// Role is the IAM role of the instance profile: IMDS serves its
	// temporary credentials to every process on the instance (the SDK's
	// default chain finds them under iam/security-credentials/). Empty: no
	// instance profile, and that path answers 404 as on EC2.
	Role string
}

// ENISpec describes a pre-attached ENI.
type ENISpec struct {
	SubnetID            string
	DeviceIndex         int
	NetworkCardIndex    int
	Description         string
	PrivateIP           string
	SecondaryIPs        int
	SecurityGroupIDs    []string
	Tags                map[string]string
	DeleteOnTermination bool
}

// Instance is an instance as the simulator holds it.
type Instance struct {
	ID               string
	Type             string
	SubnetID         string
	VPCID            string
	AvailabilityZone string
	PrivateIP        string
	PrimaryENIID     string
	SecurityGroupIDs []string
	UserData         []byte
	Tags             map[string]string
	LaunchTime       time.Time
	// StatusChecksPass is when its status checks stop "initializing"
	// (LaunchTime plus a draw of Timing.StatusChecks).
	StatusChecksPass time.Time
	ReservationID    string
	// Role is InstanceSpec.Role.
	Role string
	// Terminated is set by TerminateInstance.
	Terminated bool
}

// ENI is a network interface as the simulator holds it.
type ENI struct {
	ID               string
	SubnetID         string
	VPCID            string
	AvailabilityZone string
	MAC              string
	Description      string
	Status           string   // available, in-use, attaching, detaching
	InterfaceType    string   // "interface"
	PrivateIPs       []string // first is primary
	IPv4Prefixes     []string // delegated /28 prefixes (prefixes.go)
	IPv6Addresses    []string // (ipv6.go)
	IPv6Prefixes     []string // delegated /80 prefixes (ipv6.go)
	SecurityGroupIDs []string
	SourceDestCheck  bool
	Tags             map[string]string
	RequesterManaged bool
	Attachment       *Attachment
}

// Attachment is an ENI attachment.
type Attachment struct {
	ID                  string
	InstanceID          string
	DeviceIndex         int
	NetworkCardIndex    int
	Status              string // attaching, attached, detaching, detached
	DeleteOnTermination bool
	AttachTime          time.Time
	// nicWithheld: FaultNICNeverAppears hit the attach.
	nicWithheld bool
}

// AttachEvent is passed to OnAttach and OnDetach hooks.
type AttachEvent struct {
	InstanceID       string
	ENIID            string
	AttachmentID     string
	MAC              string
	DeviceIndex      int
	NetworkCardIndex int
	// NICWithheld: the host never sees this attachment's NIC
	// (FaultNICNeverAppears); hooks standing for the host plug nothing.
	NICWithheld bool
}

// Call is one entry of the call log.
type Call struct {
	Action    string
	Params    url.Values
	Mutating  bool
	ErrorCode string // empty on success
	Time      time.Time
	// Client is the caller's access key ID.
	Client string
	// Applied reports that the action changed (or read) the simulator's
	// state, even when ErrorCode says the client saw a failure (a fault
	// with AfterApply, a lost response).
	Applied bool
	// ClientGone reports that the client had given up before the answer.
	ClientGone bool
}

// FaultKind selects what an injected fault does.
type FaultKind int

const (
	// FaultInternalError answers InternalError with HTTP 500.
	FaultInternalError FaultKind = iota + 1
	// FaultUnavailable answers Unavailable with HTTP 503.
	FaultUnavailable
	// FaultThrottle answers RequestLimitExceeded with HTTP 503 (a throttling storm).
	FaultThrottle
	// FaultTimeout holds the request until the client gives up (or the sim closes).
	FaultTimeout
	// FaultDropConnection closes the connection without an answer, as a
	// broken network path or a reset would.
	FaultDropConnection
	// FaultDenied answers UnauthorizedOperation with HTTP 403, as EC2 does
	// when the caller's IAM policy does not allow the request.
	FaultDenied
	// FaultNICNeverAppears, on AttachNetworkInterface, lets the attach
	// through and answers it: EC2 reports the attachment "attached" and
	// IMDS lists its MAC, but the instance's kernel never sees the device
	// (a PCI hot-plug it missed). The attach event carries NICWithheld, and
	// VethHotplug plugs nothing for it.
	FaultNICNeverAppears
)

// Fault is an injected failure. A matching call is hit when the fault has
// hits left and the probability draw succeeds. By default a hit call is not
// applied; with AfterApply it is applied first and only its answer is
// replaced (a lost response: EC2 did the work, the client saw a failure).
type Fault struct {
	Action      string // "" matches every action
	Kind        FaultKind
	Count       int     // hits before the fault expires; 0 = unlimited
	Skip        int     // let this many matching calls through first
	Probability float64 // 0 or 1 = always
	AfterApply  bool
	// Param, when set, restricts the fault to calls that carry this query
	// parameter (e.g. "Attachment.DeleteOnTermination" picks the
	// DeleteOnTermination change among ModifyNetworkInterfaceAttribute calls).
	Param string
	// Value, with Param, restricts the fault further to calls whose Param
	// has this value (Param "DeviceIndex", Value "2": the attach at device
	// index 2).
	Value string
}

// SecurityGroup is a security group the simulator knows.
type SecurityGroup struct {
	ID    string
	VPCID string
	Name  string
}

// ActionStats counts the calls of one action.
type ActionStats struct {
	Calls     int
	Throttled int // RequestLimitExceeded answers (throttled or faulted)
	Errors    int // every error answer, throttling included
}

// Termination is what terminating an instance did to its ENIs.
type Termination struct {
	// Deleted are the ENIs deleted with the instance (DeleteOnTermination).
	Deleted []string
	// Detached are the ENIs that survived it, now "available".
	Detached []string
}

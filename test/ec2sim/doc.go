// Package ec2sim is a wire-level simulator of the EC2 Query API and of the
// instance metadata service (IMDSv2), built on net/http, for testing code that
// uses the real aws-sdk-go-v2 EC2 and IMDS clients without interface mocks.
//
// The simulator speaks the EC2 Query protocol (form-encoded POST with
// Action=...&Version=2016-11-15) and answers with EC2's XML shapes (namespace
// http://ec2.amazonaws.com/doc/2016-11-15/, requestId, <item> lists) and EC2's
// error envelope
//
//	<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
//
// with the HTTP statuses EC2 uses (400 for client errors, 503 for
// RequestLimitExceeded and Unavailable, 500 for InternalError).
//
// # Quick start
//
//	sim := ec2sim.New(ec2sim.Config{Region: "us-west-2", Timing: ec2sim.Instant()})
//	defer sim.Close()
//	sn, _ := sim.AddSubnet(ec2sim.SubnetSpec{CIDR: "10.0.1.0/24"})
//	inst, _ := sim.AddInstance(ec2sim.InstanceSpec{
//		Type: "c5.xlarge", SubnetID: sn.ID,
//		LaunchTemplateENIs: []ec2sim.ENISpec{{DeviceIndex: 1, Tags: map[string]string{"k": "v"}}},
//	})
//	ep, _ := sim.Serve("127.0.0.1:0", "127.0.0.1:0", inst.ID)
//	defer ep.Close()
//	client := ec2.NewFromConfig(ep.AWSConfig())       // BaseEndpoint, static credentials, HTTPClient()
//	md := imds.New(imds.Options{Endpoint: ep.IMDSURL})
//	hp := &ec2sim.VethHotplug{NetNS: "node1", PeerNetNS: "wire1", InstanceID: inst.ID}
//	err := hp.Install(sim) // plugs attached ENIs now, and every later attach/detach
//
// Handler and IMDSHandler return the raw http.Handlers for callers that run
// their own servers. Clients built some other way should use HTTPClient (it
// works around an SDK race that a fast loopback server exposes).
//
// # Supported actions
//
// DescribeInstances, DescribeInstanceStatus (status checks "initializing"
// for Timing.StatusChecks after launch), DescribeInstanceTypes (network limits only),
// DescribeSubnets, DescribeNetworkInterfaces, GetSubnetCidrReservations (EC2 has no DescribeSubnetCidrReservations),
// CreateNetworkInterface, AttachNetworkInterface, DetachNetworkInterface,
// DeleteNetworkInterface, ModifyNetworkInterfaceAttribute, CreateTags,
// AssignPrivateIpAddresses (addresses or /28 prefixes), AssignIpv6Addresses
// (addresses or /80 prefixes, prefixes.go and ipv6.go). Anything else answers InvalidAction. Every call
// needs a SigV4 Authorization header (the signature itself is not checked)
// and Version=2016-11-15; DryRun=true answers DryRunOperation (412).
//
// # Attachments
//
// AttachNetworkInterface leaves the attachment "attaching" for
// Timing.AttachDelay, then "attached", then runs OnAttach hooks; with a zero
// delay this all happens before the response is written. The ENI's MAC
// shows up under IMDS network/interfaces/macs/ only once attached.
// DetachNetworkInterface leaves it "detaching" for Timing.DetachDelay, then
// drops the attachment (the ENI is "available") and runs OnDetach hooks.
// Device indexes are per network card; a taken slot answers
// InvalidParameterValue "Instance '<id>' already has an interface attached
// at device index '<n>'." and a full instance AttachmentLimitExceeded
// "Interface count <n> exceeds the limit for <type>", the messages EC2 sends.
// DeleteNetworkInterface on an attached ENI answers InvalidParameterValue
// "Network interface '<id>' is currently in use." as EC2 has been seen to
// do; Config.DeleteInUseCode switches it to the documented
// InvalidNetworkInterface.InUse.
//
// # Addresses
//
// Each subnet reserves its first four addresses and its broadcast address
// like a VPC subnet does. Explicit subnet CIDR reservations
// (AddSubnetCidrReservation) are never handed out by automatic allocation,
// matching EC2, where an "explicit" reservation keeps addresses for manual
// assignment only.
//
// # Latency profiles
//
// Instant() sets every call latency and the attach/detach delays to zero;
// use it in unit tests. Realistic() uses the figures below. They are
// ESTIMATES, not measurements: AWS publishes no latency figures for these
// calls. They come from the order of magnitude commonly observed from a
// client inside the same region (request round trip plus control-plane
// work), and from the fact that EC2 reports an ENI attachment as "attaching"
// for a few seconds before "attached". Treat them as a plausible profile to
// exercise timeouts, waiters and progress reporting, not as a benchmark.
//
//	Describe* calls               100-200 ms  (base 100 ms + jitter up to 100 ms)
//	CreateNetworkInterface        300-600 ms
//	AttachNetworkInterface        200-400 ms for the call, then 2-5 s until "attached"
//	DetachNetworkInterface        200-400 ms for the call, then 2-5 s until "available"
//	DeleteNetworkInterface        200-400 ms
//	ModifyNetworkInterfaceAttribute 150-300 ms
//	AssignPrivateIpAddresses      200-400 ms
//	AssignIpv6Addresses           200-400 ms
//	CreateTags                    150-250 ms
//
// Eventual consistency is on in Realistic(): Timing.Visibility hides each
// new ENI from describes and from calls naming it (they answer
// InvalidNetworkInterfaceID.NotFound) for a delay drawn uniformly from
// 0.5-3 s (Base 500 ms + Jitter 2.5 s). EC2 documents that a resource "might
// not be immediately visible" to later calls and that clients must retry,
// but publishes no figure; 0.5-3 s is an estimate of the delays commonly
// reported, chosen so that a client that assumes read-after-write
// consistency fails often. Instant() leaves it off.
//
// Every client (access key ID; AWSConfigFor gives each node its own) draws
// latencies, delays and fault probabilities from its own generator seeded
// from Config.Seed and its name, so a seed gives each client the same draws
// whatever order the calls of many clients arrive in.
//
// # Many instances
//
// Instances share one simulator (one region, one account, one set of token
// buckets); Serve or ServeIMDS gives each its metadata service.
// TerminateInstance deletes the instance's ENIs whose attachment has
// DeleteOnTermination and detaches the others, which then show up in
// UnattachedENIs: a leak at termination is observable. Security groups must
// exist (AddSecurityGroup; the VPC's default group always does), else
// CreateNetworkInterface and ModifyNetworkInterfaceAttribute answer
// InvalidGroup.NotFound.
//
// # Throttling
//
// Each action has its own token bucket, shared by every client, with the
// sizes and refill rates of EC2's "Request throttling" page
// (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
//
//	CreateNetworkInterface, DeleteNetworkInterface   100 tokens, 5/s
//	ModifyNetworkInterfaceAttribute                  100 tokens, 5/s
//	AssignPrivateIpAddresses                         100 tokens, 5/s
//	CreateTags                                       100 tokens, 10/s
//	other mutating (Attach/DetachNetworkInterface)    50 tokens, 5/s
//	non-mutating (Describe*, Get*)                   100 tokens, 20/s
//	DescribeInstances, DescribeNetworkInterfaces
//	  without a filter and without pagination         50 tokens, 10/s
//
// An empty bucket answers RequestLimitExceeded with HTTP 503.
//
// # Clock
//
// The buckets refill, attachments finish attaching and detaching, and new
// ENIs become visible on Config.Clock, the wall clock by default. A test
// that asserts on them uses a ManualClock and moves it with Advance, so a
// loaded machine cannot change what it sees. Call latencies stay on the
// wall clock.
//
// # Faults and hooks
//
// InjectFault makes chosen calls fail with InternalError (500), Unavailable
// (503), RequestLimitExceeded (503), hang until the client gives up, or
// lose their connection. With Fault.AfterApply the call is applied first
// and only its answer is lost, as when EC2 did the work and the response
// never arrived. FaultNICNeverAppears makes an attach succeed in EC2 (and
// IMDS) while the host never sees its NIC: the attach event carries
// NICWithheld and VethHotplug plugs nothing. Fault.Param with Fault.Value
// picks calls by a parameter's value (the attach at one device index).
// A client that gives up does not cancel a call EC2 has
// accepted: the simulator finishes it on its own clock (Call.ClientGone).
// OnCall sees every call with its action's running counts; Stats sums them.
// OnAttach/OnDetach run when an attachment reaches "attached"/"detached"
// (VethHotplug uses them to plug a veth carrying the ENI's MAC into a netns);
// OnMutation runs after a mutating call has been applied and before its
// response is written, so a test can simulate a crash at that point.
package ec2sim

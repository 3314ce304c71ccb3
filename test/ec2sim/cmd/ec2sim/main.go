// Command ec2sim runs the EC2 Query API + IMDSv2 simulator on loopback for
// demos and manual testing, with one instance and its subnets.
//
//	ec2sim -instance-type c5.xlarge -subnet 10.0.0.0/24 -subnet 10.0.1.0/24,name=multus-a \
//	    -reserve 10.0.1.0/28 -lt-eni device=1,subnet=1,tag=node.k8s.amazonaws.com/no_manage=true \
//	    -user-data nodeprep.yaml -latency realistic -hotplug-netns node1 -env-file /tmp/ec2sim.env
//
// It prints the endpoints as shell exports the AWS SDKs understand and
// runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	ec2Addr, imdsAddr string
	region, az        string
	instanceType      string
	instanceID        string
	subnets, reserves multiFlag
	ltENIs            multiFlag
	userData          string
	latency           string
	seed              int64
	noThrottle        bool
	hotplugNS, peerNS string
	envFile           string
	deleteInUseCode   string
	faults            multiFlag
	visibility        string
	instances         int
}

func main() {
	var o options
	fs := flag.NewFlagSet("ec2sim", flag.ExitOnError)
	fs.StringVar(&o.ec2Addr, "ec2-listen", "127.0.0.1:0", "EC2 API listen address (loopback)")
	fs.StringVar(&o.imdsAddr, "imds-listen", "127.0.0.1:0", "IMDS listen address (loopback)")
	fs.StringVar(&o.region, "region", "us-west-2", "region")
	fs.StringVar(&o.az, "az", "", "availability zone of every subnet (default <region>a)")
	fs.StringVar(&o.instanceType, "instance-type", "c5.xlarge", "instance type (see -list-types)")
	fs.StringVar(&o.instanceID, "instance-id", "", "instance ID (default: generated)")
	fs.Var(&o.subnets, "subnet", "subnet CIDR[,name=N][,id=subnet-...]; repeatable; the first holds the primary ENI")
	fs.Var(&o.reserves, "reserve", "explicit subnet CIDR reservation inside one of the subnets; repeatable")
	fs.Var(&o.ltENIs, "lt-eni", "launch-template ENI attached at boot: device=N[,card=N][,subnet=INDEX][,ip=A][,desc=D][,tag=K=V...]; repeatable")
	fs.StringVar(&o.userData, "user-data", "", "file served as user data")
	fs.StringVar(&o.latency, "latency", "none", "latency profile: none | realistic")
	fs.Int64Var(&o.seed, "seed", 1, "seed for IDs, MACs, jitter and addresses")
	fs.BoolVar(&o.noThrottle, "no-throttle", false, "disable EC2 request-rate throttling")
	fs.StringVar(&o.hotplugNS, "hotplug-netns", "", "plug a veth with each attached ENI's MAC into this network namespace")
	fs.StringVar(&o.peerNS, "hotplug-peer-netns", "", "namespace for the veth peers (default: same as -hotplug-netns)")
	fs.StringVar(&o.envFile, "env-file", "", "also write the endpoint exports to this file")
	fs.StringVar(&o.deleteInUseCode, "delete-in-use-code", "", "error code for deleting an attached ENI (default InvalidParameterValue)")
	fs.Var(&o.faults, "fault", "inject a fault: KIND[,action=A][,param=P[,value=V]][,count=N][,skip=N][,p=F][,after-apply]; KIND is internal, unavailable, throttle, timeout, drop or nonic (an attach EC2 makes whose NIC the host never sees); param/value pick calls by a parameter (param=DeviceIndex,value=2); after-apply makes the change and loses the answer; repeatable")
	fs.StringVar(&o.visibility, "visibility", "profile", "how long a new ENI stays invisible: profile (what -latency gives), off, or MIN-MAX (e.g. 500ms-3s)")
	fs.IntVar(&o.instances, "instances", 1, "number of instances sharing the simulator, each with its own IMDS listener")
	listTypes := fs.Bool("list-types", false, "print the instance type table and exit")
	_ = fs.Parse(os.Args[1:])

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *listTypes {
		for _, t := range ec2sim.New(ec2sim.Config{}).InstanceTypes() {
			fmt.Printf("%-16s enis=%-3d cards=%d ipv4-per-eni=%d\n", t.Name, t.MaxENIs, max(t.NetworkCards, 1), t.IPv4PerENI)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log, os.Stdout); err != nil {
		log.Error("ec2sim", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, o options, log *slog.Logger, stdout io.Writer) error {
	cfg := ec2sim.Config{Region: o.region, Seed: o.seed, Throttle: ec2sim.ThrottleConfig{Disabled: o.noThrottle}, DeleteInUseCode: o.deleteInUseCode}
	switch o.latency {
	case "none":
		cfg.Timing = ec2sim.Instant()
	case "realistic":
		cfg.Timing = ec2sim.Realistic()
	default:
		return fmt.Errorf("-latency %q: want none or realistic", o.latency)
	}
	vis, err := parseVisibility(o.visibility, cfg.Timing.Visibility)
	if err != nil {
		return fmt.Errorf("-visibility %q: %w", o.visibility, err)
	}
	cfg.Timing.Visibility = vis
	var faults []ec2sim.Fault
	for _, f := range o.faults {
		fault, err := parseFault(f)
		if err != nil {
			return fmt.Errorf("-fault %q: %w", f, err)
		}
		faults = append(faults, fault)
	}
	if o.instances < 0 {
		return fmt.Errorf("-instances %d: want at least 1", o.instances)
	}
	for _, a := range []string{o.ec2Addr, o.imdsAddr} {
		if !loopback(a) {
			return fmt.Errorf("listen address %q: only loopback addresses are allowed", a)
		}
	}
	if len(o.subnets) == 0 {
		o.subnets = multiFlag{"10.0.0.0/24"}
	}
	sim := ec2sim.New(cfg)
	defer sim.Close()
	for _, f := range faults {
		sim.InjectFault(f)
	}
	sim.OnCall(func(c ec2sim.Call, soFar ec2sim.ActionStats) {
		log.Info("call", "action", c.Action, "n", soFar.Calls, "client", c.Client, "code", c.ErrorCode, "applied", c.Applied, "client_gone", c.ClientGone)
	})
	defer func() {
		stats := sim.Stats()
		for _, a := range slices.Sorted(maps.Keys(stats)) {
			st := stats[a]
			log.Info("calls", "action", a, "count", st.Calls, "errors", st.Errors, "throttled", st.Throttled)
		}
	}()

	var subnetIDs []string
	for i, spec := range o.subnets {
		ss, err := parseSubnet(spec, o.az)
		if err != nil {
			return fmt.Errorf("-subnet #%d %q: %w", i+1, spec, err)
		}
		sn, err := sim.AddSubnet(ss)
		if err != nil {
			return fmt.Errorf("-subnet #%d %q: %w", i+1, spec, err)
		}
		subnetIDs = append(subnetIDs, sn.ID)
		log.Info("subnet", "index", i, "id", sn.ID, "cidr", sn.CIDR, "az", sn.AvailabilityZone)
	}
	for _, r := range o.reserves {
		id, err := subnetFor(sim, r)
		if err != nil {
			return fmt.Errorf("-reserve %q: %w", r, err)
		}
		res, err := sim.AddSubnetCidrReservation(id, r, "explicit", "ec2sim -reserve")
		if err != nil {
			return fmt.Errorf("-reserve %q: %w", r, err)
		}
		log.Info("reservation", "id", res.ID, "subnet", id, "cidr", res.CIDR)
	}
	spec := ec2sim.InstanceSpec{ID: o.instanceID, Type: o.instanceType, SubnetID: subnetIDs[0]}
	for _, l := range o.ltENIs {
		e, err := parseENI(l, subnetIDs)
		if err != nil {
			return fmt.Errorf("-lt-eni %q: %w", l, err)
		}
		spec.LaunchTemplateENIs = append(spec.LaunchTemplateENIs, e)
	}
	if o.userData != "" {
		b, err := os.ReadFile(o.userData)
		if err != nil {
			return fmt.Errorf("-user-data: %w", err)
		}
		spec.UserData = b
	}
	inst, err := sim.AddInstance(spec)
	if err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	for _, e := range sim.ENIs() {
		log.Info("eni", "id", e.ID, "mac", e.MAC, "ip", e.PrivateIPs[0], "device", e.Attachment.DeviceIndex, "card", e.Attachment.NetworkCardIndex, "tags", e.Tags)
	}
	if o.hotplugNS != "" {
		hp := &ec2sim.VethHotplug{NetNS: o.hotplugNS, PeerNetNS: o.peerNS, InstanceID: inst.ID}
		if err := hp.Install(sim); err != nil {
			return fmt.Errorf("hot-plug into %q: %w", o.hotplugNS, err)
		}
	}
	sim.OnAttach(func(ev ec2sim.AttachEvent) error {
		log.Info("attached", "eni", ev.ENIID, "mac", ev.MAC, "device", ev.DeviceIndex, "card", ev.NetworkCardIndex)
		return nil
	})
	sim.OnDetach(func(ev ec2sim.AttachEvent) error {
		log.Info("detached", "eni", ev.ENIID, "mac", ev.MAC)
		return nil
	})
	sim.OnMutation(func(action string, n int) { log.Info("mutation", "n", n, "action", action) })

	ep, err := sim.Serve(o.ec2Addr, o.imdsAddr, inst.ID)
	if err != nil {
		return err
	}
	defer ep.Close()
	// More instances boot into the first subnet like the first one, without
	// launch-template ENIs or hot-plug; each gets an IMDS listener.
	var more strings.Builder
	for i := 2; i <= o.instances; i++ {
		other, err := sim.AddInstance(ec2sim.InstanceSpec{Type: o.instanceType, SubnetID: subnetIDs[0], UserData: spec.UserData})
		if err != nil {
			return fmt.Errorf("instance %d: %w", i, err)
		}
		oep, err := sim.ServeIMDS(o.imdsAddr, other.ID)
		if err != nil {
			return fmt.Errorf("instance %d: %w", i, err)
		}
		defer oep.Close()
		fmt.Fprintf(&more, "export EC2SIM_INSTANCE_ID_%d=%s\nexport EC2SIM_IMDS_ENDPOINT_%d=%s\n", i, other.ID, i, oep.IMDSURL)
		log.Info("instance", "n", i, "id", other.ID, "imds", oep.IMDSURL)
	}
	// The SDKs' own variables, then nodeprep's flags' variables; the
	// instance ID comes last so readers can stop at it.
	env := fmt.Sprintf(`export AWS_ENDPOINT_URL_EC2=%[1]s
export AWS_EC2_METADATA_SERVICE_ENDPOINT=%[2]s
export AWS_REGION=%[3]s
export AWS_ACCESS_KEY_ID=AKIAEC2SIMEXAMPLE
export AWS_SECRET_ACCESS_KEY=ec2sim-secret
export NODEPREP_EC2_ENDPOINT=%[1]s
export NODEPREP_IMDS_ENDPOINT=%[2]s
%[5]sexport EC2SIM_INSTANCE_ID=%[4]s
`, ep.EC2URL, ep.IMDSURL, ep.Region, inst.ID, more.String())
	if o.envFile != "" {
		if err := os.WriteFile(o.envFile, []byte(env), 0o600); err != nil {
			return fmt.Errorf("-env-file: %w", err)
		}
	}
	fmt.Fprint(stdout, env)
	log.Info("serving", "ec2", ep.EC2URL, "imds", ep.IMDSURL, "instance", inst.ID, "type", inst.Type, "latency", o.latency)

	<-ctx.Done()
	log.Info("stopping")
	sim.Close()
	if errs := sim.HookErrors(); len(errs) > 0 {
		return fmt.Errorf("hook errors: %w", errors.Join(errs...))
	}
	return nil
}

func loopback(addr string) bool {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = addr[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

var faultKinds = map[string]ec2sim.FaultKind{
	"internal":    ec2sim.FaultInternalError,
	"unavailable": ec2sim.FaultUnavailable,
	"throttle":    ec2sim.FaultThrottle,
	"timeout":     ec2sim.FaultTimeout,
	"drop":        ec2sim.FaultDropConnection,
	"nonic":       ec2sim.FaultNICNeverAppears,
}

func parseFault(spec string) (ec2sim.Fault, error) {
	parts := strings.Split(spec, ",")
	var f ec2sim.Fault
	kind, ok := faultKinds[parts[0]]
	if !ok {
		return f, fmt.Errorf("kind %q: want internal, unavailable, throttle, timeout, drop or nonic", parts[0])
	}
	f.Kind = kind
	for _, p := range parts[1:] {
		if p == "after-apply" {
			f.AfterApply = true
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return f, fmt.Errorf("%q: want key=value or after-apply", p)
		}
		var err error
		switch k {
		case "action":
			f.Action = v
			if !slices.Contains(ec2sim.Actions(), v) {
				return f, fmt.Errorf("action %q is not served (see the package documentation)", v)
			}
		case "param":
			f.Param = v
		case "value":
			f.Value = v
		case "count":
			f.Count, err = strconv.Atoi(v)
		case "skip":
			f.Skip, err = strconv.Atoi(v)
		case "p":
			f.Probability, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.Probability < 0 || f.Probability > 1) {
				err = errors.New("want 0..1")
			}
		default:
			return f, fmt.Errorf("unknown key %q (want action, param, value, count, skip, p, after-apply)", k)
		}
		if err != nil {
			return f, fmt.Errorf("%s=%q: %w", k, v, err)
		}
	}
	return f, nil
}

// parseVisibility reads "profile", "off" or "MIN-MAX".
func parseVisibility(spec string, profile ec2sim.Latency) (ec2sim.Latency, error) {
	switch spec {
	case "", "profile":
		return profile, nil
	case "off":
		return ec2sim.Latency{}, nil
	}
	lo, hi, ok := strings.Cut(spec, "-")
	if !ok {
		return ec2sim.Latency{}, errors.New("want profile, off or MIN-MAX such as 500ms-3s")
	}
	minD, err := time.ParseDuration(lo)
	if err != nil {
		return ec2sim.Latency{}, err
	}
	maxD, err := time.ParseDuration(hi)
	if err != nil {
		return ec2sim.Latency{}, err
	}
	if minD < 0 || maxD < minD {
		return ec2sim.Latency{}, fmt.Errorf("want 0 <= MIN <= MAX, got %v-%v", minD, maxD)
	}
	return ec2sim.Latency{Base: minD, Jitter: maxD - minD}, nil
}

func parseSubnet(spec, az string) (ec2sim.SubnetSpec, error) {
	parts := strings.Split(spec, ",")
	ss := ec2sim.SubnetSpec{CIDR: parts[0], AvailabilityZone: az, Tags: map[string]string{}}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return ss, fmt.Errorf("%q: want key=value", p)
		}
		switch k {
		case "name":
			ss.Tags["Name"] = v
		case "id":
			ss.ID = v
		case "az":
			ss.AvailabilityZone = v
		default:
			return ss, fmt.Errorf("unknown key %q (want name, id, az)", k)
		}
	}
	return ss, nil
}

func subnetFor(sim *ec2sim.Sim, cidr string) (string, error) {
	r, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", err
	}
	for _, sn := range sim.Subnets() {
		if p := netip.MustParsePrefix(sn.CIDR); p.Contains(r.Addr()) && r.Bits() >= p.Bits() {
			return sn.ID, nil
		}
	}
	return "", fmt.Errorf("no subnet contains %s", cidr)
}

func parseENI(spec string, subnets []string) (ec2sim.ENISpec, error) {
	e := ec2sim.ENISpec{SubnetID: subnets[0], Tags: map[string]string{}}
	seenDevice := false
	for _, p := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return e, fmt.Errorf("%q: want key=value", p)
		}
		switch k {
		case "device", "card", "subnet", "secondary":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return e, fmt.Errorf("%s=%q: want a non-negative number", k, v)
			}
			switch k {
			case "device":
				e.DeviceIndex, seenDevice = n, true
			case "card":
				e.NetworkCardIndex = n
			case "secondary":
				e.SecondaryIPs = n
			case "subnet":
				if n >= len(subnets) {
					return e, fmt.Errorf("subnet=%d: only %d subnets", n, len(subnets))
				}
				e.SubnetID = subnets[n]
			}
		case "ip":
			e.PrivateIP = v
		case "desc":
			e.Description = v
		case "tag":
			tk, tv, _ := strings.Cut(v, "=")
			e.Tags[tk] = tv
		default:
			return e, fmt.Errorf("unknown key %q (want device, card, subnet, ip, secondary, desc, tag)", k)
		}
	}
	if !seenDevice {
		return e, errors.New("device=N is required")
	}
	return e, nil
}

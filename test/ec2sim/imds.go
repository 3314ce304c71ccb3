package ec2sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IMDSv2 header names.
const (
	imdsTokenHeader    = "X-Aws-Ec2-Metadata-Token"
	imdsTokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
)

type imdsServer struct {
	s          *Sim
	instanceID string

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
}

// IMDSHandler returns an IMDSv2-only handler serving instanceID's metadata:
// a GET without a valid token answers 401, like an instance with
// HttpTokens=required.
func (s *Sim) IMDSHandler(instanceID string) http.Handler {
	return &imdsServer{s: s, instanceID: instanceID, tokens: map[string]time.Time{}}
}

func (m *imdsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "/latest/api/token" {
		m.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !m.validToken(r.Header.Get(imdsTokenHeader)) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	body, ok := m.lookup(strings.TrimPrefix(path, "/latest"))
	if !ok || !strings.HasPrefix(path, "/latest/") {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

func (m *imdsServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	// IMDS refuses token requests that went through a proxy.
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(imdsTokenTTLHeader))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	m.s.mu.Lock()
	tok := fmt.Sprintf("AQAEA%016x%016x%016x==", m.s.rng.Uint64(), m.s.rng.Uint64(), m.s.rng.Uint64())
	m.s.mu.Unlock()
	m.mu.Lock()
	m.tokens[tok] = time.Now().Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set(imdsTokenTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (m *imdsServer) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	if ok && time.Now().After(exp) {
		delete(m.tokens, tok)
		return false
	}
	return ok
}

type identityDocument struct {
	AccountID               string  `json:"accountId"`
	Architecture            string  `json:"architecture"`
	AvailabilityZone        string  `json:"availabilityZone"`
	BillingProducts         *string `json:"billingProducts"`
	DevpayProductCodes      *string `json:"devpayProductCodes"`
	MarketplaceProductCodes *string `json:"marketplaceProductCodes"`
	ImageID                 string  `json:"imageId"`
	InstanceID              string  `json:"instanceId"`
	InstanceType            string  `json:"instanceType"`
	KernelID                *string `json:"kernelId"`
	PendingTime             string  `json:"pendingTime"`
	PrivateIP               string  `json:"privateIp"`
	RamdiskID               *string `json:"ramdiskId"`
	Region                  string  `json:"region"`
	Version                 string  `json:"version"`
}

// lookup resolves a path under /latest against the current state. Directory
// listings are newline-separated names, subdirectories with a trailing "/".
func (m *imdsServer) lookup(path string) (string, bool) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[m.instanceID]
	if !ok {
		return "", false
	}
	tree := map[string]string{}
	dirs := map[string][]string{}
	add := func(p, v string) {
		tree[p] = v
		for {
			i := strings.LastIndex(strings.TrimSuffix(p, "/"), "/")
			if i < 0 {
				return
			}
			parent, name := p[:i+1], p[i+1:]
			if strings.HasSuffix(p, "/") {
				name = strings.TrimSuffix(name, "/") + "/"
			}
			seen := false
			for _, n := range dirs[parent] {
				if n == name {
					seen = true
				}
			}
			if !seen {
				dirs[parent] = append(dirs[parent], name)
			}
			p = parent
			if p == "/" {
				return
			}
		}
	}

	doc, _ := json.MarshalIndent(identityDocument{
		AccountID:        s.cfg.AccountID,
		Architecture:     "x86_64",
		AvailabilityZone: inst.AvailabilityZone,
		ImageID:          "ami-0123456789abcdef0",
		InstanceID:       inst.ID,
		InstanceType:     inst.Type,
		PendingTime:      inst.LaunchTime.UTC().Format(time.RFC3339),
		PrivateIP:        inst.PrivateIP,
		Region:           s.cfg.Region,
		Version:          "2017-09-30",
	}, "", "  ")
	add("/dynamic/instance-identity/document", string(doc))
	if len(inst.UserData) > 0 {
		add("/user-data", string(inst.UserData))
	}
	md := "/meta-data/"
	primary := s.enis[inst.PrimaryENIID]
	add(md+"ami-id", "ami-0123456789abcdef0")
	add(md+"instance-id", inst.ID)
	add(md+"instance-type", inst.Type)
	add(md+"local-ipv4", inst.PrivateIP)
	add(md+"local-hostname", s.privateDNS(inst.PrivateIP))
	add(md+"hostname", s.privateDNS(inst.PrivateIP))
	add(md+"mac", primary.MAC)
	add(md+"placement/region", s.cfg.Region)
	add(md+"placement/availability-zone", inst.AvailabilityZone)
	if sn, ok := s.subnets[inst.SubnetID]; ok {
		add(md+"placement/availability-zone-id", sn.AvailabilityZoneID)
	}
	if inst.Role != "" {
		creds, info := roleCredentials(inst, s.cfg.AccountID, s.clock.Now())
		add(md+"iam/info", info)
		add(md+"iam/security-credentials/"+inst.Role, creds)
	}
	macs := md + "network/interfaces/macs/"
	tree[macs] = ""
	dirs[macs] = []string{}
	add(md+"network/interfaces/macs/", "")
	for _, e := range s.instanceENIs(inst.ID) {
		a := e.Attachment
		if a.Status != "attached" && a.Status != "detaching" {
			continue // a NIC shows up in IMDS once the attachment completes
		}
		base := macs + e.MAC + "/"
		add(base+"device-number", strconv.Itoa(a.DeviceIndex))
		add(base+"network-card", strconv.Itoa(a.NetworkCardIndex))
		add(base+"interface-id", e.ID)
		add(base+"mac", e.MAC)
		add(base+"owner-id", s.cfg.AccountID)
		add(base+"local-ipv4s", strings.Join(e.PrivateIPs, "\n"))
		add(base+"local-hostname", s.privateDNS(e.PrivateIPs[0]))
		add(base+"subnet-id", e.SubnetID)
		add(base+"vpc-id", e.VPCID)
		add(base+"security-group-ids", strings.Join(e.SecurityGroupIDs, "\n"))
		if sn, ok := s.subnets[e.SubnetID]; ok {
			add(base+"subnet-ipv4-cidr-block", sn.CIDR)
		}
	}

	if v, ok := tree[path]; ok && !strings.HasSuffix(path, "/") {
		return v, true
	}
	dir := strings.TrimSuffix(path, "/") + "/"
	if names, ok := dirs[dir]; ok {
		sort.Strings(names)
		return strings.Join(names, "\n"), true
	}
	return "", false
}

// roleCredentials are the instance profile's credentials as IMDS serves
// them (the JSON the SDK's ec2rolecreds provider decodes) and iam/info.
// The keys are fixed per instance: the simulator checks that a call is
// signed, not by whom. They expire six hours on, as EC2's do at most, so a
// client refreshes them the way it would on an instance.
func roleCredentials(inst *Instance, account string, now time.Time) (creds, info string) {
	now = now.UTC().Truncate(time.Second)
	c, _ := json.MarshalIndent(struct {
		Code            string
		LastUpdated     string
		Type            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
	}{
		Code:            "Success",
		LastUpdated:     now.Format(time.RFC3339),
		Type:            "AWS-HMAC",
		AccessKeyID:     "ASIA" + strings.ToUpper(strings.TrimPrefix(inst.ID, "i-")),
		SecretAccessKey: "ec2sim-role-secret-" + inst.ID,
		Token:           "ec2sim-role-token-" + inst.ID,
		Expiration:      now.Add(6 * time.Hour).Format(time.RFC3339),
	}, "", "  ")
	i, _ := json.MarshalIndent(struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileID  string `json:"InstanceProfileId"`
	}{"Success", now.Format(time.RFC3339), "arn:aws:iam::" + account + ":instance-profile/" + inst.Role, "AIPA" + strings.ToUpper(strings.TrimPrefix(inst.ID, "i-"))}, "", "  ")
	return string(c), string(i)
}

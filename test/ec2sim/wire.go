package ec2sim

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIVersion is the EC2 API version the simulator speaks.
const APIVersion = "2016-11-15"

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ErrorCodeTimeout is logged for calls held by a FaultTimeout until the
// client gave up; no response was written for them.
const ErrorCodeTimeout = "ec2sim.Timeout"

type actionFunc func(s *Sim, p params) (resp response, err *apiError, after []func())

type actionDef struct {
	mutating bool
	fn       actionFunc
}

// response is a success body; respMeta carries its requestId.
type response interface{ setRequestID(string) }

type respMeta struct {
	RequestID string `xml:"requestId"`
}

func (m *respMeta) setRequestID(id string) { m.RequestID = id }

func actionTable() map[string]actionDef {
	return map[string]actionDef{
		"DescribeInstances":               {false, (*Sim).describeInstances},
		"DescribeInstanceStatus":          {false, (*Sim).describeInstanceStatus},
		"DescribeSubnets":                 {false, (*Sim).describeSubnets},
		"DescribeNetworkInterfaces":       {false, (*Sim).describeNetworkInterfaces},
		"DescribeInstanceTypes":           {false, (*Sim).describeInstanceTypes},
		"GetSubnetCidrReservations":       {false, (*Sim).getSubnetCidrReservations},
		"CreateNetworkInterface":          {true, (*Sim).createNetworkInterface},
		"AttachNetworkInterface":          {true, (*Sim).attachNetworkInterface},
		"DetachNetworkInterface":          {true, (*Sim).detachNetworkInterface},
		"DeleteNetworkInterface":          {true, (*Sim).deleteNetworkInterface},
		"ModifyNetworkInterfaceAttribute": {true, (*Sim).modifyNetworkInterfaceAttribute},
		"CreateTags":                      {true, (*Sim).createTags},
		"AssignPrivateIpAddresses":        {true, (*Sim).assignPrivateIPAddresses},
		"AssignIpv6Addresses":             {true, (*Sim).assignIPv6Addresses},
	}
}

// Actions lists the EC2 actions the simulator implements.
func Actions() []string { return sortedKeys(actionTable()) }

// IsMutating reports whether the simulator counts action as mutating.
func IsMutating(action string) bool { return actionTable()[action].mutating }

func (s *Sim) serveEC2(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.serving++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.serving--
		s.notifyLocked()
		s.mu.Unlock()
	}()
	reqID := s.requestID()
	if err := r.ParseForm(); err != nil {
		writeError(w, reqID, &apiError{Code: "MalformedQueryString", Message: err.Error()})
		return
	}
	client := accessKeyID(r.Header.Get("Authorization"))
	s.mu.Lock()
	rng := s.clientRNG(client)
	s.mu.Unlock()
	p := params{Values: r.Form, rng: rng}
	action := p.str("Action")
	def, known := s.actions[action]
	call := Call{Action: action, Params: cloneValues(r.Form), Mutating: def.mutating, Time: time.Now(), Client: client}

	fail := func(e *apiError) {
		call.ErrorCode = e.Code
		s.record(call)
		writeError(w, reqID, e)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		fail(&apiError{Status: http.StatusUnauthorized, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"})
		return
	}
	if action == "" {
		fail(&apiError{Code: "MissingAction", Message: "The request must contain the parameter Action"})
		return
	}
	if !known {
		fail(&apiError{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", action)})
		return
	}
	if v := p.str("Version"); v != APIVersion {
		fail(&apiError{Code: "InvalidParameterValue", Message: fmt.Sprintf("Invalid Version '%s', this simulator speaks %s", v, APIVersion)})
		return
	}

	s.mu.Lock()
	fault := s.pickFault(action, r.Form, rng)
	latency := s.callLatency(action, rng)
	s.mu.Unlock()

	if fault != nil && fault.Kind == FaultNICNeverAppears {
		// Not a failure of the call: the attach is made and answered; only
		// the host misses the device.
		p.nicWithheld = action == "AttachNetworkInterface"
		fault = nil
	}
	if fault != nil && !fault.AfterApply {
		s.answerFault(w, r, reqID, call, fault)
		return
	}
	if !s.throttle.allow(action, def.mutating, unfiltered(p)) {
		fail(errThrottled)
		return
	}
	// EC2 finishes a request it has accepted even when the client hangs up
	// (a client timeout, a crash): the work below waits on the simulator's
	// own clock, detached from the request's context, and is applied
	// whether or not anyone reads the answer.
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			fail(errUnavail)
			return
		}
	}
	call.ClientGone = r.Context().Err() != nil
	if dry, _, _ := p.boolean("DryRun"); dry {
		fail(errDryRun)
		return
	}

	s.mu.Lock()
	resp, apiErr, after := def.fn(s, p)
	var mutationHooks []func(string, int)
	n := 0
	if apiErr == nil && def.mutating {
		s.mutationSeq++
		n = s.mutationSeq
		mutationHooks = append(mutationHooks, s.mutationHooks...)
	}
	s.mu.Unlock()

	if apiErr != nil {
		fail(apiErr)
		return
	}
	call.Applied = true
	for _, fn := range after {
		fn()
	}
	if fault != nil {
		// A lost response: the change is made, the client sees a failure.
		s.answerFault(w, r, reqID, call, fault)
		return
	}
	s.record(call)
	for _, h := range mutationHooks {
		h(action, n)
	}
	resp.setRequestID(reqID)
	writeXML(w, http.StatusOK, resp)
}

// ErrorCodeDropped is logged for calls whose connection a
// FaultDropConnection closed; no response was written for them.
const ErrorCodeDropped = "ec2sim.ConnectionDropped"

// answerFault answers a call hit by an injected fault.
func (s *Sim) answerFault(w http.ResponseWriter, r *http.Request, reqID string, call Call, f *Fault) {
	switch f.Kind {
	case FaultTimeout:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		call.ErrorCode, call.ClientGone = ErrorCodeTimeout, true
		s.record(call)
		return
	case FaultDropConnection:
		call.ErrorCode = ErrorCodeDropped
		s.record(call)
		panic(http.ErrAbortHandler)
	}
	e := errInternal
	switch f.Kind {
	case FaultThrottle:
		e = errThrottled
	case FaultUnavailable:
		e = errUnavail
	case FaultDenied:
		e = errDenied
	}
	call.ErrorCode = e.Code
	s.record(call)
	writeError(w, reqID, e)
}

// unfiltered reports whether a describe uses neither a filter nor
// pagination, which EC2 charges to a smaller bucket for some actions.
func unfiltered(p params) bool {
	if p.has("MaxResults") || p.has("NextToken") {
		return false
	}
	return len(p.indexes("Filter")) == 0
}

// accessKeyID is the client's access key from a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=AKID/date/region/ec2/aws4_request, ...").
func accessKeyID(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(cred, "/")
	return id
}

// maxCallLog bounds the call log of a long-running simulator; CallCounts
// and Stats keep counting past it.
const maxCallLog = 100000

func (s *Sim) record(c Call) {
	s.mu.Lock()
	if len(s.calls) >= maxCallLog {
		s.calls = append(s.calls[:0], s.calls[len(s.calls)-maxCallLog/2:]...)
	}
	s.calls = append(s.calls, c)
	if c.Mutating {
		s.nMutating++
	} else {
		s.nNonMutating++
	}
	st, ok := s.stats[c.Action]
	if !ok {
		st = &ActionStats{}
		s.stats[c.Action] = st
	}
	st.Calls++
	if c.ErrorCode != "" {
		st.Errors++
	}
	if c.ErrorCode == errThrottled.Code {
		st.Throttled++
	}
	soFar, hooks := *st, s.callHooks
	s.mu.Unlock()
	for _, h := range hooks {
		h(c, soFar)
	}
}

// requestID returns a UUID-shaped request ID like EC2's.
func (s *Sim) requestID() string {
	s.mu.Lock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	s.mu.Unlock()
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, 0x4000|(a&0x0fff), 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

type errorResponse struct {
	XMLName   xml.Name    `xml:"Response"`
	Errors    []errorItem `xml:"Errors>Error"`
	RequestID string      `xml:"RequestID"`
}

type errorItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	writeXML(w, e.status(), errorResponse{Errors: []errorItem{{Code: e.Code, Message: e.Message}}, RequestID: reqID})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

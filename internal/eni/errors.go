package eni

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/smithy-go"
)

// Error is a failure reconciling one interface. It names the interface, the
// EC2 call and EC2's error code, so an operator can tell "the subnet is
// full" from "the IAM policy is missing ec2:AttachNetworkInterface".
type Error struct {
	Interface string
	// Call is the EC2 action that failed, or "" for a failure outside EC2.
	Call string
	// Code is EC2's error code, e.g. InsufficientFreeAddressesInSubnet, or
	// "" when the call failed without an EC2 answer (deadline, network).
	Code string
	Err  error
	// Remedy, when set, tells the operator what to change.
	Remedy string
	// ENIID and Left say what became of the ENI nodeprep made for the
	// interface when it gave up on it; Left is "" when it made none.
	ENIID string
	Left  Left
}

// Left is the fate of an ENI nodeprep created and then gave up on. Every
// value keeps the promise that no ENI outlives its instance.
type Left string

const (
	// LeftDeleted: the ENI was deleted.
	LeftDeleted Left = "deleted"
	// LeftAttached: EC2 attached the ENI after all; it has
	// DeleteOnTermination, so it goes with the instance. The next run
	// adopts it.
	LeftAttached Left = "attached with DeleteOnTermination=true"
	// LeftForNextRun: neither could be made sure of; the ENI carries
	// nodeprep's tags and the next run attaches or deletes it.
	LeftForNextRun Left = "left for the next run"
	// LeftAttachedWithoutDeleteOnTermination: attached, but EC2 refused or
	// never answered the DeleteOnTermination change: the ENI outlives the
	// instance unless a later run sets it.
	LeftAttachedWithoutDeleteOnTermination Left = "attached WITHOUT DeleteOnTermination: it outlives the instance unless a later run sets it"
)

func (e *Error) Error() string {
	msg := e.Err.Error()
	var api smithy.APIError
	if errors.As(e.Err, &api) {
		msg = api.ErrorMessage()
	}
	if e.Remedy != "" {
		msg += "; " + e.Remedy
	}
	switch {
	case e.Left != "" && e.ENIID == "":
		msg += fmt.Sprintf("; the ENI EC2 may have made is %s", e.Left)
	case e.Left != "":
		msg += fmt.Sprintf("; ENI %s %s", e.ENIID, e.Left)
	}
	switch {
	case e.Call == "":
		return fmt.Sprintf("interface %s: %s", e.Interface, msg)
	case e.Code == "":
		return fmt.Sprintf("interface %s: %s: %s", e.Interface, e.Call, msg)
	default:
		return fmt.Sprintf("interface %s: %s: %s: %s", e.Interface, e.Call, e.Code, msg)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// DeletedENIs lists, per interface, the ENIs err says were deleted after
// the run gave up on them (Left is LeftDeleted): what the next run's
// Reconciler.DeletedENIs needs.
func DeletedENIs(err error) map[string][]string {
	out := map[string][]string{}
	var walk func(error)
	walk = func(err error) {
		switch u := err.(type) {
		case nil:
			return
		case *Error:
			if u.Left == LeftDeleted && u.ENIID != "" && !slices.Contains(out[u.Interface], u.ENIID) {
				out[u.Interface] = append(out[u.Interface], u.ENIID)
			}
			walk(u.Err)
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if len(out) == 0 {
		return nil
	}
	return out
}

func callError(iface, call string, err error) error {
	var existing *Error
	if errors.As(err, &existing) {
		return err
	}
	return &Error{Interface: iface, Call: call, Code: errorCode(err), Err: err}
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// ErrSlotTaken means the device index the config asks for is held by an ENI
// nodeprep must not adopt (another subnet).
var ErrSlotTaken = errors.New("device index taken")

// EC2 error codes the reconciler reacts to.
const (
	codeIPInUse     = "InvalidIPAddress.InUse"
	codeENINotFound = "InvalidNetworkInterfaceID.NotFound"
	// codeInsufficientCidrBlocks: the subnet has free addresses but no free
	// aligned /28 for a prefix (it is fragmented).
	codeInsufficientCidrBlocks = "InsufficientCidrBlocks"
)

// ErrLimit means the config asks for more than the instance type or the
// subnet takes (ENIs per network card, addresses per ENI, IPv6 in an
// IPv4-only subnet); no ENI was created.
var ErrLimit = errors.New("over a limit of the instance type or the subnet")

// prefixError names the subnet and the remedy when EC2 cannot carve a /28
// out of a fragmented subnet.
func prefixError(iface, subnetID, call string, err error) error {
	e, ok := callError(iface, call, err).(*Error)
	if !ok || e.Code != codeInsufficientCidrBlocks {
		return callError(iface, call, err)
	}
	e.Remedy = fmt.Sprintf("subnet %s has no free aligned /28 left for ipv4PrefixCount (it is fragmented): "+
		"reserve room for prefixes with a subnet CIDR reservation of type prefix "+
		"(aws ec2 create-subnet-cidr-reservation --subnet-id %s --reservation-type prefix --cidr <free CIDR>), "+
		"or ask for secondaryIPCount instead", subnetID, subnetID)
	return e
}

// DeadlineError is a Reconcile that ran out of time: its deadline (Base
// plus the time EC2 throttled the node, at most MaxDeadline) passed. It
// names the last EC2 error code any call got, so "the account's API bucket
// was drained" reads apart from "EC2 answered InternalError for minutes".
// It matches context.DeadlineExceeded.
type DeadlineError struct {
	After, Base, Throttled time.Duration
	// LastCode is the last EC2 error code of the run and LastCall the call
	// that got it; both "" when EC2 never answered with an error.
	LastCode, LastCall string
}

func (e *DeadlineError) Error() string {
	last := "none"
	if e.LastCode != "" {
		last = e.LastCode + " from " + e.LastCall
	}
	return fmt.Sprintf("ENI deadline passed after %s (deadline %s plus the %s EC2 throttled this node, at most %s); last EC2 error: %s",
		e.After.Round(time.Second), e.Base, e.Throttled.Round(time.Second), MaxDeadline, last)
}

func (e *DeadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

package eni

import (
	"errors"
	"fmt"

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
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	var api smithy.APIError
	if errors.As(e.Err, &api) {
		msg = api.ErrorMessage()
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
)

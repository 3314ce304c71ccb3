package ec2sim

import (
	"fmt"
	"net/http"
)

// apiError is an EC2 error response.
type apiError struct {
	Status  int // HTTP status; 400 when zero
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func (e *apiError) status() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

func errInvalidParameterValue(msg string) *apiError {
	return &apiError{Code: "InvalidParameterValue", Message: msg}
}

func errMissing(name string) *apiError {
	return &apiError{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", name)}
}

func errENINotFound(id string) *apiError {
	return &apiError{Code: "InvalidNetworkInterfaceID.NotFound", Message: fmt.Sprintf("The networkInterface ID '%s' does not exist", id)}
}

func errSubnetNotFound(id string) *apiError {
	return &apiError{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", id)}
}

func errInstanceNotFound(id string) *apiError {
	return &apiError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", id)}
}

func errAttachmentNotFound(id string) *apiError {
	return &apiError{Code: "InvalidAttachmentID.NotFound", Message: fmt.Sprintf("The attachment ID '%s' does not exist", id)}
}

func errENIInUse(id string) *apiError {
	return &apiError{Code: "InvalidNetworkInterface.InUse", Message: fmt.Sprintf("Interface: [%s] in use.", id)}
}

var (
	errThrottled = &apiError{Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	errInternal  = &apiError{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred"}
	errUnavail   = &apiError{Status: http.StatusServiceUnavailable, Code: "Unavailable", Message: "The server is overloaded and can't handle the request"}
	// errDenied is EC2's answer when IAM denies the call; the real one
	// carries an encoded authorization message.
	errDenied = &apiError{Status: http.StatusForbidden, Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation. Encoded authorization failure message: ec2sim"}
	errDryRun = &apiError{Status: http.StatusPreconditionFailed, Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set."}
)

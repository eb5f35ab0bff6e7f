package ec2test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Fault is an EC2 error answer.
type Fault struct {
	Code    string
	Message string
	// Status is the HTTP status; 0 means the status EC2 sends with Code
	// (see StatusFor).
	Status int
	// ClockSkew, when set, puts the server's clock that far ahead of the
	// client's (behind, if negative) in the answer's Date header, as a
	// real endpoint's answer shows a client whose clock is off. The SDK
	// measures the skew from that header, signs its next attempts with it,
	// and retries AuthFailure and SignatureDoesNotMatch answers that show
	// a skew of more than a few minutes.
	ClockSkew time.Duration
}

func (f *Fault) Error() string { return f.Code + ": " + f.Message }

// StatusFor returns the HTTP status EC2 answers error code with: 503 for
// throttling and unavailability, 500 for capacity shortages and internal
// errors, 401/403 for authentication and authorization, 400 otherwise.
func StatusFor(code string) int {
	switch {
	case code == "RequestLimitExceeded", code == "Unavailable", code == "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case code == "InternalError", code == "InternalFailure",
		strings.HasPrefix(code, "Insufficient") && strings.HasSuffix(code, "Capacity"):
		return http.StatusInternalServerError
	case strings.HasPrefix(code, "AuthFailure"):
		return http.StatusUnauthorized
	case code == "UnauthorizedOperation":
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func invalidValue(format string, args ...any) *Fault {
	return &Fault{Code: "InvalidParameterValue", Message: fmt.Sprintf(format, args...)}
}

func missing(name string) *Fault {
	return &Fault{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", name)}
}

// faultOf turns an error of the backing cloud into the answer EC2 would
// give: its *awsctl.APIError code and message, or an internal error.
func faultOf(err error) *Fault {
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	var apiErr *awsctl.APIError
	if errors.As(err, &apiErr) && apiErr.Code != "" {
		return &Fault{Code: apiErr.Code, Message: apiErr.Message}
	}
	return &Fault{Code: "InternalError", Message: err.Error()}
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeFault(w http.ResponseWriter, requestID string, f *Fault) {
	status := f.Status
	if status == 0 {
		status = StatusFor(f.Code)
	}
	body, err := xml.Marshal(errorResponse{Errors: []xmlError{{f.Code, f.Message}}, RequestID: requestID})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if f.ClockSkew != 0 {
		w.Header().Set("Date", time.Now().Add(f.ClockSkew).UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(body)
}

package service

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code is a stable error code. It is an error itself, so errors wrap it
// (fmt.Errorf("%w: ...", ErrNotFound)) and callers test it with errors.Is,
// on either side of the API.
type Code struct {
	name   string
	title  string
	status int
}

func (c *Code) Error() string { return c.title }

// Name is the code as it crosses the API ("not_found", ...).
func (c *Code) Name() string { return c.name }

// Status is the HTTP status the code maps to.
func (c *Code) Status() int { return c.status }

// The error codes. Each refusal names the rule and, where there is one, the
// fix.
var (
	// ErrInvalid: the request is malformed or misses a field; the message
	// names the field and the accepted form.
	ErrInvalid = &Code{"invalid", "invalid request", http.StatusBadRequest}
	// ErrUnauthenticated: no session, or it expired or was revoked; the
	// message says how to log in.
	ErrUnauthenticated = &Code{"unauthenticated", "authentication required", http.StatusUnauthorized}
	// ErrPasswordChange: the password was issued or has expired; the login
	// succeeds only together with a new password.
	ErrPasswordChange = &Code{"password_change_required", "password change required", http.StatusForbidden}
	// ErrForbidden: the actor may not perform this action on this resource.
	ErrForbidden = &Code{"forbidden", "forbidden", http.StatusForbidden}
	// ErrNotFound: no such job or dataset.
	ErrNotFound = &Code{"not_found", "not found", http.StatusNotFound}
	// ErrConflict: the custody rules do not allow the action in the
	// resource's current state.
	ErrConflict = &Code{"conflict", "not allowed in this state", http.StatusConflict}
	// ErrBusy: the job is already running.
	ErrBusy = &Code{"busy", "already running", http.StatusConflict}
	// ErrRefused: a report or request that breaks a rule (a scrub report
	// that does not match the ledger).
	ErrRefused = &Code{"refused", "refused", http.StatusUnprocessableEntity}
	// ErrUnavailable: the daemon accepts no work now (its ledger cannot be
	// written or failed verification); the message says why and what to do.
	ErrUnavailable = &Code{"unavailable", "unavailable", http.StatusServiceUnavailable}
	// ErrInternal: anything else.
	ErrInternal = &Code{"internal", "internal error", http.StatusInternalServerError}
)

var codes = []*Code{ErrInvalid, ErrUnauthenticated, ErrPasswordChange, ErrForbidden, ErrNotFound, ErrConflict, ErrBusy, ErrRefused, ErrUnavailable, ErrInternal}

// CodeOf returns the code err carries, ErrInternal if none.
func CodeOf(err error) *Code {
	for _, c := range codes {
		if errors.Is(err, c) {
			return c
		}
	}
	return ErrInternal
}

// Problem is an RFC 9457 problem details object, with custodian's code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// ProblemContentType is the media type of a Problem.
const ProblemContentType = "application/problem+json"

// ProblemOf describes err for a client.
func ProblemOf(err error) Problem {
	c := CodeOf(err)
	return Problem{Type: "urn:custodian:error:" + c.name, Title: c.title, Status: c.status, Detail: err.Error(), Code: c.name}
}

// remoteError is an error received from the API: its message as the server
// wrote it, and its code for errors.Is.
type remoteError struct {
	code *Code
	msg  string
}

func (e *remoteError) Error() string        { return e.msg }
func (e *remoteError) Is(target error) bool { return target == e.code }

// ErrorFromProblem turns a decoded problem back into an error that
// errors.Is recognises by its code.
func ErrorFromProblem(p Problem) error {
	code := ErrInternal
	for _, c := range codes {
		if c.name == p.Code {
			code = c
		}
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return &remoteError{code: code, msg: msg}
}

// DecodeProblem reads a problem from an error response body; ok is false
// when the body is not one.
func DecodeProblem(body []byte) (Problem, bool) {
	var p Problem
	if json.Unmarshal(body, &p) != nil || p.Code == "" {
		return p, false
	}
	return p, true
}

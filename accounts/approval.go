package accounts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is what a request asks for.
type Kind string

// The request kinds.
const (
	KindAccountCreate  Kind = "account-create"
	KindAccountChange  Kind = "account-change"
	KindAccountDisable Kind = "account-disable"
	KindUnlock         Kind = "unlock"
	KindDestruction    Kind = "destruction"
	KindExport         Kind = "export"
	KindHandover       Kind = "handover"
	KindEmergencyUse   Kind = "emergency-use"
	// KindPrune removes old ledger segments (retention, 三(五)): only
	// segments both archived and older than five years; the service
	// checks that when the request is filed and again when it is carried
	// out.
	KindPrune Kind = "prune"
	// KindExceptionalRead: a read of a quarantined or held dataset, whose
	// completeness is not proven (approved by a supervisor).
	KindExceptionalRead Kind = "exceptional-read"
)

// Kinds lists every kind.
var Kinds = []Kind{KindAccountCreate, KindAccountChange, KindAccountDisable, KindUnlock,
	KindDestruction, KindExport, KindHandover, KindEmergencyUse, KindPrune, KindExceptionalRead}

// KindRule says who approves and who carries out a kind of request.
type KindRule struct {
	// ApproverRole is the role every approver must hold.
	ApproverRole Role
	// Approvers is how many different people must approve (1 or 2).
	Approvers int
	// ExecutorRole is the role of whoever carries the request out; it
	// cannot be an approver (the requester may, holding the role). Empty: the requester carries
	// it out (the person who asked for an export makes the export), and
	// nobody else can use their approval.
	ExecutorRole Role
	// AboutAccount: the subject is a username, and that person can neither
	// approve nor carry out a request about their own account.
	AboutAccount bool
	// ExecutorIsSubject: the subject (a username) carries the approved
	// request out, and nobody else: a hand-over is accepted by the person
	// who receives custody. The subject cannot approve it.
	ExecutorIsSubject bool
}

// kindRules is the one table of approval rules. Account changes and
// unlocks are approved by a supervisor and carried out by an admin;
// destruction, export and hand-over are approved by a supervisor and
// carried out by the requester, destruction (irreversible) by two
// supervisors; emergency use is approved by the director (clause 二); a
// read of quarantined or held data (exceptional-read) by a supervisor;
// pruning old ledger segments, like destruction, by two supervisors. A
// hand-over is carried out (accepted) by its subject, the person who
// receives custody.
var kindRules = map[Kind]KindRule{
	KindAccountCreate:   {ApproverRole: RoleSupervisor, Approvers: 1, ExecutorRole: RoleAdmin, AboutAccount: true},
	KindAccountChange:   {ApproverRole: RoleSupervisor, Approvers: 1, ExecutorRole: RoleAdmin, AboutAccount: true},
	KindAccountDisable:  {ApproverRole: RoleSupervisor, Approvers: 1, ExecutorRole: RoleAdmin, AboutAccount: true},
	KindUnlock:          {ApproverRole: RoleSupervisor, Approvers: 1, ExecutorRole: RoleAdmin, AboutAccount: true},
	KindDestruction:     {ApproverRole: RoleSupervisor, Approvers: 2},
	KindExport:          {ApproverRole: RoleSupervisor, Approvers: 1},
	KindHandover:        {ApproverRole: RoleSupervisor, Approvers: 1, ExecutorIsSubject: true},
	KindEmergencyUse:    {ApproverRole: RoleDirector, Approvers: 1},
	KindExceptionalRead: {ApproverRole: RoleSupervisor, Approvers: 1},
	// Pruning the ledger is as irreversible as destruction: two
	// supervisors approve, and the auditor who asked carries it out.
	KindPrune: {ApproverRole: RoleSupervisor, Approvers: 2},
}

// AccountSpec is the account an account-create request asks for, or the
// fields an account-change request replaces (empty ones stay).
type AccountSpec struct {
	FullName   string     `json:"full_name,omitempty"`
	EmployeeID string     `json:"employee_id,omitempty"`
	Unit       string     `json:"unit,omitempty"`
	Roles      []Role     `json:"roles,omitempty"`
	Contractor *Agreement `json:"contractor,omitempty"`
}

// Apply writes the spec's non-empty fields onto a.
func (s *AccountSpec) Apply(a *Account) {
	if s == nil {
		return
	}
	if s.FullName != "" {
		a.FullName = s.FullName
	}
	if s.EmployeeID != "" {
		a.EmployeeID = s.EmployeeID
	}
	if s.Unit != "" {
		a.Unit = s.Unit
	}
	if len(s.Roles) > 0 {
		a.Roles = append([]Role(nil), s.Roles...)
		if !a.HasRole(RoleContractor) {
			a.Contractor = nil
		}
	}
	if s.Contractor != nil {
		c := *s.Contractor
		a.Contractor = &c
	}
}

// RuleFor returns the rule of kind k.
func RuleFor(k Kind) (KindRule, bool) {
	r, ok := kindRules[k]
	return r, ok
}

// DefaultRequestTTL is how long a request stays open: 7 days.
const DefaultRequestTTL = 7 * 24 * time.Hour

// ErrRefused is wrapped by every *RuleError.
var ErrRefused = errors.New("refused")

// RuleError is a refusal by a named rule.
type RuleError struct {
	Rule   string // e.g. requester-cannot-approve
	Detail string
}

func (e *RuleError) Error() string { return e.Rule + ": " + e.Detail }
func (e *RuleError) Unwrap() error { return ErrRefused }

func rule(name, format string, args ...any) error {
	return &RuleError{Rule: name, Detail: fmt.Sprintf(format, args...)}
}

// Decision is one step taken on a request: by whom, in which role, why
// and when.
type Decision struct {
	By     string    `json:"by"`
	Role   Role      `json:"role,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// RequestState is derived from a request's decisions.
type RequestState string

// Request states.
const (
	RequestPending   RequestState = "pending"  // waiting for approvals
	RequestApproved  RequestState = "approved" // approved, not yet carried out
	RequestRejected  RequestState = "rejected"
	RequestCancelled RequestState = "cancelled"
	RequestExpired   RequestState = "expired"
	RequestExecuted  RequestState = "executed"
)

// Request is a four-eyes request. Each method checks the rules, records one
// step (each step is its own ledger event for the caller to write), and
// returns a *RuleError naming the rule it breaks.
type Request struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Subject   string    `json:"subject"` // a username, dataset ID, job, …
	Reason    string    `json:"reason"`
	Requester string    `json:"requester"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	// Approvers is how many different people must approve, fixed from
	// the kind's rule when the request was filed.
	Approvers int `json:"approvers"`
	// Account is what an account request asks for: the new account, or
	// the fields a change replaces. Empty for other kinds.
	Account *AccountSpec `json:"account,omitempty"`
	// Details carry what other kinds need (a recipient, a purpose, a case
	// reference), for the requester and approver to see.
	Details map[string]string `json:"details,omitempty"`

	Approvals []Decision `json:"approvals,omitempty"`
	Rejection *Decision  `json:"rejection,omitempty"`
	Cancelled *Decision  `json:"cancelled,omitempty"`
	ExpiredAt *time.Time `json:"expired_at,omitempty"`
	Executed  *Decision  `json:"executed,omitempty"`
}

// NewRequest files a request of kind k about subject at now, open for ttl
// (0: DefaultRequestTTL).
func NewRequest(id string, k Kind, subject, reason, requester string, now time.Time, ttl time.Duration) (*Request, error) {
	kr, ok := kindRules[k]
	switch {
	case !ok:
		return nil, rule("kind", "%q is not a request kind; use %s", k, kindList())
	case strings.TrimSpace(id) == "":
		return nil, rule("id", "a request needs an ID")
	case strings.TrimSpace(requester) == "":
		return nil, rule("requester", "a request is filed by one identified person")
	case strings.TrimSpace(reason) == "":
		return nil, rule("reason-required", "a request says why")
	case strings.TrimSpace(subject) == "":
		return nil, rule("subject", "a request names what it is about")
	case ttl < 0:
		return nil, rule("expiry", "a request cannot expire before it is filed")
	}
	if kr.AboutAccount || kr.ExecutorIsSubject {
		if err := ValidateUsername(subject); err != nil {
			return nil, rule("subject", "%v", err)
		}
	}
	if ttl == 0 {
		ttl = DefaultRequestTTL
	}
	return &Request{ID: id, Kind: k, Subject: subject, Reason: reason, Requester: requester,
		Created: now, Expires: now.Add(ttl), Approvers: kr.Approvers}, nil
}

// State is the request's state, derived from its decisions.
func (r *Request) State() RequestState {
	switch {
	case r.Executed != nil:
		return RequestExecuted
	case r.Rejection != nil:
		return RequestRejected
	case r.Cancelled != nil:
		return RequestCancelled
	case r.ExpiredAt != nil:
		return RequestExpired
	case r.approvedBy() >= max(r.Approvers, 1):
		return RequestApproved
	}
	return RequestPending
}

// approvedBy counts the different people who approved.
func (r *Request) approvedBy() int {
	var seen []string
	for _, d := range r.Approvals {
		if !slices.Contains(seen, d.By) {
			seen = append(seen, d.By)
		}
	}
	return len(seen)
}

// open refuses any step on a request that is closed or past its expiry.
func (r *Request) open(now time.Time) error {
	switch s := r.State(); s {
	case RequestExecuted:
		return rule("executes-once", "request %s was executed by %s; nothing follows an execution", r.ID, r.Executed.By)
	case RequestRejected, RequestCancelled, RequestExpired:
		return rule("closed", "request %s is %s; nothing follows", r.ID, s)
	}
	if !now.Before(r.Expires) {
		return rule("expired", "request %s expired at %s", r.ID, r.Expires.UTC().Format(time.RFC3339))
	}
	if _, ok := kindRules[r.Kind]; !ok {
		return rule("kind", "%q is not a request kind", r.Kind)
	}
	return nil
}

// Approve records by's approval at now. by holds roles; the approver must
// hold the kind's approver role, must not be the requester (nor, for an
// account request, its subject), and a second approval must be another
// person's.
func (r *Request) Approve(by string, roles []Role, reason string, now time.Time) error {
	if err := r.open(now); err != nil {
		return err
	}
	kr := kindRules[r.Kind]
	switch {
	case strings.TrimSpace(by) == "":
		return rule("approver", "an approval is given by one identified person")
	case by == r.Requester:
		return rule("requester-cannot-approve", "%s filed request %s and cannot approve it", by, r.ID)
	case kr.AboutAccount && by == r.Subject:
		return rule("subject-cannot-approve", "request %s is about %s's own account", r.ID, by)
	case kr.ExecutorIsSubject && by == r.Subject:
		return rule("subject-cannot-approve", "request %s is carried out by %s, who cannot also approve it", r.ID, by)
	case !slices.Contains(roles, kr.ApproverRole):
		return rule("approver-role", "a %s request is approved by %s; %s is not one", r.Kind, article(kr.ApproverRole), by)
	case slices.ContainsFunc(r.Approvals, func(d Decision) bool { return d.By == by }):
		return rule("different-approvers", "%s already approved request %s; another %s must give the next approval", by, r.ID, kr.ApproverRole)
	case r.State() == RequestApproved:
		return rule("already-approved", "request %s has its %d approval(s)", r.ID, r.Approvers)
	}
	r.Approvals = append(r.Approvals, Decision{By: by, Role: kr.ApproverRole, Reason: reason, At: now})
	return nil
}

// Reject records by's rejection at now, with a reason. Whoever may
// approve may reject; the requester cancels instead.
func (r *Request) Reject(by string, roles []Role, reason string, now time.Time) error {
	if err := r.open(now); err != nil {
		return err
	}
	kr := kindRules[r.Kind]
	switch {
	case strings.TrimSpace(by) == "":
		return rule("approver", "a rejection is given by one identified person")
	case by == r.Requester:
		return rule("requester-cannot-reject", "%s filed request %s; the requester cancels it instead", by, r.ID)
	case kr.AboutAccount && by == r.Subject:
		return rule("subject-cannot-approve", "request %s is about %s's own account", r.ID, by)
	case !slices.Contains(roles, kr.ApproverRole):
		return rule("approver-role", "a %s request is rejected by %s; %s is not one", r.Kind, article(kr.ApproverRole), by)
	case strings.TrimSpace(reason) == "":
		return rule("reason-required", "a rejection says why")
	}
	r.Rejection = &Decision{By: by, Role: kr.ApproverRole, Reason: reason, At: now}
	return nil
}

// Cancel records the requester's cancellation at now.
func (r *Request) Cancel(by string, now time.Time) error {
	if err := r.open(now); err != nil {
		return err
	}
	if by != r.Requester {
		return rule("requester-only-cancels", "only %s, who filed request %s, can cancel it", r.Requester, r.ID)
	}
	r.Cancelled = &Decision{By: by, At: now}
	return nil
}

// Expire records at now that the request expired unexecuted.
func (r *Request) Expire(now time.Time) error {
	switch s := r.State(); s {
	case RequestExecuted, RequestRejected, RequestCancelled, RequestExpired:
		return rule("closed", "request %s is %s; nothing follows", r.ID, s)
	}
	if now.Before(r.Expires) {
		return rule("not-expired", "request %s is open until %s", r.ID, r.Expires.UTC().Format(time.RFC3339))
	}
	r.ExpiredAt = &now
	return nil
}

// Execute records at now that by carried out the approved request. For a
// kind with an executor role, by must hold it and must not have approved it
// (nor be the subject of an account request), so that four eyes see every
// account change: the approver's, and the requester's or executor's (an
// admin may file a request and, once a supervisor approved it, carry it
// out); otherwise by must be the requester.
// A request executes once.
func (r *Request) Execute(by string, roles []Role, now time.Time) error {
	if err := r.open(now); err != nil {
		return err
	}
	kr := kindRules[r.Kind]
	if r.State() != RequestApproved {
		return rule("needs-approvals", "request %s needs %d approval(s) by different %ss; it has %d", r.ID, r.Approvers, kr.ApproverRole, r.approvedBy())
	}
	switch {
	case strings.TrimSpace(by) == "":
		return rule("executor", "a request is carried out by one identified person")
	case kr.ExecutorIsSubject:
		if by != r.Subject {
			return rule("executor", "an approved %s request is carried out by %s, its subject, not %s", r.Kind, r.Subject, by)
		}
		if slices.ContainsFunc(r.Approvals, func(d Decision) bool { return d.By == by }) {
			return rule("executor-not-approver", "%s approved request %s and cannot also carry it out", by, r.ID)
		}
	case kr.ExecutorRole == "":
		if by != r.Requester {
			return rule("executor", "an approved %s request is carried out by its requester %s, not %s", r.Kind, r.Requester, by)
		}
	case kr.AboutAccount && by == r.Subject:
		return rule("executor-not-subject", "request %s is about %s's own account", r.ID, by)
	case slices.ContainsFunc(r.Approvals, func(d Decision) bool { return d.By == by }):
		return rule("executor-not-approver", "%s approved request %s and cannot also carry it out", by, r.ID)
	case !slices.Contains(roles, kr.ExecutorRole):
		return rule("executor-role", "an approved %s request is carried out by %s; %s is not one", r.Kind, article(kr.ExecutorRole), by)
	}
	role := kr.ExecutorRole
	r.Executed = &Decision{By: by, Role: role, At: now}
	return nil
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

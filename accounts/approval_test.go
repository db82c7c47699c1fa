package accounts

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var (
	officer    = []Role{RoleOfficer}
	supervisor = []Role{RoleSupervisor}
	admin      = []Role{RoleAdmin}
	director   = []Role{RoleDirector}
	auditor    = []Role{RoleAuditor}
	supAdmin   = []Role{RoleSupervisor, RoleAdmin}
)

// step is one operation on a request and the rule it must break ("" for
// none).
type step struct {
	op     string // approve, reject, cancel, expire, execute
	by     string
	roles  []Role
	reason string
	at     time.Duration // after t0
	rule   string
}

func (s step) apply(r *Request) error {
	now := t0.Add(s.at)
	switch s.op {
	case "approve":
		return r.Approve(s.by, s.roles, s.reason, now)
	case "reject":
		return r.Reject(s.by, s.roles, s.reason, now)
	case "cancel":
		return r.Cancel(s.by, now)
	case "expire":
		return r.Expire(now)
	case "execute":
		return r.Execute(s.by, s.roles, now)
	}
	panic(s.op)
}

// TestApprovalRules: every rule of the approvals engine, each broken by a
// step that names it, and the state each sequence ends in.
func TestApprovalRules(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name    string
		kind    Kind
		subject string
		steps   []step
		state   RequestState
	}{
		{"export: approved, carried out by its requester", KindExport, "ds-1", []step{
			{"approve", "sam", supervisor, "ok", h, ""},
			{"execute", "olga", officer, "", 2 * h, ""},
		}, RequestExecuted},
		{"the requester can never approve", KindExport, "ds-1", []step{
			{"approve", "olga", []Role{RoleOfficer, RoleSupervisor}, "", h, "requester-cannot-approve"},
		}, RequestPending},
		{"the approver holds the kind's role", KindExport, "ds-1", []step{
			{"approve", "adam", admin, "", h, "approver-role"},
			{"approve", "aud", auditor, "", h, "approver-role"},
			{"approve", "dora", director, "", h, "approver-role"},
			{"approve", "", supervisor, "", h, "approver"},
		}, RequestPending},
		{"emergency use needs the director", KindEmergencyUse, "job registry-extract", []step{
			{"approve", "sam", supervisor, "", h, "approver-role"},
			{"approve", "dora", director, "outbreak", h, ""},
			{"execute", "olga", officer, "", h, ""},
		}, RequestExecuted},
		{"destruction needs two different supervisors", KindDestruction, "ds-9", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "olga", officer, "", h, "needs-approvals"},
			{"approve", "sam", supervisor, "again", h, "different-approvers"},
			{"approve", "sue", supervisor, "", h, ""},
			{"approve", "sid", supervisor, "", h, "already-approved"},
			{"execute", "olga", officer, "", h, ""},
		}, RequestExecuted},
		{"nobody else uses the requester's approval", KindExport, "ds-1", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "sam", supervisor, "", h, "executor"},
			{"execute", "otto", officer, "", h, "executor"},
		}, RequestApproved},
		{"account change: approved by a supervisor, carried out by an admin", KindAccountChange, "chen.wei", []step{
			{"execute", "adam", admin, "", h, "needs-approvals"},
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "otto", officer, "", h, "executor-role"},
			{"execute", "olga", []Role{RoleOfficer, RoleAdmin}, "", h, ""}, // an admin who filed it carries it out
			{"execute", "adam", admin, "", h, "executes-once"},
		}, RequestExecuted},
		{"who approved does not also carry out", KindAccountCreate, "new.user", []step{
			{"approve", "sam", supAdmin, "", h, ""},
			{"execute", " ", admin, "", h, "executor"},
			{"execute", "sam", supAdmin, "", h, "executor-not-approver"},
			{"execute", "adam", admin, "", h, ""},
		}, RequestExecuted},
		{"nobody approves or carries out a request about their own account", KindAccountChange, "sam", []step{
			{"approve", "sam", supervisor, "", h, "subject-cannot-approve"},
			{"reject", "sam", supervisor, "no", h, "subject-cannot-approve"},
			{"approve", "sue", supervisor, "", h, ""},
			{"execute", "sam", supAdmin, "", h, "executor-not-subject"},
		}, RequestApproved},
		{"a request executes once", KindUnlock, "chen.wei", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "adam", admin, "", h, ""},
			{"execute", "adam", admin, "", 2 * h, "executes-once"},
			{"execute", "ada", admin, "", 2 * h, "executes-once"},
			{"cancel", "olga", nil, "", 2 * h, "executes-once"},
			{"expire", "", nil, "", 8 * 24 * h, "closed"},
		}, RequestExecuted},
		{"nothing after a rejection", KindExport, "ds-1", []step{
			{"reject", "sam", supervisor, "", h, "reason-required"},
			{"reject", "olga", supervisor, "mine", h, "requester-cannot-reject"},
			{"reject", "otto", officer, "no", h, "approver-role"},
			{"reject", "sam", supervisor, "no legal basis", h, ""},
			{"approve", "sue", supervisor, "", h, "closed"},
			{"execute", "olga", officer, "", h, "closed"},
			{"cancel", "olga", nil, "", h, "closed"},
			{"reject", "sue", supervisor, "also no", h, "closed"},
		}, RequestRejected},
		{"prune: two supervisors, then the auditor who asked", KindPrune, "ledger before 2020-01-01", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "olga", auditor, "", h, "needs-approvals"},
			{"approve", "aud", auditor, "", h, "approver-role"},
			{"approve", "dora", director, "", h, "approver-role"},
			{"approve", "sue", supervisor, "", h, ""},
			{"execute", "sam", supervisor, "", h, "executor"},
			{"execute", "olga", auditor, "", h, ""},
		}, RequestExecuted},
		{"a rejection after one of two approvals", KindDestruction, "ds-9", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"reject", "sue", supervisor, "keep it", h, ""},
			{"approve", "sid", supervisor, "", h, "closed"},
		}, RequestRejected},
		{"a hand-over is accepted by its subject, who receives custody, and by nobody else", KindHandover, "bert", []step{
			{"approve", "bert", []Role{RoleOfficer, RoleSupervisor}, "", h, "subject-cannot-approve"},
			{"approve", "sam", supervisor, "inventory checked", h, ""},
			{"execute", "olga", officer, "", h, "executor"},
			{"execute", "sam", supervisor, "", h, "executor"},
			{"execute", "bert", officer, "", 2 * h, ""},
			{"execute", "bert", officer, "", 2 * h, "executes-once"},
		}, RequestExecuted},
		{"an exceptional read is approved by a supervisor and used by its requester", KindExceptionalRead, "ds-1", []step{
			{"approve", "dora", director, "", h, "approver-role"},
			{"approve", "sam", supervisor, "checked the quarantine reason", h, ""},
			{"execute", "otto", officer, "", h, "executor"},
			{"execute", "olga", officer, "", h, ""},
		}, RequestExecuted},
		{"only the requester cancels, and then nothing follows", KindHandover, "ds-1", []step{
			{"cancel", "sam", nil, "", h, "requester-only-cancels"},
			{"approve", "sam", supervisor, "", h, ""},
			{"cancel", "olga", nil, "", h, ""},
			{"execute", "olga", officer, "", h, "closed"},
		}, RequestCancelled},
		{"nothing after expiry, recorded or not", KindExport, "ds-1", []step{
			{"expire", "", nil, "", 24 * h, "not-expired"},
			{"approve", "sam", supervisor, "", 7 * 24 * h, "expired"},
			{"expire", "", nil, "", 7 * 24 * h, ""},
			{"approve", "sam", supervisor, "", 7 * 24 * h, "closed"},
			{"expire", "", nil, "", 8 * 24 * h, "closed"},
		}, RequestExpired},
		{"an approval expires with its request", KindExport, "ds-1", []step{
			{"approve", "sam", supervisor, "", h, ""},
			{"execute", "olga", officer, "", 7 * 24 * h, "expired"},
			{"expire", "", nil, "", 7 * 24 * h, ""},
		}, RequestExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRequest("req-1", tc.kind, tc.subject, "because", "olga", t0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				err := s.apply(r)
				var re *RuleError
				switch {
				case s.rule == "" && err != nil:
					t.Fatalf("step %d %s by %s: %v", i, s.op, s.by, err)
				case s.rule != "" && (!errors.As(err, &re) || re.Rule != s.rule || !errors.Is(err, ErrRefused)):
					t.Fatalf("step %d %s by %s: got %v, want rule %s", i, s.op, s.by, err, s.rule)
				}
			}
			if got := r.State(); got != tc.state {
				t.Errorf("state %s, want %s", got, tc.state)
			}
		})
	}
}

func TestNewRequest(t *testing.T) {
	r, err := NewRequest("req-1", KindUnlock, "chen.wei", "locked out after a holiday", "sam", t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expires.Equal(t0.Add(7*24*time.Hour)) || r.Approvers != 1 || r.State() != RequestPending {
		t.Errorf("%+v", r)
	}
	if r, _ := NewRequest("req-2", KindDestruction, "ds-9", "retention ended", "olga", t0, time.Hour); r.Approvers != 2 || !r.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("%+v", r)
	}
	for _, tc := range []struct {
		id, kind, subject, reason, requester string
		ttl                                  time.Duration
		rule                                 string
	}{
		{"r", "grant-root", "x", "y", "olga", 0, "kind"},
		{"", "export", "x", "y", "olga", 0, "id"},
		{"r", "export", "x", "y", " ", 0, "requester"},
		{"r", "export", "x", " ", "olga", 0, "reason-required"},
		{"r", "export", "", "y", "olga", 0, "subject"},
		{"r", "account-create", "Not A Username", "y", "olga", 0, "subject"},
		{"r", "export", "x", "y", "olga", -time.Hour, "expiry"},
	} {
		_, err := NewRequest(tc.id, Kind(tc.kind), tc.subject, tc.reason, tc.requester, t0, tc.ttl)
		var re *RuleError
		if !errors.As(err, &re) || re.Rule != tc.rule {
			t.Errorf("%+v: got %v, want rule %s", tc, err, tc.rule)
		}
	}
}

// TestKindRules: the table as the issue gives it.
func TestKindRules(t *testing.T) {
	for _, k := range Kinds {
		kr, ok := RuleFor(k)
		if !ok || kr.Approvers < 1 || kr.Approvers > 2 || !kr.ApproverRole.Known() || (kr.ExecutorRole != "" && !kr.ExecutorRole.Known()) {
			t.Errorf("%s: %+v", k, kr)
		}
		account := slices.Contains([]Kind{KindAccountCreate, KindAccountChange, KindAccountDisable, KindUnlock}, k)
		if account != kr.AboutAccount || account != (kr.ExecutorRole == RoleAdmin) {
			t.Errorf("%s: account kinds are carried out by an admin: %+v", k, kr)
		}
		wantApprover := RoleSupervisor
		if k == KindEmergencyUse {
			wantApprover = RoleDirector
		}
		if kr.ApproverRole != wantApprover {
			t.Errorf("%s approved by %s", k, kr.ApproverRole)
		}
	}
	if len(kindRules) != len(Kinds) {
		t.Error("a kind without a rule, or a rule without a kind")
	}
	if _, ok := RuleFor("grant-root"); ok {
		t.Error("unknown kind")
	}
	// A request of a kind outside the table (a damaged record) accepts nothing.
	r := &Request{ID: "x", Kind: "grant-root", Requester: "olga", Created: t0, Expires: t0.Add(time.Hour), Approvers: 1}
	if err := r.Approve("sam", Roles, "", t0); err == nil {
		t.Error("approved a request of an unknown kind")
	}
}

// FuzzRequest applies random sequences of operations by random people with
// random roles at random times, and checks after every step that an
// executed request had every approval it needed, by different people, none
// of them its requester (nor its subject), each holding the approver role,
// all before expiry, and that nothing happened after it closed.
func FuzzRequest(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0x05, 0x11, 0x20, 0x33, 0x41, 0x52, 0x63, 0x74, 0x85, 0x96})
	f.Add([]byte{7, 0, 0, 0, 8, 8, 16, 24, 32, 200, 201, 202, 203})
	people := []struct {
		name  string
		roles []Role
	}{
		{"olga", officer}, {"sam", supervisor}, {"sue", supervisor}, {"adam", admin},
		{"dora", director}, {"chen.wei", supAdmin}, {"aud", auditor}, {"", supAdmin},
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		kind := Kinds[int(ops[0])%len(Kinds)]
		requester := people[int(ops[0]>>4)%len(people)].name
		r, err := NewRequest("r", kind, "chen.wei", "why", requester, t0, 0)
		if err != nil {
			return
		}
		kr, _ := RuleFor(kind)
		holds := func(name string, role Role) bool {
			for _, p := range people {
				if p.name == name {
					return slices.Contains(p.roles, role)
				}
			}
			return false
		}
		now := t0
		for _, b := range ops[1:] {
			p := people[int(b>>3)%len(people)]
			now = now.Add(time.Duration(b&7) * 14 * time.Hour)
			before := r.State()
			snapshot := *r
			var err error
			switch b % 5 {
			case 0:
				err = r.Approve(p.name, p.roles, "", now)
			case 1:
				err = r.Reject(p.name, p.roles, "no", now)
			case 2:
				err = r.Cancel(p.name, now)
			case 3:
				err = r.Expire(now)
			case 4:
				err = r.Execute(p.name, p.roles, now)
			}
			if err != nil && (len(snapshot.Approvals) != len(r.Approvals) || snapshot.Rejection != r.Rejection || snapshot.Cancelled != r.Cancelled || snapshot.ExpiredAt != r.ExpiredAt || snapshot.Executed != r.Executed) {
				t.Fatalf("a refused step changed the request: %v", err)
			}
			if before != RequestPending && before != RequestApproved && r.State() != before {
				t.Fatalf("a closed (%s) request became %s", before, r.State())
			}
			if r.Executed == nil {
				continue
			}
			var by []string
			for _, d := range r.Approvals {
				if d.By == r.Requester || d.By == "" || (kr.AboutAccount && d.By == r.Subject) || slices.Contains(by, d.By) || d.Role != kr.ApproverRole || !holds(d.By, kr.ApproverRole) || !d.At.Before(r.Expires) {
					t.Fatalf("executed with a bad approval %+v of %+v", d, r)
				}
				by = append(by, d.By)
			}
			if r.Executed.By == "" || len(by) < kr.Approvers || r.Rejection != nil || r.Cancelled != nil || r.ExpiredAt != nil || !r.Executed.At.Before(r.Expires) {
				t.Fatalf("executed without its approvals, or after closing: %+v", r)
			}
			if kr.ExecutorIsSubject && (r.Executed.By != r.Subject || slices.Contains(by, r.Executed.By)) ||
				!kr.ExecutorIsSubject && kr.ExecutorRole == "" && r.Executed.By != r.Requester ||
				kr.ExecutorRole != "" && (slices.Contains(by, r.Executed.By) || (kr.AboutAccount && r.Executed.By == r.Subject) || !holds(r.Executed.By, kr.ExecutorRole)) {
				t.Fatalf("executed by the wrong person: %+v", r)
			}
		}
	})
}

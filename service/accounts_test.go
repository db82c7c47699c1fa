package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                 { return c.t }
func (c *clock) advance(d time.Duration)        { c.t = c.t.Add(d) }
func newClock() *clock                          { return &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }
func roles(rs ...accounts.Role) []accounts.Role { return rs }

// people is a service with accounts: the first admin and supervisor from a
// bootstrap, and more as the test asks, each with a password set (no
// change required) and a logged-in actor.
type people struct {
	t     *testing.T
	s     *Service
	clk   *clock
	pw    map[string]string
	actor map[string]Actor
	token map[string]string
}

const goodPassword = "Correct-Horse-42"

func newPeople(t *testing.T, requireTOTP ...string) *people {
	t.Helper()
	s := newService(t)
	s.HashParams = accounts.TestParams
	s.config().Unit = "north"
	s.config().Accounts.RequireTOTP = requireTOTP
	if requireTOTP == nil {
		s.config().Accounts.RequireTOTP = []string{}
	}
	clk := newClock()
	s.Now = clk.now
	p := &people{t: t, s: s, clk: clk, pw: map[string]string{}, actor: map[string]Actor{}, token: map[string]string{}}
	var issued []Issued
	err := s.Ledger.Update(func(tx *audit.Tx) (err error) {
		issued, err = Bootstrap(tx, "root", []BootstrapAccount{
			{Username: "adam", FullName: "Adam Admin", Unit: "north", Roles: roles(accounts.RoleAdmin)},
			{Username: "sue", FullName: "Sue Supervisor", Unit: "north", Roles: roles(accounts.RoleSupervisor)},
		}, s.policy(), clk.now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range issued {
		p.firstLogin(x.Username, x.Password)
	}
	return p
}

// firstLogin logs in with an issued password, setting goodPassword.
func (p *people) firstLogin(user, issued string) {
	p.t.Helper()
	res, err := p.s.Login(context.Background(), Origin{Via: "socket", HostUser: "custodian", UID: 999}, LoginRequest{Username: user, Password: issued, NewPassword: goodPassword})
	if err != nil {
		p.t.Fatalf("first login of %s: %v", user, err)
	}
	p.pw[user] = goodPassword
	p.remember(user, res)
}

func (p *people) remember(user string, res LoginResult) {
	p.t.Helper()
	a, err := p.s.Authenticate(Origin{Via: "socket", HostUser: "custodian", UID: 999}, res.Token)
	if err != nil {
		p.t.Fatalf("authenticate %s: %v", user, err)
	}
	p.actor[user], p.token[user] = a, res.Token
}

// add creates an account through request → approval → execution.
func (p *people) add(user string, rs ...accounts.Role) {
	p.t.Helper()
	ctx := context.Background()
	spec := &accounts.AccountSpec{FullName: "Person " + user, EmployeeID: "E-" + user, Roles: rs}
	if len(rs) == 1 && rs[0] == accounts.RoleContractor {
		spec.Contractor = &accounts.Agreement{Reference: "NDA-7", Ends: p.clk.now().Add(30 * 24 * time.Hour)}
	}
	q, err := p.s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountCreate, Username: user, Account: spec, Reason: "new staff member"})
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.s.Approve(ctx, p.actor["sue"], q.ID, "appointment letter seen"); err != nil {
		p.t.Fatal(err)
	}
	x, err := p.s.ExecuteRequest(ctx, p.actor["adam"], q.ID)
	if err != nil {
		p.t.Fatal(err)
	}
	if x.Issued == nil || x.Issued.Username != user {
		p.t.Fatalf("no issued password: %+v", x)
	}
	p.firstLogin(user, x.Issued.Password)
}

func (p *people) login(user, pw, code string) (LoginResult, error) {
	return p.s.Login(context.Background(), Origin{Via: "https", UID: -1, Remote: "192.0.2.7:5555"}, LoginRequest{Username: user, Password: pw, TOTP: code})
}

func countEvents(t *testing.T, s *Service, typ audit.EventType, detail, value string) int {
	t.Helper()
	n := 0
	for _, ev := range events(t, s, typ) {
		if detail == "" || ev.Details[detail] == value {
			n++
		}
	}
	return n
}

// TestLockoutAndUnlockOnlyByRequest: five wrong passwords lock the account;
// then even the right one is refused; an unknown username is answered like
// a wrong password; only an approved unlock request, carried out by an
// admin, reopens the account; each step is on the ledger.
func TestLockoutAndUnlockOnlyByRequest(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	s, ctx := p.s, context.Background()

	_, wrong := p.login("olga", "Wrong-Password-1", "")
	_, unknown := p.login("nobody.here", "Wrong-Password-1", "")
	if !errors.Is(wrong, ErrUnauthenticated) || !errors.Is(unknown, ErrUnauthenticated) || wrong.Error() != unknown.Error() {
		t.Fatalf("a wrong password and an unknown user must be answered alike: %q vs %q", wrong, unknown)
	}
	if n := countEvents(t, s, audit.EvLoginFailed, "unknown_username", "true"); n != 1 {
		t.Fatalf("%d failures of unknown users recorded, want 1", n)
	}
	for _, ev := range events(t, s, audit.EvLoginFailed) {
		if strings.Contains(ev.Details["username"], "nobody") {
			t.Fatal("what an unknown user typed as a username went on the ledger")
		}
	}
	for range 4 {
		p.login("olga", "Wrong-Password-1", "")
	}
	if n := countEvents(t, s, audit.EvAccountLocked, "username", "olga"); n != 1 {
		t.Fatalf("%d lock events, want 1", n)
	}
	// The officer's session ended with the lock.
	if _, err := s.Authenticate(Origin{}, p.token["olga"]); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after lock: %v", err)
	}
	if _, err := p.login("olga", goodPassword, ""); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("right password on a locked account: %v", err)
	}
	// Unlock needs a request: an admin cannot simply execute one that is
	// not approved, and the supervisor cannot carry it out.
	q, err := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindUnlock, Username: "olga", Reason: "identity checked by phone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("executing an unapproved unlock: %v", err)
	}
	if _, err := s.Approve(ctx, p.actor["sue"], q.ID, "seen in person today"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecuteRequest(ctx, p.actor["sue"], q.ID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a supervisor executing: %v", err)
	}
	if _, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("a request executes once: %v", err)
	}
	if _, err := p.login("olga", goodPassword, ""); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	for _, typ := range []audit.EventType{audit.EvRequestFiled, audit.EvRequestApproved, audit.EvRequestExecuted, audit.EvAccountUnlocked} {
		if countEvents(t, s, typ, "", "") == 0 {
			t.Errorf("no %s event", typ)
		}
	}
	if countEvents(t, s, audit.EvLoginSucceeded, "username", "olga") != 2 {
		t.Error("each successful login is on the ledger")
	}
}

// TestSessionExpiry: a session ends after the idle limit without use and
// after the absolute limit however used; both come from configuration.
func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name           string
		idle, absolute time.Duration
	}{{"defaults", 0, 0}, {"configured", 5 * time.Minute, time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeople(t)
			p.s.config().Accounts.Session.Idle.Duration = tc.idle
			p.s.config().Accounts.Session.Absolute.Duration = tc.absolute
			idle, absolute := tc.idle, tc.absolute
			if idle == 0 {
				idle, absolute = 15*time.Minute, 8*time.Hour
			}
			res, err := p.login("sue", goodPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			start := p.clk.now()
			p.clk.advance(idle - time.Second)
			if _, err := p.s.Authenticate(Origin{}, res.Token); err != nil {
				t.Fatalf("used within the idle limit: %v", err)
			}
			p.clk.advance(idle)
			if _, err := p.s.Authenticate(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "idle") {
				t.Fatalf("idle past the limit: %v", err)
			}
			// Used steadily, it still ends at the absolute limit.
			res, _ = p.login("sue", goodPassword, "")
			start = p.clk.now()
			for p.clk.now().Sub(start) < absolute-idle/2 {
				if _, err := p.s.Authenticate(Origin{}, res.Token); err != nil {
					t.Fatalf("at %s: %v", p.clk.now().Sub(start), err)
				}
				p.clk.advance(idle / 2)
			}
			p.clk.t = start.Add(absolute)
			if _, err := p.s.Authenticate(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "absolute") {
				t.Fatalf("past the absolute limit: %v", err)
			}
		})
	}
}

// TestFourEyes: the requester can never approve; the approver needs the
// kind's role; the person an account request is about cannot decide it;
// each refusal is recorded; a decision needs a reason.
func TestFourEyes(t *testing.T) {
	p := newPeople(t)
	p.add("sam", accounts.RoleSupervisor)
	p.add("dora", accounts.RoleDirector)
	s, ctx := p.s, context.Background()
	q, err := s.FileAccountRequest(ctx, p.actor["sue"], AccountRequest{Kind: accounts.KindAccountCreate, Username: "olga",
		Account: &accounts.AccountSpec{FullName: "Olga Officer", EmployeeID: "E-9", Roles: roles(accounts.RoleOfficer)}, Reason: "new officer for the north"})
	if err != nil {
		t.Fatal(err)
	}
	before := countEvents(t, s, audit.EvAccessRefused, "", "")
	if _, err := s.Approve(ctx, p.actor["sue"], q.ID, "I asked for it myself"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "requester-cannot-approve") {
		t.Fatalf("requester approving: %v", err)
	}
	if _, err := s.Approve(ctx, p.actor["dora"], q.ID, "director says yes"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "approver-role") {
		t.Fatalf("a director approving an account request: %v", err)
	}
	if _, err := s.Approve(ctx, p.actor["adam"], q.ID, "admins cannot approve"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "role:") {
		t.Fatalf("an admin approving: %v", err)
	}
	if _, err := s.Approve(ctx, p.actor["sam"], q.ID, "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a decision without a reason: %v", err)
	}
	if got := countEvents(t, s, audit.EvAccessRefused, "", ""); got != before+3 {
		t.Fatalf("%d refusals recorded, want 3", got-before)
	}
	if v, _ := s.Request(ctx, p.actor["sue"], q.ID); v.State != "pending" {
		t.Fatalf("after refusals the request is %s", v.State)
	}
	v, err := s.Approve(ctx, p.actor["sam"], q.ID, "appointment letter checked")
	if err != nil || v.State != "approved" {
		t.Fatalf("%+v %v", v, err)
	}
	// A request about one's own account cannot be decided by its subject.
	q2, err := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountChange, Username: "sam",
		Account: &accounts.AccountSpec{Roles: roles(accounts.RoleSupervisor, accounts.RoleDirector)}, Reason: "acting head this month"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, p.actor["sam"], q2.ID, "yes please, me"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "subject-cannot-approve") {
		t.Fatalf("subject approving: %v", err)
	}
	// Separation of duties is checked when the request is filed.
	if _, err := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountCreate, Username: "ava",
		Account: &accounts.AccountSpec{FullName: "Ava", EmployeeID: "E-3", Roles: roles(accounts.RoleAuditor, accounts.RoleAdmin)}, Reason: "auditor and admin"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "separation of duties") {
		t.Fatalf("auditor+admin: %v", err)
	}
	// Officers file no account requests; a username is never reused.
	if _, err := s.FileAccountRequest(ctx, p.actor["sue"], AccountRequest{Kind: accounts.KindAccountCreate, Username: "adam",
		Account: &accounts.AccountSpec{FullName: "Adam Two", EmployeeID: "E-4", Roles: roles(accounts.RoleOfficer)}, Reason: "another adam joins"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("reusing a username: %v", err)
	}
}

// TestTOTP: an account whose role requires a second factor and has none
// gets a session limited to enrolling; once enrolled, login needs a code,
// and a code is used once.
func TestTOTP(t *testing.T) {
	p := newPeople(t, "supervisor")
	s, ctx := p.s, context.Background()
	res, err := p.login("sue", goodPassword, "")
	if err != nil || res.Restricted == "" {
		t.Fatalf("not enrolled: %+v %v", res, err)
	}
	a, err := s.Authenticate(Origin{}, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Requests(ctx, a, false); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "second factor") {
		t.Fatalf("a limited session reading requests: %v", err)
	}
	e, err := s.EnrollTOTP(ctx, a)
	if err != nil || !strings.HasPrefix(e.URI, "otpauth://totp/") {
		t.Fatalf("%+v %v", e, err)
	}
	if err := s.ConfirmTOTP(ctx, a, "000000"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	code, _ := totp.GenerateCode(e.Secret, p.clk.now())
	if err := s.ConfirmTOTP(ctx, a, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the limited session must end after enrolment: %v", err)
	}
	p.clk.advance(30 * time.Second)
	if _, err := p.login("sue", goodPassword, ""); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "one-time code required") {
		t.Fatalf("no code: %v", err)
	}
	code, _ = totp.GenerateCode(e.Secret, p.clk.now())
	res, err = p.login("sue", goodPassword, code)
	if err != nil || res.Restricted != "" {
		t.Fatalf("with a code: %+v %v", res, err)
	}
	if _, err := p.login("sue", goodPassword, code); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the same code twice: %v", err)
	}
	if countEvents(t, s, audit.EvAccountTOTPEnrolled, "username", "sue") != 1 {
		t.Error("enrolment not on the ledger")
	}
}

// TestSessionsEnd: logout, a password change and a role change end
// sessions; a token used after logout is refused and recorded.
func TestSessionsEnd(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	s, ctx := p.s, context.Background()
	if err := s.Logout(ctx, p.actor["olga"], p.token["olga"]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(Origin{Via: "https", Remote: "198.51.100.9:1"}, p.token["olga"]); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "logout") {
		t.Fatalf("token after logout: %v", err)
	}
	found := false
	for _, ev := range events(t, s, audit.EvAccessRefused) {
		found = found || (ev.Actor == "olga" && strings.Contains(ev.Details["rule"], "logout"))
	}
	if !found {
		t.Fatal("the use of a logged-out token is not on the ledger")
	}
	// Password change: the old password must be right; all sessions end.
	res, _ := p.login("olga", goodPassword, "")
	a, _ := s.Authenticate(Origin{}, res.Token)
	if err := s.ChangePassword(ctx, a, "Not-The-Password-1", "Brand-New-Pass-77"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong old password: %v", err)
	}
	if err := s.ChangePassword(ctx, a, goodPassword, "olga-Password-1"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "username") {
		t.Fatalf("a password with the username: %v", err)
	}
	if err := s.ChangePassword(ctx, a, goodPassword, goodPassword); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "history") {
		t.Fatalf("reusing the password: %v", err)
	}
	if err := s.ChangePassword(ctx, a, goodPassword, "Brand-New-Pass-77"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after a password change: %v", err)
	}
	// Role change.
	res, err := p.login("olga", "Brand-New-Pass-77", "")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountChange, Username: "olga",
		Account: &accounts.AccountSpec{Roles: roles(accounts.RoleOfficer, accounts.RoleSupervisor)}, Reason: "promoted to supervisor"})
	s.Approve(ctx, p.actor["sue"], q.ID, "promotion letter 115-12")
	if _, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after a role change: %v", err)
	}
	if countEvents(t, s, audit.EvSessionRevoked, "reason", "account change") != 1 || countEvents(t, s, audit.EvAccountChanged, "username", "olga") != 1 {
		t.Fatal("role change and revocation must be on the ledger")
	}
}

// TestTimeRules: a contractor is disabled on the agreement's end date, an
// unused account after the configured time, and a request expires.
func TestTimeRules(t *testing.T) {
	p := newPeople(t)
	p.add("cora", accounts.RoleContractor)
	s, ctx := p.s, context.Background()
	if !p.actor["cora"].Contractor {
		t.Fatal("a contractor's actor must be marked")
	}
	q, _ := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountDisable, Username: "sue", Reason: "testing expiry of requests"})
	p.clk.advance(31 * 24 * time.Hour)
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Account(ctx, p.actor["adam"], "cora"); v.State != "disabled" {
		t.Fatalf("contractor after the agreement: %s", v.State)
	}
	if v, err := s.Request(ctx, p.actor["adam"], q.ID); err != nil || v.State != "expired" {
		t.Fatalf("request after 31 days: %+v %v", v, err)
	}
	if countEvents(t, s, audit.EvRequestExpired, "request", q.ID) != 1 {
		t.Fatal("expiry not on the ledger")
	}
	p.clk.advance(180 * 24 * time.Hour)
	s.Sweep(ctx)
	if v, _ := s.Account(ctx, p.actor["adam"], "sue"); v.State != "disabled" {
		t.Fatalf("unused for 211 days: %s", v.State)
	}
	if _, err := p.login("sue", goodPassword, ""); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("login of a disabled account: %v", err)
	}
}

// TestIssuedPasswordMustBeChanged: an issued password logs in only
// together with a new one that meets the policy.
func TestIssuedPasswordMustBeChanged(t *testing.T) {
	p := newPeople(t)
	s, ctx := p.s, context.Background()
	q, _ := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountCreate, Username: "olga",
		Account: &accounts.AccountSpec{FullName: "Olga Chen", EmployeeID: "E-5", Roles: roles(accounts.RoleOfficer)}, Reason: "new officer for the north"})
	s.Approve(ctx, p.actor["sue"], q.ID, "appointment letter seen")
	x, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.login("olga", x.Issued.Password, ""); !errors.Is(err, ErrPasswordChange) {
		t.Fatalf("issued password alone: %v", err)
	}
	o := Origin{Via: "socket"}
	if _, err := s.Login(ctx, o, LoginRequest{Username: "olga", Password: x.Issued.Password, NewPassword: "short"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "length") {
		t.Fatalf("a weak new password: %v", err)
	}
	res, err := s.Login(ctx, o, LoginRequest{Username: "olga", Password: x.Issued.Password, NewPassword: goodPassword})
	if err != nil || !res.PasswordChanged {
		t.Fatalf("%+v %v", res, err)
	}
	if countEvents(t, s, audit.EvAccountPasswordChanged, "username", "olga") != 1 {
		t.Fatal("password change not on the ledger")
	}
}

// TestPauseJob: a pause needs a reason, stops manual runs (the refusal
// recorded), is on the ledger with its person and reason, cannot be
// doubled, is refused to an auditor, and a resume lifts it.
func TestPauseJob(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	p.add("audrey", accounts.RoleAuditor)
	s, ctx := p.s, context.Background()
	s.config().Jobs = append(s.config().Jobs, &configs.Job{Name: "pull"})
	if _, err := s.PauseJob(ctx, p.actor["olga"], "pull", "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a pause without a real reason: %v", err)
	}
	if _, err := s.PauseJob(ctx, p.actor["audrey"], "pull", "auditors do not pause jobs"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an auditor pausing: %v", err)
	}
	if _, err := s.PauseJob(ctx, p.actor["olga"], "pull", "the provider announced maintenance"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PauseJob(ctx, p.actor["olga"], "pull", "the provider announced maintenance"); !errors.Is(err, ErrConflict) {
		t.Fatalf("pausing twice: %v", err)
	}
	_, err := s.RunJob(ctx, p.actor["olga"], "pull", "manual", nil)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "paused by olga") {
		t.Fatalf("a run of a paused job: %v", err)
	}
	if countEvents(t, s, audit.EvJobPaused, "reason", "the provider announced maintenance") != 1 {
		t.Fatal("the pause must be on the ledger with its reason")
	}
	found := false
	for _, ev := range events(t, s, audit.EvAccessRefused) {
		found = found || (ev.Details["action"] == string(ActRunJob) && strings.Contains(ev.Details["rule"], "paused"))
	}
	if !found {
		t.Fatal("the refused run must be recorded")
	}
	if _, err := s.ResumeJob(ctx, p.actor["olga"], "pull", ""); err != nil {
		t.Fatal(err)
	}
	if pz, _ := s.JobPause("pull"); pz != nil {
		t.Fatalf("still paused: %+v", pz)
	}
	if countEvents(t, s, audit.EvJobResumed, "", "") != 1 {
		t.Fatal("the resume must be on the ledger")
	}
}

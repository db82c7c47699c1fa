package service

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// The state buckets of the ledger's file that hold accounts and requests.
const (
	stateAccounts = "accounts"
	stateRequests = "requests"
)

// AccountView is an account as the API shows it: never its password
// hashes or second-factor secret.
type AccountView struct {
	Username           string              `json:"username"`
	FullName           string              `json:"full_name"`
	EmployeeID         string              `json:"employee_id,omitempty"`
	Unit               string              `json:"unit,omitempty"`
	Roles              []accounts.Role     `json:"roles"`
	State              string              `json:"state"`
	Contractor         *accounts.Agreement `json:"contractor,omitempty"`
	Created            time.Time           `json:"created"`
	PasswordSetAt      time.Time           `json:"password_set_at"`
	MustChangePassword bool                `json:"must_change_password,omitempty"`
	FailedLogins       int                 `json:"failed_logins"`
	LockedAt           time.Time           `json:"locked_at,omitzero"`
	LastLogin          time.Time           `json:"last_login,omitzero"`
	TOTP               bool                `json:"totp"`
}

func viewAccount(a *accounts.Account) AccountView {
	return AccountView{Username: a.Username, FullName: a.FullName, EmployeeID: a.EmployeeID, Unit: a.Unit,
		Roles: a.Roles, State: string(a.State), Contractor: a.Contractor, Created: a.Created,
		PasswordSetAt: a.PasswordSetAt, MustChangePassword: a.MustChangePassword, FailedLogins: a.FailedLogins,
		LockedAt: a.LockedAt, LastLogin: a.LastLogin, TOTP: a.TOTPSecret != ""}
}

// RequestView is a request with its derived state.
type RequestView struct {
	accounts.Request
	State string `json:"state"`
}

func viewRequest(r *accounts.Request) RequestView {
	return RequestView{Request: *r, State: string(r.State())}
}

// Issued is a password issued to a new or recovered account: shown once,
// to be changed at the first login.
type Issued struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// policy is the account policy the configuration sets, with the hash
// parameters of HashParams if set (tests).
func (s *Service) policy() accounts.Policy {
	p, err := accounts.PolicyFromConfig(s.config().Accounts)
	if err != nil {
		p = accounts.DefaultPolicy()
	}
	if s.HashParams != (accounts.Params{}) {
		p.Hash = s.HashParams
	}
	if s.IdleOverride > 0 {
		p.Idle = s.IdleOverride
	}
	return p
}

func getAccount(r audit.Records, username string) (*accounts.Account, error) {
	b := r.Get(username)
	if b == nil {
		return nil, nil
	}
	var a accounts.Account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("account %s: stored record unreadable: %w", username, err)
	}
	return &a, nil
}

func putAccount(tx *audit.Tx, a *accounts.Account) error {
	w, err := tx.State(stateAccounts)
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return w.Put(a.Username, b)
}

func getRequest(r audit.Records, id string) (*accounts.Request, error) {
	b := r.Get(id)
	if b == nil {
		return nil, nil
	}
	var q accounts.Request
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("request %s: stored record unreadable: %w", id, err)
	}
	return &q, nil
}

func putRequest(tx *audit.Tx, q *accounts.Request) error {
	w, err := tx.State(stateRequests)
	if err != nil {
		return err
	}
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return w.Put(q.ID, b)
}

// account reads one account outside a transaction.
func (s *Service) account(username string) (*accounts.Account, error) {
	var a *accounts.Account
	err := s.Ledger.ViewState(stateAccounts, func(r audit.Records) (err error) {
		a, err = getAccount(r, username)
		return err
	})
	return a, err
}

// allAccounts reads every account, sorted by username.
func (s *Service) allAccounts() ([]*accounts.Account, error) {
	var out []*accounts.Account
	err := s.Ledger.ViewState(stateAccounts, func(r audit.Records) error {
		return r.ForEach(func(k string, v []byte) error {
			var a accounts.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("account %s: stored record unreadable: %w", k, err)
			}
			out = append(out, &a)
			return nil
		})
	})
	return out, err
}

// event builds an event by a with its origin's details merged with more.
func event(a Actor, typ audit.EventType, more map[string]string) audit.Event {
	d := a.details()
	for k, v := range more {
		if v != "" {
			d[k] = v
		}
	}
	if len(d) == 0 {
		d = nil
	}
	return audit.Event{Actor: actorName(a), Type: typ, Details: d}
}

func roleNames(rs []accounts.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// IssuePassword makes a random password that meets the policy for a: 20
// characters from an alphabet without look-alikes, with upper and lower
// case letters and digits.
func IssuePassword(p accounts.PasswordPolicy, a *accounts.Account) (string, error) {
	const (
		upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower = "abcdefghijkmnpqrstuvwxyz"
		digit = "23456789"
	)
	all := upper + lower + digit
	n := max(20, p.MinLength)
	for range 100 {
		b := make([]byte, n)
		for i := range b {
			set := all
			switch i {
			case 0:
				set = upper
			case 1:
				set = lower
			case 2:
				set = digit
			}
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
			if err != nil {
				return "", err
			}
			b[i] = set[k.Int64()]
		}
		// Shuffle so the classes are not always in front.
		for i := len(b) - 1; i > 0; i-- {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
			if err != nil {
				return "", err
			}
			j := int(k.Int64())
			b[i], b[j] = b[j], b[i]
		}
		if len(p.Check(string(b), a)) == 0 {
			return string(b), nil
		}
	}
	return "", errors.New("could not issue a password that meets the policy")
}

// BootstrapAccount is one of the first accounts, made at init.
type BootstrapAccount struct {
	Username   string
	FullName   string
	EmployeeID string
	Unit       string
	Roles      []accounts.Role
	Contractor *accounts.Agreement
}

// Bootstrap creates the first accounts in tx (custodian init), each with an
// issued password to be changed at the first login, recorded as a
// bootstrap by the host account that ran init. It refuses if any account
// exists: after the first day, accounts come only through approved
// requests.
func Bootstrap(tx *audit.Tx, hostUser string, list []BootstrapAccount, p accounts.Policy, now time.Time) ([]Issued, error) {
	w, err := tx.State(stateAccounts)
	if err != nil {
		return nil, err
	}
	any := false
	if err := w.ForEach(func(string, []byte) error { any = true; return nil }); err != nil {
		return nil, err
	}
	if any {
		return nil, fmt.Errorf("%w: accounts exist; new ones are made through approved requests (`custodian account request create`)", ErrConflict)
	}
	var issued []Issued
	seen := map[string]bool{}
	for _, b := range list {
		if seen[b.Username] {
			return nil, fmt.Errorf("%w: %s is named twice; one account per person", ErrInvalid, b.Username)
		}
		seen[b.Username] = true
		a := &accounts.Account{Username: b.Username, FullName: b.FullName, EmployeeID: b.EmployeeID, Unit: b.Unit,
			Roles: b.Roles, State: accounts.StateActive, Created: now, Contractor: b.Contractor}
		if a.FullName == "" {
			a.FullName = b.Username
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w: account %s: %v", ErrInvalid, b.Username, err)
		}
		pw, err := IssuePassword(p.Password, a)
		if err != nil {
			return nil, err
		}
		if err := p.Password.SetPassword(a, pw, p.Hash, now, true); err != nil {
			return nil, err
		}
		if err := putAccount(tx, a); err != nil {
			return nil, err
		}
		if _, err := tx.Append(audit.Event{Actor: "host:" + hostUser, Time: now, Type: audit.EvAccountBootstrapped, Details: map[string]string{
			"username": a.Username, "roles": roleNames(a.Roles), "unit": a.Unit, "host_user": hostUser}}); err != nil {
			return nil, err
		}
		issued = append(issued, Issued{Username: a.Username, Password: pw})
	}
	return issued, nil
}

// sessions are the live sessions, in memory only: a restart of the daemon
// ends every session. The server keeps only each token's SHA-256.
type sessions struct {
	mu sync.Mutex
	m  map[string]*liveSession // by token hash
	// revoked remembers ended sessions until their absolute limit, so
	// that a token used after logout is recognised and recorded.
	revoked map[string]*liveSession
}

type liveSession struct {
	accounts.Session
	restricted string
	origin     Origin
}

// sessionID is the short name of a session on the ledger: a prefix of its
// token's hash, which cannot be turned back into the token.
func sessionID(tokenHash string) string { return tokenHash[:16] }

func (ss *sessions) add(ls *liveSession) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m, ss.revoked = map[string]*liveSession{}, map[string]*liveSession{}
	}
	ss.m[ls.TokenHash] = ls
}

// revokeUser ends every session of username for reason and returns their
// IDs.
func (ss *sessions) revokeUser(username, reason string) []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var ids []string
	for h, ls := range ss.m {
		if ls.Username == username {
			ls.Revoke(reason)
			ss.revoked[h] = ls
			delete(ss.m, h)
			ids = append(ids, sessionID(h))
		}
	}
	sort.Strings(ids)
	return ids
}

func (ss *sessions) revoke(tokenHash, reason string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ls, ok := ss.m[tokenHash]
	if !ok {
		return false
	}
	ls.Revoke(reason)
	ss.revoked[tokenHash] = ls
	delete(ss.m, tokenHash)
	return true
}

// prune drops sessions past their absolute limit.
func (ss *sessions) prune(now time.Time, absolute time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for h, ls := range ss.m {
		if now.Sub(ls.Created) >= absolute {
			delete(ss.m, h)
		}
	}
	for h, ls := range ss.revoked {
		if now.Sub(ls.Created) >= absolute {
			delete(ss.revoked, h)
		}
	}
}

// revokeSessions ends username's sessions and returns the event that
// records it, or nil if there were none.
func (s *Service) revokeSessions(by Actor, username, reason string) *audit.Event {
	ids := s.sess.revokeUser(username, reason)
	if len(ids) == 0 {
		return nil
	}
	ev := event(by, audit.EvSessionRevoked, map[string]string{"username": username, "reason": reason, "sessions": strings.Join(ids, " ")})
	return &ev
}

// argon limits concurrent password hashing (each takes the policy's
// memory), so that a flood of logins cannot exhaust the host.
var argon = make(chan struct{}, 4)

// LoginRequest is a login attempt.
type LoginRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	NewPassword string `json:"new_password,omitempty"`
	TOTP        string `json:"totp,omitempty"`
}

// LoginResult is a session, given once.
type LoginResult struct {
	Token           string      `json:"token"`
	Session         string      `json:"session"`
	Account         AccountView `json:"account"`
	Idle            string      `json:"idle"`
	Expires         time.Time   `json:"expires"` // the absolute limit
	Restricted      string      `json:"restricted,omitempty"`
	PasswordChanged bool        `json:"password_changed,omitempty"`
}

// maxSecret bounds passwords and codes in requests.
const maxSecret = 1024

// Login checks a login attempt and starts a session. Wrong passwords and
// unknown usernames are answered alike and take as long. Every outcome is
// on the ledger: success with the session, failure with its reason, a
// lock, and a password changed in the same step (an issued or expired
// password can only be used to set a new one).
func (s *Service) Login(ctx context.Context, o Origin, req LoginRequest) (LoginResult, error) {
	switch {
	case strings.TrimSpace(req.Username) == "":
		return LoginResult{}, fmt.Errorf("%w: username: required (--user)", ErrInvalid)
	case req.Password == "":
		return LoginResult{}, fmt.Errorf("%w: password: required (--password-file or the prompt)", ErrInvalid)
	case len(req.Username) > 64 || len(req.Password) > maxSecret || len(req.NewPassword) > maxSecret || len(req.TOTP) > 16:
		return LoginResult{}, fmt.Errorf("%w: username, password or code too long", ErrInvalid)
	}
	argon <- struct{}{}
	defer func() { <-argon }()
	pol := s.policy()
	by := Actor{Origin: o}
	for range 3 {
		res, retry, err := s.login(by, pol, req)
		if !retry {
			return res, err
		}
	}
	return LoginResult{}, fmt.Errorf("%w: the account changed during the login; try again", ErrBusy)
}

// login is one attempt: the password is checked outside the ledger's write
// transaction (it is slow by design), then the outcome is written if the
// account did not change meanwhile (retry otherwise).
func (s *Service) login(by Actor, pol accounts.Policy, req LoginRequest) (res LoginResult, retry bool, err error) {
	now := s.now()
	var before []byte
	var acct *accounts.Account
	if err := s.Ledger.ViewState(stateAccounts, func(r audit.Records) (err error) {
		before = r.Get(req.Username)
		acct, err = getAccount(r, req.Username)
		return err
	}); err != nil {
		return res, false, err
	}
	wasState := accounts.AccountState("")
	if acct != nil {
		wasState = acct.State
	}
	cerr := pol.CheckLogin(acct, req.Password, req.TOTP, now)

	var evs []audit.Event
	fail := func(reason string) {
		d := map[string]string{"reason": reason}
		if acct != nil {
			d["username"] = acct.Username
		} else {
			d["unknown_username"] = "true" // what was typed may be a password: never recorded
		}
		evs = append(evs, event(by, audit.EvLoginFailed, d))
	}
	var out error
	var restricted string
	changed := false
	switch {
	case errors.Is(cerr, accounts.ErrBadCredentials):
		fail("wrong username or password")
		out = fmt.Errorf("%w: wrong username or password", ErrUnauthenticated)
	case errors.Is(cerr, accounts.ErrDisabled):
		fail(cerr.Error())
		if acct.State == accounts.StateActive {
			acct.State = accounts.StateDisabled
			evs = append(evs, audit.Event{Actor: SystemActor, Type: audit.EvAccountDisabled,
				Details: map[string]string{"username": acct.Username, "reason": cerr.Error()}})
		}
		out = fmt.Errorf("%w: %w; an approved account-change request by a supervisor and an admin reopens it", ErrUnauthenticated, cerr)
	case errors.Is(cerr, accounts.ErrLocked) && !errors.Is(cerr, accounts.ErrBadTOTP):
		fail("account locked")
		out = fmt.Errorf("%w: %w (`custodian account request unlock --user %s`)", ErrUnauthenticated, accounts.ErrLocked, acct.Username)
	case errors.Is(cerr, accounts.ErrTOTPRequired):
		return res, false, fmt.Errorf("%w: %w: give --totp CODE from your authenticator", ErrUnauthenticated, accounts.ErrTOTPRequired)
	case errors.Is(cerr, accounts.ErrBadTOTP):
		fail("wrong one-time code")
		out = fmt.Errorf("%w: %v", ErrUnauthenticated, cerr)
	case cerr == nil, errors.Is(cerr, accounts.ErrPasswordChangeRequired), errors.Is(cerr, accounts.ErrTOTPEnrollRequired):
		if errors.Is(cerr, accounts.ErrTOTPEnrollRequired) {
			restricted = "enrol a second factor first (`custodian account totp enroll`, then `custodian account totp confirm CODE`), then log in again with --totp"
		}
		if acct.MustChangePassword || pol.Password.Expired(acct, now) {
			if req.NewPassword == "" {
				why := "was issued"
				if !acct.MustChangePassword {
					why = "has expired"
				}
				fail("password change required")
				out = fmt.Errorf("%w: your password %s; log in with --new-password-file FILE (or at the prompt) to set a new one", ErrPasswordChange, why)
				break
			}
			if err := pol.Password.SetPassword(acct, req.NewPassword, pol.Hash, now, false); err != nil {
				return res, false, fmt.Errorf("%w: new password: %v", ErrInvalid, err)
			}
			changed = true
			evs = append(evs, event(Actor{Name: acct.Username, Origin: by.Origin}, audit.EvAccountPasswordChanged,
				map[string]string{"username": acct.Username, "reason": "at login"}))
		}
	default:
		return res, false, cerr
	}
	if acct != nil && wasState == accounts.StateActive && acct.State == accounts.StateLocked {
		evs = append(evs, audit.Event{Actor: SystemActor, Type: audit.EvAccountLocked, Details: map[string]string{
			"username": acct.Username, "failures": strconv.Itoa(acct.FailedLogins)}})
		if ev := s.revokeSessions(Actor{Name: SystemActor}, acct.Username, "lock"); ev != nil {
			evs = append(evs, *ev)
		}
		out = fmt.Errorf("%w: %v", out, accounts.ErrLocked)
	}
	var token string
	var ls *liveSession
	if out == nil {
		var sess accounts.Session
		token, sess, err = accounts.NewSession(acct.Username, now)
		if err != nil {
			return res, false, err
		}
		ls = &liveSession{Session: sess, restricted: restricted, origin: by.Origin}
		who := s.actorOf(acct, ls)
		d := map[string]string{"username": acct.Username, "session": sessionID(sess.TokenHash), "via": by.Via, "remote": by.Remote}
		if restricted != "" {
			d["restricted"] = "second factor not enrolled"
		}
		evs = append(evs, event(who, audit.EvLoginSucceeded, d))
	}
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		if acct != nil {
			w, err := tx.State(stateAccounts)
			if err != nil {
				return err
			}
			if string(w.Get(acct.Username)) != string(before) {
				retry = true
				return errRetry
			}
			if err := putAccount(tx, acct); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if _, err := tx.Append(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if retry {
		return res, true, nil
	}
	if err != nil && (errors.Is(err, audit.ErrFrozen) || errors.Is(err, audit.ErrWrite)) && !changed {
		// The ledger cannot be written (damaged, or the disk): people must
		// still be able to log in to see why and to verify it. The events
		// take the daemon's path for events it cannot write now (kept, and
		// written or reported later); the account's record is not updated,
		// so failed attempts do not count towards a lock meanwhile.
		s.Logger.Warn().Err(err).Msg("login while the ledger cannot be written: its events are kept for later")
		for _, ev := range evs {
			s.recordEvent(ev)
		}
		err = nil
	}
	if err != nil {
		return res, false, fmt.Errorf("%w: the login cannot be recorded on the ledger: %v", ErrUnavailable, err)
	}
	s.observe(evs...)
	if out != nil {
		return res, false, out
	}
	s.sess.add(ls)
	return LoginResult{Token: token, Session: sessionID(ls.TokenHash), Account: viewAccount(acct),
		Idle: pol.Idle.String(), Expires: ls.Created.Add(pol.Absolute), Restricted: restricted, PasswordChanged: changed}, false, nil
}

var errRetry = errors.New("retry")

// actorOf is the actor a session of acct acts as.
func (s *Service) actorOf(acct *accounts.Account, ls *liveSession) Actor {
	return Actor{Name: acct.Username, FullName: acct.FullName, Roles: acct.Roles, Unit: acct.Unit,
		Contractor: acct.HasRole(accounts.RoleContractor), Restricted: ls.restricted,
		Session: sessionID(ls.TokenHash), Origin: ls.origin}
}

// Authenticate finds the session of token and returns who acts through it,
// with o (this call's origin). An unknown token is refused without a
// trace; a token of an ended session (logged out, revoked, expired) is
// refused and, as a stolen token may be, recorded.
func (s *Service) Authenticate(o Origin, token string) (Actor, error) {
	return s.authenticate(o, token, true)
}

// Peek is Authenticate for a request the person did not make: a progress
// page that refreshes itself. The same checks apply, but the session's
// idle clock does not restart, so a page left open still ends the
// session at the idle limit (clause 五(三)), and its next refresh goes
// to the login page.
func (s *Service) Peek(o Origin, token string) (Actor, error) {
	return s.authenticate(o, token, false)
}

func (s *Service) authenticate(o Origin, token string, use bool) (Actor, error) {
	if token == "" {
		return Actor{Origin: o}, fmt.Errorf("%w: no session; log in with `custodian login`", ErrUnauthenticated)
	}
	now := s.now()
	pol := s.policy()
	h := accounts.HashToken(token)
	s.sess.mu.Lock()
	ls, ok := s.sess.m[h]
	if !ok {
		old, wasRevoked := s.sess.revoked[h]
		s.sess.mu.Unlock()
		if wasRevoked {
			a := Actor{Name: old.Username, Session: sessionID(h), Origin: o}
			s.recordEvent(event(a, audit.EvAccessRefused, map[string]string{"action": "session.use", "resource": "session " + sessionID(h),
				"code": ErrUnauthenticated.Name(), "rule": "session ended: " + old.RevokedFor}))
			return Actor{Origin: o}, fmt.Errorf("%w: this session ended (%s); log in again", ErrUnauthenticated, old.RevokedFor)
		}
		return Actor{Origin: o}, fmt.Errorf("%w: unknown or expired session; log in with `custodian login`", ErrUnauthenticated)
	}
	if err := ls.Check(now, pol.Idle, pol.Absolute); err != nil {
		ls.Revoke("expired")
		s.sess.revoked[h] = ls
		delete(s.sess.m, h)
		s.sess.mu.Unlock()
		return Actor{Origin: o}, fmt.Errorf("%w: %v; log in again", ErrUnauthenticated, err)
	}
	if use {
		ls.Touch(now)
	}
	snapshot := *ls
	s.sess.mu.Unlock()
	acct, err := s.account(snapshot.Username)
	if err != nil {
		return Actor{Origin: o}, err
	}
	if acct == nil || acct.State != accounts.StateActive || acct.DisabledOn(now) {
		s.sess.revoke(h, "account not active")
		return Actor{Origin: o}, fmt.Errorf("%w: the account is not active", ErrUnauthenticated)
	}
	a := s.actorOf(acct, &snapshot)
	a.Origin = o
	a.IdleEnds = snapshot.LastSeen.Add(pol.Idle)
	return a, nil
}

// recordEvent records ev, logging (not returning) a failure: for events
// that accompany an answer already decided.
func (s *Service) recordEvent(ev audit.Event) {
	if err := s.Record(ev); err != nil {
		s.Logger.Error().Err(err).Str("type", string(ev.Type)).Msg("cannot record an event on the ledger")
	}
}

// Whoami describes the caller's account and session.
type Whoami struct {
	Account    AccountView `json:"account"`
	Session    string      `json:"session"`
	Via        string      `json:"via,omitempty"`
	HostUser   string      `json:"host_user,omitempty"`
	Restricted string      `json:"restricted,omitempty"`
}

// Whoami returns the caller's account and session.
func (s *Service) Whoami(ctx context.Context, a Actor) (Whoami, error) {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return Whoami{}, err
	}
	acct, err := s.account(a.Name)
	if err != nil {
		return Whoami{}, err
	}
	if acct == nil {
		return Whoami{}, fmt.Errorf("%w: no account %s", ErrNotFound, a.Name)
	}
	return Whoami{Account: viewAccount(acct), Session: a.Session, Via: a.Via, HostUser: a.HostUser, Restricted: a.Restricted}, nil
}

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, a Actor, token string) error {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return err
	}
	h := accounts.HashToken(token)
	if !s.sess.revoke(h, "logout") {
		return fmt.Errorf("%w: no such session", ErrUnauthenticated)
	}
	s.recordEvent(event(a, audit.EvSessionRevoked, map[string]string{"username": a.Name, "reason": "logout", "sessions": sessionID(h)}))
	return nil
}

// ChangePassword changes the caller's password after checking the old one.
// Every session of the account ends: log in again with the new password.
func (s *Service) ChangePassword(ctx context.Context, a Actor, old, pw string) error {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return err
	}
	if old == "" || pw == "" || len(old) > maxSecret || len(pw) > maxSecret {
		return fmt.Errorf("%w: give the current password (--password-file) and the new one (--new-password-file)", ErrInvalid)
	}
	argon <- struct{}{}
	defer func() { <-argon }()
	pol := s.policy()
	acct, err := s.account(a.Name)
	if err != nil {
		return err
	}
	if acct == nil {
		return fmt.Errorf("%w: no account %s", ErrNotFound, a.Name)
	}
	if ok, err := accounts.Verify(old, acct.PasswordHash); err != nil || !ok {
		return s.refused(a, ActSelf, Resource{Kind: "account", ID: a.Name}, fmt.Errorf("%w: password: the current password is wrong", ErrForbidden))
	}
	now := s.now()
	if err := pol.Password.SetPassword(acct, pw, pol.Hash, now, false); err != nil {
		return fmt.Errorf("%w: new password: %v", ErrInvalid, err)
	}
	return s.updateAccount(a, acct, func(tx *audit.Tx) error {
		_, err := tx.Append(event(a, audit.EvAccountPasswordChanged, map[string]string{"username": a.Name, "reason": "by the person"}))
		return err
	}, "password change")
}

// updateAccount stores acct with the events fn appends, then ends the
// account's sessions (if revokeFor is set) and records that.
func (s *Service) updateAccount(by Actor, acct *accounts.Account, fn func(tx *audit.Tx) error, revokeFor string) error {
	if err := s.open(); err != nil {
		return err
	}
	if err := s.Ledger.Update(func(tx *audit.Tx) error {
		if err := putAccount(tx, acct); err != nil {
			return err
		}
		return fn(tx)
	}); err != nil {
		return err
	}
	if revokeFor != "" {
		if ev := s.revokeSessions(by, acct.Username, revokeFor); ev != nil {
			s.recordEvent(*ev)
		}
	}
	return nil
}

// TOTPEnrolment is a second-factor secret to put in an authenticator app.
type TOTPEnrolment struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
}

// EnrollTOTP starts a second-factor enrolment for the caller: a new secret,
// kept pending until ConfirmTOTP proves the app holds it.
func (s *Service) EnrollTOTP(ctx context.Context, a Actor) (TOTPEnrolment, error) {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return TOTPEnrolment{}, err
	}
	acct, err := s.account(a.Name)
	if err != nil || acct == nil {
		return TOTPEnrolment{}, fmt.Errorf("%w: no account %s", ErrNotFound, a.Name)
	}
	issuer := "custodian"
	if u := s.config().Unit; u != "" {
		issuer = "custodian " + u
	}
	secret, uri, err := accounts.EnrollTOTP(acct.Username, issuer)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	acct.TOTPPending = secret
	if err := s.updateAccount(a, acct, func(*audit.Tx) error { return nil }, ""); err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: secret, URI: uri}, nil
}

// ConfirmTOTP completes an enrolment with the app's first code. The
// account's sessions end: log in again with --totp.
func (s *Service) ConfirmTOTP(ctx context.Context, a Actor, code string) error {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return err
	}
	acct, err := s.account(a.Name)
	if err != nil || acct == nil {
		return fmt.Errorf("%w: no account %s", ErrNotFound, a.Name)
	}
	if acct.TOTPPending == "" {
		return fmt.Errorf("%w: no enrolment in progress; start one with `custodian account totp enroll`", ErrConflict)
	}
	step, ok, err := accounts.ValidateTOTP(acct.TOTPPending, code, s.now())
	if err != nil || !ok {
		return s.refused(a, ActSelf, Resource{Kind: "account", ID: a.Name}, fmt.Errorf("%w: totp: the code does not match the new secret; check the app's clock and try the next code", ErrForbidden))
	}
	acct.TOTPSecret, acct.TOTPPending, acct.TOTPLastStep = acct.TOTPPending, "", step
	return s.updateAccount(a, acct, func(tx *audit.Tx) error {
		_, err := tx.Append(event(a, audit.EvAccountTOTPEnrolled, map[string]string{"username": a.Name}))
		return err
	}, "second factor enrolled")
}

// Accounts lists every account.
func (s *Service) Accounts(ctx context.Context, a Actor) ([]AccountView, error) {
	if err := s.authorize(a, ActReadAccounts, Resource{Kind: "account"}); err != nil {
		return nil, err
	}
	all, err := s.allAccounts()
	if err != nil {
		return nil, err
	}
	out := make([]AccountView, len(all))
	for i, x := range all {
		out[i] = viewAccount(x)
	}
	return out, nil
}

// Account shows one account; anyone may see their own.
func (s *Service) Account(ctx context.Context, a Actor, username string) (AccountView, error) {
	act := ActReadAccounts
	if username == a.Name {
		act = ActSelf
	}
	if err := s.authorize(a, act, Resource{Kind: "account", ID: username}); err != nil {
		return AccountView{}, err
	}
	acct, err := s.account(username)
	if err != nil {
		return AccountView{}, err
	}
	if acct == nil {
		return AccountView{}, fmt.Errorf("%w: no account %q; list them with `custodian account list`", ErrNotFound, username)
	}
	return viewAccount(acct), nil
}

// AccountRequest asks for an account to be created, changed, disabled or
// unlocked.
type AccountRequest struct {
	Kind     accounts.Kind         `json:"kind"`
	Username string                `json:"username"`
	Account  *accounts.AccountSpec `json:"account,omitempty"`
	Reason   string                `json:"reason"`
}

var accountKinds = []accounts.Kind{accounts.KindAccountCreate, accounts.KindAccountChange, accounts.KindAccountDisable, accounts.KindUnlock}

// checkAccountRequest checks that the request can be carried out against
// the accounts as they are, and returns the account it would leave (nil
// for a creation checked before the account exists).
func (s *Service) checkAccountRequest(r audit.Records, kind accounts.Kind, username string, spec *accounts.AccountSpec) (*accounts.Account, error) {
	cur, err := getAccount(r, username)
	if err != nil {
		return nil, err
	}
	switch kind {
	case accounts.KindAccountCreate:
		if cur != nil {
			return nil, fmt.Errorf("%w: username: %s is taken (%s); usernames are never reused", ErrConflict, username, cur.State)
		}
		if spec == nil {
			return nil, fmt.Errorf("%w: an account creation needs --name, --employee-id, --unit and --roles", ErrInvalid)
		}
		a := &accounts.Account{Username: username, State: accounts.StateActive, Unit: s.config().Unit}
		spec.Apply(a)
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if strings.TrimSpace(a.EmployeeID) == "" {
			return nil, fmt.Errorf("%w: employee_id: required (--employee-id): one account per person", ErrInvalid)
		}
		return a, nil
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: no account %q; list them with `custodian account list`", ErrNotFound, username)
	}
	switch kind {
	case accounts.KindAccountChange:
		if spec == nil || (spec.FullName == "" && spec.EmployeeID == "" && spec.Unit == "" && len(spec.Roles) == 0 && spec.Contractor == nil) {
			return nil, fmt.Errorf("%w: an account change names what changes (--name, --employee-id, --unit, --roles, --agreement)", ErrInvalid)
		}
		if cur.State == accounts.StateDisabled {
			return nil, fmt.Errorf("%w: %s is disabled", ErrConflict, username)
		}
		a := *cur
		spec.Apply(&a)
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return &a, nil
	case accounts.KindAccountDisable:
		if cur.State == accounts.StateDisabled {
			return nil, fmt.Errorf("%w: %s is already disabled", ErrConflict, username)
		}
		a := *cur
		a.State = accounts.StateDisabled
		return &a, nil
	case accounts.KindUnlock:
		if cur.State != accounts.StateLocked {
			return nil, fmt.Errorf("%w: %s is %s, not locked", ErrConflict, username, cur.State)
		}
		return cur, nil
	}
	return nil, fmt.Errorf("%w: kind: %q is not an account request (use %s)", ErrInvalid, kind, kindNames(accountKinds))
}

func kindNames(ks []accounts.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// FileAccountRequest files a request for an account change; a supervisor
// approves it and an admin carries it out.
func (s *Service) FileAccountRequest(ctx context.Context, a Actor, req AccountRequest) (RequestView, error) {
	res := Resource{Kind: "account", ID: req.Username}
	if err := s.authorize(a, ActFileAccountRequest, res); err != nil {
		return RequestView{}, err
	}
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	if !slices.Contains(accountKinds, req.Kind) {
		return RequestView{}, fmt.Errorf("%w: kind: %q is not an account request; use %s", ErrInvalid, req.Kind, kindNames(accountKinds))
	}
	if err := accounts.ValidateUsername(req.Username); err != nil {
		return RequestView{}, fmt.Errorf("%w: %v (--user)", ErrInvalid, err)
	}
	if err := checkReason(req.Reason); err != nil {
		return RequestView{}, err
	}
	if err := s.Ledger.ViewState(stateAccounts, func(r audit.Records) error {
		_, err := s.checkAccountRequest(r, req.Kind, req.Username, req.Account)
		return err
	}); err != nil {
		return RequestView{}, err
	}
	now := s.now()
	var q *accounts.Request
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		// One open request per account and kind: a second would race the
		// first to the executor.
		if err := w.ForEach(func(_ string, v []byte) error {
			var o accounts.Request
			if json.Unmarshal(v, &o) == nil && o.Subject == req.Username && o.Kind == req.Kind &&
				(o.State() == accounts.RequestPending || o.State() == accounts.RequestApproved) && now.Before(o.Expires) {
				return fmt.Errorf("%w: request %s (%s for %s) is still open; cancel it or let it finish", ErrConflict, o.ID, o.Kind, o.Subject)
			}
			return nil
		}); err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		q, err = accounts.NewRequest(fmt.Sprintf("R%d", n), req.Kind, req.Username, req.Reason, a.Name, now, 0)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		q.Account = req.Account
		if err := putRequest(tx, q); err != nil {
			return err
		}
		_, err = tx.Append(requestEvent(a, audit.EvRequestFiled, q, q.Reason))
		return err
	})
	if err != nil {
		return RequestView{}, err
	}
	s.observe(requestEvent(a, audit.EvRequestFiled, q, q.Reason))
	return viewRequest(q), nil
}

func requestEvent(a Actor, typ audit.EventType, q *accounts.Request, reason string) audit.Event {
	d := map[string]string{"request": q.ID, "kind": string(q.Kind), "subject": q.Subject, "reason": reason}
	if q.Account != nil && len(q.Account.Roles) > 0 {
		d["roles"] = roleNames(q.Account.Roles)
	}
	return event(a, typ, d)
}

// Requests lists requests, newest first; pending only if asked. Requests
// past their expiry are marked expired (and that recorded) first.
func (s *Service) Requests(ctx context.Context, a Actor, pending bool) ([]RequestView, error) {
	if err := s.authorize(a, ActReadRequests, Resource{Kind: "request"}); err != nil {
		return nil, err
	}
	s.expireRequests()
	var out []RequestView
	err := s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(k string, v []byte) error {
			var q accounts.Request
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("request %s: stored record unreadable: %w", k, err)
			}
			if pending && q.State() != accounts.RequestPending && q.State() != accounts.RequestApproved {
				return nil
			}
			out = append(out, viewRequest(&q))
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// Request shows one request.
func (s *Service) Request(ctx context.Context, a Actor, id string) (RequestView, error) {
	if err := s.authorize(a, ActReadRequests, Resource{Kind: "request", ID: id}); err != nil {
		return RequestView{}, err
	}
	s.expireRequests()
	q, err := s.requestByID(id)
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// ruleError maps a refusal of the approvals engine to a code: a step on a
// closed or expired request conflicts with its state; anything else is
// forbidden to this person.
func ruleError(err error) error {
	var re *accounts.RuleError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Rule {
	case "closed", "executes-once", "expired", "already-approved", "needs-approvals", "unlock-request":
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return fmt.Errorf("%w: %v", ErrForbidden, err)
}

// stepRequest applies one step to request id in one transaction with its
// event; a refusal by the rules is recorded as such.
func (s *Service) stepRequest(a Actor, act Action, id string, step func(tx *audit.Tx, q *accounts.Request, now time.Time) error) (RequestView, error) {
	res := Resource{Kind: "request", ID: id}
	if err := s.authorize(a, act, res); err != nil {
		return RequestView{}, err
	}
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	s.expireRequests()
	now := s.now()
	var q *accounts.Request
	var refusal error
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		if q, err = getRequest(w, id); err != nil {
			return err
		}
		if q == nil {
			return fmt.Errorf("%w: no request %q; list them with `custodian request list`", ErrNotFound, id)
		}
		if err := step(tx, q, now); err != nil {
			var re *accounts.RuleError
			if errors.As(err, &re) {
				refusal = ruleError(err)
			}
			return err
		}
		return putRequest(tx, q)
	})
	if refusal != nil {
		return RequestView{}, s.refused(a, act, res, refusal)
	}
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// Approve records the caller's approval of a request.
func (s *Service) Approve(ctx context.Context, a Actor, id, reason string) (RequestView, error) {
	if err := checkReason(reason); err != nil {
		return RequestView{}, err
	}
	var ev audit.Event
	v, err := s.stepRequest(a, ActDecideRequest, id, func(tx *audit.Tx, q *accounts.Request, now time.Time) error {
		if err := q.Approve(a.Name, a.Roles, reason, now); err != nil {
			return err
		}
		ev = requestEvent(a, audit.EvRequestApproved, q, reason)
		ev.Details["state"] = string(q.State())
		_, err := tx.Append(ev)
		return err
	})
	if err == nil {
		s.observe(ev)
	}
	return v, err
}

// Reject records the caller's rejection of a request.
func (s *Service) Reject(ctx context.Context, a Actor, id, reason string) (RequestView, error) {
	if err := checkReason(reason); err != nil {
		return RequestView{}, err
	}
	var ev audit.Event
	v, err := s.stepRequest(a, ActDecideRequest, id, func(tx *audit.Tx, q *accounts.Request, now time.Time) error {
		if err := q.Reject(a.Name, a.Roles, reason, now); err != nil {
			return err
		}
		ev = requestEvent(a, audit.EvRequestRejected, q, reason)
		_, err := tx.Append(ev)
		return err
	})
	if err == nil {
		s.observe(ev)
	}
	return v, err
}

// CancelRequest records the requester's cancellation.
func (s *Service) CancelRequest(ctx context.Context, a Actor, id string) (RequestView, error) {
	return s.stepRequest(a, ActCancelRequest, id, func(tx *audit.Tx, q *accounts.Request, now time.Time) error {
		if err := q.Cancel(a.Name, now); err != nil {
			return err
		}
		_, err := tx.Append(requestEvent(a, audit.EvRequestCancelled, q, ""))
		return err
	})
}

// Executed is the outcome of carrying out a request.
type Executed struct {
	Request RequestView `json:"request"`
	Account AccountView `json:"account"`
	// Issued is the one-time password of a created account (shown once).
	Issued *Issued `json:"issued,omitempty"`
}

// ExecuteRequest carries out an approved account request (an admin), in
// one transaction with its events: the account change and the request's
// execution. A role change, a disable and an unlock end the account's
// sessions.
func (s *Service) ExecuteRequest(ctx context.Context, a Actor, id string) (Executed, error) {
	var out Executed
	var revokeFor string
	pol := s.policy()
	view, err := s.stepRequest(a, ActExecuteRequest, id, func(tx *audit.Tx, q *accounts.Request, now time.Time) error {
		if !slices.Contains(accountKinds, q.Kind) {
			return fmt.Errorf("%w: a %s request is carried out by its own command, not `request execute`", ErrConflict, q.Kind)
		}
		w, err := tx.State(stateAccounts)
		if err != nil {
			return err
		}
		next, err := s.checkAccountRequest(w, q.Kind, q.Subject, q.Account)
		if err != nil {
			return fmt.Errorf("%w (request %s can no longer be carried out; cancel it)", err, q.ID)
		}
		var typ audit.EventType
		d := map[string]string{"username": q.Subject, "request": q.ID}
		switch q.Kind {
		case accounts.KindAccountCreate:
			if err := q.Execute(a.Name, a.Roles, now); err != nil {
				return err
			}
			next.Created = now
			pw, err := IssuePassword(pol.Password, next)
			if err != nil {
				return err
			}
			if err := pol.Password.SetPassword(next, pw, pol.Hash, now, true); err != nil {
				return err
			}
			out.Issued = &Issued{Username: next.Username, Password: pw}
			typ = audit.EvAccountCreated
			d["roles"], d["unit"] = roleNames(next.Roles), next.Unit
		case accounts.KindAccountChange:
			if err := q.Execute(a.Name, a.Roles, now); err != nil {
				return err
			}
			typ = audit.EvAccountChanged
			d["roles"], d["unit"] = roleNames(next.Roles), next.Unit
			revokeFor = "account change"
		case accounts.KindAccountDisable:
			if err := q.Execute(a.Name, a.Roles, now); err != nil {
				return err
			}
			typ = audit.EvAccountDisabled
			d["reason"] = q.Reason
			revokeFor = "disable"
		case accounts.KindUnlock:
			if err := accounts.Unlock(next, q, a.Name, a.Roles, now); err != nil {
				return err
			}
			typ = audit.EvAccountUnlocked
		}
		if err := putAccount(tx, next); err != nil {
			return err
		}
		if _, err := tx.Append(requestEvent(a, audit.EvRequestExecuted, q, "")); err != nil {
			return err
		}
		if _, err := tx.Append(event(a, typ, d)); err != nil {
			return err
		}
		out.Account = viewAccount(next)
		return nil
	})
	if err != nil {
		return Executed{}, err
	}
	out.Request = view
	s.observe(requestEvent(a, audit.EvRequestExecuted, &view.Request, ""))
	if revokeFor != "" {
		if ev := s.revokeSessions(a, view.Subject, revokeFor); ev != nil {
			s.recordEvent(*ev)
		}
	}
	return out, nil
}

// expireRequests marks open requests past their expiry as expired, each
// with its event.
func (s *Service) expireRequests() {
	now := s.now()
	var due []string
	_ = s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(k string, v []byte) error {
			var q accounts.Request
			if json.Unmarshal(v, &q) == nil && (q.State() == accounts.RequestPending || q.State() == accounts.RequestApproved) && !now.Before(q.Expires) {
				due = append(due, k)
			}
			return nil
		})
	})
	if len(due) == 0 {
		return
	}
	var expired []audit.Event
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		expired = expired[:0]
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		for _, id := range due {
			q, err := getRequest(w, id)
			if err != nil || q == nil {
				continue
			}
			if q.Expire(now) != nil {
				continue // changed meanwhile
			}
			if err := putRequest(tx, q); err != nil {
				return err
			}
			ev := requestEvent(Actor{Name: SystemActor}, audit.EvRequestExpired, q, "")
			if _, err := tx.Append(ev); err != nil {
				return err
			}
			expired = append(expired, ev)
		}
		return nil
	})
	if err != nil {
		s.Logger.Error().Err(err).Msg("cannot record expired requests")
		return
	}
	s.observe(expired...)
}

// Sweep applies the rules that time alone triggers: requests past their
// expiry expire; accounts whose contractor agreement ended, or unused for
// the configured time, are disabled; expired sessions are forgotten. The
// daemon runs it at start and every few minutes.
func (s *Service) Sweep(ctx context.Context) error {
	s.expireRequests()
	now := s.now()
	pol := s.policy()
	s.sess.prune(now, pol.Absolute)
	all, err := s.allAccounts()
	if err != nil {
		return err
	}
	for _, acct := range all {
		if acct.State != accounts.StateActive {
			continue
		}
		var why string
		switch {
		case acct.DisabledOn(now):
			why = fmt.Sprintf("the contractor agreement %s ended on %s", acct.Contractor.Reference, acct.Contractor.Ends.Format(time.DateOnly))
		case acct.Unused(now, pol.DisableUnusedAfter):
			why = fmt.Sprintf("not used for %d days", int(pol.DisableUnusedAfter/(24*time.Hour)))
		default:
			continue
		}
		acct.State = accounts.StateDisabled
		sys := Actor{Name: SystemActor}
		if err := s.updateAccount(sys, acct, func(tx *audit.Tx) error {
			_, err := tx.Append(audit.Event{Actor: SystemActor, Type: audit.EvAccountDisabled, Details: map[string]string{"username": acct.Username, "reason": why}})
			return err
		}, "disable"); err != nil {
			return err
		}
	}
	return nil
}

// SystemActor attributes what the daemon does on its own.
const SystemActor = "system:custodian"

// RecoverAccount reopens username when no active admin or no active
// supervisor is left (all locked or disabled), so that nobody could unlock
// anyone through a request: the account becomes active with a new issued
// password, recorded loudly (account.recovered, by the host account). The
// caller has proved root on the host and the vault passphrase. Only an
// account holding the missing role can be recovered this way.
func RecoverAccount(tx *audit.Tx, hostUser, username string, p accounts.Policy, now time.Time) (Issued, error) {
	w, err := tx.State(stateAccounts)
	if err != nil {
		return Issued{}, err
	}
	active := map[accounts.Role]int{}
	if err := w.ForEach(func(_ string, v []byte) error {
		var a accounts.Account
		if json.Unmarshal(v, &a) == nil && a.State == accounts.StateActive {
			for _, r := range a.Roles {
				active[r]++
			}
		}
		return nil
	}); err != nil {
		return Issued{}, err
	}
	acct, err := getAccount(w, username)
	if err != nil {
		return Issued{}, err
	}
	if acct == nil {
		return Issued{}, fmt.Errorf("%w: no account %q", ErrNotFound, username)
	}
	var missing []accounts.Role
	for _, r := range []accounts.Role{accounts.RoleAdmin, accounts.RoleSupervisor} {
		if active[r] == 0 && acct.HasRole(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return Issued{}, fmt.Errorf("%w: recover: an active admin and an active supervisor exist (or %s holds neither missing role); use an unlock request (`custodian account request unlock --user %s`)", ErrForbidden, username, username)
	}
	acct.State, acct.FailedLogins, acct.LockedAt = accounts.StateActive, 0, time.Time{}
	pw, err := IssuePassword(p.Password, acct)
	if err != nil {
		return Issued{}, err
	}
	if err := p.Password.SetPassword(acct, pw, p.Hash, now, true); err != nil {
		return Issued{}, err
	}
	if err := putAccount(tx, acct); err != nil {
		return Issued{}, err
	}
	if _, err := tx.Append(audit.Event{Actor: "host:" + hostUser, Time: now, Type: audit.EvAccountRecovered, Details: map[string]string{
		"username": username, "roles": roleNames(missing), "host_user": hostUser,
		"reason": "no active " + roleNames(missing) + " was left; recovered by root on the host with the vault passphrase"}}); err != nil {
		return Issued{}, err
	}
	return Issued{Username: username, Password: pw}, nil
}

package service

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/transfer"
)

func newService(t testing.TB) *Service {
	t.Helper()
	skey, _, err := audit.GenerateSigningKey("custodian-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(t.TempDir(), "ledger.db"), audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := &configs.Config{DataDir: t.TempDir()}
	return &Service{Ledger: l, Runner: &transfer.Runner{Config: cfg, Ledger: l, Log: zerolog.Nop()}, Logger: zerolog.Nop()}
}

func receive(t *testing.T, s *Service, id string, st audit.State) {
	t.Helper()
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Actor: "officer.a", Type: audit.EvDatasetReceived, Dataset: &audit.Dataset{
			ID: id, Job: "pull", Source: "moi", Kind: "change", RemotePath: "/outbox/" + id, State: st, Reason: "as received"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func events(t *testing.T, s *Service, typ audit.EventType) []audit.Event {
	t.Helper()
	evs, err := s.Ledger.Events(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

var auditor = Actor{Name: "auditor.a", Roles: []accounts.Role{accounts.RoleAuditor}}

var officer = Actor{Name: "officer.a", Roles: []accounts.Role{accounts.RoleOfficer}, Origin: Origin{Via: "socket", HostUser: "custodian", UID: 1000}}

// TestReleaseFollowsTheCustodyTable: a held change file becomes verified, a
// quarantined file released (never verified), anything else is refused with
// the rule, and the refusal is on the ledger.
func TestReleaseFollowsTheCustodyTable(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	receive(t, s, "ds-held", audit.StateHeld)
	receive(t, s, "ds-quar", audit.StateQuarantined)
	receive(t, s, "ds-ok", audit.StateVerified)

	if d, err := s.Release(ctx, officer, "ds-held", "the provider withdrew 0004"); err != nil || d.State != string(audit.StateVerified) {
		t.Fatalf("held: %+v %v", d, err)
	}
	if d, err := s.Release(ctx, officer, "ds-quar", "count confirmed by the provider"); err != nil || d.State != string(audit.StateReleased) {
		t.Fatalf("quarantined: %+v %v", d, err)
	}
	_, err := s.Release(ctx, officer, "ds-ok", "nothing to release here")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "only quarantined or held datasets can be released") {
		t.Fatalf("verified: %v", err)
	}
	refused := events(t, s, audit.EvAccessRefused)
	if len(refused) != 1 || refused[0].DatasetID != "ds-ok" || refused[0].Details["action"] != string(ActRelease) ||
		refused[0].Details["code"] != "conflict" || refused[0].Actor != officer.Name {
		t.Fatalf("the refusal must be on the ledger: %+v", refused)
	}
	if _, err := s.Release(ctx, officer, "ds-missing", "no such dataset at all"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := s.Release(ctx, officer, "ds-quar", "short"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("short reason: %v", err)
	}
	if evs := events(t, s, audit.EvDatasetReleased); len(evs) != 2 {
		t.Fatalf("%d releases on the ledger, want 2", len(evs))
	}
}

// TestRefusedByAuthorizationIsRecorded: the one authorization function is
// asked once per action; its refusal is returned as ErrForbidden and
// recorded with the rule.
func TestRefusedByAuthorizationIsRecorded(t *testing.T) {
	s := newService(t)
	receive(t, s, "ds-held", audit.StateHeld)
	var asked []Action
	s.Authorize = func(a Actor, act Action, r Resource) error {
		asked = append(asked, act)
		if act == ActRelease {
			return errors.New("officers of another unit may not release this dataset")
		}
		return nil
	}
	_, err := s.Release(context.Background(), officer, "ds-held", "a good enough reason")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("%v", err)
	}
	if len(asked) != 1 || asked[0] != ActRelease {
		t.Fatalf("authorization asked %v", asked)
	}
	refused := events(t, s, audit.EvAccessRefused)
	if len(refused) != 1 || !strings.Contains(refused[0].Details["rule"], "another unit") || refused[0].Details["code"] != "forbidden" {
		t.Fatalf("%+v", refused)
	}
	if d, _, _ := s.Ledger.Dataset("ds-held"); d.State != audit.StateHeld {
		t.Fatalf("a refused release changed the state to %s", d.State)
	}
	// An unidentified caller is refused by the default rule.
	s.Authorize = nil
	if _, err := s.Datasets(context.Background(), Actor{Origin: Origin{UID: 42}}); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unidentified caller: %v", err)
	}
}

// TestGateRefusesChanges: while the gate is closed, actions that change
// anything are refused with its reason; reads go on.
func TestGateRefusesChanges(t *testing.T) {
	s := newService(t)
	receive(t, s, "ds-held", audit.StateHeld)
	s.Gate = func() error { return errors.New("the ledger cannot be written: no space left on device") }
	ctx := context.Background()
	if _, err := s.Release(ctx, officer, "ds-held", "a good enough reason"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("release: %v", err)
	}
	if _, err := s.RunJob(ctx, officer, "pull", "manual", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("run: %v", err)
	}
	if ds, err := s.Datasets(ctx, officer); err != nil || len(ds) != 1 {
		t.Fatalf("reads must go on: %v %v", ds, err)
	}
	st, err := s.Status(ctx, officer)
	if err != nil || !strings.Contains(st.Ledger.Problem, "no space") {
		t.Fatalf("status must say why: %+v %v", st, err)
	}
}

// TestErrorCodesCrossTheAPI: a code survives problem details.
func TestErrorCodesCrossTheAPI(t *testing.T) {
	for _, c := range codes {
		err := errors.Join(errors.New("context"), c)
		p := ProblemOf(err)
		if p.Code != c.Name() || p.Status != c.Status() {
			t.Errorf("%s: %+v", c.Name(), p)
		}
		back := ErrorFromProblem(p)
		if !errors.Is(back, c) || back.Error() != err.Error() {
			t.Errorf("%s: round trip gave %v", c.Name(), back)
		}
		for _, other := range codes {
			if other != c && errors.Is(back, other) {
				t.Errorf("%s also matches %s", c.Name(), other.Name())
			}
		}
	}
	if CodeOf(errors.New("plain")) != ErrInternal {
		t.Error("an uncoded error must be internal")
	}
}

// TestRepullNeedsAReason: a re-pull without a reason long enough is bad
// input, refused before anything is touched.
func TestRepullNeedsAReason(t *testing.T) {
	s := newService(t)
	receive(t, s, "ds-quar", audit.StateQuarantined)
	if _, err := s.Repull(context.Background(), officer, "ds-quar", "short"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("a reason is required: %v", err)
	}
	if evs := events(t, s, audit.EvDatasetRepulled); len(evs) != 0 {
		t.Fatalf("nothing may be pulled: %+v", evs)
	}
}

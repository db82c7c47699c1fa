package service

import (
	"context"
	"errors"
	"testing"

	"custodian/accounts"
	"custodian/audit"
)

// TestSessionsListAndRevoke: a person sees their own live sessions (and
// which is the current one), never another's; revoking one ends it at
// once, on the ledger; another person's session ID is not found.
func TestSessionsListAndRevoke(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	p.add("otto", accounts.RoleOfficer)
	s, ctx := p.s, context.Background()
	second, err := p.login("olga", goodPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := s.Sessions(ctx, p.actor["olga"])
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 2 {
		t.Fatalf("olga has 2 sessions, listed %d: %+v", len(mine), mine)
	}
	var other SessionView
	current := 0
	for _, v := range mine {
		if v.Current {
			current++
			if v.ID != p.actor["olga"].Session {
				t.Fatalf("current session %s, want %s", v.ID, p.actor["olga"].Session)
			}
		} else {
			other = v
		}
		if v.Via == "" || (v.Via == "https" && v.Remote == "") || v.Ends.Before(v.IdleEnds) {
			t.Fatalf("session view: %+v", v)
		}
	}
	if current != 1 {
		t.Fatalf("%d sessions marked current", current)
	}
	// otto cannot see or end olga's sessions.
	ottos, _ := s.Sessions(ctx, p.actor["otto"])
	for _, v := range ottos {
		if v.ID == other.ID {
			t.Fatal("otto sees olga's session")
		}
	}
	if err := s.RevokeSession(ctx, p.actor["otto"], other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("otto revoking olga's session: %v", err)
	}
	if err := s.RevokeSession(ctx, p.actor["olga"], "nope"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a malformed ID: %v", err)
	}
	// olga ends the other one: its token no longer works, hers does.
	if err := s.RevokeSession(ctx, p.actor["olga"], other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(Origin{}, second.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a revoked session still works: %v", err)
	}
	if _, err := s.Authenticate(Origin{}, p.token["olga"]); err != nil {
		t.Fatalf("the current session ended too: %v", err)
	}
	if countEvents(t, s, audit.EvSessionRevoked, "reason", "revoked by its owner") != 1 {
		t.Fatal("the revocation is not on the ledger")
	}
	if err := s.RevokeSession(ctx, p.actor["olga"], other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if mine, _ = s.Sessions(ctx, p.actor["olga"]); len(mine) != 1 || !mine[0].Current {
		t.Fatalf("after revoking: %+v", mine)
	}
}

// TestPeekDoesNotKeepASessionAlive (clause 五(三)): a page that refreshes
// itself checks the session with Peek, which does not restart the idle
// clock: the session still ends at the idle limit from the person's last
// own request, and IdleEnds says when.
func TestPeekDoesNotKeepASessionAlive(t *testing.T) {
	p := newPeople(t)
	s := p.s
	res, err := p.login("sue", goodPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Authenticate(Origin{}, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	idle := s.policy().Idle
	if want := p.clk.now().Add(idle); !a.IdleEnds.Equal(want) {
		t.Fatalf("IdleEnds %v, want %v", a.IdleEnds, want)
	}
	for range 4 { // refreshes within the limit: allowed, and nothing moves
		p.clk.advance(idle / 5)
		pa, err := s.Peek(Origin{}, res.Token)
		if err != nil {
			t.Fatalf("a refresh within the idle limit: %v", err)
		}
		if !pa.IdleEnds.Equal(a.IdleEnds) {
			t.Fatalf("a refresh moved the idle end from %v to %v", a.IdleEnds, pa.IdleEnds)
		}
	}
	p.clk.advance(idle / 5)
	if _, err := s.Peek(Origin{}, res.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("refreshes kept the session past the idle limit: %v", err)
	}
	// The person's own use does restart the clock.
	res, _ = p.login("sue", goodPassword, "")
	for range 6 {
		p.clk.advance(idle / 5)
		if _, err := s.Authenticate(Origin{}, res.Token); err != nil {
			t.Fatalf("used steadily: %v", err)
		}
	}
}

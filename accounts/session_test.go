package accounts

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewSession(t *testing.T) {
	tok, s, err := NewSession("chen.wei", t0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q: %d bytes, %v", tok, len(raw), err)
	}
	if s.TokenHash == tok || strings.Contains(s.TokenHash, tok) || len(s.TokenHash) != 64 || s.TokenHash != HashToken(tok) {
		t.Errorf("the session keeps only the token's SHA-256: %+v", s)
	}
	if !s.Matches(tok) || s.Matches(tok+"x") || s.Matches("") {
		t.Error("Matches")
	}
	tok2, _, _ := NewSession("chen.wei", t0)
	if tok2 == tok {
		t.Error("tokens must be random")
	}
	if !s.Created.Equal(t0) || !s.LastSeen.Equal(t0) || s.Username != "chen.wei" {
		t.Errorf("%+v", s)
	}
	if !EqualHash("ab", "ab") || EqualHash("ab", "ac") || EqualHash("ab", "abc") {
		t.Error("EqualHash")
	}
}

// TestSessionLimits: idle and absolute limits, each named; Touch extends
// only the idle one; a revoked session is refused.
func TestSessionLimits(t *testing.T) {
	const idle, abs = DefaultIdle, DefaultAbsolute
	if idle != 15*time.Minute || abs != 8*time.Hour {
		t.Fatalf("defaults %v %v", idle, abs)
	}
	_, s, _ := NewSession("chen.wei", t0)
	if err := s.Check(t0.Add(14*time.Minute), idle, abs); err != nil {
		t.Fatalf("14 min: %v", err)
	}
	if err := s.Check(t0.Add(15*time.Minute), idle, abs); !errors.Is(err, ErrSessionExpired) || !strings.Contains(err.Error(), "idle") {
		t.Errorf("15 min idle: %v", err)
	}
	// Used every 10 minutes, it lasts 8 hours and no more.
	now := t0
	for now.Before(t0.Add(abs - 10*time.Minute)) {
		now = now.Add(10 * time.Minute)
		if err := s.Check(now, idle, abs); err != nil {
			t.Fatalf("at %v: %v", now.Sub(t0), err)
		}
		s.Touch(now)
	}
	if err := s.Check(t0.Add(abs), idle, abs); !errors.Is(err, ErrSessionExpired) || !strings.Contains(err.Error(), "absolute limit of 8h0m0s") {
		t.Errorf("8 h: %v", err)
	}
	s.Touch(t0) // never moves back
	if !s.LastSeen.Equal(now) {
		t.Error("Touch moved LastSeen back")
	}
	if err := s.Check(t0.Add(-time.Second), idle, abs); !errors.Is(err, ErrSessionExpired) {
		t.Errorf("clock moved back: %v", err)
	}
	_, s, _ = NewSession("chen.wei", t0)
	s.Revoke("password change")
	s.Revoke("logout")
	if err := s.Check(t0, idle, abs); !errors.Is(err, ErrSessionRevoked) || !strings.Contains(err.Error(), "password change") {
		t.Errorf("revoked: %v", err)
	}
}

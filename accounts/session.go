package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Session defaults (the session: {idle: 15m, absolute: 8h}).
const (
	DefaultIdle     = 15 * time.Minute
	DefaultAbsolute = 8 * time.Hour
)

// Session errors.
var (
	ErrSessionExpired = errors.New("session expired")
	ErrSessionRevoked = errors.New("session revoked")
)

// Session is a logged-in session as the server keeps it: only the SHA-256
// of its token, never the token.
type Session struct {
	Username  string    `json:"username"`
	TokenHash string    `json:"token_hash"` // hex SHA-256 of the token
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
	Revoked   bool      `json:"revoked,omitempty"`
	// RevokedFor says why: logout, password change, role change, lock,
	// disable.
	RevokedFor string `json:"revoked_for,omitempty"`
}

// NewSession starts a session for username at now. The token (32 random
// bytes, base64url) goes to the client once; s keeps only its hash.
func NewSession(username string, now time.Time) (token string, s Session, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Session{}, fmt.Errorf("session token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, Session{Username: username, TokenHash: HashToken(token), Created: now, LastSeen: now}, nil
}

// HashToken is the hex SHA-256 of a session token, the key a server finds
// a session by.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Matches reports, in constant time, whether token is this session's.
func (s *Session) Matches(token string) bool {
	return EqualHash(HashToken(token), s.TokenHash)
}

// EqualHash compares two hashes in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Check reports whether s may be used at now: not revoked, used within
// idle, and started within absolute. The error names the limit.
func (s *Session) Check(now time.Time, idle, absolute time.Duration) error {
	switch {
	case s.Revoked:
		return fmt.Errorf("%w (%s)", ErrSessionRevoked, s.RevokedFor)
	case now.Sub(s.Created) >= absolute:
		return fmt.Errorf("%w: the absolute limit of %s since login has passed", ErrSessionExpired, absolute)
	case now.Sub(s.LastSeen) >= idle:
		return fmt.Errorf("%w: idle for more than the limit of %s", ErrSessionExpired, idle)
	case now.Before(s.Created):
		return fmt.Errorf("%w: created after now (clock moved back)", ErrSessionExpired)
	}
	return nil
}

// Touch records use at now (after a successful Check).
func (s *Session) Touch(now time.Time) {
	if now.After(s.LastSeen) {
		s.LastSeen = now
	}
}

// Revoke ends s for reason (logout, password change, role change, lock,
// disable).
func (s *Session) Revoke(reason string) {
	if !s.Revoked {
		s.Revoked, s.RevokedFor = true, reason
	}
}

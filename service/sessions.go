package service

import (
	"context"
	"fmt"
	"sort"
	"time"

	"custodian/audit"
)

// SessionView is one of a person's live sessions, as they see it on "my
// account" (`custodian session list`): never the token, only its short ID,
// where it came from and when it ends.
type SessionView struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// IdleEnds is when the session ends if it is not used meanwhile;
	// Ends is its absolute limit.
	IdleEnds time.Time `json:"idle_ends"`
	Ends     time.Time `json:"ends"`
	Via      string    `json:"via,omitempty"`       // socket or https
	Remote   string    `json:"remote,omitempty"`    // the client's address over HTTPS
	HostUser string    `json:"host_user,omitempty"` // the host account over the socket
	// Restricted is set on a session limited to second-factor enrolment.
	Restricted string `json:"restricted,omitempty"`
	// Current marks the session the request came with.
	Current bool `json:"current,omitempty"`
}

// Sessions lists the caller's live sessions, newest first. Sessions past
// their idle or absolute limit are not listed (they end at their next
// use anyway).
func (s *Service) Sessions(ctx context.Context, a Actor) ([]SessionView, error) {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return nil, err
	}
	now, pol := s.now(), s.policy()
	s.sess.mu.Lock()
	var out []SessionView
	for h, ls := range s.sess.m {
		if ls.Username != a.Name || ls.Check(now, pol.Idle, pol.Absolute) != nil {
			continue
		}
		id := sessionID(h)
		out = append(out, SessionView{ID: id, Created: ls.Created, LastSeen: ls.LastSeen,
			IdleEnds: ls.LastSeen.Add(pol.Idle), Ends: ls.Created.Add(pol.Absolute),
			Via: ls.origin.Via, Remote: ls.origin.Remote, HostUser: ls.origin.HostUser,
			Restricted: ls.restricted, Current: id == a.Session})
	}
	s.sess.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeSession ends one of the caller's own sessions by its ID (from
// Sessions), e.g. one left open on another computer, and records
// session.revoked. Ending the current session is a logout. Another
// person's session is not found: an account's sessions are ended for
// others only by locking, disabling or changing it.
func (s *Service) RevokeSession(ctx context.Context, a Actor, id string) error {
	if err := s.authorize(a, ActSelf, Resource{Kind: "account", ID: a.Name}); err != nil {
		return err
	}
	if len(id) != 16 {
		return fmt.Errorf("%w: session: %q is not a session ID (16 hexadecimal digits, from `custodian session list`)", ErrInvalid, id)
	}
	s.sess.mu.Lock()
	var hash string
	for h, ls := range s.sess.m {
		if sessionID(h) == id && ls.Username == a.Name {
			hash = h
			break
		}
	}
	s.sess.mu.Unlock()
	if hash == "" || !s.sess.revoke(hash, "revoked by its owner") {
		return fmt.Errorf("%w: no live session %s of yours (see `custodian session list`)", ErrNotFound, id)
	}
	s.recordEvent(event(a, audit.EvSessionRevoked, map[string]string{"username": a.Name, "reason": "revoked by its owner", "sessions": id}))
	return nil
}

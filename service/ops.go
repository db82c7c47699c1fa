package service

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync"

	"custodian/accounts"
	"custodian/audit"
)

// Observer is told of the account and request events the service
// committed (a lock, a request filed or decided), after the commit: the
// daemon turns them into notifications and metrics. It must not block.
type Observer func(ev audit.Event)

func (s *Service) observe(evs ...audit.Event) {
	if s.Observe == nil {
		return
	}
	for _, ev := range evs {
		s.Observe(ev)
	}
}

// Counts are the numbers of open requests and locked accounts, for metrics.
type Counts struct {
	PendingApprovals int
	AccountsLocked   int
}

// Counts counts the open requests (pending or approved, not expired) and
// the locked accounts.
func (s *Service) Counts() (Counts, error) {
	var c Counts
	now := s.now()
	if err := s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(_ string, v []byte) error {
			var q accounts.Request
			if json.Unmarshal(v, &q) == nil && q.State() == accounts.RequestPending && now.Before(q.Expires) {
				c.PendingApprovals++
			}
			return nil
		})
	}); err != nil {
		return c, err
	}
	all, err := s.allAccounts()
	for _, a := range all {
		if a.State == accounts.StateLocked {
			c.AccountsLocked++
		}
	}
	return c, err
}

// scrapeSessions remembers, per monitoring account and password, the
// session a scrape logged in with, so that a scraper sending HTTP basic
// credentials every few seconds logs in (and is recorded) once per session,
// not on every scrape. Keys are SHA-256(username ‖ 0 ‖ password); values
// session tokens, which live only in memory like every session.
type scrapeSessions struct {
	mu sync.Mutex
	m  map[[32]byte]string
}

// AuthenticateScrape authenticates a metrics scrape sent with HTTP basic
// credentials: an account holding the metrics role logs in as anyone does
// (the same lockout, policy and ledger events) and its session is reused
// until it ends.
func (s *Service) AuthenticateScrape(ctx context.Context, o Origin, username, password string) (Actor, error) {
	key := sha256.Sum256([]byte(username + "\x00" + password))
	s.scrape.mu.Lock()
	token := s.scrape.m[key]
	s.scrape.mu.Unlock()
	if token != "" {
		if a, err := s.Authenticate(o, token); err == nil {
			return a, s.authorize(a, ActScrapeMetrics, Resource{Kind: "metrics"})
		}
	}
	res, err := s.Login(ctx, o, LoginRequest{Username: username, Password: password})
	if err != nil {
		return Actor{Origin: o}, err
	}
	a, err := s.Authenticate(o, res.Token)
	if err != nil {
		return Actor{Origin: o}, err
	}
	if err := s.authorize(a, ActScrapeMetrics, Resource{Kind: "metrics"}); err != nil {
		s.sess.revoke(accounts.HashToken(res.Token), "not a metrics account")
		return a, err
	}
	s.scrape.mu.Lock()
	if s.scrape.m == nil {
		s.scrape.m = map[[32]byte]string{}
	}
	s.scrape.m[key] = res.Token
	s.scrape.mu.Unlock()
	return a, nil
}

// Notices are what the daemon reminds people of once a day: datasets past
// their retention (a destruction request is due) and designated staff
// under the yearly training hours (clause 四(四)).
type Notices struct {
	Expiring      []Expiring
	TrainingShort []TrainingShort
}

// DueNotices gathers today's notices.
func (s *Service) DueNotices() (Notices, error) {
	var n Notices
	var err error
	if n.Expiring, err = s.expiring(); err != nil {
		return n, err
	}
	n.TrainingShort, err = s.trainingShortfall(s.now().In(ReportZone).Year())
	return n, err
}

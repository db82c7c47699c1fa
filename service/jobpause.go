package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"custodian/audit"
)

// statePaused holds the paused jobs: job name → Pause.
const statePaused = "paused"

// Pause says who paused a job, when and why.
type Pause struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// JobPause returns the pause of job, if it is paused.
func (s *Service) JobPause(job string) (*Pause, error) {
	var p *Pause
	err := s.Ledger.ViewState(statePaused, func(r audit.Records) error {
		if b := r.Get(job); b != nil {
			p = new(Pause)
			return json.Unmarshal(b, p)
		}
		return nil
	})
	return p, err
}

// PauseJob stops a job's runs, scheduled and manual, until it is resumed;
// the pause, its person and reason go on the ledger (job.paused).
func (s *Service) PauseJob(ctx context.Context, a Actor, job, reason string) (Pause, error) {
	return s.setPause(a, job, reason, true)
}

// ResumeJob lets a paused job run again (job.resumed). The reason is
// optional.
func (s *Service) ResumeJob(ctx context.Context, a Actor, job, reason string) (Pause, error) {
	return s.setPause(a, job, reason, false)
}

func (s *Service) setPause(a Actor, job, reason string, pause bool) (Pause, error) {
	cfg := s.config()
	res := Resource{Kind: "job", ID: job, Unit: cfg.Unit}
	if err := s.authorize(a, ActPauseJob, res); err != nil {
		return Pause{}, err
	}
	if err := s.open(); err != nil {
		return Pause{}, err
	}
	if _, ok := cfg.Job(job); !ok {
		return Pause{}, fmt.Errorf("%w: unknown job %q; configured jobs: %s", ErrNotFound, job, strings.Join(cfg.JobNames(), ", "))
	}
	reason = strings.TrimSpace(reason)
	if pause || reason != "" {
		if err := checkReason(reason); err != nil {
			return Pause{}, err
		}
	}
	p := Pause{By: a.Name, At: s.now(), Reason: reason}
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(statePaused)
		if err != nil {
			return err
		}
		was := w.Get(job) != nil
		switch {
		case pause && was:
			return fmt.Errorf("%w: job %s is already paused", ErrConflict, job)
		case !pause && !was:
			return fmt.Errorf("%w: job %s is not paused", ErrConflict, job)
		}
		typ := audit.EvJobResumed
		if pause {
			b, _ := json.Marshal(p)
			if err := w.Put(job, b); err != nil {
				return err
			}
			typ = audit.EvJobPaused
		} else if err := w.Delete(job); err != nil {
			return err
		}
		ev := attributed(a, audit.Event{Actor: a.Name, Type: typ, Job: job})
		if reason != "" {
			if ev.Details == nil {
				ev.Details = map[string]string{}
			}
			ev.Details["reason"] = reason
		}
		_, err = tx.Append(ev)
		return err
	})
	return p, err
}

// pausedError refuses a run of a paused job.
func (s *Service) pausedError(job string) error {
	p, err := s.JobPause(job)
	if err != nil || p == nil {
		return err
	}
	return fmt.Errorf("%w: job %s was paused by %s on %s: %s; resume it first (custodian job resume %s)",
		ErrConflict, job, p.By, p.At.UTC().Format(time.RFC3339), p.Reason, job)
}

package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"custodian/audit"
	"custodian/configs"
)

// A job's configuration history. The daemon records a job.configured
// event for each job whose settings (configs.Job.Settings) differ from
// the last recorded ones, when it starts and when a reload is accepted.
// "The last recorded ones" and the list of a job's job.configured events
// are kept in the ledger file's state bucket (stateJobConfig), written in
// the same transaction as the events: a restart with the same
// configuration records nothing, and JobHistory reads a job's versions by
// their indexes, never scanning the log.

// stateJobConfig holds, per job name, a jobConfig record.
const stateJobConfig = "jobconfig"

// jobConfig is the state record of one job's configuration history.
type jobConfig struct {
	// SHA256 is the digest of the last recorded settings; empty once the
	// job was recorded as removed.
	SHA256 string `json:"sha256,omitempty"`
	// Events are the indexes of the job's job.configured events, oldest
	// first.
	Events []int64 `json:"events"`
}

// The changes a job.configured event records.
const (
	ChangeAdded   = "added"
	ChangeChanged = "changed"
	ChangeRemoved = "removed"
)

// RecordJobSettings compares each job's settings (job name → the text of
// configs.Job.Settings, as configs.Config.JobSettings gives them) with
// the last recorded ones and appends, in one transaction, a
// job.configured event for each job that is new, changed, or recorded
// before but no longer configured. trigger says why (start, reload). It
// returns the events appended (none when nothing changed). It is the
// daemon's own act, by SystemActor; nobody asks for it, so nothing is
// authorized.
func (s *Service) RecordJobSettings(settings map[string]string, trigger string) ([]audit.Event, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	var out []audit.Event
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		out = nil
		w, err := tx.State(stateJobConfig)
		if err != nil {
			return err
		}
		recs := map[string]jobConfig{}
		if err := w.ForEach(func(job string, b []byte) error {
			var r jobConfig
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("job configuration record %s: %w", job, err)
			}
			recs[job] = r
			return nil
		}); err != nil {
			return err
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range settings {
				if !yield(n) {
					return
				}
			}
			for n, r := range recs {
				if _, ok := settings[n]; !ok && r.SHA256 != "" && !yield(n) {
					return
				}
			}
		})
		now := s.now()
		for _, job := range names {
			r := recs[job]
			text, configured := settings[job]
			d := map[string]string{"trigger": trigger}
			switch {
			case !configured:
				d["change"], d["previous_sha256"] = ChangeRemoved, r.SHA256
				r.SHA256 = ""
			case r.SHA256 == "":
				d["change"], d["settings"], d["sha256"] = ChangeAdded, text, configs.SettingsSHA256(text)
				r.SHA256 = d["sha256"]
			case r.SHA256 != configs.SettingsSHA256(text):
				d["change"], d["settings"], d["sha256"], d["previous_sha256"] = ChangeChanged, text, configs.SettingsSHA256(text), r.SHA256
				r.SHA256 = d["sha256"]
			default:
				continue
			}
			ev, err := tx.Append(audit.Event{Time: now, Actor: SystemActor, Type: audit.EvJobConfigured, Job: job, Details: d})
			if err != nil {
				return err
			}
			r.Events = append(r.Events, ev.Index)
			b, _ := json.Marshal(r)
			if err := w.Put(job, b); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// JobChange is one version of a job's settings: the job.configured event
// that recorded it and its differences from the version before.
type JobChange struct {
	Index   int64     `json:"index"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Change  string    `json:"change"`            // added, changed, removed
	Trigger string    `json:"trigger,omitempty"` // start, reload
	// Settings are the job's settings from then on (empty once removed).
	Settings       string `json:"settings,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
	// Diff compares the version before (nothing, for the first) with
	// this one, line by line.
	Diff []DiffLine `json:"diff"`
}

// DiffLine is one line of a line diff: kept (" "), removed ("-") or
// added ("+").
type DiffLine struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

// The operations of a DiffLine.
const (
	DiffKept    = " "
	DiffRemoved = "-"
	DiffAdded   = "+"
)

// DiffGap is the Op of a line TrimDiff puts where kept lines were left
// out.
const DiffGap = "..."

// TrimDiff keeps a diff's removed and added lines with n kept lines
// around each, as a reader wants to see a change; a DiffGap line stands
// for each run of kept lines left out. A diff of kept lines only (no
// change) trims to nothing.
func TrimDiff(d []DiffLine, n int) []DiffLine {
	near := make([]bool, len(d))
	for i, l := range d {
		if l.Op == DiffKept {
			continue
		}
		for k := max(0, i-n); k <= min(len(d)-1, i+n); k++ {
			near[k] = true
		}
	}
	var out []DiffLine
	skipped := false
	for i, l := range d {
		if !near[i] {
			skipped = true
			continue
		}
		if skipped {
			out = append(out, DiffLine{Op: DiffGap})
		}
		skipped = false
		out = append(out, l)
	}
	if skipped && len(out) > 0 {
		out = append(out, DiffLine{Op: DiffGap})
	}
	return out
}

// JobHistory returns the configuration history of job, newest first:
// each version with who recorded it, when, why, and its differences from
// the one before. A job no longer configured keeps its history. It reads
// the job's events by the indexes kept in the state bucket, so its cost
// does not grow with the ledger.
func (s *Service) JobHistory(ctx context.Context, a Actor, job string) ([]JobChange, error) {
	cfg := s.config()
	if err := s.authorize(a, ActJobHistory, Resource{Kind: "job", ID: job, Unit: cfg.Unit}); err != nil {
		return nil, err
	}
	var rec *jobConfig
	err := s.Ledger.ViewState(stateJobConfig, func(r audit.Records) error {
		if b := r.Get(job); b != nil {
			rec = new(jobConfig)
			return json.Unmarshal(b, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rec == nil {
		if _, ok := cfg.Job(job); ok {
			return []JobChange{}, nil // configured, not recorded yet (the daemon records at start)
		}
		return nil, fmt.Errorf("%w: job %q has no configuration history; configured jobs: %s", ErrNotFound, job, strings.Join(cfg.JobNames(), ", "))
	}
	out := make([]JobChange, 0, len(rec.Events))
	prev := ""
	for _, i := range rec.Events {
		evs, err := s.Ledger.Events(i, 1)
		if err != nil {
			return nil, err
		}
		if len(evs) != 1 || evs[0].Type != audit.EvJobConfigured || evs[0].Job != job {
			return nil, fmt.Errorf("%w: the configuration history of job %s names event %d, which is not one of its job.configured events", ErrInternal, job, i)
		}
		ev := evs[0]
		c := JobChange{Index: ev.Index, Time: ev.Time, Actor: ev.Actor, Change: ev.Details["change"], Trigger: ev.Details["trigger"],
			Settings: ev.Details["settings"], SHA256: ev.Details["sha256"], PreviousSHA256: ev.Details["previous_sha256"]}
		c.Diff = LineDiff(prev, c.Settings)
		prev = c.Settings
		out = append(out, c)
	}
	slices.Reverse(out)
	return out, nil
}

// LineDiff compares two texts line by line (a longest common subsequence
// of lines) and returns every line of both in order, each kept, removed
// or added; where lines were replaced, the removed come before the
// added. Settings texts are short (tens of lines), so the quadratic table
// is small.
func LineDiff(old, new string) []DiffLine {
	a, b := splitLines(old), splitLines(new)
	// l[i][j]: the longest common subsequence of a[i:] and b[j:].
	l := make([][]int, len(a)+1)
	for i := range l {
		l[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	out := make([]DiffLine, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, DiffLine{DiffKept, a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || l[i+1][j] >= l[i][j+1]):
			out = append(out, DiffLine{DiffRemoved, a[i]})
			i++
		default:
			out = append(out, DiffLine{DiffAdded, b[j]})
			j++
		}
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/proof"
)

// This file holds the retention of the ledger (三(五)): nothing on the
// ledger can be removed before RetentionYears. The oldest segment of the
// ledger (every event before a date) can be exported as a self-contained
// archive with proofs (proof.Archive), recorded as ledger.archived. Pruning
// is a request of kind prune, approved by two supervisors, which may only
// be filed for a segment that is both archived and older than
// RetentionYears; a request for anything younger is refused and the
// refusal recorded.
//
// Physical pruning is not implemented: the events of a Merkle log are the
// leaves of its tree, and removing them would break every later
// verification. A prune request can be filed and approved, but nothing
// carries it out yet (docs/auditing.md, "Retention", says how it would be
// done: drop event bodies only, keep the stored hashes, and have Verify
// accept the pruned range it learns from a meta key).

// RetentionYears is how long every ledger event is kept.
const RetentionYears = 5

// Archived is a ledger archive and its record.
type Archived struct {
	Archive        []byte `json:"archive"` // the archive file (proof.FormatArchive)
	Count          int64  `json:"count"`
	SHA256         string `json:"sha256"`
	CheckpointSize int64  `json:"checkpoint_size"`
	Event          int64  `json:"event"` // the ledger.archived event
}

// segmentBefore returns how many events, from the first, are dated before
// before: the segment an archive holds ends at the first event that is not.
func (s *Service) segmentBefore(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		evs, err := s.Ledger.Events(n, scanChunk)
		if err != nil {
			return 0, err
		}
		for _, ev := range evs {
			if !ev.Time.Before(before) {
				return n, nil
			}
			n++
		}
		if len(evs) < scanChunk {
			return n, nil
		}
	}
}

// ArchiveLedger exports every event before before (the leading segment of
// the ledger up to the first event dated at or after it) as an archive
// with its proof against the current signed checkpoint, and records it.
func (s *Service) ArchiveLedger(ctx context.Context, a Actor, before time.Time) (Archived, error) {
	if err := s.authorize(a, ActExportLedger, Resource{Kind: "ledger"}); err != nil {
		return Archived{}, err
	}
	if err := s.open(); err != nil {
		return Archived{}, err
	}
	if before.IsZero() {
		return Archived{}, fmt.Errorf("%w: before: give a date (YYYY-MM-DD)", ErrInvalid)
	}
	count, err := s.segmentBefore(ctx, before)
	if err != nil {
		return Archived{}, err
	}
	if count == 0 {
		return Archived{}, fmt.Errorf("%w: no events before %s", ErrNotFound, before.Format(time.DateOnly))
	}
	pp, err := s.Ledger.ProvePrefix(count)
	if err != nil {
		return Archived{}, err
	}
	vkey, err := s.Ledger.VerifierKey()
	if err != nil {
		return Archived{}, err
	}
	b, err := proof.EncodeArchive(proof.NewArchive(pp, vkey, before))
	if err != nil {
		return Archived{}, err
	}
	if _, err := proof.CheckArchive(b, proof.Options{VerifierKey: vkey}); err != nil {
		return Archived{}, fmt.Errorf("%w: the archive does not check against the ledger's own checkpoint (%v): run `custodian audit verify`", ErrConflict, err)
	}
	sum := sha256.Sum256(b)
	out := Archived{Archive: b, Count: count, SHA256: hex.EncodeToString(sum[:]), CheckpointSize: pp.Tree.N}
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		ev, err := tx.Append(eventAt(s.now(), a, audit.EvLedgerArchived, map[string]string{"before": before.UTC().Format(time.RFC3339),
			"count": strconv.FormatInt(count, 10), "checkpoint_size": strconv.FormatInt(pp.Tree.N, 10), "archive_sha256": out.SHA256}))
		out.Event = ev.Index
		return err
	})
	if err != nil {
		return Archived{}, err
	}
	return out, nil
}

// PruneRequest asks for the ledger's events before Before to be pruned;
// ArchiveSHA256 names the archive (`audit archive`) that holds them.
type PruneRequest struct {
	Before        time.Time `json:"before"`
	ArchiveSHA256 string    `json:"archive_sha256"`
	Reason        string    `json:"reason"`
}

// retentionRule refuses pruning anything younger than RetentionYears at
// now.
func retentionRule(before, now time.Time) error {
	limit := now.AddDate(-RetentionYears, 0, 0)
	if before.After(limit) {
		return fmt.Errorf("%w: retention: events are kept %d years; events before %s may not be pruned before %s (only events before %s may be now)",
			ErrRefused, RetentionYears, before.UTC().Format(time.DateOnly), before.AddDate(RetentionYears, 0, 0).UTC().Format(time.DateOnly), limit.UTC().Format(time.DateOnly))
	}
	return nil
}

// FilePruneRequest files a prune request for the ledger's events before
// req.Before. It is refused, and the refusal recorded, when that segment
// is younger than RetentionYears or no recorded archive (ledger.archived
// with that SHA-256) covers it.
func (s *Service) FilePruneRequest(ctx context.Context, a Actor, req PruneRequest) (RequestView, error) {
	res := Resource{Kind: "ledger"}
	if err := s.authorize(a, ActPruneLedger, res); err != nil {
		return RequestView{}, err
	}
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	if req.Before.IsZero() {
		return RequestView{}, fmt.Errorf("%w: before: give a date (YYYY-MM-DD)", ErrInvalid)
	}
	if err := checkReason(req.Reason); err != nil {
		return RequestView{}, err
	}
	now := s.now()
	if err := retentionRule(req.Before, now); err != nil {
		return RequestView{}, s.refused(a, ActPruneLedger, res, err)
	}
	sum := strings.ToLower(strings.TrimSpace(req.ArchiveSHA256))
	archived, err := s.archivedCovers(ctx, sum, req.Before)
	if err != nil {
		return RequestView{}, err
	}
	if archived == "" {
		return RequestView{}, s.refused(a, ActPruneLedger, res, fmt.Errorf("%w: archived: no recorded archive with SHA-256 %q holds the events before %s; make one with `custodian audit archive --before DATE --out FILE`",
			ErrRefused, sum, req.Before.UTC().Format(time.DateOnly)))
	}
	var q *accounts.Request
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		q, err = accounts.NewRequest(fmt.Sprintf("R%d", n), accounts.KindPrune, "ledger before "+req.Before.UTC().Format(time.RFC3339), req.Reason, a.Name, now, 0)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		q.Details = map[string]string{"before": req.Before.UTC().Format(time.RFC3339), "archive_sha256": sum, "count": archived}
		if err := putRequest(tx, q); err != nil {
			return err
		}
		ev := requestEvent(a, audit.EvRequestFiled, q, q.Reason)
		ev.Time = now
		_, err = tx.Append(ev)
		return err
	})
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// archivedCovers returns the event count of a recorded archive with
// SHA-256 sum that holds every event before before, or "".
func (s *Service) archivedCovers(ctx context.Context, sum string, before time.Time) (string, error) {
	if sum == "" {
		return "", nil
	}
	need, err := s.segmentBefore(ctx, before)
	if err != nil {
		return "", err
	}
	size, err := s.Ledger.Size()
	if err != nil {
		return "", err
	}
	for at := int64(0); at < size; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		evs, err := s.Ledger.Events(at, scanChunk)
		if err != nil || len(evs) == 0 {
			return "", err
		}
		for _, ev := range evs {
			at = ev.Index + 1
			if ev.Type != audit.EvLedgerArchived || ev.Details["archive_sha256"] != sum {
				continue
			}
			if n, err := strconv.ParseInt(ev.Details["count"], 10, 64); err == nil && n >= need && need > 0 {
				return ev.Details["count"], nil
			}
		}
	}
	return "", nil
}

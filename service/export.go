package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"filippo.io/age"

	"custodian/accounts"
	"custodian/audit"
)

// ExportRequest asks for a copy of a dataset, encrypted to one recipient's
// age key (clause 三(二)(六)).
type ExportRequest struct {
	Dataset   string `json:"dataset"`
	Recipient string `json:"recipient"` // age1…
	Purpose   string `json:"purpose"`
	Case      string `json:"case"`
	Reason    string `json:"reason"`
}

// RecipientFingerprint is the hex SHA-256 of an age recipient string: how
// the ledger names the key an export was encrypted to.
func RecipientFingerprint(recipient string) string {
	h := sha256.Sum256([]byte(recipient))
	return hex.EncodeToString(h[:])
}

// FileExport files an export request: a supervisor approves it, then the
// requester, and nobody else, makes the copy once before it expires.
func (s *Service) FileExport(ctx context.Context, a Actor, req ExportRequest) (RequestView, error) {
	r := Resource{Kind: "dataset", ID: req.Dataset, Unit: s.config().Unit}
	if err := s.authorize(a, ActFileDataRequest, r); err != nil {
		return RequestView{}, err
	}
	req.Recipient = strings.TrimSpace(req.Recipient)
	if _, err := age.ParseX25519Recipient(req.Recipient); err != nil {
		return RequestView{}, fmt.Errorf("%w: recipient: not an age X25519 recipient (age1…): %v (--recipient)", ErrInvalid, err)
	}
	if err := checkPurposeCase(req.Purpose, req.Case); err != nil {
		return RequestView{}, err
	}
	return s.fileDatasetRequest(a, accounts.KindExport, req.Dataset, req.Reason, map[string]string{
		"recipient": req.Recipient, "recipient_fingerprint": RecipientFingerprint(req.Recipient),
		"purpose": req.Purpose, "case": req.Case})
}

// ExportResult is the outcome of an export, as recorded.
type ExportResult struct {
	Request              string `json:"request"`
	Dataset              string `json:"dataset"`
	RecipientFingerprint string `json:"recipient_fingerprint"`
	Bytes                int64  `json:"bytes"`  // of the export (age ciphertext)
	SHA256               string `json:"sha256"` // of the export
	Outcome              string `json:"outcome"`
	Index                int64  `json:"index"` // the dataset.exported event
}

// RunExport carries out an approved export request: it streams the
// dataset, re-encrypted to the request's recipient in the age format, to
// w (there is no plaintext export), checking the plaintext against the
// ledger as it goes, and records dataset.exported with the recipient's
// key fingerprint and the export's SHA-256 and size. Only the requester
// runs it, once, before the request expires; the request is used up as
// soon as a byte left, whatever the outcome.
func (s *Service) RunExport(ctx context.Context, a Actor, id string, w io.Writer) (ExportResult, error) {
	r := Resource{Kind: "request", ID: id, Unit: s.config().Unit}
	if err := s.authorize(a, ActRunExport, r); err != nil {
		return ExportResult{}, err
	}
	if err := s.trainingRule(a, s.now()); err != nil { // clause 四(四), training.enforce
		return ExportResult{}, s.refused(a, ActRunExport, r, err)
	}
	if err := s.open(); err != nil {
		return ExportResult{}, err
	}
	s.expireRequests()
	q, err := s.requestByID(id)
	if err != nil {
		return ExportResult{}, err
	}
	if q.Kind != accounts.KindExport {
		return ExportResult{}, fmt.Errorf("%w: request %s is a %s request, not an export", ErrConflict, id, q.Kind)
	}
	trial := *q
	if err := trial.Execute(a.Name, a.Roles, s.now()); err != nil {
		return ExportResult{}, s.refused(a, ActRunExport, r, ruleError(err))
	}
	rcpt, err := age.ParseX25519Recipient(q.Details["recipient"])
	if err != nil {
		return ExportResult{}, fmt.Errorf("request %s: stored recipient unreadable: %w", id, err)
	}
	d, err := s.dataset(q.Subject)
	if err != nil {
		return ExportResult{}, err
	}
	if err := s.CheckNotDestroyed(d); err != nil {
		return ExportResult{}, s.refused(a, ActRunExport, r, err)
	}
	if !s.inflight.take(id) {
		return ExportResult{}, fmt.Errorf("%w: request %s is being carried out now", ErrBusy, id)
	}
	defer s.inflight.give(id)
	ident, done, err := s.useKey()
	if err != nil {
		return ExportResult{}, s.refused(a, ActRunExport, r, err)
	}
	defer done()
	rc, err := s.Vault.Open(d.ObjectID, ident)
	if err != nil {
		return ExportResult{}, fmt.Errorf("opening the vault object of %s: %w", d.ID, err)
	}
	defer rc.Close()

	res := ExportResult{Request: id, Dataset: d.ID, RecipientFingerprint: RecipientFingerprint(q.Details["recipient"])}
	out := &deliver{w: w, sum: sha256.New()}
	var fail error
	aw, err := age.Encrypt(out, rcpt)
	if err != nil {
		fail = err
	} else {
		fail = copyChecked(ctx, aw, rc, d.Size, d.SHA256, nil)
		if cerr := aw.Close(); fail == nil && cerr != nil {
			fail = fmt.Errorf("finishing the age stream: %w", cerr)
		}
	}
	res.Bytes, res.SHA256, res.Outcome = out.n, hex.EncodeToString(out.sum.Sum(nil)), OutcomeComplete
	if fail != nil {
		res.Outcome = "failed: " + fail.Error()
	}
	ev := event(a, audit.EvDatasetExported, map[string]string{
		"request": id, "recipient_fingerprint": res.RecipientFingerprint, "sha256": res.SHA256,
		"bytes": strconv.FormatInt(res.Bytes, 10), "purpose": q.Details["purpose"], "case": q.Details["case"],
		"outcome": res.Outcome, "dataset_sha256": d.SHA256})
	ev.DatasetID, ev.Job = d.ID, d.Job
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		if res.Bytes > 0 || fail == nil {
			if err := s.useRequests(tx, a, []*accounts.Request{q}); err != nil {
				return err
			}
		}
		rec, err := tx.Append(ev)
		if err == nil {
			res.Index = rec.Index
		}
		return err
	})
	if err != nil {
		s.Logger.Error().Err(err).Str("request", id).Msg("cannot record an export on the ledger; kept for later")
		s.recordEvent(ev)
	}
	if fail != nil {
		return res, fmt.Errorf("%w: export %s failed: %v", ErrInternal, id, fail)
	}
	return res, nil
}

// requestByID reads one request outside a transaction.
func (s *Service) requestByID(id string) (*accounts.Request, error) {
	var q *accounts.Request
	err := s.Ledger.ViewState(stateRequests, func(r audit.Records) (err error) {
		q, err = getRequest(r, id)
		return err
	})
	if err == nil && q == nil {
		err = fmt.Errorf("%w: no request %q; list them with `custodian request list`", ErrNotFound, id)
	}
	return q, err
}

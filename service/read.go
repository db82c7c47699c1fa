package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
)

// MaxCase bounds a case reference.
const MaxCase = 128

// checkPurposeCase validates the purpose and case reference every call
// that touches registry data carries (clause 二, 五(一)).
func checkPurposeCase(purpose, caseRef string) error {
	if !slices.Contains(configs.Purposes, purpose) {
		return fmt.Errorf("%w: purpose: %q is not a legal basis of clause 二; use one of %s (--purpose)", ErrInvalid, purpose, strings.Join(configs.Purposes, ", "))
	}
	c := strings.TrimSpace(caseRef)
	switch {
	case c == "":
		return fmt.Errorf("%w: case: a case reference is required (--case): the file or case number the use serves", ErrInvalid)
	case len(caseRef) > MaxCase:
		return fmt.Errorf("%w: case: longer than %d bytes", ErrInvalid, MaxCase)
	case !utf8.ValidString(caseRef) || strings.ContainsFunc(caseRef, unicode.IsControl):
		return fmt.Errorf("%w: case: not printable text", ErrInvalid)
	}
	return nil
}

// inflight are the requests a read or an export is using now, so that one
// approval is not used by two streams at once.
type inflight struct {
	mu sync.Mutex
	m  map[string]bool
}

func (f *inflight) take(ids ...string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]bool{}
	}
	for _, id := range ids {
		if f.m[id] {
			return false
		}
	}
	for _, id := range ids {
		f.m[id] = true
	}
	return true
}

func (f *inflight) give(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.m, id)
	}
}

// ReadRequest is what a read is for.
type ReadRequest struct {
	Purpose string `json:"purpose"`
	Case    string `json:"case"`
}

// ReadResult is the outcome of a read, as recorded.
type ReadResult struct {
	Dataset string   `json:"dataset"`
	Bytes   int64    `json:"bytes"`
	SHA256  string   `json:"sha256"` // of what was delivered
	Outcome string   `json:"outcome"`
	Request []string `json:"request,omitempty"`
	Index   int64    `json:"index"` // the dataset.read event
}

// OutcomeComplete is the outcome of a read or export that delivered every
// byte and whose plaintext matched the ledger's SHA-256 and size.
const OutcomeComplete = "complete"

// needsRequest lists the request kinds a read of d for purpose needs: an
// emergency use outside the legal basis (a director approves), an
// exceptional read of quarantined or held data (a supervisor approves).
func needsRequest(d audit.Dataset, purpose string) []accounts.Kind {
	var k []accounts.Kind
	if purpose != d.Purpose {
		k = append(k, accounts.KindEmergencyUse)
	}
	if d.State == audit.StateQuarantined || d.State == audit.StateHeld {
		k = append(k, accounts.KindExceptionalRead)
	}
	return k
}

// approvedFor finds a's approved, unexpired request of kind about dataset
// id for purpose and caseRef.
func (s *Service) approvedFor(a Actor, kind accounts.Kind, id, purpose, caseRef string, now time.Time) (*accounts.Request, error) {
	var found *accounts.Request
	err := s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(_ string, v []byte) error {
			var q accounts.Request
			if json.Unmarshal(v, &q) != nil {
				return nil
			}
			if q.Kind == kind && q.Subject == id && q.Requester == a.Name && q.State() == accounts.RequestApproved &&
				now.Before(q.Expires) && q.Details["purpose"] == purpose && q.Details["case"] == caseRef && found == nil {
				found = &q
			}
			return nil
		})
	})
	return found, err
}

// refusalWithout says which approved request a read lacks.
func refusalWithout(k accounts.Kind, d audit.Dataset, purpose string) error {
	how := fmt.Sprintf("file one with `custodian dataset request %s --kind %s --purpose %s --case REF --reason R`", d.ID, k, purpose)
	if k == accounts.KindEmergencyUse {
		return fmt.Errorf("%w: purpose: dataset %s was received for %s (its legal basis); a use for %s needs an approved emergency-use request by a director, for this purpose and case; %s",
			ErrForbidden, d.ID, d.Purpose, purpose, how)
	}
	return fmt.Errorf("%w: state: dataset %s is %s, its completeness not proven; reading it needs an approved exceptional-read request by a supervisor, for this purpose and case; %s",
		ErrForbidden, d.ID, d.State, how)
}

// deliver writes to w and hashes and counts what w took.
type deliver struct {
	w   io.Writer
	sum hash.Hash
	n   int64
}

func (d *deliver) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.sum.Write(p[:n])
	d.n += int64(n)
	return n, err
}

// copyChecked copies a dataset's plaintext from the vault (src) to dst,
// stopping when ctx ends, and says why what went through is not the
// dataset the ledger records: cut short, another size, another SHA-256.
// plain, if set, is a digest that dst already takes of exactly these
// bytes (a read delivers the plaintext itself); otherwise one is taken
// on the way (an export delivers ciphertext).
func copyChecked(ctx context.Context, dst io.Writer, src io.Reader, size int64, sha string, plain hash.Hash) error {
	in := io.Reader(ctxReader{ctx, src})
	if plain == nil {
		plain = sha256.New()
		in = io.TeeReader(in, plain)
	}
	n, err := io.Copy(dst, in)
	switch {
	case err != nil:
		return fmt.Errorf("stream cut after %d plaintext bytes: %w", n, err)
	case n != size:
		return fmt.Errorf("the object held %d bytes, the ledger says %d", n, size)
	case hex.EncodeToString(plain.Sum(nil)) != sha:
		return errors.New("the object's SHA-256 differs from the ledger's")
	}
	return nil
}

// ReadDataset streams dataset id's received bytes to w, checking their
// SHA-256 and size against the ledger as they go, and records the read
// when the stream ends (dataset.read: purpose, case, bytes and SHA-256
// delivered, outcome, and the requests that allowed it). Only the officer
// or contractor of the dataset's unit may read; the purpose must be the
// dataset's legal basis, else an approved emergency-use request is needed;
// quarantined and held data need an approved exceptional-read request. A
// request allows one complete read. The vault must be unsealed.
//
// If the stream fails after bytes were written, the error says so and the
// outcome on the ledger names the failure; the caller must not use what
// it got.
func (s *Service) ReadDataset(ctx context.Context, a Actor, id string, req ReadRequest, w io.Writer) (ReadResult, error) {
	r := Resource{Kind: "dataset", ID: id, Unit: s.config().Unit}
	if err := s.authorize(a, ActReadDataset, r); err != nil {
		return ReadResult{}, err
	}
	if err := s.trainingRule(a, s.now()); err != nil { // clause 四(四), training.enforce
		return ReadResult{}, s.refused(a, ActReadDataset, r, err)
	}
	if err := s.open(); err != nil {
		return ReadResult{}, err
	}
	if err := checkPurposeCase(req.Purpose, req.Case); err != nil {
		return ReadResult{}, err
	}
	s.expireRequests()
	d, err := s.dataset(id)
	if err != nil {
		return ReadResult{}, err
	}
	if err := s.CheckNotDestroyed(d); err != nil {
		return ReadResult{}, s.refused(a, ActReadDataset, r, err)
	}
	now := s.now()
	var reqs []*accounts.Request
	var ids []string
	for _, k := range needsRequest(d, req.Purpose) {
		q, err := s.approvedFor(a, k, id, req.Purpose, req.Case, now)
		if err != nil {
			return ReadResult{}, err
		}
		if q == nil {
			return ReadResult{}, s.refused(a, ActReadDataset, r, refusalWithout(k, d, req.Purpose))
		}
		reqs, ids = append(reqs, q), append(ids, q.ID)
	}
	if !s.inflight.take(ids...) {
		return ReadResult{}, fmt.Errorf("%w: request %s is being used by another read now", ErrBusy, strings.Join(ids, ", "))
	}
	defer s.inflight.give(ids...)
	ident, done, err := s.useKey()
	if err != nil {
		return ReadResult{}, s.refused(a, ActReadDataset, r, err)
	}
	defer done()

	res := ReadResult{Dataset: id, Request: ids}
	out := &deliver{w: w, sum: sha256.New()}
	var fail error
	rc, err := s.Vault.Open(d.ObjectID, ident)
	if err != nil {
		fail = fmt.Errorf("opening the vault object: %w", err)
	} else {
		// What is delivered is the plaintext: out's digest checks it.
		fail = copyChecked(ctx, out, rc, d.Size, d.SHA256, out.sum)
		rc.Close()
	}
	res.Bytes, res.SHA256, res.Outcome = out.n, hex.EncodeToString(out.sum.Sum(nil)), OutcomeComplete
	if fail != nil {
		res.Outcome = "failed: " + fail.Error()
	}
	details := map[string]string{"purpose": req.Purpose, "case": req.Case, "bytes": strconv.FormatInt(res.Bytes, 10),
		"sha256": res.SHA256, "outcome": res.Outcome, "request": strings.Join(ids, " ")}
	ev := event(a, audit.EvDatasetRead, details)
	ev.DatasetID, ev.Job = id, d.Job
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		rec, err := tx.Append(ev)
		if err != nil {
			return err
		}
		res.Index = rec.Index
		if fail != nil {
			return nil // the approval stays for a complete read
		}
		return s.useRequests(tx, a, reqs)
	})
	if err != nil {
		s.Logger.Error().Err(err).Str("dataset", id).Msg("cannot record a read on the ledger; kept for later")
		s.recordEvent(ev)
	}
	if fail != nil {
		return res, fmt.Errorf("%w: read of %s failed: %v", ErrInternal, id, fail)
	}
	return res, nil
}

// useRequests marks the approved requests a read or export used as
// executed, each with its event, in tx.
func (s *Service) useRequests(tx *audit.Tx, a Actor, reqs []*accounts.Request) error {
	w, err := tx.State(stateRequests)
	if err != nil {
		return err
	}
	for _, q := range reqs {
		cur, err := getRequest(w, q.ID)
		if err != nil || cur == nil {
			return fmt.Errorf("request %s: %v", q.ID, err)
		}
		if err := cur.Execute(a.Name, a.Roles, s.now()); err != nil {
			return err
		}
		if err := putRequest(tx, cur); err != nil {
			return err
		}
		if _, err := tx.Append(requestEvent(a, audit.EvRequestExecuted, cur, "")); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops a long stream when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// DataRequest asks for an emergency use of a dataset outside its legal
// basis, or an exceptional read of quarantined or held data.
type DataRequest struct {
	Kind    accounts.Kind `json:"kind"`
	Dataset string        `json:"dataset"`
	Purpose string        `json:"purpose"`
	Case    string        `json:"case"`
	Reason  string        `json:"reason"`
}

var dataKinds = []accounts.Kind{accounts.KindEmergencyUse, accounts.KindExceptionalRead}

// FileDataRequest files an emergency-use (a director approves) or
// exceptional-read (a supervisor approves) request about one dataset, for
// one purpose and case; the requester then reads with them.
func (s *Service) FileDataRequest(ctx context.Context, a Actor, req DataRequest) (RequestView, error) {
	r := Resource{Kind: "dataset", ID: req.Dataset, Unit: s.config().Unit}
	if err := s.authorize(a, ActFileDataRequest, r); err != nil {
		return RequestView{}, err
	}
	if !slices.Contains(dataKinds, req.Kind) {
		return RequestView{}, fmt.Errorf("%w: kind: %q; use %s (an export is filed with `custodian export request`)", ErrInvalid, req.Kind, kindNames(dataKinds))
	}
	if err := checkPurposeCase(req.Purpose, req.Case); err != nil {
		return RequestView{}, err
	}
	return s.fileDatasetRequest(a, req.Kind, req.Dataset, req.Reason, map[string]string{"purpose": req.Purpose, "case": req.Case})
}

// fileDatasetRequest files a request of kind about dataset id, after the
// caller authorized it.
func (s *Service) fileDatasetRequest(a Actor, kind accounts.Kind, id, reason string, details map[string]string) (RequestView, error) {
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	if err := checkReason(reason); err != nil {
		return RequestView{}, err
	}
	if _, err := s.dataset(id); err != nil {
		return RequestView{}, err
	}
	q, err := s.fileRequest(a, kind, id, reason, details, nil)
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// fileRequest stores a new request with its event; extra, if set, writes
// more in the same transaction.
func (s *Service) fileRequest(a Actor, kind accounts.Kind, subject, reason string, details map[string]string, extra func(tx *audit.Tx, q *accounts.Request) error) (*accounts.Request, error) {
	now := s.now()
	var q *accounts.Request
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		q, err = accounts.NewRequest(fmt.Sprintf("R%d", n), kind, subject, strings.TrimSpace(reason), a.Name, now, 0)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		q.Details = details
		if err := putRequest(tx, q); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(tx, q); err != nil {
				return err
			}
		}
		ev := requestEvent(a, audit.EvRequestFiled, q, q.Reason)
		for _, k := range []string{"purpose", "case", "recipient_fingerprint", "from", "to", "inventory_sha256", "datasets"} {
			if v := details[k]; v != "" {
				ev.Details[k] = v
			}
		}
		_, err = tx.Append(ev)
		return err
	})
	return q, err
}

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/note"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/transfer"
	"custodian/vault"
)

// Service applies custodian's use cases. Its methods are safe for
// concurrent use.
type Service struct {
	Ledger *audit.Ledger
	Runner *transfer.Runner
	Logger zerolog.Logger

	// Authorize decides every action; nil means [Authorize]. Tests count
	// its decisions through this field.
	Authorize Authorizer

	// Gate, if set, is asked before every action that changes anything; a
	// non-nil error (wrapping ErrUnavailable) refuses the action with that
	// message. The daemon closes the gate while its ledger cannot be
	// written or failed verification.
	Gate func() error

	// Recorder, if set, is the path stand-alone events take to the ledger
	// (the daemon's, which keeps events it could not write and writes
	// them once it can); nil appends directly.
	Recorder func(audit.Event) error

	// LedgerHealth, if set, reports whether the ledger verified and can be
	// written, for Status.
	LedgerHealth func() LedgerStatus

	// OnVerifyFailure, if set, is called when a verification the actor
	// asked for fails (perhaps only against the key or checkpoint they
	// gave): the daemon then runs its own full check, which decides
	// whether the ledger is damaged.
	OnVerifyFailure func(a Actor) error

	// HashParams, if set, replaces the argon2id parameters of new password
	// hashes (tests use cheap ones; never set it in production).
	HashParams accounts.Params
	// IdleOverride, if set, replaces the session idle limit
	// (accounts.session.idle, at least a minute): tests of the console's
	// idle blanking shorten it. Never set it in production.
	IdleOverride time.Duration
	// Signer is the ledger's key, which signs backup manifests, and Vault
	// the vault (public key only), which seals the signing key in a
	// backup. The daemon sets both; without them Backup is unavailable.
	Signer note.Signer
	Vault  *vault.Vault

	// Daemon, if set, reports the daemon's uptime and each job's runs,
	// for Status.
	Daemon func() DaemonStatus

	// Now is replaced in tests.
	Now func() time.Time

	// Observe, if set, is told of committed account and request events
	// (notifications, metrics).
	Observe Observer

	sess   sessions
	scrape scrapeSessions
	// key is the vault's private key while unsealed (vaultkey.go).
	key keyring
	// inflight are the requests a read or export is using now.
	inflight inflight
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) config() *configs.Config { return s.Runner.CurrentConfig() }

// MinReason is the shortest reason accepted for an officer action.
const MinReason = 8

// authorize asks the one authorization function and records a refusal.
func (s *Service) authorize(a Actor, act Action, r Resource) error {
	auth := s.Authorize
	if auth == nil {
		auth = Authorize
	}
	if err := auth(a, act, r); err != nil {
		if !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrUnauthenticated) {
			err = fmt.Errorf("%w: %v", ErrForbidden, err)
		}
		return s.refused(a, act, r, err)
	}
	return nil
}

// open checks the gate for an action that changes something.
func (s *Service) open() error {
	if s.Gate == nil {
		return nil
	}
	if err := s.Gate(); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	return nil
}

// refused records that a rule refused act and returns err. A refusal that
// cannot be recorded is still a refusal; the failure to record is logged.
func (s *Service) refused(a Actor, act Action, r Resource, err error) error {
	ev := event(a, audit.EvAccessRefused, map[string]string{
		"action": string(act), "resource": r.String(), "code": CodeOf(err).Name(), "rule": err.Error(), "session": a.Session})
	if r.Kind == "dataset" {
		ev.DatasetID = r.ID
	}
	if r.Kind == "job" {
		ev.Job = r.ID
	}
	if rerr := s.Record(ev); rerr != nil {
		s.Logger.Error().Err(rerr).Str("action", string(act)).Msg("cannot record a refusal on the ledger")
	}
	return err
}

// attributed adds to ev the facts of a's origin (event's details).
func attributed(a Actor, ev audit.Event) audit.Event {
	d := a.details()
	if len(d) == 0 {
		return ev
	}
	m := make(map[string]string, len(ev.Details)+len(d))
	for k, v := range ev.Details {
		m[k] = v
	}
	for k, v := range d {
		m[k] = v
	}
	ev.Details = m
	return ev
}

// Record appends a stand-alone event (no state change) through the one
// path: the daemon's recorder when set, else directly.
func (s *Service) Record(ev audit.Event) error {
	if s.Recorder != nil {
		return s.Recorder(ev)
	}
	return s.Ledger.Batch(func(tx *audit.Tx) error {
		_, err := tx.Append(ev)
		return err
	})
}

// Status returns the daemon's summary.
func (s *Service) Status(ctx context.Context, a Actor) (Status, error) {
	if err := s.authorize(a, ActStatus, Resource{Kind: "daemon"}); err != nil {
		return Status{}, err
	}
	n, err := s.Ledger.Size()
	if err != nil {
		return Status{}, err
	}
	nds, err := s.Ledger.DatasetCount()
	if err != nil {
		return Status{}, err
	}
	st := Status{DataDir: s.config().DataDir, Jobs: s.config().JobNames(), LedgerSize: n, Datasets: nds, Caller: a,
		Ledger: LedgerStatus{State: LedgerOK}}
	if s.LedgerHealth != nil {
		st.Ledger = s.LedgerHealth()
	}
	if err := s.open(); err != nil && st.Ledger.Problem == "" {
		st.Ledger.Problem = err.Error()
	}
	if s.Daemon != nil {
		d := s.Daemon()
		st.Daemon = &d
	}
	if s.Vault != nil {
		v := s.vaultState()
		st.Vault = &v
	}
	return st, nil
}

// RunJob runs a job now and returns every file's outcome.
func (s *Service) RunJob(ctx context.Context, a Actor, job, trigger string, progress func(transfer.Progress)) (*transfer.RunResult, error) {
	cfg := s.config()
	res := Resource{Kind: "job", ID: job, Unit: cfg.Unit}
	if err := s.authorize(a, ActRunJob, res); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if _, ok := cfg.Job(job); !ok {
		return nil, fmt.Errorf("%w: unknown job %q; configured jobs: %s", ErrNotFound, job, strings.Join(cfg.JobNames(), ", "))
	}
	if err := s.pausedError(job); err != nil {
		return nil, s.refused(a, ActRunJob, res, err)
	}
	out, err := s.Runner.Run(ctx, transfer.RunRequest{Job: job, Actor: a.Name, Trigger: trigger, Progress: progress, Details: a.details()})
	switch {
	case errors.Is(err, transfer.ErrJobRunning):
		return nil, fmt.Errorf("%w: %v", ErrBusy, err)
	case errors.Is(err, transfer.ErrUnknownJob):
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return out, err
}

// Datasets lists every dataset's metadata.
func (s *Service) Datasets(ctx context.Context, a Actor) ([]DatasetView, error) {
	if err := s.authorize(a, ActListDatasets, Resource{Kind: "dataset"}); err != nil {
		return nil, err
	}
	ds, err := s.Ledger.Datasets()
	if err != nil {
		return nil, err
	}
	out := make([]DatasetView, len(ds))
	for i, d := range ds {
		out[i] = ViewDataset(d)
	}
	return out, nil
}

// dataset looks a dataset up for an action on it.
func (s *Service) dataset(id string) (audit.Dataset, error) {
	d, ok, err := s.Ledger.Dataset(id)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, fmt.Errorf("%w: no such dataset %q; list them with `custodian dataset list`", ErrNotFound, id)
	}
	return d, nil
}

// Dataset returns one dataset and its custody timeline.
func (s *Service) Dataset(ctx context.Context, a Actor, id string) (DatasetDetail, error) {
	if err := s.authorize(a, ActShowDataset, Resource{Kind: "dataset", ID: id}); err != nil {
		return DatasetDetail{}, err
	}
	d, err := s.dataset(id)
	if err != nil {
		return DatasetDetail{}, err
	}
	tl, err := s.Ledger.Timeline(id)
	if err != nil {
		return DatasetDetail{}, err
	}
	return DatasetDetail{Dataset: ViewDataset(d), Timeline: viewEvents(tl)}, nil
}

func checkReason(reason string) error {
	if len(strings.TrimSpace(reason)) < MinReason {
		return fmt.Errorf("%w: reason: say why in at least %d characters (--reason)", ErrInvalid, MinReason)
	}
	return nil
}

// statesFor lists the states in which an event of type ev applies,
// according to the custody table.
func statesFor(ev audit.EventType) string {
	var names []string
	for _, st := range audit.States {
		if len(audit.Next(ev, st)) > 0 {
			names = append(names, string(st))
		}
	}
	return strings.Join(names, " or ")
}

// Release accepts a held or quarantined dataset, as the custody table
// says: a held change file (its integrity was proven) becomes verified; a
// quarantined file becomes released, never verified. The reason and the
// actor go on the ledger.
func (s *Service) Release(ctx context.Context, a Actor, id, reason string) (DatasetView, error) {
	r := Resource{Kind: "dataset", ID: id}
	if err := s.authorize(a, ActRelease, r); err != nil {
		return DatasetView{}, err
	}
	if err := s.open(); err != nil {
		return DatasetView{}, err
	}
	if err := checkReason(reason); err != nil {
		return DatasetView{}, err
	}
	reason = strings.TrimSpace(reason)
	var out audit.Dataset
	var refusal error
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		d, ok, err := tx.Dataset(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no such dataset %q; list them with `custodian dataset list`", ErrNotFound, id)
		}
		next := audit.Next(audit.EvDatasetReleased, d.State)
		if len(next) != 1 {
			refusal = fmt.Errorf("%w: dataset %s is %s; only %s datasets can be released", ErrConflict, id, d.State, statesFor(audit.EvDatasetReleased))
			return refusal
		}
		from, prevReason := d.State, d.Reason
		d.State = next[0]
		d.Reason = fmt.Sprintf("released by %s: %s (was %s: %s)", a.Name, reason, from, prevReason)
		d.UpdatedAt = s.now()
		ev, err := tx.Append(attributed(a, audit.Event{Time: d.UpdatedAt, Actor: a.Name, Type: audit.EvDatasetReleased, Job: d.Job, Dataset: &d,
			Details: map[string]string{"reason": reason, "from_state": string(from), "to_state": string(d.State)}}))
		if err == nil {
			out = *ev.Dataset
		}
		return err
	})
	if refusal != nil {
		return DatasetView{}, s.refused(a, ActRelease, r, refusal)
	}
	if err != nil {
		return DatasetView{}, err
	}
	return ViewDataset(out), nil
}

// Repull pulls a quarantined dataset's remote file again and verifies it
// anew; the earlier copy stays encrypted in the vault.
func (s *Service) Repull(ctx context.Context, a Actor, id, reason string) (transfer.FileOutcome, error) {
	r := Resource{Kind: "dataset", ID: id}
	if err := s.authorize(a, ActRepull, r); err != nil {
		return transfer.FileOutcome{}, err
	}
	if err := s.open(); err != nil {
		return transfer.FileOutcome{}, err
	}
	if err := checkReason(reason); err != nil {
		return transfer.FileOutcome{}, err
	}
	d, err := s.dataset(id)
	if err != nil {
		return transfer.FileOutcome{}, err
	}
	if len(audit.Next(audit.EvDatasetRepulled, d.State)) == 0 {
		return transfer.FileOutcome{}, s.refused(a, ActRepull, r,
			fmt.Errorf("%w: dataset %s is %s; only %s datasets can be pulled again", ErrConflict, id, d.State, statesFor(audit.EvDatasetRepulled)))
	}
	o, err := s.Runner.Repull(ctx, id, a.Name, strings.TrimSpace(reason))
	switch {
	case errors.Is(err, transfer.ErrNoDataset):
		return o, fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, transfer.ErrState):
		return o, s.refused(a, ActRepull, r, fmt.Errorf("%w: %v", ErrConflict, err))
	}
	return o, err
}

// VerifyLedger recomputes the whole ledger and records that it was done.
func (s *Service) VerifyLedger(ctx context.Context, a Actor, opts audit.VerifyOptions) (*audit.Report, error) {
	if err := s.authorize(a, ActVerifyLedger, Resource{Kind: "ledger"}); err != nil {
		return nil, err
	}
	rep, err := audit.Verify(s.Ledger, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !rep.OK && s.OnVerifyFailure != nil {
		if err := s.OnVerifyFailure(a); err != nil {
			return nil, err
		}
	}
	details := map[string]string{
		"ok": strconv.FormatBool(rep.OK), "events": strconv.FormatInt(rep.Events, 10), "problems": strconv.Itoa(len(rep.Problems))}
	if opts.VerifierKey != "" || len(opts.Checkpoint) > 0 {
		details["against"] = "verifier key or checkpoint given by the caller"
	}
	if err := s.Record(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvAuditVerified, Details: details})); err != nil {
		s.Logger.Error().Err(err).Msg("cannot record the verification on the ledger")
	}
	return rep, nil
}

// ExportLedger records the export, then writes a consistent snapshot of
// the ledger (which includes its own export event) to w.
func (s *Service) ExportLedger(ctx context.Context, a Actor, w io.Writer) (int64, error) {
	if err := s.authorize(a, ActExportLedger, Resource{Kind: "ledger"}); err != nil {
		return 0, err
	}
	// No gate: a damaged ledger must still be exportable for the auditors;
	// the export event then goes where the daemon keeps what it cannot
	// record.
	if err := s.Record(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvAuditExported})); err != nil {
		return 0, err
	}
	return s.Ledger.Export(w)
}

// Checkpoint returns the latest signed checkpoint and the verifier key.
func (s *Service) Checkpoint(ctx context.Context, a Actor) (Checkpoint, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return Checkpoint{}, err
	}
	cp, err := s.Ledger.Checkpoint()
	if err != nil {
		return Checkpoint{}, err
	}
	vk, err := s.Ledger.VerifierKey()
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Checkpoint: string(cp), VerifierKey: vk}, nil
}

// MaxLogLimit is the most events one Log call returns.
const MaxLogLimit = 100000

// Events returns up to limit events from index from.
func (s *Service) Events(ctx context.Context, a Actor, from int64, limit int) ([]EventView, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return nil, err
	}
	if from < 0 {
		return nil, fmt.Errorf("%w: from: %d is not an event index (0 or more)", ErrInvalid, from)
	}
	if limit < 1 || limit > MaxLogLimit {
		return nil, fmt.Errorf("%w: limit: %d is out of range; use 1 to %d", ErrInvalid, limit, MaxLogLimit)
	}
	evs, err := s.Ledger.Events(from, limit)
	if err != nil {
		return nil, err
	}
	return viewEvents(evs), nil
}

// ScrubPlan lists the vault objects the ledger refers to now, for `vault
// verify` to check.
func (s *Service) ScrubPlan(ctx context.Context, a Actor) (ScrubPlan, error) {
	if err := s.authorize(a, ActScrubPlan, Resource{Kind: "vault"}); err != nil {
		return ScrubPlan{}, err
	}
	size, err := s.Ledger.Size()
	if err != nil {
		return ScrubPlan{}, err
	}
	plan, err := transfer.PlanScrub(s.Ledger, size)
	if err != nil {
		return ScrubPlan{}, err
	}
	return viewScrubPlan(plan), nil
}

// Limits of a scrub report.
const (
	maxScrubReason        = 4096
	maxFailedObjectsField = 256 << 10
)

// RecordScrub records a scrub report as a report by its sender (the daemon
// does not hold the vault's private key and did not decrypt anything), or,
// if it does not match the ledger, records its refusal.
func (s *Service) RecordScrub(ctx context.Context, a Actor, rep ScrubReport) (Recorded, error) {
	if err := s.authorize(a, ActRecordScrub, Resource{Kind: "vault"}); err != nil {
		return Recorded{}, err
	}
	if err := s.open(); err != nil {
		return Recorded{}, err
	}
	plan, why, err := s.checkScrubReport(rep)
	if err != nil {
		return Recorded{}, err
	}
	if why != "" {
		return Recorded{}, s.refuseScrub(a, rep, why, ErrRefused)
	}
	owner := make(map[string]string, len(plan.Items))
	for _, it := range plan.Items {
		owner[it.ObjectID] = it.Dataset.ID
	}
	failed := slices.Sorted(maps.Keys(rep.Failed))
	list := strings.Join(failed, " ")
	if len(list) > maxFailedObjectsField {
		cut := strings.LastIndexByte(list[:maxFailedObjectsField], ' ')
		list = list[:max(cut, 0)] + " … (the rest in vault.object_failed events)"
	}
	details := map[string]string{
		"reported_by":     a.Name,
		"objects_checked": strconv.Itoa(rep.Checked),
		"failed":          strconv.Itoa(len(rep.Failed)),
		"failed_objects":  list,
		"checked_digest":  rep.CheckedDigest,
		"ledger_size":     strconv.FormatInt(rep.LedgerSize, 10),
		"note":            "a report by reported_by: the daemon does not hold the vault's private key and did not decrypt the objects; the counts, object IDs and digest match the ledger",
	}
	var recorded audit.Event
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		var err error
		if recorded, err = tx.Append(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvVaultScrubReported, Details: details})); err != nil {
			return err
		}
		for _, obj := range failed {
			if _, err := tx.Append(audit.Event{Actor: a.Name, Type: audit.EvVaultObjectFailed, DatasetID: owner[obj], Details: map[string]string{
				"object_id": obj, "reason": rep.Failed[obj], "reported_by": a.Name}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Recorded{}, err
	}
	return Recorded{Type: string(audit.EvVaultScrubReported), Index: recorded.Index}, nil
}

// checkScrubReport returns the plan rep claims to have followed and, if rep
// does not match the ledger, why (the rule it breaks). err is an internal
// failure.
func (s *Service) checkScrubReport(rep ScrubReport) (plan transfer.ScrubPlan, why string, err error) {
	size, err := s.Ledger.Size()
	if err != nil {
		return plan, "", err
	}
	if rep.LedgerSize < 1 || rep.LedgerSize > size {
		return plan, fmt.Sprintf("ledger_size %d is not a size the ledger has had (1 to %d): a report must follow a plan from GET /v1/vault/scrub-plan", rep.LedgerSize, size), nil
	}
	if plan, err = transfer.PlanScrub(s.Ledger, rep.LedgerSize); err != nil {
		return plan, "", err
	}
	if rep.Checked != len(plan.Items) {
		return plan, fmt.Sprintf("the report says %d object(s) were checked, but the ledger's first %d entries refer to %d vault object(s): a scrub checks every one of them",
			rep.Checked, rep.LedgerSize, len(plan.Items)), nil
	}
	known := make(map[string]bool, len(plan.Items))
	for _, it := range plan.Items {
		known[it.ObjectID] = true
	}
	for _, obj := range slices.Sorted(maps.Keys(rep.Failed)) {
		if !known[obj] {
			return plan, fmt.Sprintf("failed object %s is not a vault object on the ledger (first %d entries): failures must name objects of the plan", quoteShort(obj), rep.LedgerSize), nil
		}
		if len(rep.Failed[obj]) > maxScrubReason {
			return plan, fmt.Sprintf("the reason given for object %s is longer than %d bytes", obj, maxScrubReason), nil
		}
	}
	want := transfer.ScrubDigest(plan.Items)
	switch rep.CheckedDigest {
	case want:
	case "":
		return plan, "checked_digest is required: the SHA-256 of the sorted lines \"OBJECT_ID SHA256\" of the objects checked", nil
	default:
		return plan, fmt.Sprintf("checked_digest %s does not match the objects on the ledger (first %d entries), whose digest is %s: the report must cover exactly those objects and their SHA-256",
			quoteShort(rep.CheckedDigest), rep.LedgerSize, want), nil
	}
	return plan, "", nil
}

// RefuseScrub records a scrub report that could not be read, naming its
// sender and the rule, and returns the refusal.
func (s *Service) RefuseScrub(ctx context.Context, a Actor, why string) error {
	if err := s.authorize(a, ActRecordScrub, Resource{Kind: "vault"}); err != nil {
		return err
	}
	return s.refuseScrub(a, ScrubReport{}, why, ErrInvalid)
}

func (s *Service) refuseScrub(a Actor, rep ScrubReport, why string, code *Code) error {
	details := map[string]string{
		"reported_by":     a.Name,
		"reason":          why,
		"objects_checked": strconv.Itoa(rep.Checked),
		"failed":          strconv.Itoa(len(rep.Failed)),
		"ledger_size":     strconv.FormatInt(rep.LedgerSize, 10),
	}
	if err := s.Record(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvVaultScrubReportRefused, Details: details})); err != nil {
		return fmt.Errorf("recording the refusal of a scrub report (%s): %w", why, err)
	}
	return fmt.Errorf("%w: scrub report refused: %s", code, why)
}

// quoteShort quotes s, cut to 80 bytes: values a client sent are named in
// refusals without letting the client write arbitrary text to the ledger.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "…"
	}
	return strconv.Quote(s)
}

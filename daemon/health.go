package daemon

// Ledger health: whether the daemon may trust and write its ledger.
//
// Trust. On start the daemon checks the ledger incrementally from the last
// verified signed checkpoint (audit.VerifyIncremental: the events since
// then, and every dataset record it serves against a signed event), or, the
// first time, verifies the whole ledger; on the verify.every schedule it
// verifies the whole ledger again. The checkpoint of each successful check
// is kept in data_dir/verified.checkpoint: a file anyone with access to
// data_dir could replace, but only with another checkpoint signed by the
// ledger key, which gains nothing. A failed check freezes the ledger: it is
// never appended to again by this process, since an append signs a new
// checkpoint over whatever the file holds and buries the evidence. Every
// change is refused, status says why, and the report goes to an incident
// file in data_dir/incidents together with every event that could not be
// recorded.
//
// Writing. Every stand-alone event (the daemon's own and the runner's) goes
// through record. When the ledger cannot be written (a full disk), the
// event is kept in memory, in order, new work is refused with the cause,
// and the events are retried with backoff; the first successful write
// records all of them, each with its original time and a note that it was
// recorded late, followed by a ledger.write_resumed event, and work
// resumes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/tlog"

	"custodian/audit"
	"custodian/internal/fsutil"
	"custodian/service"
)

// The ledger's part of the status is a service type (it crosses the API).
const (
	LedgerOK         = service.LedgerOK
	LedgerDamaged    = service.LedgerDamaged
	LedgerUnwritable = service.LedgerUnwritable
)

type (
	LedgerStatus = service.LedgerStatus
	Verification = service.Verification
)

const (
	// maxPendingEvents bounds the events kept while the ledger cannot be
	// written. New work is refused meanwhile, so only runs in progress and
	// the daemon itself add to them.
	maxPendingEvents = 10000
	// defaultRetryMax is the longest wait between two write attempts.
	defaultRetryMax = 10 * time.Second
)

// health is the daemon's ledger-health component.
type health struct {
	log        zerolog.Logger
	led        *audit.Ledger
	vkey       string // the trusted verifier key: the signing key's
	dataDir    string
	configPath string
	retryMax   time.Duration

	verifyMu sync.Mutex // one verification at a time

	mu       sync.Mutex
	damage   *damage
	fault    *writeFault
	pending  []pendingEvent
	lost     int
	retrying bool
	closed   bool
	verified []byte // the last verified signed checkpoint
	last     *Verification
	next     time.Time
	done     chan struct{}
	wg       sync.WaitGroup

	// onDamaged, if set, is told of a failed check (the notification).
	onDamaged func(check, summary, incident string)
}

type damage struct {
	since    time.Time
	trigger  string
	summary  string // the first problem
	incident string // path of the report, "" if it could not be written
}

type writeFault struct {
	since time.Time
	err   error
}

type pendingEvent struct {
	ev  audit.Event
	err error // why the first attempt failed
}

func newHealth(d *Daemon, vkey string) *health {
	return &health{
		log:        d.Log,
		led:        d.Ledger,
		vkey:       vkey,
		dataDir:    d.Config.DataDir,
		configPath: d.Config.Path,
		retryMax:   defaultRetryMax,
		done:       make(chan struct{}),
	}
}

func (h *health) checkpointPath() string { return filepath.Join(h.dataDir, "verified.checkpoint") }
func (h *health) incidentsDir() string   { return filepath.Join(h.dataDir, "incidents") }

func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// refusal returns the error every state-changing request gets while the
// ledger is damaged or cannot be written, or nil.
func (h *health) refusal() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if msg := h.problemLocked(); msg != "" {
		return fmt.Errorf("%w: %s", service.ErrUnavailable, msg)
	}
	return nil
}

func (h *health) problemLocked() string {
	switch {
	case h.damage != nil:
		cfg := "FILE"
		if h.configPath != "" {
			cfg = h.configPath
		}
		report := "no report could be written; see the daemon's log"
		if h.damage.incident != "" {
			report = "report: " + h.damage.incident
		}
		return fmt.Sprintf("the ledger failed verification at %s (%s): %s; custodian accepts no work and writes nothing "+
			"to the ledger (%s). Run `custodian audit verify --config %s` for details, restore data_dir from a backup "+
			"made before the damage, then restart `custodian serve`",
			stamp(h.damage.since), h.damage.trigger, h.damage.summary, report, cfg)
	case h.fault != nil:
		return fmt.Sprintf("ledger cannot be written since %s: %v; custodian accepts no work until it can "+
			"(free space; it retries every %s)", stamp(h.fault.since), h.fault.err, h.retryMax)
	}
	return ""
}

// warning is a one-line notice for every API response while the ledger is
// not healthy (ASCII, fit for an HTTP header), or "".
func (h *health) warning() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.damage != nil:
		return "the ledger failed verification at " + stamp(h.damage.since) + "; custodian accepts no work; run `custodian status` for details"
	case h.fault != nil:
		return "ledger cannot be written since " + stamp(h.fault.since) + "; custodian accepts no work until it can; run `custodian status` for details"
	}
	return ""
}

// reason is a short cause for events such as a skipped scheduled run.
func (h *health) reason() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.damage != nil:
		return "the ledger failed verification"
	case h.fault != nil:
		return "the ledger cannot be written: " + h.fault.err.Error()
	}
	return ""
}

func (h *health) damaged() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.damage != nil
}

func (h *health) status() LedgerStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := LedgerStatus{State: LedgerOK, Problem: h.problemLocked(), PendingEvents: len(h.pending), LostEvents: h.lost, LastVerified: h.last}
	switch {
	case h.damage != nil:
		s.State, s.Since, s.Incident = LedgerDamaged, &h.damage.since, h.damage.incident
	case h.fault != nil:
		s.State, s.Since = LedgerUnwritable, &h.fault.since
	}
	if !h.next.IsZero() && h.damage == nil {
		next := h.next
		s.NextFullVerify = &next
	}
	return s
}

func (h *health) setNext(t time.Time) {
	h.mu.Lock()
	h.next = t
	h.mu.Unlock()
}

// record records a stand-alone event: at once when the ledger is healthy;
// kept and retried when it cannot be written; in the incident report when
// the ledger failed verification.
func (h *health) record(ev audit.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC() // the time it happened, even if recorded late
	}
	h.mu.Lock()
	switch {
	case h.damage != nil:
		h.mu.Unlock()
		h.unrecorded(ev)
		return
	case h.fault != nil:
		h.keepLocked(ev, h.fault.err)
		h.mu.Unlock()
		return
	case len(h.pending) > 0:
		h.keepLocked(ev, errors.New("kept behind earlier events still waiting for the ledger"))
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	err := h.led.Batch(func(tx *audit.Tx) error { _, err := tx.Append(ev); return err })
	switch {
	case err == nil:
	case errors.Is(err, audit.ErrInvalidEvent):
		// Never recordable; a bug in the caller, so say so loudly.
		h.log.Error().Err(err).Str("event", string(ev.Type)).Msg("event refused by the ledger's rules; not recorded")
	case errors.Is(err, audit.ErrFrozen):
		h.unrecorded(ev)
	default:
		h.mu.Lock()
		h.keepLocked(ev, err)
		h.mu.Unlock()
		h.unwritable(err)
	}
}

// keepLocked keeps an event for a later write; h.mu is held.
func (h *health) keepLocked(ev audit.Event, err error) {
	if len(h.pending) >= maxPendingEvents {
		h.lost++
		h.log.Error().Str("event", string(ev.Type)).Int("kept", len(h.pending)).Msg("ledger cannot be written and too many events are waiting: event lost")
		return
	}
	h.pending = append(h.pending, pendingEvent{ev, err})
}

// observe notes an error of a request: a failed ledger write makes the
// ledger unwritable, as a failed event does.
func (h *health) observe(err error) {
	if errors.Is(err, audit.ErrWrite) {
		h.unwritable(err)
	}
}

// unwritable enters (or stays in) the unwritable state and starts retrying.
func (h *health) unwritable(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.damage != nil {
		return
	}
	if h.fault == nil {
		h.fault = &writeFault{since: time.Now(), err: err}
		h.log.Error().Err(err).Int("pending_events", len(h.pending)).Dur("retry_every", h.retryMax).
			Msg("ledger cannot be written: accepting no work until it can; events are kept and retried")
	}
	if !h.retrying && !h.closed {
		h.retrying = true
		h.wg.Add(1)
		go h.retryLoop()
	}
}

func (h *health) retryLoop() {
	defer h.wg.Done()
	h.mu.Lock()
	delay := min(time.Second, h.retryMax)
	h.mu.Unlock()
	for {
		t := time.NewTimer(delay)
		select {
		case <-h.done:
			t.Stop()
			return
		case <-t.C:
		}
		if h.flush() {
			return
		}
		h.mu.Lock()
		delay = min(delay*2, h.retryMax)
		h.mu.Unlock()
	}
}

// flush writes the kept events in order, in one transaction, followed by a
// ledger.write_resumed event if the ledger was unwritable. It reports
// whether the ledger is healthy again (the retry loop has then ended).
func (h *health) flush() bool {
	// h.mu is held through the write: an event arriving meanwhile waits,
	// then goes behind the kept ones, so the resumption event follows every
	// event recorded late.
	h.mu.Lock()
	defer h.mu.Unlock()
	batch, fault, lost := h.pending, h.fault, h.lost
	if h.damage != nil || (len(batch) == 0 && fault == nil) {
		h.retrying = false
		return true
	}
	err := h.led.Update(func(tx *audit.Tx) error {
		for _, p := range batch {
			ev := p.ev
			ev.Details = maps.Clone(ev.Details)
			if ev.Details == nil {
				ev.Details = map[string]string{}
			}
			ev.Details["recorded_late"] = "the ledger could not be written when this happened (" + p.err.Error() + ")"
			if _, err := tx.Append(ev); err != nil {
				return err
			}
		}
		if fault == nil {
			return nil
		}
		_, err := tx.Append(audit.Event{Actor: SystemActor, Type: audit.EvLedgerWriteResumed, Details: map[string]string{
			"since":                fault.since.UTC().Format(time.RFC3339),
			"error":                fault.err.Error(),
			"events_recorded_late": strconv.Itoa(len(batch)),
			"events_lost":          strconv.Itoa(lost),
		}})
		return err
	})
	switch {
	case errors.Is(err, audit.ErrFrozen):
		h.retrying = false
		return true // damaged meanwhile: markDamaged moves the events to its report
	case err != nil:
		if h.fault != nil {
			h.fault.err = err // the latest cause
		}
		return false
	}
	h.pending, h.fault, h.lost = nil, nil, 0
	h.retrying = false
	if fault != nil {
		h.log.Info().Int("events_recorded_late", len(batch)).Int("events_lost", lost).
			Msg("ledger written again: kept events recorded; accepting work")
	}
	return true
}

// close stops retrying; events still kept go to an incident report.
func (h *health) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	h.wg.Wait()
	h.mu.Lock()
	retry := h.damage == nil && (h.fault != nil || len(h.pending) > 0)
	h.mu.Unlock()
	if retry && h.flush() {
		return
	}
	h.mu.Lock()
	pending, lost := h.pending, h.lost
	h.pending = nil
	h.mu.Unlock()
	if len(pending) == 0 && lost == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "custodian incident: the daemon stopped while its ledger could not be written\ntime: %s\nledger: %s\n"+
		"%d event(s) could not be recorded on the ledger and are listed below (metadata only); %d more were lost.\n\n",
		time.Now().UTC().Format(time.RFC3339), filepath.Join(h.dataDir, "ledger.db"), len(pending), lost)
	for _, p := range pending {
		line, _ := json.Marshal(p.ev)
		fmt.Fprintf(&b, "event not recorded (%v): %s\n", p.err, line)
	}
	path, err := h.writeIncident("ledger-unwritable", b.String())
	h.log.Error().Err(err).Str("incident", path).Int("events", len(pending)).Int("lost", lost).
		Msg("stopping with events the ledger could not take; they are in the incident report")
}

// unrecorded appends an event that cannot go on the damaged ledger to the
// incident report.
func (h *health) unrecorded(ev audit.Event) {
	h.mu.Lock()
	path := ""
	if h.damage != nil {
		path = h.damage.incident
	}
	h.mu.Unlock()
	line, _ := json.Marshal(ev)
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, err = fmt.Fprintf(f, "event not recorded (the ledger failed verification): %s\n", line)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			return
		}
		h.log.Error().Err(err).Str("incident", path).Msg("cannot add to the incident report")
	}
	h.log.Error().Str("event", string(ev.Type)).Msg("event not recorded: the ledger failed verification")
}

// writeIncident writes a new report (0600) in data_dir/incidents (0700)
// and returns its path.
func (h *health) writeIncident(kind, body string) (string, error) {
	if err := os.Mkdir(h.incidentsDir(), dataDirMode); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	base := filepath.Join(h.incidentsDir(), time.Now().UTC().Format("20060102T150405Z")+"-"+kind)
	for i := 1; ; i++ {
		path := base + ".txt"
		if i > 1 {
			path = fmt.Sprintf("%s-%d.txt", base, i)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = f.WriteString(body)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return path, err
	}
}

// markDamaged freezes the ledger and enters the damaged state.
func (h *health) markDamaged(trigger, mode string, rep *audit.Report, text string) {
	since := time.Now()
	h.led.Freeze(fmt.Errorf("the ledger failed verification (%s, %s)", trigger, mode))
	summary := firstProblem(rep)
	var b strings.Builder
	fmt.Fprintf(&b, "custodian incident: the ledger failed verification\ntime: %s\ncheck: %s, %s\nledger: %s\n",
		since.UTC().Format(time.RFC3339), trigger, mode, filepath.Join(h.dataDir, "ledger.db"))
	b.WriteString("The daemon accepts no work and writes nothing to the ledger: appending would sign a new checkpoint over\n" +
		"the damaged file. Examine it (custodian audit verify), restore data_dir from a backup made before the damage\n" +
		"(keep this file and a copy of the damaged ledger as evidence), then restart custodian serve.\n\n")
	b.WriteString(text)
	if len(rep.Problems) > 20 {
		b.WriteString("\nAll problems listed by the check:\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	b.WriteString("\nEvents that could not be recorded on the ledger since (metadata only):\n")
	path, err := h.writeIncident("ledger-verify", b.String())
	if err != nil {
		h.log.Error().Err(err).Msg("cannot write the incident report")
	}
	h.mu.Lock()
	if h.damage == nil {
		h.damage = &damage{since: since, trigger: trigger, summary: summary, incident: path}
	}
	pending := h.pending
	h.pending, h.fault = nil, nil
	h.mu.Unlock()
	for _, p := range pending {
		h.unrecorded(p.ev)
	}
	h.log.Error().Str("check", trigger+", "+mode).Str("first_problem", summary).Int("problems", len(rep.Problems)+int(rep.Omitted)).
		Str("incident", path).Msg("LEDGER FAILED VERIFICATION: custodian accepts no work and writes nothing to the ledger")
	if h.onDamaged != nil {
		h.onDamaged(trigger+", "+mode, summary, path)
	}
}

// firstProblem names the first entry that does not match, or the first
// problem.
func firstProblem(rep *audit.Report) string {
	n := int64(len(rep.Problems)) + rep.Omitted
	if n == 0 {
		return "no problem listed"
	}
	p := rep.Problems[0]
	for _, q := range rep.Problems {
		if q.Index == rep.FirstBad {
			p = q
			break
		}
	}
	if n == 1 {
		return p.String()
	}
	return fmt.Sprintf("%s (and %d more problems)", p, n-1)
}

// verifyAtStart checks the ledger before the daemon uses it: incrementally
// from the kept verified checkpoint, or in full the first time (or if that
// checkpoint is not signed by the ledger key). An error means the check
// could not run; a failed check leaves the daemon damaged.
func (h *health) verifyAtStart() error {
	h.verifyMu.Lock()
	defer h.verifyMu.Unlock()
	kept, err := os.ReadFile(h.checkpointPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		h.log.Info().Msg("no verified checkpoint yet: verifying the whole ledger once")
	case err != nil:
		return fmt.Errorf("reading the verified checkpoint: %w", err)
	default:
		inc, err := audit.VerifyIncremental(h.led, audit.IncrementalOptions{VerifierKey: h.vkey, Verified: kept})
		if err == nil {
			h.conclude("start", "incremental", inc, inc.Events)
			return nil
		}
		if !errors.Is(err, audit.ErrUntrustedCheckpoint) {
			return err
		}
		h.log.Warn().Err(err).Str("file", h.checkpointPath()).Msg("the kept verified checkpoint is not signed by the ledger key: verifying the whole ledger instead")
	}
	return h.verifyFullLocked("start")
}

// verifyFull verifies the whole ledger (the schedule, or a request whose
// own verification failed).
func (h *health) verifyFull(trigger string) error {
	h.verifyMu.Lock()
	defer h.verifyMu.Unlock()
	if h.damaged() {
		return nil
	}
	return h.verifyFullLocked(trigger)
}

func (h *health) verifyFullLocked(trigger string) error {
	h.mu.Lock()
	kept := h.verified
	h.mu.Unlock()
	rep, err := audit.Verify(h.led, audit.VerifyOptions{VerifierKey: h.vkey, Checkpoint: kept})
	if err != nil {
		return err
	}
	if !rep.OK {
		h.markDamaged(trigger, "full", rep, rep.String())
		return nil
	}
	if rep.CheckpointSize == 0 { // nothing signed yet
		return nil
	}
	th, err := tlog.ParseHash(rep.TreeHash)
	if err != nil {
		return fmt.Errorf("verified tree hash %q: %w", rep.TreeHash, err)
	}
	// Events may have been appended since Verify's snapshot: check them
	// from the tree it verified, and keep the signed checkpoint that ends.
	inc, err := audit.VerifyIncremental(h.led, audit.IncrementalOptions{VerifierKey: h.vkey,
		VerifiedTree: &tlog.Tree{N: rep.CheckpointSize, Hash: th}})
	if err != nil {
		return err
	}
	h.conclude(trigger, "full", inc, rep.Events)
	return nil
}

// conclude acts on a check's outcome: damage, or a new verified checkpoint
// and an audit.verified event.
func (h *health) conclude(trigger, mode string, inc *audit.IncrementalReport, events int64) {
	if !inc.OK {
		h.markDamaged(trigger, mode, &inc.Report, inc.String())
		return
	}
	v := &Verification{Time: time.Now().UTC(), Mode: mode, Trigger: trigger, Events: events, OK: true}
	h.mu.Lock()
	h.verified, h.last = inc.Checkpoint, v
	h.mu.Unlock()
	if len(inc.Checkpoint) > 0 {
		if err := fsutil.WriteFileAtomic(h.checkpointPath(), inc.Checkpoint, 0o600); err != nil {
			// The next start then checks from the previous one: slower, as safe.
			h.log.Warn().Err(err).Str("file", h.checkpointPath()).Msg("cannot keep the verified checkpoint")
		}
	}
	details := map[string]string{
		"ok": "true", "events": strconv.FormatInt(events, 10), "problems": "0",
		"mode": mode, "trigger": trigger,
		"datasets_checked": strconv.Itoa(inc.DatasetsChecked),
	}
	if mode == "incremental" {
		details["checked_from"] = strconv.FormatInt(inc.From, 10)
	}
	h.log.Info().Str("mode", mode).Str("trigger", trigger).Int64("events", events).Int64("new_events", inc.NewEvents).
		Int("datasets", inc.DatasetsChecked).Msg("ledger verified")
	h.record(audit.Event{Actor: SystemActor, Type: audit.EvAuditVerified, Details: details})
}

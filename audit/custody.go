package audit

import (
	"fmt"
	"slices"
	"strings"
)

// State is a dataset's custody state.
type State string

// Dataset states.
const (
	// StateVerified: complete as the provider declared it (digest, size,
	// record count and, for change files, sequence).
	StateVerified State = "verified"
	// StateQuarantined: stored encrypted but not proven complete; the
	// reason says which check failed.
	StateQuarantined State = "quarantined"
	// StateUnverified: stored with checksum: none; completeness not proven.
	StateUnverified State = "unverified"
	// StateHeld: a change file whose integrity was proven but whose
	// sequence number was a gap, a repeat or out of order.
	StateHeld State = "held"
	// StateReleased: a quarantined dataset the officer accepted, with a
	// reason on the ledger, although its completeness was not proven.
	StateReleased State = "released"
	// StateDestroyed: the dataset's objects were erased (cryptographic
	// erase) after an approved destruction request; the ledger keeps its
	// metadata. No event leaves this state.
	StateDestroyed State = "destroyed"
)

// States lists every dataset state.
var States = []State{StateVerified, StateQuarantined, StateUnverified, StateHeld, StateReleased, StateDestroyed}

// stored are the states in which a dataset's objects are in the vault.
var stored = []State{StateVerified, StateQuarantined, StateUnverified, StateHeld, StateReleased}

// Accepted reports whether data in state s counts as received for the
// job's sequence chain: proven complete, or accepted by the officer.
func (s State) Accepted() bool {
	return s == StateVerified || s == StateUnverified || s == StateReleased
}

// Stored reports whether a dataset in state s has its objects in the vault
// (every state but destroyed).
func (s State) Stored() bool { return slices.Contains(stored, s) }

// EventType names what an event records. The catalogue below is the
// complete list of types custodian writes; docs/ledger-format.md explains
// each one.
type EventType string

// The event catalogue.
const (
	EvInstallationInitialized EventType = "installation.initialized"
	EvDaemonStarted           EventType = "daemon.started"
	EvDaemonStopped           EventType = "daemon.stopped"
	EvConfigReloaded          EventType = "config.reloaded"
	EvConfigReloadRefused     EventType = "config.reload_refused"

	EvJobStarted  EventType = "job.started"
	EvJobFinished EventType = "job.finished"
	EvJobFailed   EventType = "job.failed"
	EvJobSkipped  EventType = "job.skipped"
	// EvJobPaused, EvJobResumed: a person stopped a job's runs, with the
	// reason, or let it run again.
	EvJobPaused  EventType = "job.paused"
	EvJobResumed EventType = "job.resumed"
	// EvJobConfigured: a job's settings as the daemon put them in force
	// (at start or on an accepted reload), when they differ from the last
	// recorded ones: added, changed or removed.
	EvJobConfigured       EventType = "job.configured"
	EvSourceConnectFailed EventType = "source.connect_failed"
	// EvSourceSessionLimit: the server refused sessions beyond its own
	// limit (OpenSSH MaxSessions); the run used more connections instead.
	EvSourceSessionLimit EventType = "source.session_limit"
	EvBatchFailed        EventType = "batch.failed"
	EvSequenceBaseline   EventType = "sequence.baseline"
	EvFileRefused        EventType = "file.refused"
	EvFileFailed         EventType = "file.failed"
	EvFileTransferFailed EventType = "file.transfer_failed"

	EvDatasetReceived   EventType = "dataset.received"
	EvDatasetSuperseded EventType = "dataset.superseded"
	EvDatasetReleased   EventType = "dataset.released"
	EvDatasetRepulled   EventType = "dataset.repulled"

	EvRemoteDelete       EventType = "remote.delete"
	EvRemoteDeleteFailed EventType = "remote.delete_failed"
	EvRemoteMove         EventType = "remote.move"
	EvRemoteMoveFailed   EventType = "remote.move_failed"

	EvVaultRecovered          EventType = "vault.recovered"
	EvVaultVerified           EventType = "vault.verified" // written before scrub reports existed
	EvVaultObjectFailed       EventType = "vault.object_failed"
	EvVaultScrubReported      EventType = "vault.scrub_reported"
	EvVaultScrubReportRefused EventType = "vault.scrub_report_refused"

	EvAuditVerified EventType = "audit.verified"
	EvAuditExported EventType = "audit.exported"
	// EvLedgerWriteResumed: the ledger can be written again after a
	// failure; the events kept meanwhile precede it, marked recorded_late.
	EvLedgerWriteResumed EventType = "ledger.write_resumed"

	// EvAccessRefused records an action the rules refused: who asked,
	// what, on which resource, and the rule.
	EvAccessRefused EventType = "access.refused"

	// Accounts (clause 五(九)–(十三)): each step attributed to the person
	// who took it; the account's name is in details["username"].
	EvAccountBootstrapped    EventType = "account.bootstrapped" // the first accounts, by the host account that ran init
	EvAccountCreated         EventType = "account.created"
	EvAccountChanged         EventType = "account.changed"
	EvAccountDisabled        EventType = "account.disabled"
	EvAccountLocked          EventType = "account.locked"
	EvAccountUnlocked        EventType = "account.unlocked"
	EvAccountRecovered       EventType = "account.recovered" // by root on the host with the vault passphrase
	EvAccountPasswordChanged EventType = "account.password_changed"
	EvAccountTOTPEnrolled    EventType = "account.totp_enrolled"
	EvLoginSucceeded         EventType = "login.succeeded"
	EvLoginFailed            EventType = "login.failed"
	EvSessionRevoked         EventType = "session.revoked"

	// Requests (four eyes): one event per step.
	EvRequestFiled     EventType = "request.filed"
	EvRequestApproved  EventType = "request.approved"
	EvRequestRejected  EventType = "request.rejected"
	EvRequestCancelled EventType = "request.cancelled"
	EvRequestExpired   EventType = "request.expired"
	EvRequestExecuted  EventType = "request.executed"
	// EvBackupCreated: a backup of the installation was written (its
	// ledger snapshot is the ledger before this event).
	EvBackupCreated EventType = "backup.created"
	// EvBackupRestored: an installation was rebuilt from a backup; the
	// first event of the restored ledger after the backup's snapshot.
	EvBackupRestored EventType = "backup.restored"
	// EvNotifyDelivered: a notification reached its recipient (an email
	// address or a webhook name). EvNotifyFailed: delivery was given up
	// after its retries. Neither carries the message.
	EvNotifyDelivered EventType = "notify.delivered"
	EvNotifyFailed    EventType = "notify.failed"

	// Access records (clause 五(一)): a person read a dataset's data, or
	// exported it to a recipient. Together they are the query record the
	// sampling review draws from and supervisors co-sign.
	EvDatasetRead     EventType = "dataset.read"
	EvDatasetExported EventType = "dataset.exported"
	// The sampling review (clause 六): started with its sample, a finding
	// per sampled record, an investigation of an anomaly closed with its
	// outcome, and the review closed.
	EvReviewStarted             EventType = "review.started"
	EvReviewFinding             EventType = "review.finding"
	EvReviewInvestigationClosed EventType = "review.investigation_closed"
	EvReviewClosed              EventType = "review.closed"
	// EvAccessCosigned: a supervisor co-signed access records (the
	// electronic query record sheet of 五(一)).
	EvAccessCosigned EventType = "access.cosigned"
	// EvTrainingRecorded: hours of training a person attended (四(四)).
	EvTrainingRecorded EventType = "training.recorded"
	// EvLedgerArchived: the events before a date were exported as an
	// archive with proofs (retention, 三(五)).
	EvLedgerArchived EventType = "ledger.archived"
	// The data lifecycle (clauses 二, 三(二)(六), 四(一)(二), 五(一)(八)).
	// EvVaultUnsealed: a person gave the daemon the vault's private key,
	// kept in memory only; EvVaultSealed: it was dropped (details reason:
	// request, idle, shutdown).
	EvVaultUnsealed EventType = "vault.unsealed"
	EvVaultSealed   EventType = "vault.sealed"
	// EvVaultScrubbed: the daemon itself decrypted every object with the
	// unsealed key and checked it against the ledger: a fact, not a report.
	EvVaultScrubbed EventType = "vault.scrubbed"
	// EvDatasetCustodyTransferred: a dataset's custodian changed by an
	// accepted hand-over; it carries the dataset (same state, new
	// custodian).
	EvDatasetCustodyTransferred EventType = "dataset.custody_transferred"
	// EvHandoverCompleted: a hand-over (列冊移交) was accepted: the
	// inventory's hash and who requested, approved and accepted it.
	EvHandoverCompleted EventType = "handover.completed"
	// Destruction (clause 四(三)) and key rotation.
	// EvDatasetDestroyed: every object of the dataset was erased; its new
	// state is destroyed (from any stored state).
	EvDatasetDestroyed EventType = "dataset.destroyed"
	// EvDestructionCertified: the destruction certificate of a request:
	// what was destroyed, how, by whom, and the verification performed.
	EvDestructionCertified EventType = "destruction.certified"
	// EvVaultRotated: the vault's master key was replaced; old and new
	// recipients. The daemon trusts the latest one.
	EvVaultRotated EventType = "vault.rotated"
)

// transition is one allowed change of a dataset's state: an event of type
// Event moves a dataset from From ("" for a new dataset) to To.
type transition struct {
	Event    EventType
	From, To State
}

// received are the states a receipt may give.
var received = []State{StateVerified, StateQuarantined, StateHeld, StateUnverified}

// transitions is the one table of allowed state changes. Tx.Append
// enforces it and Verify replays the log against it, so a state change the
// rules forbid cannot be written and is reported if it is found.
var transitions = func() []transition {
	var t []transition
	for _, s := range received {
		t = append(t, transition{EvDatasetReceived, "", s})
		// A quarantined file pulled again is judged anew.
		t = append(t, transition{EvDatasetRepulled, StateQuarantined, s})
	}
	t = append(t,
		// A held change file's integrity was proven: released, it is
		// verified. A quarantined file's was not: it is only released.
		transition{EvDatasetReleased, StateHeld, StateVerified},
		transition{EvDatasetReleased, StateQuarantined, StateReleased},
	)
	// Destruction, from any state in which objects are stored.
	for _, s := range stored {
		t = append(t, transition{EvDatasetDestroyed, s, StateDestroyed})
	}
	return append(t, custodyTransfers()...)
}()

// custodyTransfers: a hand-over changes a dataset's custodian, never its
// state, so it moves every state to itself.
func custodyTransfers() []transition {
	var t []transition
	for _, s := range States {
		t = append(t, transition{EvDatasetCustodyTransferred, s, s})
	}
	return t
}

// catalogue lists every event type Append accepts.
var catalogue = func() map[EventType]bool {
	m := map[EventType]bool{}
	for _, t := range []EventType{
		EvInstallationInitialized, EvDaemonStarted, EvDaemonStopped, EvConfigReloaded, EvConfigReloadRefused,
		EvJobStarted, EvJobFinished, EvJobFailed, EvJobSkipped, EvJobPaused, EvJobResumed, EvSourceConnectFailed, EvSourceSessionLimit, EvBatchFailed,
		EvSequenceBaseline, EvFileRefused, EvFileFailed, EvFileTransferFailed,
		EvDatasetReceived, EvDatasetSuperseded, EvDatasetReleased, EvDatasetRepulled,
		EvRemoteDelete, EvRemoteDeleteFailed, EvRemoteMove, EvRemoteMoveFailed,
		EvVaultRecovered, EvVaultVerified, EvVaultObjectFailed, EvVaultScrubReported, EvVaultScrubReportRefused,
		EvAuditVerified, EvAuditExported, EvLedgerWriteResumed, EvAccessRefused,
		EvAccountBootstrapped, EvAccountCreated, EvAccountChanged, EvAccountDisabled, EvAccountLocked,
		EvAccountUnlocked, EvAccountRecovered, EvAccountPasswordChanged, EvAccountTOTPEnrolled,
		EvLoginSucceeded, EvLoginFailed, EvSessionRevoked,
		EvRequestFiled, EvRequestApproved, EvRequestRejected, EvRequestCancelled, EvRequestExpired, EvRequestExecuted,
		EvBackupCreated, EvBackupRestored,
		EvNotifyDelivered, EvNotifyFailed,
		EvDatasetRead, EvDatasetExported,
		EvReviewStarted, EvReviewFinding, EvReviewInvestigationClosed, EvReviewClosed,
		EvAccessCosigned, EvTrainingRecorded, EvLedgerArchived,
		EvVaultUnsealed, EvVaultSealed, EvVaultScrubbed,
		EvDatasetCustodyTransferred, EvHandoverCompleted,
		EvDatasetDestroyed, EvDestructionCertified, EvVaultRotated,
		EvJobConfigured,
	} {
		m[t] = true
	}
	return m
}()

// EventTypes returns the catalogue, sorted.
func EventTypes() []EventType {
	out := make([]EventType, 0, len(catalogue))
	for t := range catalogue {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Known reports whether t is in the catalogue.
func (t EventType) Known() bool { return catalogue[t] }

// ChangesState reports whether events of type t carry a dataset state.
func (t EventType) ChangesState() bool {
	return slices.ContainsFunc(transitions, func(tr transition) bool { return tr.Event == t })
}

// CheckTransition reports whether an event of type ev may move a dataset
// from state from ("" for a dataset not yet recorded) to state to. It is a
// pure function of the table; the error says what the table allows.
func CheckTransition(ev EventType, from, to State) error {
	var allowed []string
	for _, tr := range transitions {
		if tr.Event != ev {
			continue
		}
		if tr.From == from && tr.To == to {
			return nil
		}
		if tr.From == from {
			allowed = append(allowed, string(tr.To))
		}
	}
	what := "a new dataset"
	if from != "" {
		what = "a " + string(from) + " dataset"
	}
	switch {
	case !ev.ChangesState():
		return fmt.Errorf("%s events do not change a dataset's state", ev)
	case len(allowed) == 0:
		return fmt.Errorf("%s does not apply to %s", ev, what)
	default:
		return fmt.Errorf("%s may make %s %s, not %s", ev, what, strings.Join(allowed, " or "), to)
	}
}

// Next returns the states an event of type ev may give a dataset in state
// from, in table order.
func Next(ev EventType, from State) []State {
	var out []State
	for _, tr := range transitions {
		if tr.Event == ev && tr.From == from {
			out = append(out, tr.To)
		}
	}
	return out
}

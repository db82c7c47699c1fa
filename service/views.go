package service

import (
	"time"

	"custodian/audit"
	"custodian/transfer"
)

// DatasetView is a dataset's metadata as the API and `--json` show it. It
// is not the ledger's type: the two may evolve apart.
type DatasetView struct {
	ID              string            `json:"id"`
	Job             string            `json:"job"`
	Source          string            `json:"source"`
	Kind            string            `json:"kind"`
	RemotePath      string            `json:"remote_path"`
	RemoteSize      int64             `json:"remote_size"`
	RemoteMtime     time.Time         `json:"remote_mtime"`
	Size            int64             `json:"size"`
	SHA256          string            `json:"sha256"`
	Records         int64             `json:"records"`
	DeclaredRecords int64             `json:"declared_records"`
	State           string            `json:"state"`
	Reason          string            `json:"reason,omitempty"`
	Purpose         string            `json:"purpose"`
	ObjectID        string            `json:"object_id"`
	Custodian       string            `json:"custodian"`
	ReceivedAt      time.Time         `json:"received_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	Integrity       map[string]string `json:"integrity,omitempty"`
	PriorObjects    []string          `json:"prior_objects,omitempty"`
	Supersedes      string            `json:"supersedes,omitempty"`
	DestroyedFrom   string            `json:"destroyed_from,omitempty"`
}

// ViewDataset converts a ledger dataset.
func ViewDataset(d audit.Dataset) DatasetView {
	return DatasetView{
		ID: d.ID, Job: d.Job, Source: d.Source, Kind: d.Kind,
		RemotePath: d.RemotePath, RemoteSize: d.RemoteSize, RemoteMtime: d.RemoteMtime,
		Size: d.Size, SHA256: d.SHA256, Records: d.Records, DeclaredRecords: d.DeclaredRecords,
		State: string(d.State), Reason: d.Reason, Purpose: d.Purpose, ObjectID: d.ObjectID, Custodian: d.Custodian,
		ReceivedAt: d.ReceivedAt, UpdatedAt: d.UpdatedAt, Integrity: d.Integrity,
		PriorObjects: d.PriorObjects, Supersedes: d.Supersedes, DestroyedFrom: string(d.DestroyedFrom),
	}
}

// Dataset returns the ledger dataset v was made from (ViewDataset's
// inverse). The scrub uses it to check an object against what the ledger
// says it holds.
func (v DatasetView) Dataset() audit.Dataset {
	return audit.Dataset{
		ID: v.ID, Job: v.Job, Source: v.Source, Kind: v.Kind,
		RemotePath: v.RemotePath, RemoteSize: v.RemoteSize, RemoteMtime: v.RemoteMtime,
		Size: v.Size, SHA256: v.SHA256, Records: v.Records, DeclaredRecords: v.DeclaredRecords,
		State: audit.State(v.State), Reason: v.Reason, Purpose: v.Purpose, ObjectID: v.ObjectID, Custodian: v.Custodian,
		ReceivedAt: v.ReceivedAt, UpdatedAt: v.UpdatedAt, Integrity: v.Integrity,
		PriorObjects: v.PriorObjects, Supersedes: v.Supersedes, DestroyedFrom: audit.State(v.DestroyedFrom),
	}
}

// EventView is a ledger event as the API and `--json` show it.
type EventView struct {
	Index     int64             `json:"index"`
	Time      time.Time         `json:"time"`
	Actor     string            `json:"actor"`
	Type      string            `json:"type"`
	Job       string            `json:"job,omitempty"`
	DatasetID string            `json:"dataset_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	Dataset   *DatasetView      `json:"dataset,omitempty"`
}

// ViewEvent converts a ledger event.
func ViewEvent(ev audit.Event) EventView {
	v := EventView{Index: ev.Index, Time: ev.Time, Actor: ev.Actor, Type: string(ev.Type), Job: ev.Job, DatasetID: ev.DatasetID, Details: ev.Details}
	if ev.Dataset != nil {
		d := ViewDataset(*ev.Dataset)
		v.Dataset = &d
	}
	return v
}

func viewEvents(evs []audit.Event) []EventView {
	out := make([]EventView, len(evs))
	for i, ev := range evs {
		out[i] = ViewEvent(ev)
	}
	return out
}

// DatasetDetail is one dataset with its custody timeline.
type DatasetDetail struct {
	Dataset  DatasetView `json:"dataset"`
	Timeline []EventView `json:"timeline"`
}

// Status is the daemon's summary.
type Status struct {
	DataDir    string   `json:"data_dir"`
	Jobs       []string `json:"jobs"`
	LedgerSize int64    `json:"ledger_size"`
	Datasets   int      `json:"datasets"`
	Caller     Actor    `json:"caller"`
	// Ledger says whether the ledger verified and can be written.
	Ledger LedgerStatus `json:"ledger"`
	// Daemon is the daemon's uptime and each job's last and next run
	// (absent when no daemon answers).
	Daemon *DaemonStatus `json:"daemon,omitempty"`
	// Vault says whether the daemon holds the vault's private key.
	Vault *VaultState `json:"vault,omitempty"`
}

// DaemonStatus is the daemon's part of Status.
type DaemonStatus struct {
	StartedAt     time.Time   `json:"started_at"`
	UptimeSeconds int64       `json:"uptime_seconds"`
	Jobs          []JobStatus `json:"jobs"`
	// PendingApprovals counts requests waiting for a decision;
	// AccountsLocked the accounts locked after failed logins.
	PendingApprovals int `json:"pending_approvals"`
	AccountsLocked   int `json:"accounts_locked"`
	// LastBackup is the last backup the daemon wrote, if any.
	LastBackup *BackupSummary `json:"last_backup,omitempty"`
}

// BackupSummary names a backup.
type BackupSummary struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Dir  string    `json:"dir"`
}

// JobStatus is one job's schedule and runs.
type JobStatus struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule,omitempty"`
	// NextRun is the schedule's next time (absent without a schedule).
	NextRun *time.Time `json:"next_run,omitempty"`
	// LastRun is the last run that finished (from the ledger at start,
	// then from each run); LastSuccess the last without a failure.
	LastRun     *RunSummary `json:"last_run,omitempty"`
	LastSuccess *time.Time  `json:"last_success,omitempty"`
	// Recent are the last runs that finished, newest first (at most
	// RecentRuns; from the ledger at start, then from each run).
	Recent []RunSummary `json:"recent,omitempty"`
	// Paused says who paused the job, when and why, if it is paused.
	Paused *Pause `json:"paused,omitempty"`
	// Officer is the job's custodian (jobs[].officer); OfficerProblem
	// says why that name cannot hold custody (Service.CustodianProblem).
	Officer        string `json:"officer,omitempty"`
	OfficerProblem string `json:"officer_problem,omitempty"`
}

// RunSummary is a finished run.
type RunSummary struct {
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"` // success or failed
	// By is who ran it (system:scheduler for a scheduled run); Files the
	// files it took up, Skipped those already on the ledger.
	By      string `json:"by,omitempty"`
	Files   int    `json:"files"`
	Skipped int    `json:"skipped"`
}

// RecentRuns is how many finished runs of each job Status lists.
const RecentRuns = 10

// Ledger states reported in Status.
const (
	LedgerOK         = "ok"
	LedgerDamaged    = "damaged"    // failed verification: nothing is changed any more
	LedgerUnwritable = "unwritable" // cannot be written: no work until it can
)

// LedgerStatus is the ledger's part of Status.
type LedgerStatus struct {
	State string `json:"state"` // LedgerOK, LedgerDamaged or LedgerUnwritable
	// Problem is what every refused request says, when State is not ok.
	Problem string     `json:"problem,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	// Incident is the report of a failed verification.
	Incident string `json:"incident,omitempty"`
	// PendingEvents are kept in memory until the ledger can be written.
	PendingEvents int `json:"pending_events,omitempty"`
	// LostEvents could not even be kept (more than the memory bound).
	LostEvents     int           `json:"lost_events,omitempty"`
	LastVerified   *Verification `json:"last_verified,omitempty"`
	NextFullVerify *time.Time    `json:"next_full_verify,omitempty"`
}

// Verification is one of the daemon's own ledger checks.
type Verification struct {
	Time    time.Time `json:"time"`
	Mode    string    `json:"mode"`    // incremental or full
	Trigger string    `json:"trigger"` // start, schedule or request
	Events  int64     `json:"events"`  // ledger size checked
	OK      bool      `json:"ok"`
}

// Checkpoint is the ledger's latest signed checkpoint and its verifier key.
type Checkpoint struct {
	Checkpoint  string `json:"checkpoint"`
	VerifierKey string `json:"verifier_key"`
}

// ScrubItem is one vault object a scrub checks, with what the ledger says
// it holds.
type ScrubItem struct {
	ObjectID string      `json:"object_id"`
	Dataset  DatasetView `json:"dataset"`
}

// ScrubPlan lists the vault objects the ledger's first LedgerSize events
// refer to.
type ScrubPlan struct {
	LedgerSize int64       `json:"ledger_size"`
	Items      []ScrubItem `json:"items"`
	// Destroyed lists the datasets destroyed by then: their objects are
	// erased on purpose, so a scrub counts them, not as missing.
	Destroyed []string `json:"destroyed,omitempty"`
}

// Transfer returns the plan with the ledger's datasets, as the scrub
// (transfer.CheckObject, transfer.ScrubDigest) takes it.
func (p ScrubPlan) Transfer() transfer.ScrubPlan {
	out := transfer.ScrubPlan{LedgerSize: p.LedgerSize, Items: make([]transfer.ScrubItem, len(p.Items)), Destroyed: p.Destroyed}
	for i, it := range p.Items {
		out.Items[i] = transfer.ScrubItem{ObjectID: it.ObjectID, Dataset: it.Dataset.Dataset()}
	}
	return out
}

func viewScrubPlan(p transfer.ScrubPlan) ScrubPlan {
	out := ScrubPlan{LedgerSize: p.LedgerSize, Items: make([]ScrubItem, len(p.Items)), Destroyed: p.Destroyed}
	for i, it := range p.Items {
		out.Items[i] = ScrubItem{ObjectID: it.ObjectID, Dataset: ViewDataset(it.Dataset)}
	}
	return out
}

// ScrubReport is what `vault verify` found. The CLI decrypts locally (the
// vault's private key never reaches the daemon), so the daemon records it
// as a report by the calling person, and only if it matches the ledger.
type ScrubReport struct {
	// LedgerSize is the ledger size of the plan the scrub followed.
	LedgerSize int64 `json:"ledger_size"`
	// Checked is the number of vault objects checked: all of the plan's.
	Checked int `json:"checked"`
	// Failed maps the object ID of each object that failed to the reason.
	Failed map[string]string `json:"failed"`
	// CheckedDigest is the digest of the objects checked (see
	// transfer.ScrubDigest).
	CheckedDigest string `json:"checked_digest"`
}

// Recorded names the ledger event a method recorded.
type Recorded struct {
	Type  string `json:"recorded"`
	Index int64  `json:"index"`
}

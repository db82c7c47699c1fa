package service

import (
	"fmt"
	"strings"
)

// Actor is the one person a request is attributed to.
type Actor struct {
	Name string `json:"name"` // account name
	UID  int    `json:"uid"`  // local account of the caller (kernel peer credentials), -1 if none
	PID  int    `json:"pid"`
}

func (a Actor) String() string { return a.Name }

// Action is what an actor asks to do.
type Action string

// The actions, one per use case.
const (
	ActStatus       Action = "status.read"
	ActRunJob       Action = "job.run"
	ActListDatasets Action = "dataset.list"
	ActShowDataset  Action = "dataset.show"
	ActRelease      Action = "dataset.release"
	ActRepull       Action = "dataset.repull"
	ActVerifyLedger Action = "audit.verify"
	ActExportLedger Action = "audit.export"
	ActReadLedger   Action = "audit.read"
	ActScrubPlan    Action = "vault.scrub_plan"
	ActRecordScrub  Action = "vault.record_scrub"
	// ActBackup writes a backup of the installation (ledger snapshot,
	// vault ciphertext, keys, configuration) into a directory.
	ActBackup Action = "installation.backup"
)

// Actions lists every action.
var Actions = []Action{ActStatus, ActRunJob, ActListDatasets, ActShowDataset, ActRelease, ActRepull,
	ActVerifyLedger, ActExportLedger, ActReadLedger, ActScrubPlan, ActRecordScrub, ActBackup}

// Resource is what an action touches: a job, a dataset, the ledger, the
// vault or the daemon itself.
type Resource struct {
	Kind string // "job", "dataset", "ledger", "vault", "daemon"
	ID   string // job name or dataset ID; empty for the ledger, vault and daemon
	Unit string // the unit the resource belongs to (clause 八), when known
}

func (r Resource) String() string {
	if r.ID == "" {
		return r.Kind
	}
	return r.Kind + " " + r.ID
}

// Authorizer decides whether a may perform act on r; nil means yes. A
// refusal wraps ErrForbidden and names the rule.
type Authorizer func(a Actor, act Action, r Resource) error

// Authorize is the one authorization function. Today the rule is the local
// one: every identified account that can open the daemon's socket (mode
// 0600, owned by the service account, in a 0700 directory) may perform
// every action. Per-person accounts, roles and four-eyes approvals replace
// this function, and only this function.
func Authorize(a Actor, act Action, r Resource) error {
	if strings.TrimSpace(a.Name) == "" {
		return fmt.Errorf("%w: the caller cannot be identified; every action is attributed to one person", ErrForbidden)
	}
	for _, known := range Actions {
		if act == known {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown action %q on %s", ErrForbidden, act, r)
}

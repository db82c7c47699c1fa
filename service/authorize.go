package service

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
)

// Actor is the one person a request is attributed to: an account holding
// roles, authenticated by a session, or (for the daemon's own work) a
// system name. The transport fills in where the call came from.
type Actor struct {
	Name       string          `json:"name"` // username
	FullName   string          `json:"full_name,omitempty"`
	Roles      []accounts.Role `json:"roles,omitempty"`
	Unit       string          `json:"unit,omitempty"`
	Contractor bool            `json:"contractor,omitempty"`
	// Restricted, if set, limits the session to the actor's own account
	// (ActSelf) and says why: a second factor must be enrolled first.
	Restricted string `json:"restricted,omitempty"`
	Session    string `json:"session,omitempty"` // the session's ID (a prefix of its token's hash)
	// IdleEnds is when the session ends unless it is used again (set by
	// Authenticate and Peek; the console's pages blank themselves then).
	IdleEnds time.Time `json:"-"`

	Origin
}

// Origin is where a call came from, as the transport saw it.
type Origin struct {
	Via      string `json:"via,omitempty"`       // "socket" or "https"
	HostUser string `json:"host_user,omitempty"` // the local account calling over the socket (kernel peer credentials)
	UID      int    `json:"uid"`                 // that account's uid; -1 if none
	PID      int    `json:"pid,omitempty"`
	Remote   string `json:"remote,omitempty"` // the client's address over HTTPS
}

func (a Actor) String() string { return a.Name }

// details are the facts every event an actor causes carries besides the
// actor's name: the host account over the socket, and the contractor mark.
func (a Actor) details() map[string]string {
	m := map[string]string{}
	if a.HostUser != "" {
		m["host_user"] = a.HostUser
	}
	if a.Contractor {
		m["contractor"] = "true"
	}
	return m
}

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

	// ActSelf: one's own account and session (whoami, logout, password,
	// second factor).
	ActSelf Action = "account.self"
	// ActReadAccounts: list and show accounts.
	ActReadAccounts Action = "account.read"
	// ActFileAccountRequest: file a request to create, change, disable or
	// unlock an account.
	ActFileAccountRequest Action = "request.account"
	// ActReadRequests: list and show requests.
	ActReadRequests Action = "request.read"
	// ActDecideRequest: approve or reject a request (the kind's rule then
	// names the role each kind needs).
	ActDecideRequest Action = "request.decide"
	// ActCancelRequest: cancel one's own request.
	ActCancelRequest Action = "request.cancel"
	// ActExecuteRequest: carry out an approved request (the kind's rule
	// names the role).
	ActExecuteRequest Action = "request.execute"
	// ActBackup writes a backup of the installation (ledger snapshot,
	// vault ciphertext, keys, configuration) into a directory.
	ActBackup Action = "installation.backup"
	// ActPauseJob pauses or resumes a job's runs.
	ActPauseJob Action = "job.pause"
	// ActScrapeMetrics reads the Prometheus metrics over HTTPS.
	ActScrapeMetrics Action = "metrics.scrape"

	// ActRunReview: start a sampling review of access records, record its
	// findings, close its investigations and the review (clause 六).
	ActRunReview Action = "review.run"
	// ActReadReview: show a review and write its report.
	ActReadReview Action = "review.read"
	// ActCosignAccess: co-sign access records (the query record sheet of
	// 五(一)).
	ActCosignAccess Action = "access.cosign"
	// ActReadAccess: list access records and their co-signatures.
	ActReadAccess Action = "access.read"
	// ActRecordTraining: record a person's training hours (四(四)).
	ActRecordTraining Action = "training.record"
	// ActReadTraining: the training report.
	ActReadTraining Action = "training.read"
	// ActPruneLedger: ask for old, archived ledger segments to be pruned
	// (a prune request; retention, 三(五)).
	ActPruneLedger Action = "audit.prune"

	// The data lifecycle.
	//
	// ActUnseal gives the daemon the vault's private key (in memory only);
	// ActSeal drops it.
	ActUnseal Action = "vault.unseal"
	ActSeal   Action = "vault.seal"
	// ActScrubVault has the daemon, unsealed, decrypt and check every
	// object itself and record the outcome as a fact.
	ActScrubVault Action = "vault.scrub"
	// ActReadDataset streams a dataset's received bytes, for a purpose and
	// a case (五(一)).
	ActReadDataset Action = "dataset.read"
	// ActFileDataRequest files a request about a dataset's data: an
	// export (copy), an emergency use outside its legal basis, or an
	// exceptional read of quarantined or held data.
	ActFileDataRequest Action = "request.data"
	// ActRunExport makes the approved copy, encrypted to its recipient.
	ActRunExport Action = "dataset.export"
	// ActFileHandover files a hand-over of one person's custody to another.
	ActFileHandover Action = "request.handover"
	// ActAcceptHandover: the receiving officer accepts an approved
	// hand-over, and custody moves.
	ActAcceptHandover Action = "handover.accept"
	// ActReadHandover shows a hand-over's inventory and letter.
	ActReadHandover Action = "handover.read"

	// Destruction (clause 四(三)), retention and key rotation.
	// ActRequestDestruction: file a destruction request for datasets.
	ActRequestDestruction Action = "destroy.request"
	// ActDestroy: carry out an approved destruction (its requester, by the
	// kind's rule) with the vault passphrase.
	ActDestroy Action = "destroy.run"
	// ActReadCertificate: read a destruction certificate.
	ActReadCertificate Action = "destroy.certificate"
	// ActRotateVault: replace the vault's master key (with its passphrase).
	ActRotateVault Action = "vault.rotate"
	// ActExpiring: list the datasets past their job's retention.
	ActExpiring Action = "dataset.expiring"

	// ActJobHistory: a job's configuration history (its job.configured
	// events, with each version's differences).
	ActJobHistory Action = "job.history"
)

// Actions lists every action.
var Actions = []Action{ActStatus, ActRunJob, ActListDatasets, ActShowDataset, ActRelease, ActRepull,
	ActVerifyLedger, ActExportLedger, ActReadLedger, ActScrubPlan, ActRecordScrub,
	ActSelf, ActReadAccounts, ActFileAccountRequest, ActReadRequests, ActDecideRequest, ActCancelRequest, ActExecuteRequest,
	ActBackup, ActScrapeMetrics, ActPauseJob,
	ActRunReview, ActReadReview, ActCosignAccess, ActReadAccess, ActRecordTraining, ActReadTraining, ActPruneLedger,
	ActUnseal, ActSeal, ActScrubVault, ActReadDataset, ActFileDataRequest, ActRunExport,
	ActFileHandover, ActAcceptHandover, ActReadHandover,
	ActRequestDestruction, ActDestroy, ActReadCertificate, ActRotateVault, ActExpiring,
	ActJobHistory}

// The roles, short.
const (
	rO = accounts.RoleOfficer
	rS = accounts.RoleSupervisor
	rA = accounts.RoleAuditor
	rM = accounts.RoleAdmin
	rD = accounts.RoleDirector
	rC = accounts.RoleContractor
)

// matrix is the one role matrix: for each action, the roles that may
// perform it. An action that is not here is refused to every role.
//
//   - officer and contractor: the data work of their unit (runs, datasets,
//     release, re-pull) and the vault scrub, which decrypts objects in
//     memory and so is a data read, done by the people who hold the vault
//     key; they file and cancel requests;
//   - supervisor: reads datasets and the ledger, decides requests, files
//     account requests;
//   - auditor: the ledger (read, verify, export, checkpoint), dataset
//     metadata, accounts and requests, and the scrub plan (the list of
//     objects and digests the ledger refers to); no data reads, no
//     approvals, no job runs, no requests;
//   - admin: accounts (reads, requests, and executing approved account
//     requests) and backups (ciphertext only); no data reads, no
//     approvals;
//   - director: decides requests (emergency use needs one), reads
//     accounts, requests and one dataset's metadata.
var matrix = map[Action][]accounts.Role{
	ActStatus:       {rO, rS, rA, rM, rD, rC},
	ActRunJob:       {rO, rC},
	ActListDatasets: {rO, rS, rA, rC},
	ActShowDataset:  {rO, rS, rA, rD, rC},
	ActRelease:      {rO, rC},
	ActRepull:       {rO, rC},
	ActReadLedger:   {rS, rA},
	ActVerifyLedger: {rA},
	ActExportLedger: {rA},
	ActScrubPlan:    {rO, rA, rC},
	ActRecordScrub:  {rO, rC},

	ActSelf:               {rO, rS, rA, rM, rD, rC},
	ActReadAccounts:       {rS, rA, rM, rD},
	ActFileAccountRequest: {rS, rM},
	ActReadRequests:       {rO, rS, rA, rM, rD, rC},
	ActDecideRequest:      {rS, rD},
	ActCancelRequest:      {rO, rS, rM, rD, rC},
	ActExecuteRequest:     {rM},
	// A backup copies ciphertext and sealed keys only: an operations
	// task for the admin.
	ActBackup: {rM},
	// Metrics hold no registry data and no names: the monitoring
	// system's own account, and nobody else's business.
	ActScrapeMetrics: {accounts.RoleMetrics},
	// Pausing a job is the data people's (who run it) and their
	// supervisor's, in an incident; each pause names its reason.
	ActPauseJob: {rO, rS, rC},

	// The sampling review is the auditors' work; the head of agency
	// (director) receives its report and supervisors, who co-sign the
	// records, may read it. Co-signing query records is the
	// supervisor's (五(一)); auditors see which are co-signed. Training
	// is recorded by supervisors (who send staff) and admins (who keep
	// personnel records), and read by those and auditors and the
	// director. Asking to prune the ledger is an auditor's (two
	// supervisors approve).
	ActRunReview:      {rA},
	ActReadReview:     {rA, rS, rD},
	ActCosignAccess:   {rS},
	ActReadAccess:     {rS, rA},
	ActRecordTraining: {rS, rM},
	ActReadTraining:   {rS, rA, rM, rD},
	ActPruneLedger:    {rA},

	// Unsealing hands the daemon the key to every object of the vault:
	// the officer, who holds the vault passphrase as the custodian of the
	// data (clause 四(一)), does it; a contractor never holds that key.
	// Sealing only takes the key away again, so anyone accountable for
	// the installation may do it at once (an officer or contractor, a
	// supervisor, an admin in an incident, the director); the auditor
	// only observes.
	ActUnseal: {rO},
	ActSeal:   {rO, rS, rM, rD, rC},
	// The in-daemon scrub returns no data, only the outcome, which the
	// daemon records: the data people and the auditor may ask for it.
	ActScrubVault: {rO, rA, rC},
	// Reads and copies of registry data: only the officer or contractor
	// of the dataset's unit (clauses 二, 三(六)); every copy needs an
	// approved request, which they file and carry out.
	ActReadDataset:     {rO, rC},
	ActFileDataRequest: {rO, rC},
	ActRunExport:       {rO, rC},
	// Custody is an officer's, never a contractor's: a hand-over is
	// filed by the officer handing over, or by a supervisor when that
	// officer is gone, and accepted by the receiving officer. The data
	// people, supervisors, auditors and the director may read the
	// inventory and the letter (metadata only).
	ActFileHandover:   {rO, rS},
	ActAcceptHandover: {rO},
	ActReadHandover:   {rO, rS, rA, rD, rC},
	// Destruction: the custodian of the data (the job's officer) asks for
	// it and, once supervisors approved, carries it out; the certificate
	// is for everyone who answers for the data or audits it. Rotation
	// replaces the master key, which only the officers who hold the vault
	// passphrase may do (as for unsealing: never a contractor).
	ActRequestDestruction: {rO, rC},
	ActDestroy:            {rO, rC},
	ActReadCertificate:    {rO, rS, rA, rD, rC},
	ActRotateVault:        {rO},
	ActExpiring:           {rO, rS, rA, rC},
	// A job's configuration history is evidence of how data was
	// received: for the people who run the job (of its unit), their
	// supervisors and the auditors; the admin (accounts, backups) and
	// the director (decisions) have no part in how files are pulled.
	ActJobHistory: {rO, rS, rA, rC},
}

// Allowed reports whether role may perform action. An unknown role or an
// action outside the matrix is refused.
func Allowed(role accounts.Role, action Action) bool {
	return slices.Contains(matrix[action], role)
}

// Permits reports whether an account holding roles may perform action:
// whether one of them is [Allowed] to.
func Permits(roles []accounts.Role, action Action) bool {
	return slices.ContainsFunc(roles, func(r accounts.Role) bool { return Allowed(r, action) })
}

// unitBound are the roles whose rights end at their unit's border (clause
// 八: township stations can share one install).
var unitBound = []accounts.Role{rO, rC}

// Resource is what an action touches: a job, a dataset, the ledger, the
// vault or the daemon itself.
type Resource struct {
	Kind string // "job", "dataset", "ledger", "vault", "daemon", "account", "request"
	ID   string // job name, dataset ID, username or request ID; empty for the ledger, vault and daemon
	Unit string // the unit the resource belongs to (clause 八), when known
}

func (r Resource) String() string {
	if r.ID == "" {
		return r.Kind
	}
	return r.Kind + " " + r.ID
}

// Authorizer decides whether a may perform act on r; nil means yes. A
// refusal wraps ErrForbidden or ErrUnauthenticated and names the rule.
type Authorizer func(a Actor, act Action, r Resource) error

// Authorize is the one authorization function: the caller must be an
// authenticated person; a restricted session may only act on its own
// account; one of the actor's roles must be allowed the action by the
// matrix; and an officer or contractor acts only on resources of their own
// unit (unless another of their roles is allowed the action without that
// limit). Everything else is refused: an action outside the matrix
// fails closed.
func Authorize(a Actor, act Action, r Resource) error {
	if strings.TrimSpace(a.Name) == "" || len(a.Roles) == 0 {
		return fmt.Errorf("%w: log in first (`custodian login`); every action is attributed to one person", ErrUnauthenticated)
	}
	if !slices.Contains(Actions, act) {
		return fmt.Errorf("%w: role: %q is not an action; refused to everyone", ErrForbidden, act)
	}
	if a.Restricted != "" && act != ActSelf {
		return fmt.Errorf("%w: session: %s", ErrForbidden, a.Restricted)
	}
	allowed := false
	unitFree := false
	for _, role := range a.Roles {
		if Allowed(role, act) {
			allowed = true
			unitFree = unitFree || !slices.Contains(unitBound, role)
		}
	}
	if !allowed {
		return fmt.Errorf("%w: role: %s (%s) may not %s; it needs one of the roles %s", ErrForbidden, a.Name, roleList(a.Roles), act, roleList(matrix[act]))
	}
	if !unitFree && r.Unit != "" && a.Unit != r.Unit {
		return fmt.Errorf("%w: unit: %s belongs to unit %q; %s acts for unit %q", ErrForbidden, r, r.Unit, a.Name, a.Unit)
	}
	return nil
}

func roleList(rs []accounts.Role) string {
	if len(rs) == 0 {
		return "(none)"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// actorName is the name events carry; an unidentified caller is named as
// such, so its refusal can still be recorded.
func actorName(a Actor) string {
	if strings.TrimSpace(a.Name) == "" {
		if a.HostUser != "" {
			return "unidentified:host:" + a.HostUser
		}
		if a.Remote != "" {
			return "unidentified:" + a.Remote
		}
		return "unidentified:uid:" + strconv.Itoa(a.UID)
	}
	return a.Name
}

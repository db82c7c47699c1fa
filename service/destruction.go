package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/proof"
	"custodian/vault"
)

// Destruction (clause 四(三)): a dataset's custodian files a destruction
// request naming datasets; supervisors approve it (the kind's rule in
// package accounts: two, never the requester); the requester carries it
// out with the vault passphrase. Carrying it out erases every vault object
// of those datasets (the current one, earlier receipts kept by re-pulls,
// copies set aside by crash recovery): a cryptographic erase, since each
// object's own key is overwritten and unlinked (package vault). The
// erasure is verified, optionally followed by a rotation of the master
// key, and recorded in one ledger transaction: the request's execution,
// one dataset.destroyed per dataset (its metadata stays), and the
// destruction.certified certificate.

// DestructionMethod is what a certificate names as the method.
const DestructionMethod = "cryptographic erase (NIST SP 800-88 Rev. 1 purge): each object's own key file overwritten with random bytes, fsynced and unlinked; the ciphertext likewise"

// ToolVersion names the software that carried out a destruction, for its
// certificate: custodian's module version and VCS revision when built
// with them.
func ToolVersion() string {
	v := "custodian"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v + " (unknown build)"
	}
	v += " " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " rev " + s.Value
		}
	}
	return v + " (" + bi.GoVersion + ")"
}

// DestructionRequest asks for datasets to be destroyed.
type DestructionRequest struct {
	Datasets []string `json:"datasets"`
	Reason   string   `json:"reason"`
}

// MaxDestructionDatasets bounds one request.
const MaxDestructionDatasets = 1000

// FileDestruction files a destruction request for the datasets (each
// recorded, with nothing destroyed yet); supervisors approve it with
// `custodian approve`, and the requester carries it out (RunDestruction).
func (s *Service) FileDestruction(ctx context.Context, a Actor, req DestructionRequest) (RequestView, error) {
	res := Resource{Kind: "dataset", ID: strings.Join(req.Datasets, " "), Unit: s.config().Unit}
	if err := s.authorize(a, ActRequestDestruction, res); err != nil {
		return RequestView{}, err
	}
	if err := s.open(); err != nil {
		return RequestView{}, err
	}
	if len(req.Datasets) == 0 || len(req.Datasets) > MaxDestructionDatasets {
		return RequestView{}, fmt.Errorf("%w: datasets: name 1 to %d dataset IDs (custodian destroy request ID... --reason R)", ErrInvalid, MaxDestructionDatasets)
	}
	if err := checkReason(req.Reason); err != nil {
		return RequestView{}, err
	}
	ids := slices.Clone(req.Datasets)
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return RequestView{}, fmt.Errorf("%w: datasets: %s is named twice", ErrInvalid, ids[i])
		}
	}
	for _, id := range ids {
		d, err := s.dataset(id)
		if err != nil {
			return RequestView{}, err
		}
		if !d.State.Stored() {
			return RequestView{}, s.refused(a, ActRequestDestruction, res, s.destroyedError(d))
		}
	}
	now := s.now()
	var q *accounts.Request
	var refusal error
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		// One open destruction request per dataset.
		if err := w.ForEach(func(_ string, v []byte) error {
			var o accounts.Request
			if json.Unmarshal(v, &o) != nil || o.Kind != accounts.KindDestruction || !now.Before(o.Expires) ||
				(o.State() != accounts.RequestPending && o.State() != accounts.RequestApproved) {
				return nil
			}
			for _, id := range strings.Fields(o.Details["datasets"]) {
				if slices.Contains(ids, id) {
					refusal = fmt.Errorf("%w: dataset %s is in destruction request %s, still open; cancel it or let it finish", ErrConflict, id, o.ID)
					return refusal
				}
			}
			return nil
		}); err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		q, err = accounts.NewRequest(fmt.Sprintf("R%d", n), accounts.KindDestruction, strings.Join(ids, " "), strings.TrimSpace(req.Reason), a.Name, now, 0)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		q.Details = map[string]string{"datasets": strings.Join(ids, " ")}
		if err := putRequest(tx, q); err != nil {
			return err
		}
		ev := requestEvent(a, audit.EvRequestFiled, q, q.Reason)
		ev.Details["datasets"] = q.Details["datasets"]
		_, err = tx.Append(ev)
		return err
	})
	if refusal != nil {
		return RequestView{}, s.refused(a, ActRequestDestruction, res, refusal)
	}
	if err != nil {
		return RequestView{}, err
	}
	return viewRequest(q), nil
}

// DestroyOptions carry out a destruction.
type DestroyOptions struct {
	// Passphrase unlocks the vault: the erase is verified with the master
	// key, and a rotation needs it.
	Passphrase []byte `json:"passphrase"`
	// Rotate replaces the master key after the erase, so that backups
	// taken before depend on a key the installation no longer holds
	// (docs/destruction.md). NewPassphrase, if set, protects the new key.
	Rotate        bool   `json:"rotate"`
	NewPassphrase []byte `json:"new_passphrase,omitempty"`
}

// CertificateItem is one destroyed dataset on a certificate.
type CertificateItem struct {
	Dataset   string   `json:"dataset"`
	Name      string   `json:"name"` // the remote path it was received as
	Size      int64    `json:"size"`
	SHA256    string   `json:"sha256"`
	Records   int64    `json:"records"`
	FromState string   `json:"from_state"`
	Objects   []string `json:"objects"`
}

// Certificate is a destruction certificate (the fields of NIST SP 800-88
// Rev. 1's sample certificate that apply), as the ledger's
// destruction.certified event records it, with the proof that the event
// is in the ledger.
type Certificate struct {
	Request            string            `json:"request"`
	Reason             string            `json:"reason"`
	Items              []CertificateItem `json:"items"`
	Method             string            `json:"method"`
	Tool               string            `json:"tool"`
	RequestedBy        string            `json:"requested_by"`
	RequestedAt        string            `json:"requested_at"`
	ApprovedBy         string            `json:"approved_by"`
	ExecutedBy         string            `json:"executed_by"`
	ExecutedAt         string            `json:"executed_at"`
	Verification       string            `json:"verification"`
	VerificationResult string            `json:"verification_result"`
	KeyFilesErased     int               `json:"key_files_erased"`
	CiphertextsErased  int               `json:"ciphertexts_erased"`
	LegacyObjects      int               `json:"legacy_objects"`
	MasterKeyRotated   bool              `json:"master_key_rotated"`
	DestroyedEvents    []int64           `json:"destroyed_events"`
	// Event is the index of the destruction.certified event, and Proof
	// its inclusion proof under the ledger's signed checkpoint.
	Event int64           `json:"event"`
	Proof proof.Inclusion `json:"proof"`
}

// certificateDetails are the details of a destruction.certified event.
func (c *Certificate) details() (map[string]string, error) {
	items, err := json.Marshal(c.Items)
	if err != nil {
		return nil, err
	}
	ev := make([]string, len(c.DestroyedEvents))
	for i, n := range c.DestroyedEvents {
		ev[i] = strconv.FormatInt(n, 10)
	}
	ds := make([]string, len(c.Items))
	for i, it := range c.Items {
		ds[i] = it.Dataset
	}
	return map[string]string{
		"request": c.Request, "reason": c.Reason, "datasets": strings.Join(ds, " "), "items": string(items),
		"method": c.Method, "tool": c.Tool, "requested_by": c.RequestedBy, "requested_at": c.RequestedAt,
		"approved_by": c.ApprovedBy, "executed_by": c.ExecutedBy, "executed_at": c.ExecutedAt,
		"verification": c.Verification, "verification_result": c.VerificationResult,
		"key_files_erased": strconv.Itoa(c.KeyFilesErased), "ciphertexts_erased": strconv.Itoa(c.CiphertextsErased),
		"legacy_objects": strconv.Itoa(c.LegacyObjects), "master_key_rotated": strconv.FormatBool(c.MasterKeyRotated),
		"destroyed_events": strings.Join(ev, " "),
	}, nil
}

// certificateFromEvent reads a certificate back from its event.
func certificateFromEvent(ev audit.Event) (Certificate, error) {
	if ev.Type != audit.EvDestructionCertified {
		return Certificate{}, fmt.Errorf("event %d is %s, not %s", ev.Index, ev.Type, audit.EvDestructionCertified)
	}
	d := ev.Details
	c := Certificate{Request: d["request"], Reason: d["reason"], Method: d["method"], Tool: d["tool"],
		RequestedBy: d["requested_by"], RequestedAt: d["requested_at"], ApprovedBy: d["approved_by"],
		ExecutedBy: d["executed_by"], ExecutedAt: d["executed_at"], Verification: d["verification"],
		VerificationResult: d["verification_result"], MasterKeyRotated: d["master_key_rotated"] == "true", Event: ev.Index}
	if err := json.Unmarshal([]byte(d["items"]), &c.Items); err != nil {
		return c, fmt.Errorf("event %d: items: %v", ev.Index, err)
	}
	c.KeyFilesErased, _ = strconv.Atoi(d["key_files_erased"])
	c.CiphertextsErased, _ = strconv.Atoi(d["ciphertexts_erased"])
	c.LegacyObjects, _ = strconv.Atoi(d["legacy_objects"])
	for _, f := range strings.Fields(d["destroyed_events"]) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return c, fmt.Errorf("event %d: destroyed_events: %q", ev.Index, f)
		}
		c.DestroyedEvents = append(c.DestroyedEvents, n)
	}
	return c, nil
}

// unlockVault unlocks the vault's master key with a passphrase given in
// the request, for this call only.
func (s *Service) unlockVault(a Actor, act Action, res Resource, passphrase []byte) (*vault.Identity, error) {
	if s.Vault == nil {
		return nil, fmt.Errorf("%w: the vault is not open in this process", ErrUnavailable)
	}
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: passphrase: the vault passphrase is required (--passphrase-file)", ErrInvalid)
	}
	ident, err := s.Vault.Unlock(passphrase)
	if err != nil {
		if errors.Is(err, vault.ErrBadPassphrase) {
			return nil, s.refused(a, act, res, fmt.Errorf("%w: passphrase: the vault passphrase is wrong", ErrForbidden))
		}
		return nil, err
	}
	return ident, nil
}

// RunDestruction carries out approved destruction request id: erases every
// object of its datasets, verifies the erase, optionally rotates the
// master key, and records the execution, the datasets' destroyed states
// and the certificate in one ledger transaction. A refusal by the rules
// (not approved, not the requester, approved by oneself) is recorded and
// nothing is erased.
func (s *Service) RunDestruction(ctx context.Context, a Actor, id string, opts DestroyOptions) (Certificate, error) {
	res := Resource{Kind: "request", ID: id}
	if err := s.authorize(a, ActDestroy, res); err != nil {
		return Certificate{}, err
	}
	if err := s.open(); err != nil {
		return Certificate{}, err
	}
	s.expireRequests()
	q, err := s.requestByID(id)
	if err != nil {
		return Certificate{}, err
	}
	if q.Kind != accounts.KindDestruction {
		return Certificate{}, s.refused(a, ActDestroy, res, fmt.Errorf("%w: request %s is %s, not a destruction request", ErrConflict, id, q.Kind))
	}
	// The rules first, on a copy: nothing is erased unless the request
	// may be carried out, by this person, now.
	now := s.now()
	trial := *q
	if err := trial.Execute(a.Name, a.Roles, now); err != nil {
		return Certificate{}, s.refused(a, ActDestroy, res, ruleError(err))
	}
	var datasets []audit.Dataset
	for _, did := range strings.Fields(q.Details["datasets"]) {
		d, err := s.dataset(did)
		if err != nil {
			return Certificate{}, err
		}
		if !d.State.Stored() {
			return Certificate{}, s.refused(a, ActDestroy, res, fmt.Errorf("%w: request %s can no longer be carried out: %v", ErrConflict, id, s.destroyedError(d)))
		}
		datasets = append(datasets, d)
	}
	// The erase needs the vault's private key: the one an officer unsealed
	// into the daemon, or the passphrase sent with the request.
	if opts.Rotate && len(opts.Passphrase) == 0 {
		return Certificate{}, fmt.Errorf("%w: passphrase: rotating the master key after the erase re-encrypts it under the vault passphrase: give --passphrase-file, or --rotate=false", ErrInvalid)
	}
	var ident *vault.Identity
	if len(opts.Passphrase) == 0 {
		key, done, err := s.useKey()
		if err != nil {
			return Certificate{}, s.refused(a, ActDestroy, res, fmt.Errorf("%w (or give the vault passphrase with --passphrase-file)", err))
		}
		defer done()
		ident = key
	} else if ident, err = s.unlockVault(a, ActDestroy, res, opts.Passphrase); err != nil {
		return Certificate{}, err
	}

	// The erase, object by object.
	var erasures []vault.Erasure
	cert := Certificate{Request: q.ID, Reason: q.Reason, Method: DestructionMethod, Tool: ToolVersion(),
		RequestedBy: q.Requester, RequestedAt: q.Created.UTC().Format(time.RFC3339), ExecutedBy: a.Name,
		ExecutedAt: now.Format(time.RFC3339)}
	var approvers []string
	for _, d := range q.Approvals {
		approvers = append(approvers, fmt.Sprintf("%s (%s) %s", d.By, d.Role, d.At.UTC().Format(time.RFC3339)))
	}
	cert.ApprovedBy = strings.Join(approvers, "; ")
	for _, d := range datasets {
		objs := d.Objects()
		for _, obj := range objs {
			if err := ctx.Err(); err != nil {
				return Certificate{}, err
			}
			e, err := s.Vault.Destroy(obj, ident)
			if err != nil {
				return Certificate{}, fmt.Errorf("erasing object %s of dataset %s: %w (run custodian destroy run %s again: the erase resumes)", obj, d.ID, err, id)
			}
			erasures = append(erasures, e)
			cert.KeyFilesErased += e.KeyFilesErased
			cert.CiphertextsErased += e.CiphertextsErased
			if e.Format == vault.FormatLegacy && e.Header() != nil {
				cert.LegacyObjects++
			}
		}
		cert.Items = append(cert.Items, CertificateItem{Dataset: d.ID, Name: d.RemotePath, Size: d.Size, SHA256: d.SHA256,
			Records: d.Records, FromState: string(d.State), Objects: objs})
	}

	// The optional rotation, recorded by its own event before the swap.
	current := ident
	if opts.Rotate {
		next, _, err := s.rotate(ctx, a, ident, opts.Passphrase, opts.NewPassphrase, q.ID, "after destruction request "+q.ID)
		if err != nil {
			return Certificate{}, fmt.Errorf("the objects are erased, but rotating the master key failed: %w; run custodian vault rotate, then custodian destroy run %s --rotate=false to record the destruction", err, id)
		}
		current = next
		cert.MasterKeyRotated = true
	}

	// The verification: nothing of any object is left in the vault, and
	// the header of each, read before the erase, does not open with the
	// master key in force.
	failed := []string{}
	for _, e := range erasures {
		gone, err := s.Vault.Erased(e.ObjectID)
		if err != nil {
			return Certificate{}, err
		}
		switch {
		case !gone:
			failed = append(failed, e.ObjectID+": files remain in the vault")
		case e.Recheck(current):
			failed = append(failed, e.ObjectID+": its ciphertext still opens with the master key")
		}
	}
	cert.Verification = fmt.Sprintf("for each of %d object(s): no key file and no ciphertext remain in the vault (objects/, keys/, orphans/, tmp/); the object's age header, read before the erase, was given to the %s master key (%s) and did not open (no identity matched)",
		len(erasures), map[bool]string{true: "new (rotated)", false: "current"}[cert.MasterKeyRotated], current.Recipient())
	if cert.LegacyObjects > 0 && !cert.MasterKeyRotated {
		cert.Verification += fmt.Sprintf("; %d legacy object(s) had their data key in their own header, wrapped to the master key: copies of them outside the vault stay decryptable until the master key is rotated", cert.LegacyObjects)
	}
	cert.VerificationResult = "passed"
	if len(failed) > 0 {
		cert.VerificationResult = "failed"
		cert.Verification += "; FAILED: " + strings.Join(failed, "; ")
	}

	// The record: the execution, each dataset's destroyed state, the
	// certificate.
	var certEvent audit.Event
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateRequests)
		if err != nil {
			return err
		}
		q, err := getRequest(w, id)
		if err != nil || q == nil {
			return fmt.Errorf("request %s: %v", id, err)
		}
		if err := q.Execute(a.Name, a.Roles, now); err != nil {
			return ruleError(err)
		}
		if _, err := tx.Append(requestEvent(a, audit.EvRequestExecuted, q, "")); err != nil {
			return err
		}
		for i, d := range datasets {
			from := d.State
			d.DestroyedFrom = from
			d.State = audit.StateDestroyed
			d.Reason = fmt.Sprintf("destroyed by %s on request %s: %s (was %s)", a.Name, q.ID, q.Reason, from)
			d.UpdatedAt = now
			ev, err := tx.Append(attributed(a, audit.Event{Time: now, Actor: a.Name, Type: audit.EvDatasetDestroyed, Job: d.Job, Dataset: &d,
				Details: map[string]string{"request": q.ID, "reason": q.Reason, "from_state": string(from),
					"objects": strings.Join(cert.Items[i].Objects, " "), "method": "cryptographic erase"}}))
			if err != nil {
				return err
			}
			cert.DestroyedEvents = append(cert.DestroyedEvents, ev.Index)
		}
		details, err := cert.details()
		if err != nil {
			return err
		}
		if certEvent, err = tx.Append(attributed(a, audit.Event{Time: now, Actor: a.Name, Type: audit.EvDestructionCertified, Details: details})); err != nil {
			return err
		}
		if q.Details == nil {
			q.Details = map[string]string{}
		}
		q.Details["certificate_event"] = strconv.FormatInt(certEvent.Index, 10)
		return putRequest(tx, q)
	})
	if err != nil {
		return Certificate{}, fmt.Errorf("the objects are erased, but recording the destruction failed: %w; run custodian destroy run %s again to record it", err, id)
	}
	cert.Event = certEvent.Index
	if p, err := proof.Prove(s.Ledger, cert.Event); err == nil {
		cert.Proof = p
	}
	if cert.VerificationResult != "passed" {
		return cert, fmt.Errorf("%w: the destruction of request %s was recorded, but its verification failed: %s", ErrInternal, id, cert.Verification)
	}
	return cert, nil
}

// DestructionCertificate returns the certificate of an executed
// destruction request, as its ledger event records it, with the event's
// inclusion proof.
func (s *Service) DestructionCertificate(ctx context.Context, a Actor, id string) (Certificate, error) {
	if err := s.authorize(a, ActReadCertificate, Resource{Kind: "request", ID: id}); err != nil {
		return Certificate{}, err
	}
	q, err := s.requestByID(id)
	if err != nil {
		return Certificate{}, err
	}
	idx, err := strconv.ParseInt(q.Details["certificate_event"], 10, 64)
	if q.Kind != accounts.KindDestruction || err != nil {
		return Certificate{}, fmt.Errorf("%w: request %s (%s, %s) has no destruction certificate; one is written when an approved destruction request is carried out (custodian destroy run)", ErrNotFound, id, q.Kind, q.State())
	}
	evs, err := s.Ledger.Events(idx, 1)
	if err != nil || len(evs) != 1 {
		return Certificate{}, fmt.Errorf("reading event %d: %v", idx, err)
	}
	c, err := certificateFromEvent(evs[0])
	if err != nil {
		return Certificate{}, err
	}
	if c.Proof, err = proof.Prove(s.Ledger, idx); err != nil {
		return Certificate{}, proofError(err)
	}
	return c, nil
}

// VerifyCertificate checks a certificate offline: its proof leads to a
// checkpoint signed by verifierKey (empty: the key in the proof), the
// proven event is a destruction.certified event, and every field of the
// certificate is what that event records.
func VerifyCertificate(c Certificate, verifierKey string) error {
	b, err := proof.Encode(c.Proof)
	if err != nil {
		return err
	}
	r, err := proof.Check(b, proof.Options{VerifierKey: verifierKey})
	if err != nil {
		return err
	}
	if r.Index != c.Event {
		return fmt.Errorf("the proof is of event %d, the certificate names event %d", r.Index, c.Event)
	}
	want, err := certificateFromEvent(*r.Event)
	if err != nil {
		return err
	}
	got := c
	got.Proof = proof.Inclusion{}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		return fmt.Errorf("the certificate's fields differ from the ledger's destruction.certified event %d", c.Event)
	}
	return nil
}

// destroyedError is the refusal of any use of a destroyed dataset: when,
// by whom and on which request it was destroyed. Reads, exports and
// hand-overs call it for a dataset whose state is destroyed.
func (s *Service) destroyedError(d audit.Dataset) error {
	when, by, req := d.UpdatedAt.UTC().Format(time.RFC3339), "", ""
	if tl, err := s.Ledger.Timeline(d.ID); err == nil {
		for _, ev := range tl {
			if ev.Type == audit.EvDatasetDestroyed {
				when, by, req = ev.Time.UTC().Format(time.RFC3339), ev.Actor, ev.Details["request"]
			}
		}
	}
	return fmt.Errorf("%w: dataset %s was destroyed on %s by %s (request %s); its data no longer exists, the ledger keeps its metadata (custodian destroy certificate %s)",
		ErrConflict, d.ID, when, by, req, req)
}

// CheckNotDestroyed returns destroyedError for a destroyed dataset, nil
// otherwise: the guard every decrypting use case calls first.
func (s *Service) CheckNotDestroyed(d audit.Dataset) error {
	if d.State == audit.StateDestroyed {
		return s.destroyedError(d)
	}
	return nil
}

// RotateRequest asks for a new master key.
type RotateRequest struct {
	Passphrase    []byte `json:"passphrase"`
	NewPassphrase []byte `json:"new_passphrase,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// Rotation is the outcome of a key rotation.
type Rotation struct {
	vault.RotateResult
	Event int64 `json:"event"`
}

// RotateVault replaces the vault's master key: a new key, every object
// key re-wrapped (payloads untouched), the old master key file destroyed,
// and vault.rotated on the ledger (which the daemon then trusts).
func (s *Service) RotateVault(ctx context.Context, a Actor, req RotateRequest) (Rotation, error) {
	res := Resource{Kind: "vault"}
	if err := s.authorize(a, ActRotateVault, res); err != nil {
		return Rotation{}, err
	}
	if err := s.open(); err != nil {
		return Rotation{}, err
	}
	ident, err := s.unlockVault(a, ActRotateVault, res, req.Passphrase)
	if err != nil {
		return Rotation{}, err
	}
	// Rotation re-encrypts the master key under the passphrase, so it
	// needs the passphrase even while the vault is unsealed; an unsealed
	// daemon is handed the new key (rotate).
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = "requested by " + a.Name
	}
	_, out, err := s.rotate(ctx, a, ident, req.Passphrase, req.NewPassphrase, "", reason)
	return out, err
}

// rotate rotates the master key, recording vault.rotated at the vault's
// commit point.
func (s *Service) rotate(ctx context.Context, a Actor, ident *vault.Identity, pass, newPass []byte, request, reason string) (*vault.Identity, Rotation, error) {
	var out Rotation
	next, res, err := s.Vault.Rotate(ctx, ident, pass, vault.RotateOptions{NewPassphrase: newPass,
		Record: func(oldR, newR string) error {
			trusted, n, err := s.Ledger.VaultRecipient()
			if err != nil {
				return err
			}
			if trusted != oldR {
				return fmt.Errorf("the ledger trusts vault key %s, not %s", trusted, oldR)
			}
			return s.Ledger.Update(func(tx *audit.Tx) error {
				d := map[string]string{"old_recipient": oldR, "new_recipient": newR, "rotation": strconv.Itoa(n + 1),
					"passphrase_changed": strconv.FormatBool(len(newPass) > 0 && string(newPass) != string(pass)), "reason": reason}
				if request != "" {
					d["request"] = request
				}
				idx, _, err := tx.AppendOnce(audit.RotationOnceKey(n+1), attributed(a, audit.Event{Actor: a.Name, Type: audit.EvVaultRotated, Details: d}))
				out.Event = idx
				return err
			})
		}})
	if err != nil {
		return nil, out, err
	}
	out.RotateResult = res
	// An unsealed daemon keeps reading with the new key: the old one is
	// destroyed.
	s.key.mu.Lock()
	if s.key.ident != nil {
		s.key.ident = next
	}
	s.key.mu.Unlock()
	return next, out, nil
}

// Expiring is a dataset past its job's retention.
type Expiring struct {
	Dataset     DatasetView `json:"dataset"`
	Retention   string      `json:"retention"`
	Due         time.Time   `json:"due"`
	DaysOverdue int         `json:"days_overdue"`
	// Request is an open destruction request naming it, if any.
	Request string `json:"request,omitempty"`
}

// ExpiringDatasets lists the datasets still stored past their job's
// retention (received_at + retention), most overdue first.
func (s *Service) ExpiringDatasets(ctx context.Context, a Actor) ([]Expiring, error) {
	if err := s.authorize(a, ActExpiring, Resource{Kind: "dataset", Unit: s.config().Unit}); err != nil {
		return nil, err
	}
	return s.expiring()
}

// expiring lists the datasets past their retention (ExpiringDatasets
// without the caller; the daemon's daily notice uses it).
func (s *Service) expiring() ([]Expiring, error) {
	ds, err := s.Ledger.Datasets()
	if err != nil {
		return nil, err
	}
	open := map[string]string{}
	now := s.now()
	_ = s.Ledger.ViewState(stateRequests, func(r audit.Records) error {
		return r.ForEach(func(_ string, v []byte) error {
			var o accounts.Request
			if json.Unmarshal(v, &o) == nil && o.Kind == accounts.KindDestruction && now.Before(o.Expires) &&
				(o.State() == accounts.RequestPending || o.State() == accounts.RequestApproved) {
				for _, id := range strings.Fields(o.Details["datasets"]) {
					open[id] = o.ID
				}
			}
			return nil
		})
	})
	cfg := s.config()
	var out []Expiring
	for _, d := range ds {
		if !d.State.Stored() {
			continue
		}
		j, ok := cfg.Job(d.Job)
		if !ok || !j.Retention.Set() {
			continue
		}
		due := j.Retention.Due(d.ReceivedAt)
		if now.Before(due) {
			continue
		}
		out = append(out, Expiring{Dataset: ViewDataset(d), Retention: j.Retention.String(), Due: due,
			DaysOverdue: int(now.Sub(due) / (24 * time.Hour)), Request: open[d.ID]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due.Before(out[j].Due) })
	return out, nil
}

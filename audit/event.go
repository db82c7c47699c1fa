package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// OnceKey is the Details key of an event that may be recorded only once
// ([Tx.AppendOnce]): no two events of a ledger carry the same value.
const OnceKey = "once_key"

// Limits enforced by [Tx.Append].
const (
	// MaxEventSize bounds the canonical encoding of one event. Events
	// carry metadata only; a larger event almost certainly carries data
	// that does not belong in the ledger.
	MaxEventSize = 1 << 20

	// MaxIDSize bounds dataset IDs, which are used in index keys.
	MaxIDSize = 1024

	// MaxRemoteKeySize bounds len(Source)+len(RemotePath).
	MaxRemoteKeySize = 16 << 10
)

// Event is one ledger entry. Its canonical encoding (encoding/json of the
// struct, fields in this order) is the Merkle leaf data.
type Event struct {
	Index     int64             `json:"index"`
	Time      time.Time         `json:"time"`  // UTC, set by Append if zero
	Actor     string            `json:"actor"` // the one person (or "system:<name>") answerable for the action; required
	Type      EventType         `json:"type"`  // one of the catalogue (custody.go); required
	Job       string            `json:"job,omitempty"`
	DatasetID string            `json:"dataset_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"` // metadata only, never record contents
	Dataset   *Dataset          `json:"dataset,omitempty"` // when set: the full new state of that dataset (a state change)
}

// Dataset is the custody state of one received file. An [Event] whose
// Dataset field is set records the complete new state.
type Dataset struct {
	ID              string            `json:"id"`
	Job             string            `json:"job"`
	Source          string            `json:"source"`
	Kind            string            `json:"kind"` // extract | change
	RemotePath      string            `json:"remote_path"`
	RemoteSize      int64             `json:"remote_size"`
	RemoteMtime     time.Time         `json:"remote_mtime"`
	Size            int64             `json:"size"`    // bytes received
	SHA256          string            `json:"sha256"`  // hex of received bytes
	Records         int64             `json:"records"` // counted
	DeclaredRecords int64             `json:"declared_records"`
	State           State             `json:"state"` // StateVerified, StateQuarantined, ...
	Reason          string            `json:"reason,omitempty"`
	Purpose         string            `json:"purpose"`
	ObjectID        string            `json:"object_id"` // vault object holding the ciphertext
	Custodian       string            `json:"custodian"` // person holding custody
	ReceivedAt      time.Time         `json:"received_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	Integrity       map[string]string `json:"integrity,omitempty"` // how it was checked, free form
	// PriorObjects are the vault objects of earlier receipts of this
	// dataset (re-pulls of a quarantined file). They stay encrypted in the
	// vault until destroyed with approval.
	PriorObjects []string `json:"prior_objects,omitempty"`
	// Supersedes is the dataset an earlier delivery of the same remote
	// file became: the provider re-sent the file with different bytes.
	// The new dataset takes over the remote index entry; the earlier one
	// keeps its own state and objects. Set on the first state only.
	Supersedes string `json:"supersedes,omitempty"`
	// DestroyedFrom is the state a destroyed dataset was in before its
	// destruction (set on the destroyed state only), so that a change file
	// that was accepted keeps its place in its job's sequence chain.
	DestroyedFrom State `json:"destroyed_from,omitempty"`
}

// Objects lists every vault object the dataset holds: the current one and
// those of earlier receipts.
func (d Dataset) Objects() []string {
	out := make([]string, 0, 1+len(d.PriorObjects))
	if d.ObjectID != "" {
		out = append(out, d.ObjectID)
	}
	return append(out, d.PriorObjects...)
}

// remoteKey is the key of the remote index.
func remoteKey(source, remotePath string) []byte {
	k := make([]byte, 0, len(source)+1+len(remotePath))
	k = append(k, source...)
	k = append(k, 0)
	return append(k, remotePath...)
}

// hasRemote reports whether d is entered in the remote index.
func (d *Dataset) hasRemote() bool { return d.RemotePath != "" }

// validateEvent checks the rules every stored event obeys. It is used by
// Append (after normalisation) and by Verify (on decoded leaves).
func validateEvent(ev *Event) error {
	if ev.Index < 0 {
		return fmt.Errorf("negative index %d", ev.Index)
	}
	if strings.TrimSpace(ev.Actor) == "" {
		return fmt.Errorf("actor is required")
	}
	if strings.TrimSpace(string(ev.Type)) == "" {
		return fmt.Errorf("type is required")
	}
	if ev.Time.IsZero() {
		return fmt.Errorf("time is required")
	}
	for _, f := range [...]struct{ name, v string }{
		{"actor", ev.Actor}, {"type", string(ev.Type)}, {"job", ev.Job}, {"dataset_id", ev.DatasetID},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	if err := validateMap("details", ev.Details); err != nil {
		return err
	}
	if err := validateID("dataset_id", ev.DatasetID); err != nil {
		return err
	}
	if k, ok := ev.Details[OnceKey]; ok && (k == "" || len(k) > MaxRemoteKeySize) {
		return fmt.Errorf("details.%s must be 1 to %d bytes", OnceKey, MaxRemoteKeySize)
	}
	d := ev.Dataset
	if d == nil {
		return nil
	}
	if d.ID == "" {
		return fmt.Errorf("dataset.id is required")
	}
	if d.ID != ev.DatasetID {
		return fmt.Errorf("dataset.id %q does not match dataset_id %q", d.ID, ev.DatasetID)
	}
	if strings.TrimSpace(string(d.State)) == "" {
		return fmt.Errorf("dataset %s: state is required", d.ID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"job", d.Job}, {"source", d.Source}, {"kind", d.Kind}, {"remote_path", d.RemotePath},
		{"sha256", d.SHA256}, {"state", string(d.State)}, {"reason", d.Reason}, {"purpose", d.Purpose},
		{"object_id", d.ObjectID}, {"custodian", d.Custodian},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("dataset %s: %s is not valid UTF-8", d.ID, f.name)
		}
	}
	if err := validateID("dataset.supersedes", d.Supersedes); err != nil {
		return err
	}
	if d.Supersedes == d.ID {
		return fmt.Errorf("dataset %s: supersedes itself", d.ID)
	}
	if d.Supersedes != "" && !d.hasRemote() {
		return fmt.Errorf("dataset %s: supersedes %s but names no remote file", d.ID, d.Supersedes)
	}
	if strings.IndexByte(d.Source, 0) >= 0 || strings.IndexByte(d.RemotePath, 0) >= 0 {
		return fmt.Errorf("dataset %s: source and remote_path may not contain NUL", d.ID)
	}
	if len(d.Source)+len(d.RemotePath) > MaxRemoteKeySize {
		return fmt.Errorf("dataset %s: source and remote_path longer than %d bytes", d.ID, MaxRemoteKeySize)
	}
	return validateMap("dataset.integrity", d.Integrity)
}

func validateID(name, id string) error {
	if len(id) > MaxIDSize {
		return fmt.Errorf("%s longer than %d bytes", name, MaxIDSize)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%s may not contain NUL", name)
	}
	return nil
}

func validateMap(name string, m map[string]string) error {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%s: entry %q is not valid UTF-8", name, k)
		}
	}
	return nil
}

// datasetSep is what precedes the dataset object in a canonical event.
// Dataset is the last field of Event, so a canonical event with a dataset
// is head[:len(head)-1] + datasetSep + dataset + "}", where head is the
// encoding of the same event without its dataset.
var datasetSep = []byte(`,"dataset":`)

// encodeEvent returns the canonical encoding of ev and, if ev.Dataset is
// set, the canonical encoding of the dataset, which is also a subslice of
// the event encoding.
func encodeEvent(ev *Event) (leaf, ds []byte, err error) {
	leaf, err = json.Marshal(ev)
	if err != nil {
		return nil, nil, err
	}
	if ev.Dataset == nil {
		return leaf, nil, nil
	}
	ds, err = json.Marshal(ev.Dataset)
	if err != nil {
		return nil, nil, err
	}
	// The dataset record must be byte-identical to the dataset inside the
	// leaf; Verify relies on it.
	end := len(leaf) - 1
	start := end - len(ds)
	if start < len(datasetSep) || !bytes.Equal(leaf[start:end], ds) ||
		!bytes.Equal(leaf[start-len(datasetSep):start], datasetSep) || leaf[end] != '}' {
		return nil, nil, fmt.Errorf("dataset encoding is not a suffix of the event encoding")
	}
	return leaf, leaf[start:end:end], nil
}

// canonChecker checks that leaf bytes are the canonical encoding of the
// event decoded from them. It reuses its buffers and is not safe for
// concurrent use.
type canonChecker struct {
	head       Event
	bufA, bufD bytes.Buffer
	encA, encD *json.Encoder
}

func newCanonChecker() *canonChecker {
	c := &canonChecker{}
	c.encA = json.NewEncoder(&c.bufA)
	c.encD = json.NewEncoder(&c.bufD)
	return c
}

// check reports whether val is the canonical encoding of ev (which was
// decoded from val) and returns the dataset's canonical encoding. The
// returned slice aliases val when possible.
func (c *canonChecker) check(val []byte, ev *Event) (ok bool, ds []byte) {
	if ok, ds, fast := c.fast(val, ev); fast {
		return ok, ds
	}
	// Slow path, the definition: json.Marshal.
	leaf, ds, err := encodeEvent(ev)
	if err != nil {
		return false, nil
	}
	return bytes.Equal(leaf, val), ds
}

// fast compares without allocating. fast=false means it could not decide.
func (c *canonChecker) fast(val []byte, ev *Event) (ok bool, ds []byte, fast bool) {
	c.head = *ev
	c.head.Dataset = nil
	c.bufA.Reset()
	if err := c.encA.Encode(&c.head); err != nil {
		return false, nil, false
	}
	a := bytes.TrimSuffix(c.bufA.Bytes(), []byte{'\n'})
	if ev.Dataset == nil {
		return bytes.Equal(val, a), nil, true
	}
	c.bufD.Reset()
	if err := c.encD.Encode(ev.Dataset); err != nil {
		return false, nil, false
	}
	d := bytes.TrimSuffix(c.bufD.Bytes(), []byte{'\n'})
	if len(a) < 2 || a[len(a)-1] != '}' {
		return false, nil, false
	}
	a = a[:len(a)-1]
	start := len(a) + len(datasetSep)
	end := start + len(d)
	if len(val) != end+1 || !bytes.Equal(val[:len(a)], a) ||
		!bytes.Equal(val[len(a):start], datasetSep) || !bytes.Equal(val[start:end], d) || val[end] != '}' {
		return false, nil, false // let the slow path decide
	}
	return true, val[start:end:end], true
}

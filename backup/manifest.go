package backup

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Format is the first line of every manifest.
const Format = "custodian-backup/1"

// Names inside a backup directory.
const (
	ManifestFile     = "MANIFEST"
	VerifierKeyFile  = "keys/ledger.vkey"
	SealedSignerFile = "keys/ledger.sign.age"
	MasterPubFile    = "vault/master.pub"
	MasterKeyFile    = "vault/master.key.age"
	ObjectsDir       = "vault/objects"
	KeysDir          = "vault/keys"
	LedgerName       = "ledger.db"
	CheckpointName   = "ledger.checkpoint"
	ConfigDir        = "config"
	snapshotPrefix   = "snapshot-"
)

// ObjectPath is the path of vault object id inside a backup.
func ObjectPath(id string) string { return ObjectsDir + "/" + id[:2] + "/" + id + ".age" }

// KeyPath is the path of vault object id's key file inside a backup.
func KeyPath(id string) string { return KeysDir + "/" + id[:2] + "/" + id + ".key" }

// Entry is one file of a backup and its SHA-256 (lower-case hex).
type Entry struct {
	SHA256 string
	Path   string // slash path relative to the backup directory
}

// Manifest is what a backup holds.
type Manifest struct {
	LedgerSize int64     // events in the ledger snapshot
	TreeHash   string    // base64 tree hash of that snapshot (its signed checkpoint's)
	Snapshot   string    // directory of the snapshot, e.g. snapshot-42
	Created    time.Time // when the backup was written (UTC)
	Files      []Entry   // sorted by path
}

// LedgerPath is the path of the ledger snapshot in the backup.
func (m *Manifest) LedgerPath() string { return m.Snapshot + "/" + LedgerName }

// CheckpointPath is the path of the snapshot's signed checkpoint.
func (m *Manifest) CheckpointPath() string { return m.Snapshot + "/" + CheckpointName }

// Lookup returns the listed hash of p.
func (m *Manifest) Lookup(p string) (string, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, p, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return "", false
	}
	return m.Files[i].SHA256, true
}

// Text is the manifest's note text.
func (m *Manifest) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nledger %d %s\nsnapshot %s\ncreated %s\n", Format, m.LedgerSize, m.TreeHash, m.Snapshot,
		m.Created.UTC().Format(time.RFC3339))
	files := slices.Clone(m.Files)
	slices.SortFunc(files, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	for _, e := range files {
		fmt.Fprintf(&b, "%s  %s\n", e.SHA256, e.Path)
	}
	return b.String()
}

// Sign returns the signed manifest.
func (m *Manifest) Sign(s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: m.Text()}, s)
}

var (
	hexRe      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	snapshotRe = regexp.MustCompile(`^snapshot-[0-9]+(-[0-9]+)?$`)
)

// safePath reports whether p is a clean relative slash path that stays
// inside the backup and names nothing but plain characters.
func safePath(p string) bool {
	if p == "" || p != path.Clean(p) || path.IsAbs(p) || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return false
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '\\' {
			return false
		}
	}
	return true
}

// OpenManifest checks the signature of a signed manifest with verifier key
// vkey and parses it.
func OpenManifest(msg []byte, vkey string) (*Manifest, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("not signed by %s+%08x", v.Name(), v.KeyHash())
		}
		return nil, err
	}
	return ParseManifest(n.Text)
}

// ParseManifest parses a manifest's text (without checking any signature).
func ParseManifest(text string) (*Manifest, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	next := func(prefix string) (string, error) {
		if !sc.Scan() {
			return "", fmt.Errorf("manifest ends before its %q line", prefix)
		}
		line++
		s, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			return "", fmt.Errorf("manifest line %d: want %q, got %q", line, prefix, sc.Text())
		}
		return s, nil
	}
	if f, err := next(""); err != nil || f != Format {
		return nil, fmt.Errorf("not a %s manifest (first line %q)", Format, f)
	}
	m := &Manifest{}
	s, err := next("ledger ")
	if err != nil {
		return nil, err
	}
	size, hash, _ := strings.Cut(s, " ")
	if m.LedgerSize, err = strconv.ParseInt(size, 10, 64); err != nil || m.LedgerSize < 1 || hash == "" {
		return nil, fmt.Errorf("manifest line %d: malformed ledger line %q", line, s)
	}
	m.TreeHash = hash
	if m.Snapshot, err = next("snapshot "); err != nil {
		return nil, err
	}
	if !snapshotRe.MatchString(m.Snapshot) {
		return nil, fmt.Errorf("manifest line %d: malformed snapshot directory %q", line, m.Snapshot)
	}
	s, err = next("created ")
	if err != nil {
		return nil, err
	}
	if m.Created, err = time.Parse(time.RFC3339, s); err != nil {
		return nil, fmt.Errorf("manifest line %d: %w", line, err)
	}
	for sc.Scan() {
		line++
		sum, p, ok := strings.Cut(sc.Text(), "  ")
		if !ok || !hexRe.MatchString(sum) || !safePath(p) {
			return nil, fmt.Errorf("manifest line %d: want \"SHA256  path\", got %q", line, sc.Text())
		}
		if n := len(m.Files); n > 0 && m.Files[n-1].Path >= p {
			return nil, fmt.Errorf("manifest line %d: %s is out of order or listed twice", line, p)
		}
		m.Files = append(m.Files, Entry{SHA256: sum, Path: p})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// ID names a backup: its ledger size and the first 12 hex digits of the
// SHA-256 of its signed manifest file.
func ID(ledgerSize int64, manifestSHA256 string) string {
	return fmt.Sprintf("bk-%d-%s", ledgerSize, manifestSHA256[:12])
}

// LastFile is the file in data_dir where the daemon records its last
// backup, for `custodian doctor` and `status` to read without the daemon.
const LastFile = "last-backup.json"

// Last is what LastFile holds.
type Last struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Dir        string    `json:"dir"`
	LedgerSize int64     `json:"ledger_size"`
	Objects    int       `json:"objects"`
	Bytes      int64     `json:"bytes"`
}
